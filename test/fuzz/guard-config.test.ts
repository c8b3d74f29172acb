// Fuzz: random JSON and garbage strings as the loop guard's configuration, delivered to a real Envoy
// the way multiplane delivers it (ECDS over ADS). For each one: Envoy stays up and accepts the update;
// a configuration the guard's own parser rejects (the oracle) is counted in config_errors and the guard
// keeps its last good configuration (a self-destined connection is still closed, unrelated traffic
// still passes); a valid one is applied (then the good one is restored). Envoy's memory stays bounded.
// Bounded in time; the number of cases run is printed.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { LOOP_GUARD, LOOP_GUARD_FILTER } from "../../control/generation/loop-guard.ts";
import { SnapshotCache } from "../../control/xds/cache/cache.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";
import { startXdsServer } from "../../control/xds/server/grpc-server.ts";
import type { Snapshot } from "../../control/xds/cache/snapshot.ts";
import { LOOP_GUARD_WASM } from "../../envoy/paths.ts";
import { sidecarBootstrap } from "../support/control.ts";
import { startEnvoy } from "../support/envoy.ts";
import { guardConfigOracle, ORACLE_MAX_BYTES } from "../support/guard-config-oracle.ts";
import * as f from "../support/guard-fixtures.ts";
import { exchange, freePort, startEcho, waitFor } from "../support/net.ts";
import { snapshotOf } from "../support/snapshot.ts";

const TIME_LIMIT_MS = Number(process.env.FUZZ_MS ?? 15_000);
const NODE_ID = "fuzz~guard-config";
const GOOD = JSON.stringify({ node_ips: ["127.0.0.2"], mode: "enforce" });

/** The guard's ECDS resource with `text` as its plugin configuration, verbatim. */
const guardConfig = (text: string) => ({
  name: LOOP_GUARD,
  typed_config: {
    "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
    config: {
      name: LOOP_GUARD, root_id: LOOP_GUARD,
      configuration: { "@type": "type.googleapis.com/google.protobuf.StringValue", value: text },
      vm_config: { vm_id: LOOP_GUARD, runtime: "envoy.wasm.runtime.v8", code: { local: { filename: LOOP_GUARD_WASM } } },
    },
  },
});

/** Configurations past the oracle's size, with what the guard must make of them. */
const BIG: [string, boolean][] = [
  ["x".repeat(100_000), false],
  ["[".repeat(100_000), false],
  ['{"a":'.repeat(20_000), false],
  [`{"node_ips": [${'"127.0.0.2",'.repeat(5000)}"banana"]}`, false],
  [`{"cidrs": [${'"10.0.0.0/8",'.repeat(5000)}"10.0.0.0/8"], "node_ips": ["127.0.0.2"]}`, true],
];

const ipish = fc.oneof(fc.ipV4(), fc.ipV6(), fc.constantFrom("127.0.0.2", "::ffff:127.0.0.2", "300.1.1.1", "fe80::1%eth0", "", " 10.0.0.1"), fc.string({ maxLength: 20 }));
const knownKeys = fc.record({
  node_ips: fc.oneof(fc.array(ipish, { maxLength: 4 }), fc.anything()),
  cidrs: fc.oneof(fc.array(fc.oneof(ipish.map((ip) => `${ip}/${ip.includes(":") ? 64 : 8}`), fc.string({ maxLength: 12 })), { maxLength: 3 }), fc.anything()),
  mode: fc.oneof(fc.constantFrom("enforce", "observe", "block", "ENFORCE", ""), fc.anything()),
  allow_ports: fc.oneof(fc.array(fc.oneof(fc.integer({ min: -5, max: 70_000 }), fc.double(), fc.string({ maxLength: 5 })), { maxLength: 3 }), fc.anything()),
  all_listeners: fc.oneof(fc.boolean(), fc.anything()),
  learned_ttl_seconds: fc.anything(),
}, { requiredKeys: [] });
const configuration = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: "binary", maxLength: 100 }),
  fc.json({ maxDepth: 4 }),
  fc.jsonValue({ maxDepth: 20 }).map((v) => JSON.stringify(v)),
  knownKeys.map((v) => JSON.stringify(v)),
  knownKeys.map((v) => JSON.stringify(v).slice(0, -1)), // cut short
  fc.integer({ min: 1, max: 40 }).map((n) => `${"[".repeat(n)}${"]".repeat(n)}`),
  fc.constantFrom(...BIG.map(([text]) => text)),
);

