// Generation for each of Istio's resolution modes and ServiceEntry/WorkloadEntry fields: what
// multiplane builds is what Istio builds (cluster types, endpoints, ports, matches), and a real Envoy
// ACKs every configuration.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { decide } from "../../control/generation/decisions.ts";
import { generate, sharedConfig, type Resources } from "../../control/generation/generate.ts";
import { generationOptions, type GenerationOptions, type MeshNetwork } from "../../control/generation/options.ts";
import { proxyView } from "../../control/generation/proxy-view.ts";
import { Interner } from "../../control/generation/intern.ts";
import { proxyIdentity, type ProxyIdentity } from "../../control/identity/proxy.ts";
import { formatError, type Registry } from "../../control/registry/model.ts";
import { parseRegistryText } from "../../control/registry/istio/parse.ts";
import { ConfigPipeline } from "../../control/pipeline/config-pipeline.ts";
import { LOOP_GUARD_WASM } from "../../envoy/paths.ts";
import { envoyJudgedFile } from "../support/envoy-accepts.ts";
import { registryOf } from "../support/registry.ts";

const OPTS = generationOptions({ loopGuard: { wasmPath: LOOP_GUARD_WASM, mode: "enforce" } });
const se = (name: string, spec: string, ns = "default") => `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n${spec}\n---\n`;
const proxy = (ip: string, ns = "default", metadata: Record<string, unknown> = {}): ProxyIdentity =>
  proxyIdentity({ id: `sidecar~${ip}~app-1.${ns}~${ns}.svc.cluster.local`, metadata: { INSTANCE_IPS: ip, ...metadata } });
const named = (list: readonly object[], name: string) => list.find((x: any) => x.name === name || x.cluster_name === name) as any;
const names = (list: readonly object[]) => list.map((x: any) => x.name ?? x.cluster_name).sort();
const addr = (e: any) => (e.endpoint.address.pipe ? `unix:${e.endpoint.address.pipe.path}` : `${e.endpoint.address.socket_address.address}:${e.endpoint.address.socket_address.port_value}`);
const lb = (groups: any[]) => groups.flatMap((g: any) => g.lb_endpoints.map((e: any) => `${addr(e)}${e.load_balancing_weight ? ` w${e.load_balancing_weight.value}` : ""}`));
const matches = (r: Resources, port: number) => (named(r.listeners, `0.0.0.0_${port}`)?.filter_chains ?? []).map((c: any) =>
  `${c.name} ${[...c.filter_chain_match.prefix_ranges.map((p: any) => `${p.address_prefix}/${p.prefix_len.value}`), ...(c.filter_chain_match.server_names ?? []).map((s: string) => `sni:${s}`)].join(" ")}`);
/** An HTTP port's virtual hosts (RDS route config `<port>`), each as "name -> cluster". */
const vhosts = (r: Resources, port: number) => (named(r.routes, String(port))?.virtual_hosts ?? []).map((v: any) => `${v.name} -> ${v.routes[0].route.cluster}`);

const envoy = envoyJudgedFile(test);
const gen = (what: string, registry: Registry, p: ProxyIdentity = proxy("10.0.0.9"), options: GenerationOptions = OPTS) => envoy.record(what, generate(p, registry, options));

test("no resolution means NONE (Istio's zero value): ORIGINAL_DST, the whole port when there are no addresses", () => {
  const r = gen("default NONE", registryOf(se("ext", "  hosts: [ext.example]\n  ports: [{number: 5432, name: pg, protocol: TCP}]")));
  assert.equal(named(r.clusters, "outbound|5432||ext.example"), { name: "outbound|5432||ext.example", type: "ORIGINAL_DST", lb_policy: "CLUSTER_PROVIDED", connect_timeout: { seconds: 1, nanos: 0 } });
  assert.equal(matches(r, 5432), ["outbound|5432||ext.example 0.0.0.0/0 ::/0"]);
  assert.equal(named(r.listeners, "0.0.0.0_5432").additional_addresses, [{ address: { socket_address: { address: "::", port_value: 5432 } } }]);
  assert.equal(r.endpoints, []);
});

