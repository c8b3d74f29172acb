// The one gate for tests that need something this machine may lack (root, ip, iptables, openssl, etcd):
//
//   whenAvailable(opensslUnavailableReason(), "xDS over TLS", (test) => { test.before(...); test("...", ...); });
//
// - reason undefined: the tests are registered as written, on uvu's `test`.
// - a reason, CI=true: every test the suite registers fails with "cannot run: <reason>". CI installs
//   everything and runs as root, so a missing prerequisite there is a broken CI, never a silent pass.
// - a reason elsewhere: every test is counted as skipped (one uvu skip each), and one line says why:
//   "SKIPPED (<suite>): <reason>".
// `register` is called in every case (that is how its tests are counted), so it only declares and
// registers: work that needs the prerequisite belongs in hooks and tests, and without the prerequisite
// none of them runs (test.before, test.after and their .each included). The file still ends with
// test.run().
import { test as uvuTest, type Test } from "uvu";

export function whenAvailable(reason: string | undefined, suite: string, register: (test: Test) => void): void {
  if (reason === undefined) return register(uvuTest);
  const mustRun = process.env.CI === "true";
  if (!mustRun) console.log(`  SKIPPED (${suite}): ${reason}`);
  const message = `cannot run: ${reason}`;
  register(standIn(uvuTest, (name) => {
    // No stack: it would only point here.
    if (mustRun) uvuTest(name, () => { throw Object.assign(new Error(message), { stack: message }); });
    else uvuTest.skip(name);
  }));
}

/** A `test` whose tests are handed to `instead` rather than run, and whose hooks never run. */
function standIn(real: Test, instead: (name: string) => void): Test {
  const noHook = Object.assign(() => {}, { each: () => {} });
  return Object.assign((name: string) => instead(name), {
    only: (name: string) => instead(name),
    skip: (name?: string) => real.skip(name),
    before: noHook,
    after: noHook,
    run: () => real.run(),
  });
}
