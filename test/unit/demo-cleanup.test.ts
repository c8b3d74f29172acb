// The demo's cleanup registry: cleanups run on exit and on Ctrl-C while registered, not after they were
// removed, and the process hooks exist only while a registry is open (a row leaves none behind).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CleanupRegistry } from "../../control/cmd/demo/cleanup.ts";
import { runScenario } from "../../control/cmd/demo/runner.ts";
import { MATRIX } from "../../control/cmd/demo/scenario.ts";

const HOOKED = ["exit", "SIGINT", "SIGTERM", "SIGHUP"] as const;
const listeners = () => HOOKED.map((e) => process.listenerCount(e));

test("hooks live as long as the registry; close() runs what is left, most recent first, once", () => {
  const before = listeners();
  const cleanup = new CleanupRegistry();
  assert.equal(listeners(), before.map((n) => n + 1));
  const ran: string[] = [];
  cleanup.add(() => ran.push("dir"));
  const removeDone = cleanup.add(() => ran.push("done"));
  cleanup.add(() => { throw new Error("a failing cleanup does not stop the others"); });
  cleanup.add(() => ran.push("process"));
  removeDone();
  cleanup.close();
  assert.equal(ran, ["process", "dir"]);
  assert.equal(listeners(), before);
  cleanup.close();
  assert.equal(ran, ["process", "dir"]);
  assert.throws(() => cleanup.add(() => {}), /closed/);
});

test("Ctrl-C while registered: the cleanup runs and the process exits 130, as SIGINT's default would", () => {
  const dir = mkdtempSync(join(tmpdir(), "multiplane-cleanup-"));
  const marker = join(dir, "left-behind");
  try {
    const script = `
      import { writeFileSync, rmSync } from "node:fs";
      import { CleanupRegistry } from ${JSON.stringify(new URL("../../control/cmd/demo/cleanup.ts", import.meta.url).pathname)};
      writeFileSync(${JSON.stringify(marker)}, "");
      const cleanup = new CleanupRegistry();
      cleanup.add(() => rmSync(${JSON.stringify(marker)}));
      process.kill(process.pid, "SIGINT");
      setTimeout(() => {}, 5000);`;
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8", timeout: 15000 });
    assert.is(r.status, 130, r.stderr);
    assert.not.ok(existsSync(marker), "the cleanup did not run");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a demo row (loopback) leaves no exit or signal hook behind", async () => {
  const before = listeners();
  const spec = MATRIX.find((s) => s.name === "fix")!;
  const r = await runScenario(spec, "loopback");
  assert.is(r.status, 200, JSON.stringify({ ...r, envoyLogTail: undefined }));
  assert.equal(listeners(), before);
});

test.run();
