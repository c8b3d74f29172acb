// What `npm test` does before the tests: rebuild dist/ from the current sources, so that the tests that
// run the bundle (dist/multiplane.js) or load the loop guard (dist/loop-guard.wasm) never run a stale
// one, and type-check the tree. Each step is reported like a test: a name, ok or not, and its output.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { LOOP_GUARD_WASM, PROJECT_ROOT } from "../../envoy/paths.ts";

export interface StepResult {
  name: string;
  ok: boolean;
  /** One line for the log: what was done and how long it took. */
  summary: string;
  /** The command's output, shown when the step failed. */
  output: string;
}

export const BUNDLE = join(PROJECT_ROOT, "dist", "multiplane.js");
/** Fingerprint of the inputs dist/loop-guard.wasm was last built from by this runner. */
const WASM_STAMP = `${LOOP_GUARD_WASM}.inputs`;

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

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : []))
    .sort();
}

/**
 * Everything the loop guard's build reads: the AssemblyScript sources, the build script (flags) and what
 * it imports, and the compiler's and the SDK's versions.
 */
function wasmInputsHash(): string {
  const files = [
    ...filesUnder(join(PROJECT_ROOT, "wasm", "assembly")),
    join(PROJECT_ROOT, "scripts", "build-wasm.ts"),
    join(PROJECT_ROOT, "envoy", "paths.ts"),
    join(PROJECT_ROOT, "node_modules", "assemblyscript", "package.json"),
    join(PROJECT_ROOT, "node_modules", "@solo-io", "proxy-runtime", "package.json"),
  ];
  const h = createHash("sha256");
  for (const f of files) h.update(relative(PROJECT_ROOT, f)).update("\0").update(readFileSync(f)).update("\0");
  return h.digest("hex");
}

const fileHash = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

/** The stamp matches when the module was built by us from exactly these inputs and not replaced since. */
function wasmIsFresh(inputs: string): boolean {
  if (!existsSync(LOOP_GUARD_WASM) || !existsSync(WASM_STAMP)) return false;
  try {
    const stamp = JSON.parse(readFileSync(WASM_STAMP, "utf8")) as { inputs?: string; wasm?: string };
    return stamp.inputs === inputs && stamp.wasm === fileHash(LOOP_GUARD_WASM);
  } catch {
    return false;
  }
}

/** The bundle is always rebuilt (esbuild takes a fraction of a second); on failure the stale one is removed. */
export async function buildBundle(): Promise<StepResult> {
  const r = await run(["--import", "tsx", join("scripts", "build-bundle.ts")]);
  if (!r.ok) rmSync(BUNDLE, { force: true });
  return {
    name: "build dist/multiplane.js",
    ok: r.ok,
    summary: r.ok ? `rebuilt from the current sources (${seconds(r.ms)})` : `failed (${seconds(r.ms)}); the stale bundle was removed so no test runs it`,
    output: r.output,
  };
}

/** The loop guard takes seconds to compile, so it is rebuilt only when one of its inputs changed. */
export async function buildWasm(): Promise<StepResult> {
  const name = "build dist/loop-guard.wasm";
  const inputs = wasmInputsHash();
  if (wasmIsFresh(inputs)) return { name, ok: true, summary: "up to date (its inputs did not change)", output: "" };
  const r = await run(["--import", "tsx", join("scripts", "build-wasm.ts")]);
  if (r.ok) {
    writeFileSync(WASM_STAMP, `${JSON.stringify({ inputs, wasm: fileHash(LOOP_GUARD_WASM) })}\n`);
  } else {
    rmSync(LOOP_GUARD_WASM, { force: true });
    rmSync(WASM_STAMP, { force: true });
  }
  return {
    name,
    ok: r.ok,
    summary: r.ok ? `rebuilt: its inputs changed (${seconds(r.ms)})` : `failed (${seconds(r.ms)}); the stale module was removed so no test loads it`,
    output: r.output,
  };
}

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
