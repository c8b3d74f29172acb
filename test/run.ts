// `npm test`: rebuilds dist/ and type-checks the tree (test/support/preflight.ts), then runs every
// test/**/*.test.ts with uvu (TypeScript through tsx) and ends with the line CI reads:
// "N passed, N failed". The build and the type-check count as one test each, so a type error or a
// bundle that does not build fails the run. Optional argument: a filename pattern (the preflight
// always runs: the selected tests may run the bundle).
import { spawn } from "node:child_process";
import { join } from "node:path";
import { PROJECT_ROOT } from "../envoy/paths.ts";
import { buildBundle, buildWasm, typecheck, type StepResult } from "./support/preflight.ts";

const pattern = process.argv[2] ?? "\\.test\\.ts$";

const steps: StepResult[] = await Promise.all([buildBundle(), buildWasm(), typecheck()]);
for (const s of steps) {
  console.log(`${s.ok ? "ok  " : "FAIL"} ${s.name}: ${s.summary}`);
  if (!s.ok) console.log(s.output.trimEnd().replace(/^/gm, "     "));
}
const stepsPassed = steps.filter((s) => s.ok).length;
const stepsFailed = steps.length - stepsPassed;

const uvu = join(PROJECT_ROOT, "node_modules", "uvu", "bin.js");
const child = spawn(process.execPath, ["--import", "tsx", uvu, "test", pattern, "-i", "support"], {
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
child.on("exit", (code, signal) => {
  clearTimeout(lingerTimer);
  // uvu's summary: "Total: N", "Passed: N", "Skipped: N" (ANSI colours stripped).
  const plain = out.replace(/\x1b\[[0-9;]*m/g, "");
  const num = (label: string) => Number(new RegExp(`^\\s*${label}:\\s+(\\d+)`, "m").exec(plain)?.[1] ?? 0);
  const total = num("Total");
  const skipped = num("Skipped");
  let failed = total - num("Passed"); // uvu's Total does not include skipped tests
  if ((code !== 0 || signal) && failed === 0) failed = 1; // crashed before or while reporting, or lingered
  const passed = num("Passed") + stepsPassed;
  failed += stepsFailed;
  // Repeated here so that a failed build or type-check is not lost above the tests' output.
  for (const s of steps) if (!s.ok) console.log(`FAIL ${s.name}: ${s.summary} (output at the top)`);
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
  process.exit(failed > 0 ? 1 : 0);
});
