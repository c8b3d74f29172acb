// What `npm test` does before the tests: type-check the tree. Each step is reported like a test: a name,
// ok or not, and its output.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { PROJECT_ROOT } from "../../envoy/paths.ts";

export interface StepResult {
  name: string;
  ok: boolean;
  /** One line for the log: what was done and how long it took. */
  summary: string;
  /** The command's output, shown when the step failed. */
  output: string;
}

function run(args: string[]): Promise<{ ok: boolean; output: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: PROJECT_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => { output += d.toString(); });
    child.stderr.on("data", (d: Buffer) => { output += d.toString(); });
    child.on("error", (e) => resolve({ ok: false, output: `${output}${e.message}\n`, ms: Date.now() - t0 }));
    child.on("close", (code, signal) => resolve({ ok: code === 0, output: output + (signal ? `killed by ${signal}\n` : ""), ms: Date.now() - t0 }));
  });
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** `tsc -p .`: control, envoy, test, bench and the host-side wasm/ scripts (tsconfig.json). */
export async function typecheck(): Promise<StepResult> {
  const r = await run([join("node_modules", "typescript", "bin", "tsc"), "-p", ".", "--pretty", "false"]);
  return {
    name: "type-check (tsc -p .)",
    ok: r.ok,
    summary: r.ok ? `no errors (${seconds(r.ms)})` : `${(r.output.match(/error TS\d+/g) ?? []).length || "some"} error(s) (${seconds(r.ms)})`,
    output: r.output,
  };
}
