import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decide } from "../../control/generation/decisions.ts";
import { generate, sharedConfig, type Resources } from "../../control/generation/generate.ts";
import { generationOptions, type GenerationOptions } from "../../control/generation/options.ts";
import { loadEnvoyProtos, TYPE_URL } from "../../control/xds/cache/protos.ts";
import type { ProxyIdentity } from "../../control/identity/proxy.ts";
import type { Registry } from "../../control/registry/model.ts";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { registryFrom, registryOf, sidecar } from "../support/registry.ts";

const SEED_TEXT = readFileSync(join(PROJECT_ROOT, "examples", "registry", "seed.yaml"), "utf8");
const SEED = registryOf(SEED_TEXT);
/** The seed with its ports proxied at L4 (its HTTP layout: generation-http.test.ts). */
const SEED_TCP = registryOf(SEED_TEXT.replaceAll("protocol: HTTP", "protocol: TCP"));
const SEED_PROXY = sidecar("192.168.10.63", "192.168.10.63,10.75.8.101");
const GUARD = { wasmPath: "/opt/multiplane/loop-guard.wasm", mode: "enforce" as const };
const OPTS = generationOptions({ loopGuard: GUARD });

const decisions = (proxy: ProxyIdentity, registry: Registry, options: GenerationOptions) => decide(proxy, sharedConfig(registry, options), options);
const named = (list: readonly object[], name: string) => list.find((x: any) => x.name === name || x.cluster_name === name) as any;
const names = (list: readonly object[]) => list.map((x: any) => x.name ?? x.cluster_name).sort();
const filterNames = (chain: any) => chain.filters.map((f: any) => f.name);
/** The cluster an inbound listener delivers to: tcp_proxy's, or the inline route's of an HTTP connection manager. */
const deliversTo = (listener: any) => {
  const c = listener.filter_chains[0].filters[0].typed_config;
  return c.cluster ?? c.route_config.virtual_hosts[0].routes[0].route.cluster;
};
/** The loop guard's plugin configuration, delivered by ECDS. */
const guardConfig = (r: Resources) => JSON.parse((r.extensionConfigs[0] as any).typed_config.config.configuration.value);

test("the seed: service-a on the node's second IP gets an INBOUND listener to 127.0.0.1", () => {
  const r = generate(SEED_PROXY, SEED, OPTS);
  assert.equal(names(r.listeners), ["0.0.0.0_9080", "10.75.8.101_9080", "192.168.10.63_19080", "192.168.10.63_9080", "virtual"]);
  const inbound = named(r.listeners, "10.75.8.101_9080");
  assert.equal(inbound.address, { socket_address: { address: "10.75.8.101", port_value: 9080 } });
  assert.is(inbound.traffic_direction, "INBOUND");
  assert.equal(inbound.bind_to_port, { value: false });
  assert.is(deliversTo(inbound), "inbound|9080|http|service-a.default.svc.cluster.local");
  const cluster = named(r.clusters, "inbound|9080|http|service-a.default.svc.cluster.local");
  assert.is(cluster.type, "STATIC");
  assert.equal(cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: "127.0.0.1", port_value: 9080 });
  assert.equal(names(r.clusters), [
    "BlackHoleCluster", "PassthroughCluster",
    "inbound|9080|http-mgmt|mgmt.default.svc.cluster.local", "inbound|9080|http|service-a.default.svc.cluster.local",
    "outbound|9080||mgmt.default.svc.cluster.local", "outbound|9080||service-a.default.svc.cluster.local",
    "outbound|9080||service-b.default.svc.cluster.local",
  ]);
  const [decision] = decisions(SEED_PROXY, SEED, OPTS).filter((d) => d.host.startsWith("service-a"));
  assert.equal(decision, {
    entry: "default/service-a", host: "service-a.default.svc.cluster.local", port: 9080, portName: "http",
    address: "10.75.8.101", endpointPort: 9080, direction: "inbound", reason: "10.75.8.101 is node IP 2 of 2 (from INSTANCE_IPS)",
    listener: "10.75.8.101_9080", cluster: "inbound|9080|http|service-a.default.svc.cluster.local",
  });
});

