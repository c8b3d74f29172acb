// Snapshot versions decide what is pushed: they must change with content and only with content.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { snapshotOf } from "../support/snapshot.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";

const cluster = (name: string, ms: number) => ({ name, type: "STATIC", connect_timeout: { seconds: 0, nanos: ms * 1_000_000 } });
const snap = (clusters: object[]) => snapshotOf({ listeners: [], clusters, endpoints: [], routes: [], extensionConfigs: [] });
const version = (clusters: object[]) => snap(clusters).get(TYPE_URL.cluster)!.version;

test("a type's version depends on its resources as a set: order does not matter, content does", () => {
  fc.assert(fc.property(
    fc.uniqueArray(fc.record({ name: fc.stringMatching(/^[a-z]{1,6}$/), ms: fc.integer({ min: 1, max: 999 }) }), { selector: (c) => c.name, minLength: 1, maxLength: 12 }),
    fc.nat(),
    (specs, seed) => {
      const items = specs.map((s) => cluster(s.name, s.ms));
      const shuffled = [...items].sort((a, b) => ((a.name.charCodeAt(0) * 31 + seed) % 7) - ((b.name.charCodeAt(0) * 31 + seed) % 7));
      assert.is(version(shuffled), version(items));
      assert.match(version(items), /^[0-9a-f]{16}$/);
      const changed = items.map((c, i) => (i === 0 ? cluster(c.name, (specs[0]!.ms % 999) + 1) : c));
      assert.is.not(version(changed), version(items), "one timeout changed");
      if (items.length > 1) assert.is.not(version(items.slice(1)), version(items), "one resource removed");
      const renamed = items.map((c, i) => (i === 0 ? { ...c, name: `${c.name}x` } : c));
      if (!specs.some((s) => s.name === `${specs[0]!.name}x`)) assert.is.not(version(renamed), version(items), "one resource renamed");
    },
  ), { numRuns: 300 });
});

test("other types keep their version when one type changes", () => {
  const a = snap([cluster("a", 1)]);
  const b = snap([cluster("a", 2)]);
  assert.is(a.get(TYPE_URL.listener)!.version, b.get(TYPE_URL.listener)!.version);
  assert.is.not(a.get(TYPE_URL.cluster)!.version, b.get(TYPE_URL.cluster)!.version);
});

test("a resource without a name, or two with one name, is a generation bug and is refused", () => {
  assert.throws(() => snap([{ type: "STATIC" }]), /resource without a name/);
  assert.throws(() => snap([cluster("a", 1), cluster("a", 2)]), /two resources named a/);
});

test.run();
