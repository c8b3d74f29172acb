// Planes in generation: a port's endpoints grouped by plane, each group a cluster with its plane's
// DSCP, connect timeout and circuit breakers; the proxy's own copy of a bindSource plane's clusters
// connects from its node IP there; isolated planes' services reach only proxies on them. A real Envoy
// ACKs every configuration.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { decide } from "../../control/generation/decisions.ts";
import { generate, sharedConfig } from "../../control/generation/generate.ts";
import { Interner } from "../../control/generation/intern.ts";
import { generationOptions } from "../../control/generation/options.ts";
import { viewOf } from "../../control/generation/proxy-view.ts";
import { proxyIdentity, type ProxyIdentity } from "../../control/identity/proxy.ts";
import { parsePlanes } from "../../control/planes/parse.ts";
import type { Planes } from "../../control/planes/plane.ts";
import { ConfigPipeline } from "../../control/pipeline/config-pipeline.ts";
import { LOOP_GUARD_WASM } from "../../envoy/paths.ts";
import { envoyJudgedFile } from "../support/envoy-accepts.ts";
import { envoyValidates } from "../support/envoy-validate.ts";
import { registryOf } from "../support/registry.ts";

const planesOf = (yaml: string): Planes => {
  const r = parsePlanes(yaml, "planes.yaml");
  if (!r.planes) throw new Error(JSON.stringify(r.errors));
  return r.planes;
};
const PLANES = planesOf(`planes:
- name: data
  cidrs: [10.75.8.0/24, 172.20.0.0/16, "fd00:75::/64"]
  dscp: 46
  bindSource: true
  isolated: true
  connectTimeout: 250ms
  maxConnections: 10000
  maxPendingRequests: 50
- name: management
  cidrs: [192.168.10.0/24]
`);
const OPTS = generationOptions({ loopGuard: { wasmPath: LOOP_GUARD_WASM, mode: "enforce" }, planes: PLANES });
const se = (name: string, spec: string) => `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${name}, namespace: default}\nspec:\n${spec}\n  resolution: STATIC\n---\n`;
const proxy = (...ips: string[]): ProxyIdentity => proxyIdentity({ id: `sidecar~${ips[0]}~app-1.default~default.svc.cluster.local`, metadata: { INSTANCE_IPS: ips.join(",") } });
const named = (list: readonly object[], name: string) => list.find((x: any) => x.name === name || x.cluster_name === name) as any;
const names = (list: readonly object[]) => list.map((x: any) => x.name ?? x.cluster_name).sort();
const tcp = (r: any, port: number, cluster: string) => named(r.listeners, `0.0.0.0_${port}`).filter_chains.find((c: any) => c.name === cluster).filters.at(-1).typed_config;

const MESH = registryOf(
  se("media", "  hosts: [media.example]\n  addresses: [240.0.0.10]\n  ports: [{number: 5060, name: sip, protocol: TCP}]\n  endpoints: [{address: 172.20.0.5}, {address: 172.20.0.6}]")
  + se("mgmt", "  hosts: [mgmt.example]\n  addresses: [240.0.0.11]\n  ports: [{number: 8080, name: http, protocol: HTTP}]\n  endpoints: [{address: 192.168.10.20}]")
  + se("both", "  hosts: [both.example]\n  addresses: [240.0.0.12]\n  ports: [{number: 7000, name: tcp, protocol: TCP}]\n  endpoints: [{address: 172.20.0.7, weight: 3}, {address: 192.168.10.21}, {address: 203.0.113.9}]")
  + se("web", "  hosts: [web.example]\n  ports: [{number: 9080, name: http, protocol: HTTP}]\n  endpoints: [{address: 172.20.0.8}, {address: 192.168.10.22}]")
  + se("v6", "  hosts: [v6.example]\n  addresses: [240.0.0.13]\n  ports: [{number: 7100, name: tcp, protocol: TCP}]\n  endpoints: [{address: 172.20.0.9}, {address: \"fd00:75::9\"}]"),
);

