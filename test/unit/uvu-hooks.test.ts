// Failing hooks under test/support/uvu-hooks.ts (which test/run.ts preloads): uvu runs two small test
// files in a child process, as test/run.ts runs the tests, and its output is read as test/run.ts reads it.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { uvuCounts } from "../support/uvu-summary.ts";

// "uvu" is bare on purpose: the preload answers it, wherever the file is.
const FIRST = `
import { test, suite } from "uvu";
test.before(() => { throw new Error("before broke: no fixture"); });
test("not run: its before hook failed", () => {});
test.run();

const other = suite("other");
other.after(() => { throw new Error("after broke: cleanup failed"); });
other("runs, then its after hook fails", () => {});
other.run();
`;
const SECOND = `
import { test } from "uvu";
test("the next file still runs", () => {});
test.run();
`;

test("a failing before hook's error is printed; a failing after hook's is printed and counted, and the run goes on", () => {
  const dir = mkdtempSync(join(tmpdir(), "mp-hooks-"));
  try {
    // .mts: ES modules even outside this package.
    writeFileSync(join(dir, "a.test.mts"), FIRST);
    writeFileSync(join(dir, "b.test.mts"), SECOND);
    const hooks = pathToFileURL(join(PROJECT_ROOT, "test", "support", "uvu-hooks.ts")).href;
    const r = spawnSync(process.execPath, ["--import", "tsx", "--import", hooks, join(PROJECT_ROOT, "node_modules", "uvu", "bin.js"), dir, "\\.test\\.mts$"],
      { cwd: PROJECT_ROOT, encoding: "utf8", timeout: 60000 });
    const out = (r.stdout + r.stderr).replace(/\x1b\[[0-9;]*m/g, "");
    assert.match(out, "FAIL test.before hook of a.test.mts: Error: before broke: no fixture");
    assert.match(out, "FAIL test.after hook of a.test.mts (other): Error: after broke: cleanup failed");
    assert.match(out, "b.test.mts", out);
    // Three tests: the first not passed (its before hook failed), the other two passed; one after hook failed.
    assert.equal(uvuCounts(r.stdout), { total: 3, passed: 2, skipped: 0, afterHookFailures: 1 }, out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