test("NONE with addresses: matched by those VIPs and CIDRs only; targetPort overrides the original destination's port", () => {
  const r = gen("NONE addresses", registryOf(se("db", "  hosts: [db.example]\n  addresses: [10.20.0.0/16, 240.1.1.1]\n  ports: [{number: 3306, name: mysql, protocol: MySQL, targetPort: 13306}]\n  resolution: NONE")));
  assert.equal(matches(r, 3306), ["outbound|3306||db.example 10.20.0.0/16 240.1.1.1/32"]);
  assert.equal(named(r.clusters, "outbound|3306||db.example").original_dst_lb_config, { upstream_port_override: { value: 13306 } });
});

test("DNS: STRICT_DNS with the endpoints' names at their ports (else targetPort, else the port), Istio's DNS settings", () => {
  const r = gen("DNS", registryOf(se("api", "  hosts: [api.example]\n  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8080}, {number: 81, name: alt, protocol: HTTP}]\n  resolution: DNS\n  endpoints:\n  - {address: a.api.example, ports: {http: 9000}}\n  - {address: b.api.example}")));
  const c = named(r.clusters, "outbound|80||api.example");
  assert.equal([c.type, c.dns_lookup_family, c.respect_dns_ttl, c.dns_refresh_rate], ["STRICT_DNS", "V4_PREFERRED", true, { seconds: 60, nanos: 0 }]);
  assert.equal(lb(c.load_assignment.endpoints), ["a.api.example:9000", "b.api.example:8080"]);
  assert.equal(lb(named(r.clusters, "outbound|81||api.example").load_assignment.endpoints), ["a.api.example:81", "b.api.example:81"]);
  assert.equal(matches(r, 80), ["http 80 0.0.0.0/0 ::/0"], "HTTP: the port's HTTP chain takes every destination");
  assert.equal(vhosts(r, 80), ["api.example:80 -> outbound|80||api.example", "allow_any -> PassthroughCluster"], "told apart by Host");
});

test("DNS without endpoints resolves the host itself; with IP endpoints, those IPs select it", () => {
  const r = gen("DNS self", registryOf(se("self", "  hosts: [self.example]\n  ports: [{number: 443, name: tls, protocol: TLS, targetPort: 8443}]\n  resolution: DNS")
    + se("ips", "  hosts: [ips.example]\n  ports: [{number: 7000, name: tcp, protocol: TCP}]\n  resolution: DNS\n  endpoints: [{address: 10.1.1.1}, {address: name.ips.example}]")));
  assert.equal(lb(named(r.clusters, "outbound|443||self.example").load_assignment.endpoints), ["self.example:8443"]);
  assert.equal(matches(r, 443), ["outbound|443||self.example 0.0.0.0/0 ::/0 sni:self.example"], "TLS: by SNI");
  assert.equal(named(r.listeners, "0.0.0.0_443").listener_filters.map((f: any) => f.name), ["envoy.filters.listener.tls_inspector"]);
  assert.equal(matches(r, 7000), ["outbound|7000||ips.example 10.1.1.1/32"]);
});

test("DNS_ROUND_ROBIN: LOGICAL_DNS with its one endpoint (or the host)", () => {
  const r = gen("DNS_ROUND_ROBIN", registryOf(se("rr", "  hosts: [rr.example]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: DNS_ROUND_ROBIN\n  endpoints: [{address: lb.rr.example, ports: {http: 8000}}]")
    + se("rr2", "  hosts: [rr2.example]\n  ports: [{number: 81, name: http, protocol: HTTP}]\n  resolution: DNS_ROUND_ROBIN")));
  const c = named(r.clusters, "outbound|80||rr.example");
  assert.equal([c.type, lb(c.load_assignment.endpoints)], ["LOGICAL_DNS", ["lb.rr.example:8000"]]);
  assert.equal(lb(named(r.clusters, "outbound|81||rr2.example").load_assignment.endpoints), ["rr2.example:81"]);
});