const envoy = envoyJudgedFile(test);
const SEED_NODE = proxy("192.168.10.63", "10.75.8.101", "fd00:75::101");
const MGMT_ONLY = proxy("192.168.10.64");

test("a data-plane service's cluster carries the plane's DSCP, timeout and limits, and the proxy's copy binds its data IP", () => {
  const r = envoy.record("seed node", generate(SEED_NODE, MESH, OPTS));
  const c = named(r.clusters, "outbound|5060||media.example");
  assert.equal(c.connect_timeout, { seconds: 0, nanos: 250_000_000 });
  assert.equal(c.circuit_breakers, { thresholds: [{ max_connections: { value: 10000 }, max_pending_requests: { value: 50 } }] });
  assert.equal(c.upstream_bind_config.source_address, { address: "10.75.8.101", port_value: 0 });
  assert.equal(c.upstream_bind_config.socket_options.map((o: any) => [o.level, o.name, o.int_value]), [[0, 1, 184]], "IP_TOS 46 << 2 on IPv4 only");
  const m = named(r.clusters, "outbound|8080||mgmt.example");
  assert.equal([m.upstream_bind_config, m.circuit_breakers, m.connect_timeout], [undefined, undefined, { seconds: 1, nanos: 0 }], "management: as without planes");
});

test("a port whose endpoints span planes is split into one cluster per plane, weighted by their endpoints", () => {
  const r = envoy.record("spanning", generate(SEED_NODE, MESH, OPTS));
  assert.equal(names(r.clusters).filter((n) => n.includes("both.example")), ["outbound|7000|plane:data|both.example", "outbound|7000|plane:management|both.example", "outbound|7000|plane:|both.example"].sort());
  assert.equal(tcp(r, 7000, "outbound|7000||both.example").weighted_clusters.clusters, [
    { name: "outbound|7000|plane:data|both.example", weight: 3 },
    { name: "outbound|7000|plane:management|both.example", weight: 1 },
    { name: "outbound|7000|plane:|both.example", weight: 1 },
  ]);
  assert.equal(named(r.endpoints, "outbound|7000|plane:data|both.example").endpoints[0].lb_endpoints.map((e: any) => e.endpoint.address.socket_address.address), ["172.20.0.7"]);
  const route = named(r.routes, "9080").virtual_hosts.find((v: any) => v.name === "web.example:9080").routes[0].route;
  assert.equal(route.weighted_clusters.clusters.map((w: any) => w.name), ["outbound|9080|plane:data|web.example", "outbound|9080|plane:management|web.example"], "HTTP routes split alike");
});

test("IPv4 and IPv6 endpoints on a marking plane get a cluster each: IPV6_TCLASS only where every endpoint is IPv6, bound to the IPv6 node IP", () => {
  const r = envoy.record("dual stack", generate(SEED_NODE, MESH, OPTS));
  const v6 = named(r.clusters, "outbound|7100|plane:data/ipv6|v6.example");
  assert.equal(v6.upstream_bind_config.socket_options.map((o: any) => [o.level, o.name, o.int_value]), [[0, 1, 184], [41, 67, 184]]);
  assert.equal(v6.upstream_bind_config.source_address.address, "fd00:75::101");
  assert.equal(named(r.clusters, "outbound|7100|plane:data|v6.example").upstream_bind_config.source_address.address, "10.75.8.101");
});

