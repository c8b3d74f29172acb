// The loop guard's own configuration parser, as an oracle for tests that hand Envoy random
// configurations: wasm/harness/parsers.ts (which imports wasm/assembly/config.ts) is compiled into a
// temp dir and called through WebAssembly, so "valid" means exactly what the guard in Envoy accepts.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT } from "../../envoy/paths.ts";

/** The harness's input buffer: longer configurations cannot be judged here. */
export const ORACLE_MAX_BYTES = 8192;

export interface ConfigVerdict {
  ok: boolean;
  /** describe() of a valid configuration ("mode=enforce node_ips=[...] ..."), or the error message. */
  text: string;
}

export function guardConfigOracle(): (text: string) => ConfigVerdict {
  const dir = mkdtempSync(join(tmpdir(), "multiplane-oracle-"));
  let h: { memory: WebAssembly.Memory; input(): number; output(): number; config(len: number): number };
  try {
    const out = join(dir, "parsers.wasm");
    execFileSync(process.execPath, [join(PROJECT_ROOT, "node_modules", "assemblyscript", "bin", "asc"),
      join(PROJECT_ROOT, "wasm", "harness", "parsers.ts"), "--binaryFile", out, "--optimizeLevel", "1"],
      { cwd: PROJECT_ROOT, stdio: ["ignore", "ignore", "inherit"] });
    const inst = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(out)), {
      env: { abort: () => { throw new Error("guard configuration parser aborted"); } },
    });
    h = inst.exports as typeof h;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return (text) => {
    const bytes = new TextEncoder().encode(text);
    if (bytes.length > ORACLE_MAX_BYTES) throw new Error(`the oracle judges configurations up to ${ORACLE_MAX_BYTES} bytes, got ${bytes.length}`);
    new Uint8Array(h.memory.buffer, h.input(), bytes.length).set(bytes);
    const n = h.config(bytes.length);
    return { ok: n >= 0, text: new TextDecoder().decode(new Uint8Array(h.memory.buffer, h.output(), Math.abs(n))) };
  };
}
