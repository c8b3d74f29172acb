// Property: for randomized registries (every resolution mode and protocol, HTTP ports with their route
// configs, endpoint weights, localities and networks, exportTo, location), node IP sets, namespaces,
// networks and options, every configuration generation produces is accepted by a real Envoy (every type
// ACKed over ADS, route configs and guard configs included; every listener then held by Envoy).
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { generate } from "../../control/generation/generate.ts";
import { generationOptions, type MeshNetwork } from "../../control/generation/options.ts";
import { proxyIdentity } from "../../control/identity/proxy.ts";
import { SnapshotCache } from "../../control/xds/cache/cache.ts";
import { snapshotOf } from "../support/snapshot.ts";
import { startXdsServer } from "../../control/xds/server/grpc-server.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";
import { LOOP_GUARD_WASM } from "../../envoy/paths.ts";
import { startEnvoy } from "../support/envoy.ts";
import { freePort, waitFor } from "../support/net.ts";
import { envoyListeners, sidecarBootstrap } from "../support/control.ts";
import { registryFrom, type ServiceSpec } from "../support/registry.ts";
import { wantedTypes, withLoopbackDns } from "../support/envoy-accepts.ts";

const RUNS = Number(process.env.PROPERTY_RUNS ?? 300);
const NODE_ID = "property-node";
const IPS = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "192.168.10.63", "10.75.8.101", "127.0.0.5", "fd00::1", "fd00::2", "2001:db8::5"];
const VIPS = ["240.0.0.1", "240.0.0.2", "10.200.0.0/16", "fd00:1::/64", "10.0.0.1"];
const HOSTNAMES = ["a.dns.test", "b.dns.test", "c.dns.test"];
const PORTS = [80, 443, 3306, 8080, 9080, 15001];
const PROTOCOLS = ["", "TCP", "HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-Web", "TLS", "HTTPS", "UDP", "Redis"];
const NETWORKS: MeshNetwork[] = [
  { name: "n1", fromCidrs: ["10.0.0.0/24"], gateways: [{ address: "192.0.2.1", port: 15443 }] },
  { name: "n2", fromCidrs: [], gateways: [{ address: "192.0.2.2", port: 15443 }, { address: "192.0.2.3", port: 15443 }] },
  { name: "n3", fromCidrs: [], gateways: [] },
];

const port = fc.oneof(fc.constantFrom(...PORTS), fc.integer({ min: 1, max: 65535 }));
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const endpointExtras = fc.record({
  network: opt(fc.constantFrom("n1", "n2", "n3")),
  weight: opt(fc.integer({ min: 1, max: 1000 })),
  locality: opt(fc.constantFrom("r1/z1", "r1/z2/s1", "r2")),
  remap: opt(fc.integer({ min: 1, max: 65535 })),
});
const resolutions = ["STATIC", "STATIC", "DNS", "DNS_ROUND_ROBIN", "NONE", "DYNAMIC_DNS"] as const;