test("random and garbage guard configurations over ECDS: Envoy stays up, errors are counted, the last good configuration holds", async () => {
  const judge = guardConfigOracle();
  const verdict = (text: string) => BIG.find(([big]) => big === text)?.[1] ?? judge(text).ok;
  assert.ok(verdict(GOOD) && !verdict("{") && verdict(""), "the oracle works");
  assert.ok(BIG.every(([text]) => new TextEncoder().encode(text).length > ORACLE_MAX_BYTES));

  const echo = await startEcho("127.0.0.1");
  const [self, other] = [await freePort("127.0.0.2"), await freePort("127.0.0.3")];
  const cache = new SnapshotCache();
  let acked = "";
  const nacks: string[] = [];
  // Snapshots are per stream: Envoy's one ADS stream gets the latest one published, also when it opens later.
  let streamId: number | undefined;
  let latest: Snapshot | undefined;
  const xds = await startXdsServer({
    host: "127.0.0.1", port: 0, cache,
    callbacks: {
      onStreamOpen: (info) => { streamId = info.streamId; if (latest) cache.set(info.streamId, latest); },
      onAck: (a) => { if (a.typeUrl === TYPE_URL.extensionConfig) acked = a.version; },
      onNack: (n) => nacks.push(`${n.typeUrl}: ${n.errorDetail}`),
    },
  });
  const publish = (text: string) => {
    const snapshot = snapshotOf({
      listeners: [
        f.listener("self", "127.0.0.2", self!, [LOOP_GUARD_FILTER, f.tcpProxy("echo")], "OUTBOUND"),
        f.listener("other", "127.0.0.3", other!, [LOOP_GUARD_FILTER, f.tcpProxy("echo")], "OUTBOUND"),
      ],
      clusters: [{ ...f.cluster("echo", echo.host, echo.port), connect_timeout: { seconds: 1 } }],
      endpoints: [],
      routes: [],
      extensionConfigs: [guardConfig(text)],
    });
    latest = snapshot;
    if (streamId !== undefined) cache.set(streamId, snapshot);
    return snapshot.get(TYPE_URL.extensionConfig)!.version;
  };
  const applied = async (version: string) => {
    assert.ok(await waitFor(() => acked === version || nacks.length > 0, 10_000), "Envoy answers every ECDS update");
    assert.equal(nacks, [], "Envoy never refuses the guard's ECDS resource");
  };
  // One worker, so two VMs: the main thread's, which applies an update first, and the worker's.
  const envoy = await startEnvoy(sidecarBootstrap(xds.port, { nodeId: NODE_ID, instanceIps: [] }), { concurrency: 1 });
  const errors = () => f.guardStat(envoy, "config_errors");
  const closed = async () => (await exchange("127.0.0.2", self!, "self", { timeoutMs: 2000 })).received === "";
  const passes = async () => (await exchange("127.0.0.3", other!, "other", { timeoutMs: 2000 })).ended === "echoed";
  let current = GOOD;
  let cases = 0, rejected = 0;
  // The guard means to count a rejected update once although each VM rejects it: it remembers the
  // last rejected text, which a good configuration clears. `counted` follows that rule. A VM that
  // applies updates later than the main thread's replays them through that shared entry and can count
  // an update again, so config_errors must reach `counted` and may exceed it, by at most one per VM.
  let lastRejected = "";
  let counted = 0;
  /** The last cases, for a failure message: what was sent, what the oracle said, config_errors before. */
  const history: string[] = [];
  try {
    await applied(publish(GOOD));
    assert.ok(await waitFor(async () => (await envoy.stat("listener_manager.total_listeners_active")) === 2, 10_000), "listeners active");
    assert.ok(await closed(), "the good configuration closes a self-destined connection");
    assert.ok(await passes(), "and lets unrelated traffic through");
    const memoryBefore = (await envoy.stat("server.memory_allocated"))!;

    const run = await fc.check(fc.asyncProperty(configuration, async (text) => {
      if (text === current) return;
      cases++;
      const before = await errors();
      history.push(`${JSON.stringify(text.slice(0, 60))}${text.length > 60 ? `…(${text.length})` : ""} valid=${verdict(text)} config_errors_before=${before}`);
      if (history.length > 6) history.shift();
      await applied(publish(text));
      current = text;
      assert.ok(envoy.alive(), "Envoy is up");
      if (!verdict(text)) {
        rejected++;
        if (text !== lastRejected) counted++;
        lastRejected = text;
        assert.ok(await waitFor(async () => (await errors()) >= counted, 5000), `config_errors ${await errors()}, expected at least ${counted} after ${JSON.stringify(text.slice(0, 100))}`);
        assert.ok(await closed(), `the last good configuration still holds after ${JSON.stringify(text.slice(0, 100))}`);
        assert.ok(await passes(), "unrelated traffic still passes");
      } else {
        await exchange("127.0.0.2", self!, "self", { timeoutMs: 2000 }); // the new configuration in use
        assert.ok((await errors()) <= 2 * counted, `a valid configuration is not an error: ${JSON.stringify(text.slice(0, 100))}`);
        await applied(publish(GOOD)); // back to a known last good configuration
        current = GOOD;
        lastRejected = "";
        assert.ok(await waitFor(closed, 5000), "the good configuration is back");
      }
    }), { numRuns: 10_000, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: false, endOnFailure: true });
    // Counterexamples can be 100 KB: report them clipped.
    if (run.failed) throw new Error(`${String((run.errorInstance as Error)?.message ?? run.errorInstance).slice(0, 1000)}\n  for ${JSON.stringify(String(run.counterexample?.[0]).slice(0, 300))} (seed ${run.seed})\n  last cases:\n    ${history.join("\n    ")}`);

    const memoryAfter = (await envoy.stat("server.memory_allocated"))!;
    console.log(`    ${cases} configurations (${rejected} rejected by the guard), Envoy memory ${(memoryBefore / 2 ** 20).toFixed(0)} -> ${(memoryAfter / 2 ** 20).toFixed(0)} MiB`);
    assert.ok(cases >= 20, `only ${cases} cases ran`);
    const total = await errors();
    console.log(`    config_errors ${total} for ${counted} rejected updates (at most 2 per update: main thread and worker VM)`);
    assert.ok(total >= counted && total <= 2 * counted, `config_errors ${total} for ${counted} rejected updates`);
    assert.ok(memoryAfter - memoryBefore < 64 * 2 ** 20, "Envoy's memory stays bounded");
    assert.ok(envoy.alive());
  } finally {
    await envoy.stop();
    await xds.stop();
    await echo.close();
  }
});

test.run();
