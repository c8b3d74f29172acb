// `npm test`: rebuilds dist/ and type-checks the tree (test/support/preflight.ts), then runs every
// test/**/*.test.ts with uvu (TypeScript through tsx) and ends with the line CI reads:
// "N passed, N failed[, N skipped]". The build and the type-check count as one test each, so a type
// error or a bundle that does not build fails the run. Optional argument: a pattern for the test files'
// paths below test/, e.g. '^unit/.*\.test\.ts$' (`npm run test:unit`); the preflight always runs:
// the selected tests may run the bundle. The tests run with test/support/uvu-hooks.ts preloaded, so
// that a failing test.before or test.after hook is reported (uvu alone loses both).
import { spawn } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { PROJECT_ROOT } from "../envoy/paths.ts";
import { buildBundle, buildWasm, typecheck, type StepResult } from "./support/preflight.ts";
import { uvuCounts } from "./support/uvu-summary.ts";

const pattern = process.argv[2] ?? "\\.test\\.ts$";

const steps: StepResult[] = await Promise.all([buildBundle(), buildWasm(), typecheck()]);
for (const s of steps) {
  console.log(`${s.ok ? "ok  " : "FAIL"} ${s.name}: ${s.summary}`);
  if (!s.ok) console.log(s.output.trimEnd().replace(/^/gm, "     "));
}
const stepsPassed = steps.filter((s) => s.ok).length;
const stepsFailed = steps.length - stepsPassed;

const uvu = join(PROJECT_ROOT, "node_modules", "uvu", "bin.js");
const hooks = pathToFileURL(join(PROJECT_ROOT, "test", "support", "uvu-hooks.ts")).href;
const child = spawn(process.execPath, ["--import", "tsx", "--import", hooks, uvu, "test", pattern, "-i", "support"], {
  cwd: PROJECT_ROOT,
  stdio: ["ignore", "pipe", "inherit"],
});
let out = "";
// A test that leaves a handle open keeps uvu alive after its summary; the run must still end (CI has
// a deadline), and the leak must show: it is ended, reported, and counted as a failure.
const LINGER_MS = 20_000;
let lingered = false;
let lingerTimer: NodeJS.Timeout | undefined;
child.stdout.on("data", (d: Buffer) => {
  out += d.toString();
  process.stdout.write(d);
  if (!lingerTimer && /Duration:\s+[\d.]+ms/.test(out.replace(/\x1b\[[0-9;]*m/g, ""))) {
    lingerTimer = setTimeout(() => {
      lingered = true;
      console.log(`FAIL the test process did not exit ${LINGER_MS / 1000} s after its summary (a test left a handle open); ended it`);
      child.kill("SIGKILL");
    }, LINGER_MS);
  }
});
// Counted on "close", not "exit": by then the child's stdout has been read to its end, summary included.
child.on("close", (code, signal) => finish(code, signal, false));
// Unless a process a test started (and left running) holds that pipe open after uvu has exited: then the
// run ends anyway, says so, and counts it as a failure.
const PIPE_MS = 10_000;
child.on("exit", () => {
  setTimeout(() => {
    console.log(`FAIL the test process exited, but its output stayed open ${PIPE_MS / 1000} s (a process a test started holds it)`);
    child.stdout.destroy();
    finish(child.exitCode, child.signalCode, true);
  }, PIPE_MS).unref();
});

function finish(code: number | null, signal: NodeJS.Signals | null, pipeHeld: boolean): void {
  clearTimeout(lingerTimer);
  const uvuRun = uvuCounts(out);
  const skipped = uvuRun.skipped;
  // uvu's Total does not include skipped tests; a failed after hook is not among uvu's tests at all.
  let failed = uvuRun.total - uvuRun.passed + uvuRun.afterHookFailures + (pipeHeld ? 1 : 0);
  if ((code !== 0 || signal) && failed === 0) failed = 1; // crashed before or while reporting, or lingered
  const passed = uvuRun.passed + stepsPassed;
  failed += stepsFailed;
  // Repeated here so that a failed build or type-check is not lost above the tests' output.
  for (const s of steps) if (!s.ok) console.log(`FAIL ${s.name}: ${s.summary} (output at the top)`);
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
  process.exit(failed > 0 ? 1 : 0);
}
