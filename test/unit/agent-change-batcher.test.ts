// The node agent's change batcher (control/agent/change-batcher.ts): a burst of `ip monitor` lines is one
// re-read, a steady stream still re-reads within maxBatchMs, re-reads never overlap, and stop() ends them.
// Real timers; the bounds leave room for a loaded machine.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { setTimeout as sleep } from "node:timers/promises";
import { ChangeBatcher } from "../../control/agent/change-batcher.ts";

/** A run that records when it started and takes `ms`. */
function recorder(ms = 0) {
  const starts: number[] = [];
  let active = 0;
  let maxActive = 0;
  const run = async () => {
    starts.push(Date.now());
    active++;
    maxActive = Math.max(maxActive, active);
    await sleep(ms);
    active--;
  };
  return { run, starts, maxActive: () => maxActive };
}

test("a burst is one run, batchMs after its last notice", async () => {
  const r = recorder();
  const b = new ChangeBatcher(r.run, { batchMs: 40, maxBatchMs: 500 });
  for (let i = 0; i < 20; i++) {
    if (i % 5 === 4) await sleep(5);
    b.notice();
  }
  const last = Date.now();
  await sleep(300);
  assert.is(r.starts.length, 1);
  assert.ok(r.starts[0]! - last >= 35, `ran ${r.starts[0]! - last} ms after the last notice, expected about 40`);
  await b.stop();
});

test("a steady stream still runs, at most maxBatchMs after a burst's first notice", async () => {
  const r = recorder();
  const b = new ChangeBatcher(r.run, { batchMs: 50, maxBatchMs: 100 });
  const first = Date.now();
  const until = first + 600;
  while (Date.now() < until) {
    b.notice();
    await sleep(10); // never 50 ms quiet
  }
  await b.stop();
  assert.ok(r.starts.length >= 3 && r.starts.length <= 8, `${r.starts.length} runs in 600 ms of notices every 10 ms`);
  assert.ok(r.starts[0]! - first < 100 + 60, `first run ${r.starts[0]! - first} ms after the first notice`);
});

test("runs never overlap: notices during a run give one more run after it", async () => {
  const r = recorder(120);
  const b = new ChangeBatcher(r.run, { batchMs: 10, maxBatchMs: 30 });
  b.notice();
  await sleep(40); // the first run is going
  assert.is(r.starts.length, 1);
  for (let i = 0; i < 5; i++) {
    b.notice();
    await sleep(15);
  }
  await sleep(400);
  assert.is(r.maxActive(), 1, "never two at once");
  assert.is(r.starts.length, 2, "one run after the one the notices came during");
  assert.ok(r.starts[1]! - r.starts[0]! >= 115, "the second started after the first ended");
  await b.stop();
});

test("a run that throws or rejects does not stop later runs", async () => {
  let calls = 0;
  const b = new ChangeBatcher(((): Promise<void> => {
    calls++;
    if (calls === 1) throw new Error("thrown before any await");
    return Promise.reject(new Error("rejected"));
  }), { batchMs: 5, maxBatchMs: 10 });
  b.notice();
  await sleep(60);
  b.notice();
  await sleep(60);
  b.notice();
  await sleep(60);
  assert.is(calls, 3);
  await b.stop();
});

test("stop(): waits for the run in progress, cancels the pending one, ignores later notices", async () => {
  const r = recorder(80);
  const b = new ChangeBatcher(r.run, { batchMs: 5, maxBatchMs: 10 });
  b.notice();
  await sleep(30);
  b.notice(); // pending behind the running one
  const t0 = Date.now();
  await b.stop();
  assert.ok(Date.now() - t0 >= 30, "stop() waited for the run");
  b.notice();
  await sleep(100);
  assert.is(r.starts.length, 1);
  b.notice(); // pending timer of a stopped batcher: none
  await b.stop();
});

test.run();
