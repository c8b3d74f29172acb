// HTTP ports (HTTP, HTTP2, GRPC, ...) get Istio's HTTP layout: an outbound listener 0.0.0.0_<port> whose
// HTTP connection manager takes its routes by RDS (route configuration "<port>", a virtual host
// "<host>:<port>" per service with its host, short names and VIPs as domains, "allow_any" on to the
// original destination last), the HTTP loop guard before the router, configured by ECDS
// (loop_guard_http); inbound HTTP listeners route every request to the local process; HTTP2 and gRPC
// clusters speak HTTP/2 upstream. TLS ports of external services are told apart by SNI. A real Envoy
// ACKs every configuration, and the pipeline shares route configurations across the proxies of a view.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decide } from "../../control/generation/decisions.ts";
import { generate, sharedConfig, type Resources } from "../../control/generation/generate.ts";
import { generationOptions, type GenerationOptions } from "../../control/generation/options.ts";
import { proxyView } from "../../control/generation/proxy-view.ts";
import { alternateNames, routeDomainKey } from "../../control/generation/virtual-hosts.ts";
import { proxyIdentity, type ProxyIdentity } from "../../control/identity/proxy.ts";
import type { Registry } from "../../control/registry/model.ts";
import { ConfigPipeline } from "../../control/pipeline/config-pipeline.ts";
import { Encoder } from "../../control/xds/cache/encode.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";
import { LOOP_GUARD_WASM, PROJECT_ROOT } from "../../envoy/paths.ts";
import { envoyJudgedFile } from "../support/envoy-accepts.ts";
import { registryOf, sidecar } from "../support/registry.ts";

const SEED = registryOf(readFileSync(join(PROJECT_ROOT, "examples", "registry", "seed.yaml"), "utf8"));
const SEED_PROXY = sidecar("192.168.10.63", "192.168.10.63,10.75.8.101");
const GUARD = { wasmPath: LOOP_GUARD_WASM, mode: "enforce" as const };
const OPTS = generationOptions({ loopGuard: GUARD });
const H2 = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

const se = (name: string, spec: string, ns = "default") => `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n${spec}\n---\n`;
const proxy = (ip: string, ns = "default", metadata: Record<string, unknown> = {}): ProxyIdentity =>
  proxyIdentity({ id: `sidecar~${ip}~app-1.${ns}~${ns}.svc.cluster.local`, metadata: { INSTANCE_IPS: ip, ...metadata } });
const named = (list: readonly object[], name: string) => list.find((x: any) => x.name === name || x.cluster_name === name) as any;
const names = (list: readonly object[]) => list.map((x: any) => x.name ?? x.cluster_name).sort();
const hcmOf = (chain: any) => chain.filters.find((f: any) => f.name === "envoy.filters.network.http_connection_manager")?.typed_config;
const vhosts = (r: Resources, port: number) => named(r.routes, String(port)).virtual_hosts.map((v: any) => [v.name, v.domains, v.routes[0].route.cluster]);
const guardConfigs = (r: Resources) => Object.fromEntries(r.extensionConfigs.map((e: any) => [e.name, { root: e.typed_config.config.root_id, type: e.typed_config["@type"], config: JSON.parse(e.typed_config.config.configuration.value) }]));

const envoy = envoyJudgedFile(test);
const gen = (what: string, registry: Registry, p: ProxyIdentity = SEED_PROXY, options: GenerationOptions = OPTS) => envoy.record(what, generate(p, registry, options));

const TWO_ON_ONE_PORT = registryOf(
  se("reviews", "  hosts: [reviews.default.svc.cluster.local]\n  addresses: [240.0.0.10, fd00:10::1]\n  ports: [{number: 9080, name: http, protocol: HTTP}]\n  resolution: STATIC\n  location: MESH_INTERNAL\n  endpoints: [{address: 10.0.0.11}]")
  + se("ratings", "  hosts: [ratings.shop.svc.cluster.local]\n  ports: [{number: 9080, name: http, protocol: HTTP}]\n  resolution: STATIC\n  location: MESH_INTERNAL\n  endpoints: [{address: 10.0.0.12}]", "shop")
  + se("db", "  hosts: [db.default.svc.cluster.local]\n  addresses: [240.0.0.20]\n  ports: [{number: 9080, name: tcp, protocol: TCP}]\n  resolution: STATIC\n  location: MESH_INTERNAL\n  endpoints: [{address: 10.0.0.13}]"));

