// A checkout in a private directory: Envoy running as another user cannot read dist/loop-guard.wasm
// there, so the control plane sends a copy every user can read (the Envoy side, as uid 1337, is in
// test/envoy/guard-private-checkout.test.ts).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readableByOthers, readableCopy } from "../../control/guard-wasm/readable-copy.ts";
import { setUpLoopGuard } from "../../control/guard-wasm/setup.ts";

const dirs: string[] = [];
const temp = (mode: number) => {
  const d = mkdtempSync(join(tmpdir(), "mp-guard-copy-"));
  chmodSync(d, mode);
  dirs.push(d);
  return d;
};
test.after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** A module file inside a private directory, as in a clone under root's home. */
function privateModule(bytes = "\0asm fake module"): string {
  const file = join(temp(0o700), "loop-guard.wasm");
  writeFileSync(file, bytes, { mode: 0o644 });
  return file;
}

test("a file under a directory others cannot enter is not readable by others; one under open directories is", () => {
  assert.is(readableByOthers(privateModule()), false);
  const open = join(temp(0o755), "m.wasm");
  writeFileSync(open, "x", { mode: 0o644 });
  assert.is(readableByOthers(open), true);
  chmodSync(open, 0o600);
  assert.is(readableByOthers(open), false, "the file itself not readable by others");
  assert.is(readableByOthers(join(tmpdir(), "does-not-exist.wasm")), false);
});

test("the copy: same bytes, readable by others, named by content, reused while unchanged", () => {
  const under = join(temp(0o755), "copies");
  const original = privateModule("module v1");
  const copy = readableCopy(original, under);
  assert.equal(readFileSync(copy), readFileSync(original));
  assert.is(readableByOthers(copy), true);
  assert.is(statSync(copy).mode & 0o777, 0o644);
  assert.is(statSync(under).mode & 0o777, 0o755);
  assert.is(readableCopy(original, under), copy, "unchanged: the same copy");
  writeFileSync(original, "module v2");
  const next = readableCopy(original, under);
  assert.is.not(next, copy, "a rebuilt module gets a copy of its own");
  assert.is(readFileSync(next, "utf8"), "module v2");
});

test("a copy directory that others can write to is refused, not used", () => {
  const under = join(temp(0o755), "open");
  mkdirSync(under);
  chmodSync(under, 0o777);
  assert.throws(() => readableCopy(privateModule(), under), /must be a directory of this user's that nobody else can write to/);
});

test("serve's default module in a private checkout: Envoy is sent the copy, and the log says why", async () => {
  const logs: string[] = [];
  const original = privateModule();
  const guard = await setUpLoopGuard({ xdsHost: "127.0.0.1", mode: "enforce", defaultPath: original }, (l) => logs.push(l));
  try {
    assert.is.not(guard.options.wasmPath, original);
    assert.is(readableByOthers(guard.options.wasmPath), true);
    assert.equal(readFileSync(guard.options.wasmPath), readFileSync(original));
    assert.ok(logs.some((l) => l.includes(`${original} is in a directory other users cannot enter`) && l.includes(guard.options.wasmPath)), logs.join("\n"));
  } finally {
    await guard.close();
  }
  const explicit = await setUpLoopGuard({ xdsHost: "127.0.0.1", mode: "enforce", defaultPath: original, path: "/opt/envoy/loop-guard.wasm" }, () => {});
  assert.is(explicit.options.wasmPath, "/opt/envoy/loop-guard.wasm", "--guard-wasm-path names a file on the Envoy hosts: sent as given");
});

test.run();
