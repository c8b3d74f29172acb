// Preloaded into the test process by test/run.ts (node --import). uvu 0.5 loses the errors of two hooks:
// a test.before hook that throws stops its suite without a word (the suite's tests are just not passed),
// and a test.after hook that throws ends the whole run (the files after it never run, no summary). Here
// "uvu", wherever a test imports it, is this module: uvu's own test and suite(), with test.before and
// test.after wrapped. A failing before hook's error is printed and thrown on (uvu still counts the
// suite's tests as not passed); a failing after hook's error is printed on a line that begins with
// AFTER_HOOK_FAILED, which test/run.ts counts as a failure, and the run goes on.
import { register } from "node:module";
import * as uvu from "uvu"; // linked before the redirect below exists: the real module
import { AFTER_HOOK_FAILED } from "./uvu-summary.ts";

register(`data:text/javascript,${encodeURIComponent(
  `export function resolve(specifier, context, next) {
    return specifier === "uvu" ? { url: ${JSON.stringify(import.meta.url)}, shortCircuit: true } : next(specifier, context);
  }`,
)}`);

/** The test file being loaded: uvu's runner names each file's queue while it imports the file. */
function loadingFile(): string {
  const g = globalThis as { UVU_QUEUE?: unknown[][]; UVU_INDEX?: number };
  return String(g.UVU_QUEUE?.[g.UVU_INDEX ?? 0]?.[0] ?? "?");
}

function withReportedHooks<T>(t: uvu.Test<T>): uvu.Test<T> {
  for (const kind of ["before", "after"] as const) {
    const hook = t[kind];
    const reported = (fn: uvu.Callback<T>) => {
      const file = loadingFile();
      hook(async (context) => {
        try {
          await fn(context);
        } catch (err) {
          const where = `${file}${context.__suite__ ? ` (${context.__suite__})` : ""}`;
          const detail = err instanceof Error ? err.stack ?? err.message : String(err);
          console.log(`\n  ${kind === "after" ? AFTER_HOOK_FAILED : "FAIL test.before hook"} of ${where}: ${detail.replace(/\n/g, "\n    ")}\n`);
          if (kind === "before") throw err;
        }
      });
    };
    t[kind] = Object.assign(reported, { each: hook.each });
  }
  return t;
}

export const test = withReportedHooks(uvu.test);
export const suite: typeof uvu.suite = (title, context) => withReportedHooks(uvu.suite(title, context));
export const exec = uvu.exec;