test("an HTTP port: 0.0.0.0_<port> with one HTTP chain, the HTTP loop guard before the router, routes by RDS (route config \"<port>\")", () => {
  const r = gen("the seed, HTTP", SEED);
  const out = named(r.listeners, "0.0.0.0_9080");
  assert.is(out.traffic_direction, "OUTBOUND");
  assert.equal(out.bind_to_port, { value: false });
  assert.equal(out.filter_chains.map((c: any) => c.name), ["http 9080"], "one chain for every HTTP service on the port");
  const chain = out.filter_chains[0];
  assert.equal(chain.filter_chain_match.prefix_ranges.map((p: any) => `${p.address_prefix}/${p.prefix_len.value}`), ["0.0.0.0/0", "::/0"]);
  assert.equal(chain.filters.map((f: any) => f.name), ["envoy.filters.network.http_connection_manager"], "the HTTP guard, not the network one");
  const hcm = hcmOf(chain);
  assert.equal(hcm.rds, { config_source: { ads: {}, resource_api_version: "V3" }, route_config_name: "9080" });
  assert.is(hcm.stat_prefix, "outbound_0.0.0.0_9080");
  assert.is(hcm.codec_type, "AUTO");
  assert.equal(hcm.http_filters.map((f: any) => f.name), ["loop_guard_http", "envoy.filters.http.router"]);
  assert.equal(hcm.http_filters[0].config_discovery, { config_source: { ads: {}, resource_api_version: "V3" }, type_urls: ["type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"] });
  assert.equal(hcm.upgrade_configs, [{ upgrade_type: "websocket" }]);
  // Hosts nothing routes (and non-HTTP bytes the HCM cannot parse never get here: the chain is HTTP) pass through at L4 only by default chain.
  assert.equal(out.default_filter_chain.filters.map((f: any) => f.name), ["loop_guard", "envoy.filters.network.tcp_proxy"]);
  assert.equal(names(r.routes), ["9080"]);
});

test("route config \"<port>\": a virtual host <host>:<port> per service (host, short names, VIPs), then allow_any to PassthroughCluster", () => {
  const r = gen("two HTTP services and a TCP one on 9080", TWO_ON_ONE_PORT, proxy("10.0.0.9", "default"));
  assert.equal(vhosts(r, 9080), [
    ["ratings.shop.svc.cluster.local:9080", [
      "ratings.shop.svc.cluster.local", "ratings.shop.svc.cluster.local:9080",
      "ratings.shop", "ratings.shop:9080", "ratings.shop.svc.cluster", "ratings.shop.svc.cluster:9080", "ratings.shop.svc", "ratings.shop.svc:9080",
    ], "outbound|9080||ratings.shop.svc.cluster.local"],
    ["reviews.default.svc.cluster.local:9080", [
      "reviews.default.svc.cluster.local", "reviews.default.svc.cluster.local:9080",
      "reviews", "reviews:9080", "reviews.default.svc.cluster", "reviews.default.svc.cluster:9080", "reviews.default.svc", "reviews.default.svc:9080",
      "reviews.default", "reviews.default:9080", "240.0.0.10", "240.0.0.10:9080", "[fd00:10::1]", "[fd00:10::1]:9080",
    ], "outbound|9080||reviews.default.svc.cluster.local"],
    ["allow_any", ["*"], "PassthroughCluster"],
  ]);
  const config = named(r.routes, "9080");
  assert.equal(config.validate_clusters, { value: false });
  assert.equal(config.virtual_hosts[0].routes[0], { name: "default", match: { prefix: "/" }, route: { cluster: "outbound|9080||ratings.shop.svc.cluster.local", timeout: { seconds: 0, nanos: 0 } } });
  // The TCP service keeps its VIP chain, more specific than the HTTP chain's 0.0.0.0/0.
  const out = named(r.listeners, "0.0.0.0_9080");
  assert.equal(out.filter_chains.map((c: any) => [c.name, c.filter_chain_match.prefix_ranges.map((p: any) => `${p.address_prefix}/${p.prefix_len.value}`)]), [
    ["outbound|9080||db.default.svc.cluster.local", ["240.0.0.20/32", "10.0.0.13/32"]],
    ["http 9080", ["0.0.0.0/0", "::/0"]],
  ]);
  const d = decide(proxy("10.0.0.9"), sharedConfig(TWO_ON_ONE_PORT, OPTS, undefined, proxyView(proxy("10.0.0.9"))), OPTS);
  const reviews = d.find((x) => x.host.startsWith("reviews"))!;
  assert.equal([reviews.direction, reviews.listener, reviews.route, reviews.virtualHost, reviews.note], ["outbound", "0.0.0.0_9080", "9080", "reviews.default.svc.cluster.local:9080", undefined]);
  assert.is(d.find((x) => x.host.startsWith("db"))!.route, undefined);
});

