// `npm install` step: TypeScript types for the Envoy resources multiplane generates, from the same
// .proto files (inside @grpc/grpc-js-xds) the encoder loads at run time, written to .envoy-types/
// (not committed). Generation types its output with them; nothing at run time reads them.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ENVOY_TYPES_DIR } from "../envoy/paths.ts";
import { INCLUDE_DIRS, RESOURCE_PROTOS } from "../control/xds/cache/protos.ts";

const require = createRequire(import.meta.url);
const generator = join(dirname(require.resolve("@grpc/proto-loader/package.json")), "build", "bin", "proto-loader-gen-types.js");

/** Writes the types; returns how many files. */
function generateEnvoyTypes(): number {
  rmSync(ENVOY_TYPES_DIR, { recursive: true, force: true });
  mkdirSync(ENVOY_TYPES_DIR, { recursive: true });
  const r = spawnSync(process.execPath, [
    generator, "--keepCase", "--longs=String", "--enums=String", "--oneofs",
    ...INCLUDE_DIRS.flatMap((d) => ["-I", d]), "--outDir", ENVOY_TYPES_DIR, ...RESOURCE_PROTOS,
  ], { encoding: "utf8" });
  if (r.status !== 0) {
    process.stderr.write(r.stderr || r.stdout);
    throw new Error(`proto-loader-gen-types failed (exit ${r.status})`);
  }
  // The generator writes extensionless relative imports; this project's ES modules name the file.
  let files = 0;
  for (const entry of readdirSync(ENVOY_TYPES_DIR, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".ts")) continue;
    const file = join(entry.parentPath, entry.name);
    writeFileSync(file, readFileSync(file, "utf8").replace(/from '(\.{1,2}\/[^']+)'/g, "from '$1.ts'"));
    files++;
  }
  return files;
}

console.log(`generated Envoy resource types in ${ENVOY_TYPES_DIR} (${generateEnvoyTypes()} files)`);