test("the virtual listener: 0.0.0.0:15001, use_original_dst, original_dst filter, guarded passthrough; BlackHoleCluster exists", () => {
  const r = generate(SEED_PROXY, SEED, OPTS);
  const v = named(r.listeners, "virtual");
  assert.equal(v.address.socket_address, { address: "0.0.0.0", port_value: 15001 });
  assert.equal(v.use_original_dst, { value: true });
  assert.is(v.bind_to_port, undefined);
  assert.equal(v.listener_filters.map((f: any) => f.name), ["envoy.filters.listener.original_dst"]);
  assert.equal(filterNames(v.filter_chains[0]), ["loop_guard", "envoy.filters.network.tcp_proxy"]);
  assert.is(v.filter_chains[0].filters[1].typed_config.cluster, "PassthroughCluster");
  const { typed_extension_protocol_options: protocol, ...passthrough } = named(r.clusters, "PassthroughCluster");
  assert.equal(passthrough, { name: "PassthroughCluster", type: "ORIGINAL_DST", lb_policy: "CLUSTER_PROVIDED", connect_timeout: { seconds: 1, nanos: 0 } });
  // HTTP requests to hosts no route names (allow_any) go upstream in the protocol the client spoke.
  assert.equal(protocol["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].use_downstream_protocol_config, { http_protocol_options: {}, http2_protocol_options: {} });
  assert.is(named(r.clusters, "BlackHoleCluster").type, "STATIC");
  const custom = generate(SEED_PROXY, SEED, generationOptions({ virtualListener: { address: "127.0.0.1", port: 25001, handoff: "proxy_protocol" } }));
  const cv = named(custom.listeners, "virtual");
  assert.equal(cv.address.socket_address, { address: "127.0.0.1", port_value: 25001 });
  assert.equal(cv.listener_filters.map((f: any) => f.name), ["envoy.filters.listener.proxy_protocol"]);
});

test("outbound: one 0.0.0.0_<port> listener, services on that port told apart by destination IP, EDS clusters", () => {
  const r = generate(SEED_PROXY, SEED_TCP, OPTS);
  const out = named(r.listeners, "0.0.0.0_9080");
  assert.is(out.traffic_direction, "OUTBOUND");
  assert.equal(out.bind_to_port, { value: false });
  assert.equal(out.filter_chains.map((c: any) => [c.name, c.filter_chain_match.prefix_ranges]), [
    ["outbound|9080||mgmt.default.svc.cluster.local", [{ address_prefix: "192.168.10.63", prefix_len: { value: 32 } }]],
    ["outbound|9080||service-a.default.svc.cluster.local", [{ address_prefix: "10.75.8.101", prefix_len: { value: 32 } }]],
    ["outbound|9080||service-b.default.svc.cluster.local", [{ address_prefix: "10.75.8.102", prefix_len: { value: 32 } }]],
  ]);
  assert.is(out.default_filter_chain.filters[1].typed_config.cluster, "PassthroughCluster");
  const eds = named(r.clusters, "outbound|9080||service-b.default.svc.cluster.local");
  assert.equal(eds, { name: "outbound|9080||service-b.default.svc.cluster.local", type: "EDS", connect_timeout: { seconds: 1, nanos: 0 }, eds_cluster_config: { eds_config: { ads: {}, resource_api_version: "V3" } } });
  assert.equal(named(r.endpoints, eds.name), {
    cluster_name: eds.name,
    endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "10.75.8.102", port_value: 9080 } } } }] }],
  });
  const d = decisions(SEED_PROXY, SEED_TCP, OPTS).find((x) => x.host.startsWith("service-b"))!;
  assert.is(d.direction, "outbound");
  assert.is(d.reason, "10.75.8.102 is not one of the 2 node IPs (192.168.10.63, 10.75.8.101)");
});

