// serve()'s one list of what to stop: newest first, each stop finished before the next, all of them
// even when one throws, and once however often stop() is called.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { StopStack } from "../../control/serve/stop-stack.ts";

test("unwinds newest first, waiting for each stop, and runs the rest when one throws", async () => {
  const stack = new StopStack();
  const done: string[] = [];
  stack.push(() => { done.push("security"); });
  stack.push(async () => { await new Promise((r) => setTimeout(r, 20)); done.push("guard"); });
  stack.push(() => { throw new Error("store stop failed"); });
  stack.push(async () => { await new Promise((r) => setTimeout(r, 20)); done.push("xds"); });
  await stack.unwind().then(() => assert.unreachable("resolved"), (err: Error) => assert.is(err.message, "store stop failed"));
  assert.equal(done, ["xds", "guard", "security"]);
});

test("a second unwind shares the first: nothing runs twice, and both wait for the end", async () => {
  const stack = new StopStack();
  let runs = 0;
  let finished = false;
  stack.push(async () => { runs++; await new Promise((r) => setTimeout(r, 20)); finished = true; });
  const first = stack.unwind();
  await stack.unwind();
  assert.ok(finished, "the second call waited for the first");
  await first;
  assert.is(runs, 1);
});

test.run();
