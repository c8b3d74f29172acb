// `npm install` step: compiles the loop guard to dist/loop-guard.wasm. A failure exits non-zero,
// which fails `npm install` loudly rather than leaving a stale or missing module.
import { execFileSync } from "node:child_process";
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { LOOP_GUARD_WASM as WASM_OUT, PROJECT_ROOT } from "../envoy/paths.ts";

mkdirSync(join(PROJECT_ROOT, "dist"), { recursive: true });
const asc = join(PROJECT_ROOT, "node_modules", "assemblyscript", "bin", "asc");
execFileSync(process.execPath, [asc, join(PROJECT_ROOT, "wasm", "assembly", "index.ts"),
  "--binaryFile", WASM_OUT,
  // Our abort logs the message at critical level, then exits the VM (host.ts).
  "--use", "abort=wasm/assembly/host/abort",
  "--optimizeLevel", "3", "--shrinkLevel", "1"], { stdio: "inherit", cwd: PROJECT_ROOT });
console.log(`built ${WASM_OUT} (${statSync(WASM_OUT).size} bytes)`);
