// `npm install` step: bundles the control plane (and the envoy/ helpers it uses) into one ESM
// file, dist/multiplane.js, the `multiplane` bin. npm packages stay external: they are installed.
import { build } from "esbuild";
import { chmodSync, mkdirSync, symlinkSync, rmSync } from "node:fs";
import { join, relative, dirname } from "node:path";
import { PROJECT_ROOT } from "../envoy/paths.ts";

const outfile = join(PROJECT_ROOT, "dist", "multiplane.js");
await build({
  entryPoints: [join(PROJECT_ROOT, "control", "main.ts")],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  banner: { js: "#!/usr/bin/env node" },
  logLevel: "warning",
});
chmodSync(outfile, 0o755);
// npm links the bins of dependencies, not the project's own; link ours so `npx multiplane` works in a checkout.
const link = join(PROJECT_ROOT, "node_modules", ".bin", "multiplane");
mkdirSync(dirname(link), { recursive: true });
rmSync(link, { force: true });
symlinkSync(relative(dirname(link), outfile), link);
console.log(`built ${outfile}`);