test("short names follow the proxy's DNS domain (Istio): the bare name only in the service's own namespace; routes depend on the domain only through the suffix it shares", () => {
  assert.equal(alternateNames("reviews.default.svc.cluster.local", "default.svc.cluster.local"), ["reviews", "reviews.default.svc.cluster", "reviews.default.svc", "reviews.default"]);
  assert.equal(alternateNames("reviews.default.svc.cluster.local", "shop.svc.cluster.local"), ["reviews.default", "reviews.default.svc.cluster", "reviews.default.svc"]);
  assert.equal(alternateNames("api.example.com", "shop.svc.cluster.local"), [], "nothing shared: no short names");
  assert.equal(alternateNames("*.example.com", "corp.example.com"), [], "wildcards have none");
  assert.equal(alternateNames("svc.cluster.local", "default.svc.cluster.local"), [], "a host that is a suffix of the domain");
  const hosts = ["reviews.default.svc.cluster.local", "api.example.com"];
  assert.is(routeDomainKey(hosts, "default.svc.cluster.local"), "default.svc.cluster.local");
  assert.is(routeDomainKey(hosts, "shop.svc.cluster.local"), "svc.cluster.local");
  assert.is(routeDomainKey(hosts, "team.svc.cluster.local"), "svc.cluster.local", "any namespace defining none of them: the same routes");
  assert.is(routeDomainKey(hosts, undefined), "");

  const shop = gen("two on one port, proxy in shop", TWO_ON_ONE_PORT, proxy("10.0.0.9", "shop"));
  const domains = Object.fromEntries(vhosts(shop, 9080).map(([n, d]: any) => [n, d]));
  assert.ok(domains["ratings.shop.svc.cluster.local:9080"].includes("ratings"));
  assert.not.ok(domains["reviews.default.svc.cluster.local:9080"].includes("reviews"));
  const opaque = gen("two on one port, opaque proxy", TWO_ON_ONE_PORT, proxyIdentity({ id: "opaque-1", metadata: {} }));
  assert.equal(vhosts(opaque, 9080)[1][1], ["reviews.default.svc.cluster.local", "reviews.default.svc.cluster.local:9080", "240.0.0.10", "240.0.0.10:9080", "[fd00:10::1]", "[fd00:10::1]:9080"]);
});

test("a domain is never named twice in one route config (Envoy refuses that): hosts first, then the first service to claim a short name or VIP", () => {
  const reg = registryOf(
    se("a", "  hosts: [a.default.svc.cluster.local]\n  addresses: [240.0.0.30]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints: [{address: 10.0.1.1}]")
    + se("b", "  hosts: [a.default]\n  addresses: [240.0.0.30]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints: [{address: 10.0.1.2}]", "other"));
  const r = gen("clashing domains", reg, proxy("10.0.0.9"));
  const [b, a] = vhosts(r, 80); // registry order: by host
  assert.equal(b, ["a.default:80", ["a.default", "a.default:80", "240.0.0.30", "240.0.0.30:80"], "outbound|80||a.default"]);
  assert.ok(!a[1].includes("a.default") && !a[1].includes("240.0.0.30") && a[1].includes("a"), JSON.stringify(a));
  const all = named(r.routes, "80").virtual_hosts.flatMap((v: any) => v.domains);
  assert.is(new Set(all).size, all.length);
});

test("an L4 service without addresses owns the port before a later HTTP service: no HTTP chain, and the decision says why", () => {
  const reg = registryOf(
    se("aa", "  hosts: [aa.example]\n  addresses: [240.0.0.50]\n  ports: [{number: 8000, name: tcp, protocol: TCP}]\n  resolution: STATIC\n  endpoints: [{address: 10.0.5.5}]")
    + se("aaa", "  hosts: [aaa.example]\n  ports: [{number: 8000, name: tcp, protocol: TCP}]\n  resolution: DNS")
    + se("zzz", "  hosts: [zzz.example]\n  ports: [{number: 8000, name: http, protocol: HTTP}]\n  resolution: DNS"));
  const p = proxy("10.0.0.9");
  const r = gen("TCP takes the whole port first", reg, p);
  assert.equal(named(r.listeners, "0.0.0.0_8000").filter_chains.map((c: any) => c.name), ["outbound|8000||aa.example", "outbound|8000||aaa.example"]);
  assert.equal(r.routes, []);
  assert.equal(names(r.extensionConfigs), ["loop_guard"], "no HTTP chain names the HTTP guard");
  const d = decide(p, sharedConfig(reg, OPTS, undefined, proxyView(p)), OPTS).find((x) => x.host === "zzz.example")!;
  assert.match(d.note ?? "", "every destination on port 8000 belongs to outbound|8000||aaa.example first");
  assert.is(d.route, undefined);
});

