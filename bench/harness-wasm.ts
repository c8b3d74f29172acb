// The benchmark's reference modules from wasm/harness/ (not shipped), compiled into `dir`: "empty" (a
// filter that does nothing) and "probe" (the guard's host calls one by one).
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { PROJECT_ROOT } from "../envoy/paths.ts";

export function buildHarnessWasm(dir: string, name: "empty" | "probe"): string {
  const out = join(dir, `${name}.wasm`);
  execFileSync(process.execPath, [join(PROJECT_ROOT, "node_modules", "assemblyscript", "bin", "asc"),
    join(PROJECT_ROOT, "wasm", "harness", `${name}.ts`), "--binaryFile", out, "-O3",
    // The empty module has no abort at all; the probe uses the guard's (it imports host.ts).
    "--use", name === "empty" ? "abort=" : "abort=wasm/assembly/host/abort"],
    { cwd: PROJECT_ROOT, stdio: "inherit" });
  return out;
}
