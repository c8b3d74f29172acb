// Entry point of dist/multiplane.js (the `multiplane` bin).
import { main } from "./cmd/cli.ts";

process.exitCode = await main(process.argv.slice(2));
