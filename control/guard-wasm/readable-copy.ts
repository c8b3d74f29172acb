// Envoy often runs as another user than the control plane (uid 1337 beside an iptables capture, or a
// packaged Envoy's own user) and reads the loop guard module from the path the control plane sends. A
// checkout inside a private directory (root's home, a `mktemp -d` folder) keeps that user out, and
// Envoy refuses the guard's configuration ("Invalid path"). The module that comes with multiplane is
// therefore sent as a copy every user can read when the original is not: in a directory of this
// user's under the temp directory, named by content, written whole before it is renamed into place.
import { createHash } from "node:crypto";
import { chmodSync, lstatSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, parse } from "node:path";

/** Whether a user other than the owner can read `path`: the file readable by others, every directory above it enterable by others. */
export function readableByOthers(path: string): boolean {
  try {
    if ((statSync(path).mode & 0o004) === 0) return false;
    for (let dir = dirname(path); ; dir = dirname(dir)) {
      if ((statSync(dir).mode & 0o001) === 0) return false;
      if (dir === parse(dir).root) return true;
    }
  } catch {
    return false;
  }
}

/** A copy of `path` that others can read, in `under` (default: this user's directory in the temp directory); its path. */
export function readableCopy(path: string, under = join(tmpdir(), `multiplane-${process.getuid?.() ?? "user"}`)): string {
  const bytes = readFileSync(path);
  const hash = createHash("sha256").update(bytes).digest("hex").slice(0, 16);
  mkdirSync(under, { recursive: true, mode: 0o755 });
  // Another user must not be able to plant a module here: the directory must be ours, a real
  // directory, and writable by nobody else.
  const dir = lstatSync(under);
  const uid = process.getuid?.();
  if (!dir.isDirectory() || (uid !== undefined && dir.uid !== uid) || (dir.mode & 0o022) !== 0) {
    throw new Error(`loop guard module: ${under} must be a directory of this user's that nobody else can write to (it holds the copy Envoy reads)`);
  }
  chmodSync(under, 0o755);
  const copy = join(under, `loop-guard-${hash}.wasm`);
  try {
    if (readFileSync(copy).equals(bytes)) return copy;
  } catch { /* not there yet */ }
  const temp = `${copy}.${process.pid}.tmp`;
  writeFileSync(temp, bytes, { mode: 0o644 });
  chmodSync(temp, 0o644);
  renameSync(temp, copy);
  return copy;
}
