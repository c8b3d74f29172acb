// The queue the xDS server shares work out with: connections take turns, each connection's items go
// in the order they came, nothing is lost or served twice (fast-check over random operations).
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { FairQueue } from "../../control/common/fair-queue.ts";

test("groups take turns; within a group, first come first served; a waiting item keeps its place", () => {
  const q = new FairQueue<string>();
  for (const [item, group] of [["a1", "a"], ["a2", "a"], ["a3", "a"], ["b1", "b"], ["c1", "c"], ["b2", "b"], ["a1", "a"]] as const) q.add(item, group);
  assert.is(q.size, 6);
  const order: string[] = [];
  for (let x = q.shift(); x !== undefined; x = q.shift()) order.push(x);
  assert.equal(order, ["a1", "b1", "c1", "a2", "b2", "a3"]);
});

test("random adds, deletes and shifts: every item added once is served once, in its group's order, never two of one group while another waits longer", () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant("add" as const), item: fc.integer({ min: 0, max: 30 }), group: fc.constantFrom("a", "b", "c", "d") }),
    fc.record({ kind: fc.constant("delete" as const), item: fc.integer({ min: 0, max: 30 }) }),
    fc.record({ kind: fc.constant("shift" as const) }),
  );
  fc.assert(fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
    const q = new FairQueue<number>();
    // The model: per group its items; the groups' order of service.
    const model = new Map<string, number[]>();
    const turn: string[] = [];
    for (const o of ops) {
      if (o.kind === "add") {
        if ([...model.values()].some((items) => items.includes(o.item))) { q.add(o.item, o.group); continue; }
        q.add(o.item, o.group);
        if (!model.has(o.group)) { model.set(o.group, []); turn.push(o.group); }
        model.get(o.group)!.push(o.item);
      } else if (o.kind === "delete") {
        const group = [...model].find(([, items]) => items.includes(o.item))?.[0];
        assert.is(q.delete(o.item), group !== undefined);
        if (group === undefined) continue;
        const items = model.get(group)!.filter((x) => x !== o.item);
        if (items.length === 0) { model.delete(group); turn.splice(turn.indexOf(group), 1); } else model.set(group, items);
      } else {
        const group = turn.shift();
        const want = group === undefined ? undefined : model.get(group)!.shift();
        if (group !== undefined) { if (model.get(group)!.length === 0) model.delete(group); else turn.push(group); }
        assert.is(q.shift(), want);
      }
      assert.is(q.size, [...model.values()].reduce((n, items) => n + items.length, 0));
    }
  }), { numRuns: 300 });
});

test.run();