test("HTTP2, GRPC and GRPC-Web clusters speak HTTP/2 upstream (outbound and inbound); HTTP clusters do not", () => {
  const reg = registryOf(se("multi", "  hosts: [multi.default.svc.cluster.local]\n  ports:\n  - {number: 8080, name: http, protocol: HTTP}\n  - {number: 8081, name: h2, protocol: HTTP2}\n  - {number: 8082, name: grpc, protocol: GRPC}\n  - {number: 8083, name: grpc-web, protocol: GRPC-Web}\n  resolution: STATIC\n  endpoints: [{address: 10.75.8.101}, {address: 10.0.2.2}]")
    + se("dns", "  hosts: [dns.example]\n  ports: [{number: 8082, name: grpc, protocol: GRPC}]\n  resolution: DNS"));
  const r = gen("HTTP/2 upstreams", reg);
  const h2 = (name: string) => named(r.clusters, name).typed_extension_protocol_options?.[H2];
  for (const port of [8081, 8082, 8083]) {
    assert.equal(h2(`outbound|${port}||multi.default.svc.cluster.local`), {
      "@type": `type.googleapis.com/${H2}`, explicit_http_config: { http2_protocol_options: {} },
    }, `outbound ${port}`);
  }
  assert.ok(h2("outbound|8082||dns.example"), "a DNS cluster too");
  assert.ok(h2("inbound|8082|grpc|multi.default.svc.cluster.local"), "the inbound cluster: the local process speaks gRPC");
  assert.is(h2("outbound|8080||multi.default.svc.cluster.local"), undefined);
  assert.is(h2("inbound|8080|http|multi.default.svc.cluster.local"), undefined);
});

test("inbound HTTP listeners: an HTTP connection manager whose inline route sends every Host to the local process; no loop guard", () => {
  const r = gen("the seed, HTTP (inbound)", SEED);
  const inbound = named(r.listeners, "10.75.8.101_9080");
  assert.is(inbound.traffic_direction, "INBOUND");
  const hcm = hcmOf(inbound.filter_chains[0]);
  assert.equal(hcm.http_filters.map((f: any) => f.name), ["envoy.filters.http.router"]);
  assert.is(hcm.stat_prefix, "inbound_10.75.8.101_9080");
  assert.equal(hcm.route_config, {
    name: "inbound|9080|http|service-a.default.svc.cluster.local",
    virtual_hosts: [{ name: "inbound|http|9080", domains: ["*"], routes: [{ name: "default", match: { prefix: "/" }, route: { cluster: "inbound|9080|http|service-a.default.svc.cluster.local", timeout: { seconds: 0, nanos: 0 } } }] }],
    validate_clusters: { value: false },
  });
});

test("the HTTP guard's configuration travels by ECDS as loop_guard_http, with the node IPs, the mode and all_listeners (it is on outbound listeners only); without the guard the router is alone", () => {
  const r = gen("the seed, observe", SEED, SEED_PROXY, generationOptions({ loopGuard: { ...GUARD, mode: "observe" } }));
  assert.equal(guardConfigs(r), {
    loop_guard: { root: "loop_guard", type: "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm", config: { node_ips: ["192.168.10.63", "10.75.8.101"], mode: "observe" } },
    loop_guard_http: { root: "loop_guard_http", type: "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm", config: { node_ips: ["192.168.10.63", "10.75.8.101"], mode: "observe", all_listeners: true } },
  });
  const http = (r.extensionConfigs[1] as any).typed_config.config;
  assert.equal(http.vm_config, { vm_id: "loop_guard", runtime: "envoy.wasm.runtime.v8", code: { local: { filename: LOOP_GUARD_WASM } } }, "one VM for both filters");
  const bare = gen("the seed, no guard", SEED, SEED_PROXY, generationOptions());
  assert.equal(hcmOf(named(bare.listeners, "0.0.0.0_9080").filter_chains[0]).http_filters.map((f: any) => f.name), ["envoy.filters.http.router"]);
  assert.equal(bare.extensionConfigs, []);
});