test("the loop guard goes first in every outbound chain and the passthrough chains, never inbound; ECDS carries the node IPs", () => {
  const r = generate(SEED_PROXY, SEED_TCP, OPTS);
  const out = named(r.listeners, "0.0.0.0_9080");
  for (const chain of [...out.filter_chains, out.default_filter_chain, named(r.listeners, "virtual").filter_chains[0]]) {
    assert.equal(chain.filters[0], {
      name: "loop_guard",
      config_discovery: { config_source: { ads: {}, resource_api_version: "V3" }, type_urls: ["type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm"] },
    });
  }
  assert.equal(names(r.extensionConfigs), ["loop_guard"]);
  const cfg = (r.extensionConfigs[0] as any).typed_config.config;
  assert.equal(cfg.vm_config, { vm_id: "loop_guard", runtime: "envoy.wasm.runtime.v8", code: { local: { filename: GUARD.wasmPath } } });
  assert.is(cfg.root_id, "loop_guard");
  assert.equal(guardConfig(r), { node_ips: ["192.168.10.63", "10.75.8.101"], mode: "enforce" });
  for (const name of ["10.75.8.101_9080", "192.168.10.63_9080"]) {
    assert.equal(filterNames(named(r.listeners, name).filter_chains[0]), ["envoy.filters.network.tcp_proxy"]);
  }
  const bare = generate(SEED_PROXY, SEED_TCP, generationOptions());
  assert.equal(filterNames(named(bare.listeners, "virtual").filter_chains[0]), ["envoy.filters.network.tcp_proxy"]);
  assert.equal(bare.extensionConfigs, []);
});

test("--legacy-single-ip reproduces Istio 1.0: service-a on the second IP is outbound; the guard knows one IP", () => {
  const opts = generationOptions({ loopGuard: GUARD, legacySingleIp: true });
  const r = generate(SEED_PROXY, SEED, opts);
  assert.equal(names(r.listeners), ["0.0.0.0_9080", "192.168.10.63_19080", "192.168.10.63_9080", "virtual"]);
  assert.is(named(r.clusters, "inbound|9080|http|service-a.default.svc.cluster.local"), undefined);
  assert.equal(guardConfig(r), { node_ips: ["192.168.10.63"], mode: "enforce" });
  const d = decisions(SEED_PROXY, SEED, opts).find((x) => x.host.startsWith("service-a"))!;
  assert.is(d.direction, "outbound");
  assert.is(d.listener, "0.0.0.0_9080");
  assert.is(d.reason, "legacy single-IP mode: only node.id's IP 192.168.10.63 counts and 10.75.8.101 is not it (INSTANCE_IPS lists it, but legacy mode ignores INSTANCE_IPS)");
  const opaque = decisions(sidecar("x", "10.75.8.101"), SEED, opts);
  assert.ok(opaque.every((x) => x.direction === "outbound"));
});

test("one port on two node IPs for two different services: two inbound listeners, two inbound clusters", () => {
  const r = generate(SEED_PROXY, SEED, OPTS);
  assert.is(deliversTo(named(r.listeners, "192.168.10.63_9080")), "inbound|9080|http-mgmt|mgmt.default.svc.cluster.local");
  assert.is(deliversTo(named(r.listeners, "10.75.8.101_9080")), "inbound|9080|http|service-a.default.svc.cluster.local");
});

test("targetPort (Istio): outbound sends to <endpoint>:<targetPort>; inbound takes <ip>:<targetPort> and the service port to 127.0.0.1:<targetPort>", () => {
  const r = generate(SEED_PROXY, SEED, OPTS);
  for (const port of [19080, 9080]) {
    const l = named(r.listeners, `192.168.10.63_${port}`);
    assert.equal(l.address.socket_address, { address: "192.168.10.63", port_value: port });
    assert.is(deliversTo(l), "inbound|9080|http-mgmt|mgmt.default.svc.cluster.local");
  }
  const c = named(r.clusters, "inbound|9080|http-mgmt|mgmt.default.svc.cluster.local");
  assert.equal(c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: "127.0.0.1", port_value: 19080 });
  assert.equal(named(r.endpoints, "outbound|9080||mgmt.default.svc.cluster.local").endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: "192.168.10.63", port_value: 19080 });
  const d = decisions(SEED_PROXY, SEED, OPTS).find((x) => x.host.startsWith("mgmt"))!;
  assert.equal([d.listener, d.servicePortListener, d.endpointPort], ["192.168.10.63_19080", "192.168.10.63_9080", 19080]);
});