test("DYNAMIC_DNS on TLS: Envoy's dynamic forward proxy, the host resolved from SNI; on HTTP refused by name", () => {
  const r = gen("DYNAMIC_DNS", registryOf(se("dyn", "  hosts: [\"*.dyn.example\"]\n  ports: [{number: 443, name: tls, protocol: TLS}]\n  resolution: DYNAMIC_DNS")));
  const c = named(r.clusters, "outbound|443||*.dyn.example");
  assert.equal(c.cluster_type.name, "envoy.clusters.dynamic_forward_proxy");
  assert.equal(c.lb_policy, "CLUSTER_PROVIDED");
  const chain = named(r.listeners, "0.0.0.0_443").filter_chains[0];
  assert.equal(chain.filter_chain_match.server_names, ["*.dyn.example"]);
  assert.equal(chain.filters.map((f: any) => f.name), ["loop_guard", "envoy.filters.network.sni_dynamic_forward_proxy", "envoy.filters.network.tcp_proxy"]);
  assert.is(chain.filters[1].typed_config.port_value, 443);
  const http = parseRegistryText(se("dynh", "  hosts: [\"*.dyn.example\"]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: DYNAMIC_DNS"), "f.yaml");
  assert.match(http.errors.map(formatError).join("\n"), /resolution DYNAMIC_DNS on a HTTP port needs Envoy's dynamic forward proxy HTTP filter, which multiplane does not configure/);
});

test("UDP ports: no listener and no cluster (a warning says so); protocol unset or any TCP protocol is proxied at L4", () => {
  const text = se("mixed", "  hosts: [mixed.example]\n  addresses: [240.2.2.2]\n  ports: [{number: 53, name: dns, protocol: UDP}, {number: 54, name: any}, {number: 6379, name: redis, protocol: REDIS}, {number: 8080, name: proxy, protocol: HTTP_PROXY}]\n  resolution: STATIC\n  endpoints: [{address: 10.3.3.3}]");
  const parsed = parseRegistryText(text, "f.yaml");
  assert.ok(parsed.warnings.some((w) => /port 53 is UDP: no listener or cluster is built for it/.test(w.reason)));
  assert.equal((parsed.resources[0] as any).ports.map((p: any) => p.protocol), ["UDP", "", "Redis", "HTTP_PROXY"]);
  const r = gen("UDP and L4", registryOf(text));
  assert.equal(names(r.listeners), ["0.0.0.0_54", "0.0.0.0_6379", "0.0.0.0_8080", "virtual"]);
  assert.is(named(r.clusters, "outbound|53||mixed.example"), undefined);
});

test("endpoint weight and locality: EDS load-balancing weights, endpoints grouped by locality", () => {
  const r = gen("weight+locality", registryOf(se("w", "  hosts: [w.example]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints:\n  - {address: 10.4.0.1, weight: 3, locality: us-east/zone-a/rack-1}\n  - {address: 10.4.0.2, locality: us-east/zone-b}\n  - {address: 10.4.0.3, weight: 2}")));
  assert.equal(named(r.endpoints, "outbound|80||w.example").endpoints, [
    { locality: { region: "us-east", zone: "zone-a", sub_zone: "rack-1" }, lb_endpoints: [{ endpoint: { address: { socket_address: { address: "10.4.0.1", port_value: 80 } } }, load_balancing_weight: { value: 3 } }] },
    { locality: { region: "us-east", zone: "zone-b" }, lb_endpoints: [{ endpoint: { address: { socket_address: { address: "10.4.0.2", port_value: 80 } } } }] },
    { lb_endpoints: [{ endpoint: { address: { socket_address: { address: "10.4.0.3", port_value: 80 } } }, load_balancing_weight: { value: 2 } }] },
  ]);
});

test("WorkloadEntry: metadata.labels merged with spec.labels (metadata wins) for selection; hostname WorkloadEntries only for DNS", () => {
  const text = se("sel", "  hosts: [sel.example]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  workloadSelector: {labels: {app: sel, tier: web}}")
    + "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: a, labels: {tier: web}}\nspec: {address: 10.5.0.1, labels: {app: sel, tier: db}}\n---\n"
    + "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: b}\nspec: {address: 10.5.0.2, labels: {app: sel, tier: db}}\n---\n"
    + "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: c, labels: {app: sel, tier: web}}\nspec: {address: c.sel.example}\n---\n";
  const parsed = parseRegistryText(text, "f.yaml");
  assert.ok(parsed.warnings.some((w) => /spec\.labels\.tier is overridden by metadata\.labels\.tier/.test(w.reason)));
  const reg = registryOf(text);
  assert.ok(reg.warnings.some((w) => /WorkloadEntry default\/c \(address c\.sel\.example\) is not used by ServiceEntry default\/sel: a DNS name needs resolution DNS/.test(w.reason)));
  const r = gen("WE labels", reg);
  assert.equal(lb(named(r.endpoints, "outbound|80||sel.example").endpoints), ["10.5.0.1:80"]);
});

test("unix socket endpoints: EDS pipes; an address-less endpoint with a network: through that network's gateway", () => {
  const nets: MeshNetwork[] = [{ name: "far", fromCidrs: [], gateways: [{ address: "192.0.2.50", port: 15443 }] }];
  const reg = registryOf(se("uds", "  hosts: [uds.example]\n  addresses: [240.3.3.3]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints: [{address: \"unix://@abstract-sock\"}]")
    + se("far", "  hosts: [far.example]\n  addresses: [240.4.4.4]\n  ports: [{number: 81, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints: [{network: far, weight: 4}]"));
  const r = gen("uds + network-only", reg, proxy("10.0.0.9", "default", { NETWORK: "near" }), generationOptions({ ...OPTS, meshNetworks: nets }));
  assert.equal(lb(named(r.endpoints, "outbound|80||uds.example").endpoints), ["unix:@abstract-sock"]);
  assert.equal(lb(named(r.endpoints, "outbound|81||far.example").endpoints), ["192.0.2.50:15443 w4"]);
});

test("split horizon: own network direct, other networks through their gateways weighted by endpoint count; no gateway: direct", () => {
  const nets: MeshNetwork[] = [
    { name: "n1", fromCidrs: ["10.1.0.0/16"], gateways: [{ address: "192.0.2.1", port: 15443 }] },
    { name: "n2", fromCidrs: [], gateways: [{ address: "192.0.2.2", port: 15443 }, { address: "192.0.2.3", port: 15443 }] },
    { name: "n3", fromCidrs: [], gateways: [] },
  ];
  const options = generationOptions({ ...OPTS, meshNetworks: nets });
  const reg = registryOf(se("s", "  hosts: [s.example]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints:\n  - {address: 10.1.0.5}\n  - {address: 10.2.0.5, network: n2}\n  - {address: 10.2.0.6, network: n2}\n  - {address: 10.3.0.5, network: n3}\n  - {address: 10.9.0.5}"));
  const eds = (p: ProxyIdentity) => lb(named(gen(`split ${p.metadata.NETWORK ?? "none"}`, reg, p, options).endpoints, "outbound|80||s.example").endpoints);
  // Weights are scaled by the lcm of gateway counts (2), so two n2 endpoints split evenly over two gateways.
  assert.equal(eds(proxy("10.0.0.9", "default", { NETWORK: "n1" })), ["10.1.0.5:80 w2", "10.3.0.5:80 w2", "10.9.0.5:80 w2", "192.0.2.2:15443 w2", "192.0.2.3:15443 w2"]);
  assert.equal(eds(proxy("10.0.0.9", "default", { NETWORK: "n2" })), ["10.2.0.5:80 w2", "10.2.0.6:80 w2", "10.3.0.5:80 w2", "10.9.0.5:80 w2", "192.0.2.1:15443 w2"]);
  // A proxy that names no network reaches networks with gateways through them (Istio).
  assert.equal(eds(proxyIdentity({ id: "sidecar~10.0.0.9~app-1.default~default.svc.cluster.local", metadata: {} })), ["10.3.0.5:80 w2", "10.9.0.5:80 w2", "192.0.2.1:15443 w2", "192.0.2.2:15443 w2", "192.0.2.3:15443 w2"]);
  const d = decide(proxy("10.0.0.9", "default", { NETWORK: "n1" }), sharedConfig(reg, options, new Interner(), { network: "n1" }), options).find((x) => x.address === "10.2.0.5")!;
  assert.match(d.note!, /on network n2, not the proxy's \(n1\): reached through 192\.0\.2\.2:15443, 192\.0\.2\.3:15443/);
});

test("the multi-interface node on a network: its IPs make instances inbound only for endpoints of its own network (or none)", () => {
  const nets: MeshNetwork[] = [{ name: "n2", fromCidrs: [], gateways: [{ address: "192.0.2.2", port: 15443 }] }];
  const options = generationOptions({ ...OPTS, meshNetworks: nets });
  const reg = registryOf(se("here", "  hosts: [here.example]\n  ports: [{number: 9080, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints: [{address: 10.75.8.101, network: n1}]")
    + se("there", "  hosts: [there.example]\n  ports: [{number: 9081, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints: [{address: 10.75.8.101, network: n2}]"));
  const p = proxyIdentity({ id: "sidecar~192.168.10.63~a-1.default~default.svc.cluster.local", metadata: { INSTANCE_IPS: "192.168.10.63,10.75.8.101", NETWORK: "n1" } });
  const r = gen("multi-interface + network", reg, p, options);
  assert.ok(named(r.listeners, "10.75.8.101_9080"), "own network: inbound");
  assert.not.ok(named(r.listeners, "10.75.8.101_9081"), "same IP on another network: another machine");
  assert.equal(lb(named(r.endpoints, "outbound|9081||there.example").endpoints), ["192.0.2.2:15443"]);
  const d = decide(p, sharedConfig(reg, options, new Interner(), proxyView(p)), options).find((x) => x.host === "there.example")!;
  assert.equal([d.direction, d.reason], ["outbound", "10.75.8.101 is a node IP, but the endpoint is on network n2 and the proxy on n1: another machine"]);
});

test("exportTo: by namespace (node id or NAMESPACE metadata); ~ hides it; a proxy of unknown namespace sees only public services", () => {
  const reg = registryOf(se("pub", "  hosts: [pub.example]\n  ports: [{number: 80, name: http}]")
    + se("mine", "  hosts: [mine.example]\n  ports: [{number: 81, name: http}]\n  exportTo: [\".\", team-b]", "team-a")
    + se("hidden", "  hosts: [hidden.example]\n  ports: [{number: 82, name: http}]\n  exportTo: [\"~\"]", "team-a"));
  const clusters = (p: ProxyIdentity) => names(gen(`exportTo ${p.id}`, reg, p).clusters).filter((n) => n.startsWith("outbound"));
  assert.equal(clusters(proxy("10.0.0.9", "team-a")), ["outbound|80||pub.example", "outbound|81||mine.example"]);
  assert.equal(clusters(proxy("10.0.0.9", "team-b")), ["outbound|80||pub.example", "outbound|81||mine.example"]);
  assert.equal(clusters(proxy("10.0.0.9", "team-c")), ["outbound|80||pub.example"]);
  assert.equal(clusters(proxy("10.0.0.9", "team-c", { NAMESPACE: "team-a" })), ["outbound|80||pub.example", "outbound|81||mine.example"], "NAMESPACE metadata wins, as in Istio");
  assert.equal(clusters(proxyIdentity({ id: "opaque-node", metadata: {} })), ["outbound|80||pub.example"]);
});

test("pipeline: proxies of one network and visibility share the outbound objects; another network gets its own endpoints", () => {
  const nets: MeshNetwork[] = [{ name: "n1", fromCidrs: [], gateways: [{ address: "192.0.2.1", port: 1 }] }, { name: "n2", fromCidrs: [], gateways: [{ address: "192.0.2.2", port: 2 }] }];
  const pipeline = new ConfigPipeline(generationOptions({ ...OPTS, meshNetworks: nets }));
  pipeline.setRegistry(registryOf(se("s", "  hosts: [s.example]\n  addresses: [240.9.9.9]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints: [{address: 10.1.0.1, network: n1}, {address: 10.2.0.1, network: n2}]")));
  const a = pipeline.configFor(proxy("10.0.0.1", "x", { NETWORK: "n1" }));
  const b = pipeline.configFor(proxy("10.0.0.2", "y", { NETWORK: "n1" }));
  const c = pipeline.configFor(proxy("10.0.0.3", "x", { NETWORK: "n2" }));
  assert.is(a.resources().endpoints[0], b.resources().endpoints[0], "one network: the same endpoint object");
  assert.is(named(a.resources().listeners, "0.0.0.0_80"), named(c.resources().listeners, "0.0.0.0_80"), "listeners do not depend on the network");
  assert.equal(lb(c.resources().endpoints[0]!.endpoints as any[]), ["10.2.0.1:80", "192.0.2.1:1"]);
  assert.equal(lb(a.resources().endpoints[0]!.endpoints as any[]), ["10.1.0.1:80", "192.0.2.2:2"]);
  assert.is(pipeline.sharedConfigs(), 2);
});

test("pipeline: arbitrary NETWORK values cannot multiply shared configs; retention follows node IPs, network and namespace across versions", () => {
  const nets: MeshNetwork[] = [{ name: "n1", fromCidrs: [], gateways: [{ address: "192.0.2.1", port: 1 }] }];
  const pipeline = new ConfigPipeline(generationOptions({ ...OPTS, meshNetworks: nets }));
  const reg = registryOf(se("s", "  hosts: [s.example]\n  addresses: [240.9.9.9]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints: [{address: 10.1.0.1, network: n1}]"));
  pipeline.setRegistry(reg);
  for (let i = 0; i < 50; i++) pipeline.configFor(proxy("10.0.0.1", "x", { NETWORK: `made-up-${i}` }));
  pipeline.configFor(proxy("10.0.0.1", "x", { NETWORK: "n1" }));
  pipeline.configFor(proxy("10.0.0.1", "x"));
  assert.is(pipeline.sharedConfigs(), 3, "n1, no network, and every other network alike");
  const p = proxy("10.0.0.1", "team", { NETWORK: "n1" });
  pipeline.retain(p);
  pipeline.configFor(p);
  assert.is(pipeline.cachedConfigs(), 1);
  pipeline.setRegistry(registryOf(se("s", "  hosts: [s.example]\n  addresses: [240.9.9.9]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  exportTo: [team]\n  endpoints: [{address: 10.1.0.1, network: n1}]")));
  pipeline.configFor(p);
  assert.is(pipeline.cachedConfigs(), 1, "kept across a version that changes what the namespace sees");
  pipeline.release(p);
  assert.is(pipeline.cachedConfigs(), 0, "released under the same key it was retained by");
});

test("decisions: services without endpoints say where connections go", () => {
  const reg = registryOf(se("none", "  hosts: [none.example]\n  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8080}]")
    + se("dns", "  hosts: [dns.example]\n  ports: [{number: 81, name: http, protocol: HTTP}]\n  resolution: DNS"));
  const p = proxy("10.0.0.9");
  const d = decide(p, sharedConfig(reg, OPTS, new Interner(), proxyView(p)), OPTS);
  assert.equal(d.map((x) => [x.host, x.address, x.endpointPort, x.reason]), [
    ["dns.example", "dns.example", 81, "resolution DNS: Envoy resolves dns.example itself (STRICT_DNS, every address)"],
    ["none.example", "(original destination)", 8080, "resolution NONE: connections go on to the address the client dialled, at port 8080"],
  ]);
});

test("the examples (examples/istio with examples/mesh-networks.yaml): every mode in one registry, per network", async () => {
  const { loadRegistry } = await import("../../control/registry/sources/files/load.ts");
  const { buildRegistry } = await import("../../control/registry/build.ts");
  const { parseMeshNetworks } = await import("../../control/registry/istio/mesh-networks.ts");
  const { readFileSync } = await import("node:fs");
  const { join } = await import("node:path");
  const { PROJECT_ROOT } = await import("../../envoy/paths.ts");
  const loaded = await loadRegistry(join(PROJECT_ROOT, "examples", "istio"));
  assert.equal(loaded.errors.map(formatError), []);
  const built = buildRegistry(loaded.resources);
  assert.ok(built.ok);
  const mesh = parseMeshNetworks(readFileSync(join(PROJECT_ROOT, "examples", "mesh-networks.yaml"), "utf8"), "mesh-networks.yaml");
  assert.equal(mesh.errors, []);
  const options = generationOptions({ ...OPTS, meshNetworks: mesh.networks });
  const reg = built.ok ? built.registry : (undefined as never);
  const local = gen("examples (data-plane)", reg, proxy("10.75.8.101", "default", { NETWORK: "data-plane" }), options);
  assert.equal(lb(named(local.endpoints, "outbound|9090||orders.default.svc.cluster.local").endpoints), ["10.75.8.120:9090 w2", "198.51.100.7:15443 w3", "198.51.100.8:15443 w3"]);
  const remote = gen("examples (remote)", reg, proxy("10.9.0.1", "default", { NETWORK: "remote" }), options);
  assert.equal(lb(named(remote.endpoints, "outbound|9090||orders.default.svc.cluster.local").endpoints), ["192.0.2.10:15443 w2"]);
  const finance = gen("examples (finance)", reg, proxy("10.9.0.2", "finance"), options);
  assert.ok(named(finance.clusters, "outbound|8080||reports.finance.example"));
  assert.not.ok(named(local.clusters, "outbound|8080||reports.finance.example"));
  assert.equal(names(local.clusters).filter((n) => n.startsWith("outbound")).map((n) => `${n} ${named(local.clusters, n).type ?? named(local.clusters, n).cluster_type.name}`), [
    "outbound|15432||billing-db.example LOGICAL_DNS", "outbound|443||api.maps.example STRICT_DNS", "outbound|443||api.payments.example STRICT_DNS",
    "outbound|80||inventory.shop.svc.cluster.local EDS", "outbound|8443||*.wiki.example ORIGINAL_DST", "outbound|9090||orders.default.svc.cluster.local EDS",
    "outbound|9443||*.cdn.example envoy.clusters.dynamic_forward_proxy",
  ]);
});

test("multiplane.dev/local-ports (multiplane's own annotation): the process behind the sidecar elsewhere on 127.0.0.1; what clients send to unchanged", () => {
  const text = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: lp, annotations: {multiplane.dev/local-ports: \"http=19000\"}}\nspec:\n  hosts: [lp.example]\n  ports: [{number: 9000, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints: [{address: 10.75.8.101}]\n";
  const r = gen("local-ports", registryOf(text), proxyIdentity({ id: "sidecar~192.168.10.63~a-1.default~default.svc.cluster.local", metadata: { INSTANCE_IPS: "10.75.8.101" } }));
  assert.equal(named(r.clusters, "inbound|9000|http|lp.example").load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: "127.0.0.1", port_value: 19000 });
  assert.ok(named(r.listeners, "10.75.8.101_9000"));
  assert.equal(lb(named(r.endpoints, "outbound|9000||lp.example").endpoints), ["10.75.8.101:9000"]);
  const bad = parseRegistryText(text.replace("http=19000", "grpc=19000,http=x"), "f.yaml");
  assert.equal(bad.errors.map(formatError), [
    "f.yaml:3:36: metadata.annotations.multiplane.dev/local-ports: port grpc is not a port of spec.ports",
    "f.yaml:3:36: metadata.annotations.multiplane.dev/local-ports: \"http=x\" is not <port name>=<port 1..65535>",
  ]);
  const we = parseRegistryText("apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: w, annotations: {multiplane.dev/local-ports: \"http=1\"}}\nspec: {address: 10.0.0.1}\n", "w.yaml");
  assert.match(we.warnings.map(formatError).join("\n"), /annotation multiplane\.dev\/local-ports belongs on the ServiceEntry; ignored here/);
});

test("a real Envoy ACKs every configuration above", () => envoy.assertAllAccepted(15));

test.run();
