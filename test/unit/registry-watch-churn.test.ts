// Churn in a registry directory must not starve real edits: a log or swap file rewritten every few
// milliseconds is not a registry change at all, and even a registry file rewritten without pause lets
// the changes through (the debounce has a maximum wait). Each writer keeps writing until the edit is
// seen (or a bound passes), so an edit that waits for the churn to stop fails the test.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { watchRegistry, type Changed } from "../../control/registry/sources/files/watch.ts";
import { tempRegistryDir } from "../support/control.ts";
import { waitFor } from "../support/net.ts";

const BOUND_MS = 5000;

/** Rewrites `file` every 2 ms until `stop()` (or BOUND_MS); resolves with how many writes it made. */
function churn(file: string): { writes(): number; stop(): Promise<number> } {
  let writes = 0;
  let running = true;
  const done = (async () => {
    const until = Date.now() + BOUND_MS;
    while (running && Date.now() < until) {
      writeFileSync(file, `line ${writes++}\n`);
      await new Promise((r) => setTimeout(r, 2));
    }
    return writes;
  })();
  return { writes: () => writes, stop: () => { running = false; return done; } };
}

/** Resolves with the first change that names `name` (or "all"), or undefined after BOUND_MS. */
function changeOf(changes: Changed[], name: string): Promise<Changed | undefined> {
  const until = Date.now() + BOUND_MS;
  return new Promise((resolve) => {
    const look = () => {
      const hit = changes.find((c) => c === "all" || c.has(name));
      if (hit || Date.now() > until) resolve(hit);
      else setTimeout(look, 5);
    };
    look();
  });
}

test("a log file written without pause beside the registry files: not a change, and an edit is seen while it goes on", async () => {
  const dir = tempRegistryDir({ "a.yaml": "# a\n" });
  const changes: Changed[] = [];
  const watcher = watchRegistry(dir, (c) => changes.push(c));
  const writer = churn(join(dir, "app.log"));
  const swap = churn(join(dir, ".a.yaml.swp"));
  try {
    assert.ok(await waitFor(() => writer.writes() > 10 && swap.writes() > 10, BOUND_MS), "the writers are going");
    writeFileSync(join(dir, "a.yaml"), "# a, edited\n");
    const seen = await changeOf(changes, "a.yaml");
    const writes = await writer.stop();
    await swap.stop();
    assert.ok(seen, `the edit of a.yaml was not reported while app.log kept changing (${writes} writes)`);
    assert.ok(changes.every((c) => c === "all" || (!c.has("app.log") && !c.has(".a.yaml.swp"))), `non-registry names reported: ${JSON.stringify(changes.map((c) => (c === "all" ? c : [...c])))}`);
  } finally {
    await writer.stop();
    await swap.stop();
    watcher.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a registry file rewritten without pause: changes are reported while it goes on (the debounce's maximum wait)", async () => {
  const dir = tempRegistryDir({ "a.yaml": "# a\n" });
  const changes: Changed[] = [];
  const watcher = watchRegistry(dir, (c) => changes.push(c));
  const writer = churn(join(dir, "busy.yaml"));
  try {
    writeFileSync(join(dir, "a.yaml"), "# a, edited\n");
    const seen = await changeOf(changes, "a.yaml");
    const writes = await writer.stop();
    assert.ok(seen, `no change reported while busy.yaml kept changing (${writes} writes)`);
    assert.ok(writes > 0);
  } finally {
    await writer.stop();
    watcher.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
