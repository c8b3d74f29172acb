// The availability gate (test/support/available.ts), observed the way `npm test` sees it: uvu runs a
// small test file in a child process, once with CI unset and once with CI=true, and its counts and
// output are read. The file has a suite whose prerequisite is there and one whose prerequisite is not.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { PROJECT_ROOT } from "../../envoy/paths.ts";

const REASON = "the frobnicator is not installed";

const GATED_FILE = `
import { test } from ${JSON.stringify(import.meta.resolve("uvu"))};
import { whenAvailable } from ${JSON.stringify(pathToFileURL(join(PROJECT_ROOT, "test", "support", "available.ts")).href)};

whenAvailable(undefined, "present", (test) => {
  let hooked = false;
  test.before(() => { hooked = true; });
  test("present: first", () => { if (!hooked) throw new Error("the before hook did not run"); });
  test("present: second", () => {});
});

whenAvailable(${JSON.stringify(REASON)}, "absent", (test) => {
  test.before(() => { throw new Error("HOOK RAN: before"); });
  test.before.each(() => { throw new Error("HOOK RAN: before.each"); });
  test.after(() => { throw new Error("HOOK RAN: after"); });
  test("absent: first", () => { throw new Error("TEST RAN"); });
  test("absent: second", () => { throw new Error("TEST RAN"); });
  test("absent: third", () => { throw new Error("TEST RAN"); });
});

test.run();
`;

function runGated(ci: "true" | undefined): { out: string; total: number; passed: number; skipped: number; status: number | null } {
  const dir = mkdtempSync(join(tmpdir(), "mp-gate-"));
  try {
    // .mts: an ES module even outside this package, so it and the gate share one uvu.
    writeFileSync(join(dir, "gated.test.mts"), GATED_FILE);
    const env = { ...process.env };
    delete env.CI;
    if (ci) env.CI = ci;
    const r = spawnSync(process.execPath, ["--import", "tsx", join(PROJECT_ROOT, "node_modules", "uvu", "bin.js"), dir, "gated\\.test\\.mts$"],
      { cwd: PROJECT_ROOT, env, encoding: "utf8", timeout: 60000 });
    const out = (r.stdout + r.stderr).replace(/\x1b\[[0-9;]*m/g, "");
    const num = (label: string) => Number(new RegExp(`^\\s*${label}:\\s+(\\d+)`, "m").exec(out)?.[1] ?? -1);
    return { out, total: num("Total"), passed: num("Passed"), skipped: num("Skipped"), status: r.status };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const count = (text: string, needle: string) => text.split(needle).length - 1;

test("prerequisite missing, CI unset: each of the suite's tests is a skip, one line says why, nothing of it runs", () => {
  const r = runGated(undefined);
  assert.equal({ total: r.total, passed: r.passed, skipped: r.skipped, status: r.status }, { total: 2, passed: 2, skipped: 3, status: 0 }, r.out);
  assert.is(count(r.out, `SKIPPED (absent): ${REASON}`), 1, r.out);
  assert.not.match(r.out, "RAN");
  assert.not.match(r.out, "cannot run");
});

test("prerequisite missing, CI=true: each of the suite's tests fails with the reason, nothing of it runs", () => {
  const r = runGated("true");
  assert.equal({ total: r.total, passed: r.passed, skipped: r.skipped, status: r.status }, { total: 5, passed: 2, skipped: 0, status: 1 }, r.out);
  assert.is(count(r.out, `cannot run: ${REASON}`), 3, r.out);
  for (const name of ["absent: first", "absent: second", "absent: third"]) assert.match(r.out, `FAIL  "${name}"`);
  assert.not.match(r.out, "RAN");
  assert.not.match(r.out, "SKIPPED");
});

test.run();