test("TLS ports of MESH_EXTERNAL services are told apart by SNI (tls_inspector, server_names); internal ones by endpoint IP; VIPs by destination; CIDRs and SNI", () => {
  const reg = registryOf(
    se("api", "  hosts: [api.example.org]\n  ports: [{number: 443, name: https, protocol: HTTPS}]\n  resolution: STATIC\n  endpoints: [{address: 192.0.2.4}]")
    + se("pay", "  hosts: [pay.example.org]\n  ports: [{number: 443, name: tls, protocol: TLS}]\n  resolution: DNS\n  endpoints: [{address: 192.0.2.5}]")
    + se("inner", "  hosts: [inner.default.svc.cluster.local]\n  ports: [{number: 443, name: tls, protocol: TLS}]\n  resolution: STATIC\n  location: MESH_INTERNAL\n  endpoints: [{address: 10.0.3.3}]")
    + se("vip", "  hosts: [vip.example.org]\n  addresses: [240.0.0.40]\n  ports: [{number: 443, name: tls, protocol: TLS}]\n  resolution: STATIC\n  endpoints: [{address: 192.0.2.6}]")
    + se("net", "  hosts: [net.example.org]\n  addresses: [198.51.100.0/24]\n  ports: [{number: 443, name: tls, protocol: TLS}]\n  resolution: NONE"));
  const r = gen("TLS by SNI", reg, proxy("10.0.0.9"));
  const out = named(r.listeners, "0.0.0.0_443");
  assert.equal(out.listener_filters.map((f: any) => f.name), ["envoy.filters.listener.tls_inspector"]);
  assert.equal(out.filter_chains.map((c: any) => `${c.name} ${[...c.filter_chain_match.prefix_ranges.map((p: any) => `${p.address_prefix}/${p.prefix_len.value}`), ...(c.filter_chain_match.server_names ?? []).map((s: string) => `sni:${s}`)].join(" ")}`), [
    "outbound|443||api.example.org 0.0.0.0/0 ::/0 sni:api.example.org",
    "outbound|443||inner.default.svc.cluster.local 10.0.3.3/32",
    "outbound|443||net.example.org 198.51.100.0/24 sni:net.example.org",
    "outbound|443||pay.example.org 0.0.0.0/0 ::/0 sni:pay.example.org",
    "outbound|443||vip.example.org 240.0.0.40/32 192.0.2.6/32",
  ]);
});

test("the pipeline: route configs are in the shared layer, the same packed bytes for every proxy of a view; a proxy's own layer holds none", () => {
  const pipeline = new ConfigPipeline(OPTS, new Encoder());
  pipeline.setRegistry(TWO_ON_ONE_PORT);
  const a = pipeline.configFor(proxy("10.0.0.1", "team"));
  const b = pipeline.configFor(proxy("10.0.0.2", "other"));
  assert.is(a.snapshot.shared, b.snapshot.shared, "namespaces that define none of the HTTP hosts share routes");
  assert.equal([...a.snapshot.shared.get(TYPE_URL.route)!.resources.keys()], ["9080"]);
  assert.is(a.snapshot.own.get(TYPE_URL.route)!.resources.size, 0);
  assert.is(a.snapshot.get(TYPE_URL.route)!.version, b.snapshot.get(TYPE_URL.route)!.version);
  assert.equal([...a.snapshot.own.get(TYPE_URL.extensionConfig)!.resources.keys()], ["loop_guard", "loop_guard_http"]);
  // A proxy in "default" also accepts the bare name "reviews": another route config, another shared part.
  const c = pipeline.configFor(proxy("10.0.0.3", "default"));
  assert.is.not(c.snapshot.shared, a.snapshot.shared);
  assert.is.not(c.snapshot.get(TYPE_URL.route)!.version, a.snapshot.get(TYPE_URL.route)!.version);
  assert.is(c.snapshot.shared.get(TYPE_URL.listener)!.resources.get("0.0.0.0_9080"), a.snapshot.shared.get(TYPE_URL.listener)!.resources.get("0.0.0.0_9080"), "listeners are still packed once");
  assert.is(pipeline.configFor(proxy("10.0.0.4", "default")).snapshot.shared, c.snapshot.shared);
});

test("a real Envoy ACKs every configuration above (listeners, clusters, endpoints, route configs, both guard configs)", () => envoy.assertAllAccepted(9));

test.run();