test("isolation: a proxy without a data-plane IP gets none of the data plane's services, and only the other planes' part of a spanning one", () => {
  const r = envoy.record("management only", generate(MGMT_ONLY, MESH, OPTS));
  assert.not.ok(names(r.clusters).some((n) => n.includes("media.example")), "no media cluster");
  assert.not.ok(r.endpoints.some((e: any) => e.cluster_name.includes("plane:data")), "no data-plane endpoints");
  assert.not.ok(named(r.listeners, "0.0.0.0_5060"), "no listener for the data plane's port");
  assert.equal(tcp(r, 7000, "outbound|7000||both.example").weighted_clusters.clusters.map((w: any) => w.name), ["outbound|7000|plane:management|both.example", "outbound|7000|plane:|both.example"]);
  const route = named(r.routes, "9080").virtual_hosts.find((v: any) => v.name === "web.example:9080").routes[0].route;
  assert.equal(route.cluster, "outbound|9080|plane:management|web.example", "one plane left: straight to its cluster");
  assert.ok(r.extensionConfigs.length > 0, "the loop guard still gets the proxy's IPs");
});

test("a proxy on the data plane without binding a family connects unbound, marked alike", () => {
  const v4only = proxy("10.75.8.102");
  const r = envoy.record("v4 only", generate(v4only, MESH, OPTS));
  const v6 = named(r.clusters, "outbound|7100|plane:data/ipv6|v6.example");
  assert.equal(v6.upstream_bind_config.source_address, undefined);
  assert.equal(v6.upstream_bind_config.socket_options.length, 2);
});

test("decisions name the plane and what the proxy's connections to it get", () => {
  const d = decide(SEED_NODE, sharedConfig(MESH, OPTS, new Interner(), viewOf(SEED_NODE, OPTS)), OPTS).find((x) => x.host === "media.example" && x.address === "172.20.0.5")!;
  assert.match(d.note ?? "", /plane data.*from 10\.75\.8\.101.*DSCP 46/);
  const split = decide(SEED_NODE, sharedConfig(MESH, OPTS, new Interner(), viewOf(SEED_NODE, OPTS)), OPTS).filter((x) => x.host === "both.example").map((x) => `${x.address} ${x.cluster}`);
  assert.equal(split, ["172.20.0.7 outbound|7000|plane:data|both.example", "192.168.10.21 outbound|7000|plane:management|both.example", "203.0.113.9 outbound|7000|plane:|both.example"], "each endpoint's own cluster");
  const m = decide(MGMT_ONLY, sharedConfig(MESH, OPTS, new Interner(), viewOf(MGMT_ONLY, OPTS)), OPTS).find((x) => x.host === "media.example")!;
  assert.match(m.note ?? "", /isolated plane data/);
});

test("the pipeline shares outbound parts between proxies of the same planes and reshapes everything when the planes change", () => {
  const pipeline = new ConfigPipeline(OPTS);
  pipeline.setRegistry(MESH);
  const a = pipeline.configFor(proxy("192.168.10.70", "10.75.8.110"));
  const b = pipeline.configFor(proxy("192.168.10.71", "10.75.8.111"));
  const c = pipeline.configFor(proxy("192.168.10.72"));
  assert.is(a.shared, b.shared);
  assert.is.not(a.shared, c.shared);
  assert.equal(named(a.resources().clusters, "outbound|5060||media.example").upstream_bind_config.source_address.address, "10.75.8.110");
  assert.equal(named(b.resources().clusters, "outbound|5060||media.example").upstream_bind_config.source_address.address, "10.75.8.111");
  pipeline.setPlanes(planesOf("planes:\n- name: data\n  cidrs: [172.20.0.0/16]\n  dscp: 10\n"));
  const after = pipeline.configFor(proxy("192.168.10.72"));
  const media = named(after.shared.clusters, "outbound|5060||media.example");
  assert.equal(media.upstream_bind_config.socket_options[0].int_value, 40, "DSCP 10 now");
  assert.equal(media.upstream_bind_config.source_address, undefined);
});

test("a real Envoy ACKs every configuration above", () => envoy.assertAllAccepted(4));

test("envoy --mode validate accepts the seed node's whole configuration as a static bootstrap", () => {
  const v = envoyValidates(generate(SEED_NODE, MESH, OPTS));
  assert.ok(v.ok, v.output);
});

test.run();