test("IPv6 node IP: inbound listener on [fd00::5]:9080; the outbound listener also listens on [::]:9080", () => {
  const reg = registryFrom([
    { name: "v6", ports: [{ number: 9080, name: "http" }], endpoints: [{ address: "FD00:0::5" }, { address: "fd00::6" }] },
    { name: "v4", ports: [{ number: 9080, name: "http" }], endpoints: [{ address: "10.0.0.6" }] },
  ]);
  const proxy = sidecar("10.0.0.1", "fd00::5");
  const r = generate(proxy, reg, OPTS);
  const inbound = named(r.listeners, "fd00::5_9080");
  assert.equal(inbound.address.socket_address, { address: "fd00::5", port_value: 9080 });
  const out = named(r.listeners, "0.0.0.0_9080");
  assert.equal(out.additional_addresses, [{ address: { socket_address: { address: "::", port_value: 9080 } } }]);
  assert.equal(out.filter_chains.map((c: any) => c.filter_chain_match.prefix_ranges.map((p: any) => `${p.address_prefix}/${p.prefix_len.value}`)), [["10.0.0.6/32"], ["fd00::5/128", "fd00::6/128"]]);
  assert.is(decisions(proxy, reg, OPTS).find((d) => d.address === "fd00::5")!.reason, "fd00::5 is node IP 2 of 2 (from INSTANCE_IPS)");
});

test("a service with one local and one remote endpoint: inbound for the local one, EDS keeps both", () => {
  const reg = registryFrom([{ name: "split", ports: [{ number: 7000, name: "tcp" }], endpoints: [{ address: "10.75.8.101" }, { address: "10.75.8.200", ports: { tcp: 7100 } }] }]);
  const r = generate(SEED_PROXY, reg, OPTS);
  assert.equal(names(r.listeners), ["0.0.0.0_7000", "10.75.8.101_7000", "virtual"]);
  assert.equal(named(r.endpoints, "outbound|7000||split.default.svc.cluster.local").endpoints[0].lb_endpoints.map((e: any) => e.endpoint.address.socket_address),
    [{ address: "10.75.8.101", port_value: 7000 }, { address: "10.75.8.200", port_value: 7100 }]);
  assert.equal(decisions(SEED_PROXY, reg, OPTS).map((d) => [d.address, d.direction, d.endpointPort]), [["10.75.8.101", "inbound", 7000], ["10.75.8.200", "outbound", 7100]]);
});

test("endpoint port map: the inbound listener is on the port the endpoint receives; VIPs join the destination match", () => {
  const reg = registryFrom([{ name: "mapped", addresses: ["240.0.0.1", "10.200.0.0/16"], ports: [{ number: 80, name: "http", targetPort: 8081 }], endpoints: [{ address: "10.75.8.101", ports: { http: 8080 } }] }]);
  const r = generate(SEED_PROXY, reg, OPTS);
  assert.ok(named(r.listeners, "10.75.8.101_8080"));
  assert.not.ok(named(r.listeners, "10.75.8.101_80"), "the endpoint's own port wins over targetPort: no service-port listener");
  // Istio: the endpoint's port map takes precedence over targetPort, outbound and inbound alike.
  assert.equal(named(r.clusters, "inbound|8080|http|mapped.default.svc.cluster.local").load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: "127.0.0.1", port_value: 8080 });
  assert.equal(named(r.endpoints, "outbound|80||mapped.default.svc.cluster.local").endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: "10.75.8.101", port_value: 8080 });
  assert.equal(named(r.listeners, "0.0.0.0_80").filter_chains[0].filter_chain_match.prefix_ranges,
    [{ address_prefix: "240.0.0.1", prefix_len: { value: 32 } }, { address_prefix: "10.200.0.0", prefix_len: { value: 16 } }, { address_prefix: "10.75.8.101", prefix_len: { value: 32 } }]);
});

