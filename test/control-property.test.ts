// Property: for randomized registries, node IP sets and options, every configuration generation
// produces is accepted by a real Envoy (ACKed over ADS, every listener then held by Envoy).
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { generate } from "../control/generation/generate.ts";
import { generationOptions } from "../control/generation/options.ts";
import { proxyIdentity } from "../control/identity/proxy.ts";
import { SnapshotCache } from "../control/xds/cache.ts";
import { snapshotOf } from "./support/snapshot.ts";
import { startXdsServer } from "../control/xds/server.ts";
import { TYPE_URL } from "../control/xds/protos.ts";
import { LOOP_GUARD_WASM } from "../envoy/paths.ts";
import { startEnvoy } from "./support/envoy.ts";
import { freePort, waitFor } from "./support/net.ts";
import { envoyListeners, sidecarBootstrap } from "./support/control.ts";
import { registryFrom, type ServiceSpec } from "./support/registry.ts";

const RUNS = Number(process.env.PROPERTY_RUNS ?? 300);
const NODE_ID = "property-node";
const IPS = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "192.168.10.63", "10.75.8.101", "127.0.0.5", "fd00::1", "fd00::2", "2001:db8::5"];
const VIPS = ["240.0.0.1", "240.0.0.2", "10.200.0.0/16", "fd00:1::/64", "10.0.0.1"];
const PORTS = [80, 443, 3306, 8080, 9080, 15001];

const port = fc.oneof(fc.constantFrom(...PORTS), fc.integer({ min: 1, max: 65535 }));
const service = (name: string) => fc.record({
  ports: fc.uniqueArray(port, { minLength: 1, maxLength: 3 }),
  targetPorts: fc.array(fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }), { minLength: 3, maxLength: 3 }),
  endpoints: fc.array(fc.record({ address: fc.constantFrom(...IPS), remap: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }) }), { maxLength: 4 }),
  addresses: fc.option(fc.subarray(VIPS, { maxLength: 2 }), { nil: undefined }),
}).map(({ ports, targetPorts, endpoints, addresses }): ServiceSpec => ({
  name,
  ports: ports.map((n, i) => ({ number: n, name: `p${i}`, ...(targetPorts[i] ? { targetPort: targetPorts[i] } : {}) })),
  endpoints: endpoints.map((e) => ({ address: e.address, ...(e.remap ? { ports: { p0: e.remap } } : {}) })),
  ...(addresses ? { addresses } : {}),
}));
const registry = fc.subarray(["a", "b", "c", "d", "e", "f"], { maxLength: 6 }).chain((names) => fc.tuple(...names.map(service)));
const scenario = fc.record({
  services: registry,
  instanceIps: fc.subarray(IPS, { maxLength: 4 }),
  nodeIdIp: fc.option(fc.constantFrom(...IPS), { nil: undefined }),
  legacy: fc.boolean(),
  guard: fc.boolean(),
});

test(`generated configs for ${RUNS} random registries and node IP sets are all accepted by Envoy`, async () => {
  const cache = new SnapshotCache();
  const acked = new Map<string, string>();
  const nacks: string[] = [];
  let streamId: number | undefined; // snapshots are per stream: Envoy's one ADS stream
  const xds = await startXdsServer({
    host: "127.0.0.1", port: 0, cache,
    callbacks: { onStreamOpen: (info) => { streamId = info.streamId; }, onAck: (a) => acked.set(a.typeUrl, a.version), onNack: (n) => nacks.push(`${n.typeUrl}: ${n.errorDetail}`) },
  });
  const vport = await freePort();
  const envoy = await startEnvoy(sidecarBootstrap(xds.port, { nodeId: NODE_ID, instanceIps: [] }), { extraArgs: ["--drain-time-s", "0"] });
  let cases = 0;
  try {
    await fc.assert(fc.asyncProperty(scenario, async (s) => {
      cases++;
      const proxy = proxyIdentity({ id: s.nodeIdIp ? `sidecar~${s.nodeIdIp}~p.default~default.svc.cluster.local` : NODE_ID, metadata: { INSTANCE_IPS: s.instanceIps.join(",") } });
      const options = generationOptions({
        legacySingleIp: s.legacy,
        virtualListener: { address: "127.0.0.1", port: vport, handoff: "proxy_protocol" },
        ...(s.guard ? { loopGuard: { wasmPath: LOOP_GUARD_WASM, mode: "enforce" as const } } : {}),
      });
      const resources = generate(proxy, registryFrom(s.services), options);
      const snapshot = snapshotOf(resources);
      nacks.length = 0;
      assert.ok(await waitFor(() => streamId !== undefined, 10000), "Envoy opened no ADS stream");
      cache.set(streamId!, snapshot);
      const wanted = [TYPE_URL.listener, TYPE_URL.cluster, ...(resources.endpoints.length > 0 ? [TYPE_URL.endpoint] : [])];
      const done = await waitFor(() => nacks.length > 0 || wanted.every((t) => acked.get(t) === snapshot.get(t)!.version), 10000, 5);
      assert.equal(nacks, [], "Envoy NACKed generated config");
      assert.ok(done, "no ACK within 10 s");
      const held = await envoyListeners(envoy);
      assert.equal([...held.keys()].sort(), resources.listeners.map((l: any) => l.name).sort());
    }), { numRuns: RUNS });
    assert.ok(envoy.alive());
    console.log(`    ${cases} generated configurations ACKed by Envoy`);
  } finally {
    await envoy.stop();
    await xds.stop();
  }
});

test.run();