/** One valid ServiceEntry of a random resolution, with the fields Istio allows for it. */
const service = (name: string) => fc.record({
  resolution: fc.constantFrom(...resolutions),
  ports: fc.uniqueArray(port, { minLength: 1, maxLength: 3 }),
  protocols: fc.array(fc.constantFrom(...PROTOCOLS), { minLength: 3, maxLength: 3 }),
  targetPorts: fc.array(opt(fc.integer({ min: 1, max: 65535 })), { minLength: 3, maxLength: 3 }),
  ips: fc.array(fc.record({ address: fc.constantFrom(...IPS), extra: endpointExtras }), { maxLength: 4 }),
  names: fc.array(fc.record({ address: fc.constantFrom(...HOSTNAMES, ...IPS), extra: endpointExtras }), { maxLength: 3 }),
  networkOnly: fc.boolean(),
  addresses: opt(fc.subarray(VIPS, { maxLength: 2 })),
  namespace: fc.constantFrom("default", "team"),
  exportTo: opt(fc.constantFrom(".", "*", "team", "~", "other").map((e) => [e])),
  external: fc.boolean(),
}).map((s): ServiceSpec => {
  const r = s.resolution;
  const protocol = (i: number) => (r === "DYNAMIC_DNS" ? "TLS" : s.protocols[i]!);
  const extras = (e: typeof s.ips[number]["extra"]) => ({
    ...(e.network ? { network: e.network } : {}), ...(e.weight ? { weight: e.weight } : {}), ...(e.locality ? { locality: e.locality } : {}),
    ...(e.remap ? { ports: { p0: e.remap } } : {}),
  });
  const endpoints = r === "STATIC"
    ? [...s.ips.map((e) => ({ address: e.address, ...extras(e.extra) })), ...(s.networkOnly ? [{ network: "n2" }] : [])]
    : r === "DNS" ? s.names.map((e) => ({ address: e.address, ...extras(e.extra) }))
    : r === "DNS_ROUND_ROBIN" ? s.names.slice(0, 1).map((e) => ({ address: e.address, ...extras(e.extra) }))
    : [];
  // CIDRs only for NONE and STATIC; DYNAMIC_DNS takes no addresses.
  const addresses = r === "DYNAMIC_DNS" ? undefined : s.addresses?.filter((a) => r === "NONE" || r === "STATIC" || !a.includes("/"));
  return {
    name, namespace: s.namespace, resolution: r,
    host: r === "DYNAMIC_DNS" ? `*.${name}.dyn.test` : `${name}.${s.namespace}.svc.cluster.local`,
    ports: s.ports.map((n, i) => ({ number: n, name: `p${i}`, ...(protocol(i) ? { protocol: protocol(i) } : {}), ...(s.targetPorts[i] ? { targetPort: s.targetPorts[i] } : {}) })),
    endpoints,
    ...(addresses?.length ? { addresses } : {}),
    ...(s.exportTo ? { exportTo: s.exportTo } : {}),
    ...(s.external ? { location: "MESH_EXTERNAL" as const } : {}),
  };
});
const registry = fc.subarray(["a", "b", "c", "d", "e", "f"], { maxLength: 6 }).chain((names) => fc.tuple(...names.map(service)));
const scenario = fc.record({
  services: registry,
  instanceIps: fc.subarray(IPS, { maxLength: 4 }),
  nodeIdIp: opt(fc.constantFrom(...IPS)),
  namespace: fc.constantFrom("default", "team", "other"),
  network: opt(fc.constantFrom("n1", "n2", "n3")),
  meshNetworks: fc.boolean(),
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
  const envoy = await startEnvoy(withLoopbackDns(sidecarBootstrap(xds.port, { nodeId: NODE_ID, instanceIps: [] })), { extraArgs: ["--drain-time-s", "0"] });
  let cases = 0;
  try {
    await fc.assert(fc.asyncProperty(scenario, async (s) => {
      cases++;
      const proxy = proxyIdentity({
        id: s.nodeIdIp ? `sidecar~${s.nodeIdIp}~p.${s.namespace}~${s.namespace}.svc.cluster.local` : NODE_ID,
        metadata: { INSTANCE_IPS: s.instanceIps.join(","), ...(s.network ? { NETWORK: s.network } : {}) },
      });
      const options = generationOptions({
        legacySingleIp: s.legacy,
        virtualListener: { address: "127.0.0.1", port: vport, handoff: "proxy_protocol" },
        ...(s.guard ? { loopGuard: { wasmPath: LOOP_GUARD_WASM, mode: "enforce" as const } } : {}),
        ...(s.meshNetworks ? { meshNetworks: NETWORKS } : {}),
      });
      const resources = generate(proxy, registryFrom(s.services), options);
      const snapshot = snapshotOf(resources);
      nacks.length = 0;
      assert.ok(await waitFor(() => streamId !== undefined, 10000), "Envoy opened no ADS stream");
      cache.set(streamId!, snapshot);
      const wanted = wantedTypes(resources);
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