test("conflicts are resolved deterministically and explained: shared ip:port, shared destination, the virtual port", () => {
  const reg = registryFrom([
    { name: "first", ports: [{ number: 9080, name: "http" }], endpoints: [{ address: "10.75.8.101" }] },
    { name: "second", ports: [{ number: 9080, name: "http" }, { number: 15001, name: "odd" }], endpoints: [{ address: "10.75.8.101" }, { address: "10.1.1.1" }] },
  ]);
  const r = generate(SEED_PROXY, reg, OPTS);
  assert.equal(names(r.listeners), ["0.0.0.0_9080", "10.75.8.101_9080", "virtual"]);
  assert.equal(named(r.listeners, "0.0.0.0_9080").filter_chains.map((c: any) => [c.name, c.filter_chain_match.prefix_ranges.length]),
    [["outbound|9080||first.default.svc.cluster.local", 1], ["outbound|9080||second.default.svc.cluster.local", 1]]);
  const notes = decisions(SEED_PROXY, reg, OPTS).filter((d) => d.note).map((d) => `${d.host}:${d.port} ${d.address} ${d.note}`);
  assert.equal(notes, [
    "second.default.svc.cluster.local:9080 10.75.8.101 10.75.8.101_9080 already delivers to inbound|9080|http|first.default.svc.cluster.local (default/first); no inbound listener for this instance",
    "second.default.svc.cluster.local:15001 10.75.8.101 port 15001 is the virtual listener's; no inbound listener",
    "second.default.svc.cluster.local:15001 10.1.1.1 port 15001 is the virtual listener's; no outbound listener",
  ]);
});

test("pure: the same input gives the same output, inputs are not mutated, an empty registry is valid", () => {
  const frozen = structuredClone(SEED);
  const a = generate(SEED_PROXY, SEED, OPTS);
  const b = generate(SEED_PROXY, structuredClone(SEED), OPTS);
  assert.equal(a, b);
  assert.equal(SEED, frozen);
  const empty = generate(SEED_PROXY, registryFrom([]), OPTS);
  assert.equal(names(empty.listeners), ["virtual"]);
  assert.equal(names(empty.clusters), ["BlackHoleCluster", "PassthroughCluster"]);
  assert.equal(empty.endpoints, []);
});

// protobufjs's fromObject silently drops fields it does not know: a typo would vanish without a trace.
// Every generated resource must survive encode -> decode unchanged.
function stripDefaults(v: unknown): unknown {
  if (Array.isArray(v)) return v.length === 0 ? undefined : v.map(stripDefaults);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const s = stripDefaults(x);
      if (s !== undefined) out[k] = s;
    }
    return out;
  }
  return v === 0 || v === false || v === "" ? undefined : v;
}

function assertRoundTrips(r: Resources) {
  const root = loadEnvoyProtos();
  const check = (typeUrl: string, list: readonly object[]) => {
    const type = root.lookupType(typeUrl.slice(typeUrl.lastIndexOf("/") + 1));
    for (const obj of list) {
      const back = type.toObject(type.decode(type.encode(type.fromObject(obj)).finish()), { enums: String, longs: Number, bytes: String, json: true });
      assert.equal(stripDefaults(back), stripDefaults(obj));
    }
  };
  check(TYPE_URL.listener, r.listeners);
  check(TYPE_URL.cluster, r.clusters);
  check(TYPE_URL.endpoint, r.endpoints);
  check(TYPE_URL.route, r.routes);
}

test("every generated field survives protobuf encoding (nothing silently dropped)", () => {
  assertRoundTrips(generate(SEED_PROXY, SEED, OPTS));
  assertRoundTrips(generate(SEED_PROXY, SEED_TCP, OPTS));
  assertRoundTrips(generate(sidecar("10.0.0.1", "fd00::5"), registryFrom([
    { name: "v6", addresses: ["fd00:1::/64"], ports: [{ number: 9080, name: "http", targetPort: 81 }], endpoints: [{ address: "fd00::5" }] },
  ]), generationOptions({ loopGuard: GUARD, virtualListener: { address: "127.0.0.1", port: 25001, handoff: "proxy_protocol" }, connectTimeoutMs: 2500 })));
});

test("a service without endpoints gets an empty endpoint set, not confused with its cluster", () => {
  const empty = generate(SEED_PROXY, registryFrom([{ name: "w", ports: [{ number: 7002, name: "tcp" }], endpoints: [] }]), OPTS);
  assert.equal(named(empty.endpoints, "outbound|7002||w.default.svc.cluster.local"), { cluster_name: "outbound|7002||w.default.svc.cluster.local", endpoints: [] });
});

test.run();
