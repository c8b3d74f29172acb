// Entry point of dist/multiplane.js (the `multiplane` bin).
import { main } from "./cli.ts";

process.exitCode = await main(process.argv.slice(2));
