// The loop guard module as the control plane serves and pins it: its bytes, read once at start, and
// their SHA-256. Rebuilding dist/loop-guard.wasm later does not change what a running control plane
// serves or the sha256 it sends (Envoy would refuse a mismatch); a restart picks the new module up.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

export interface GuardModule {
  path: string;
  bytes: Buffer;
  /** Lower-case hex, as Envoy's RemoteDataSource.sha256 expects. */
  sha256: string;
}

export function readGuardModule(path: string): GuardModule {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new Error(`loop guard module ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (npm run build:wasm builds it)`);
  }
  return { path, bytes, sha256: createHash("sha256").update(bytes).digest("hex") };
}
