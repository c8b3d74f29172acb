// The ServiceEntry and WorkloadEntry examples of Istio's documentation (test/fixtures/istio/docs/):
// each loads without an error and generates what Istio generates for it (cluster types, endpoints,
// ports, SNI and destination matches), and a real Envoy ACKs it. Each example is its own registry, as
// the documentation presents them.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { generate, type Resources } from "../../control/generation/generate.ts";
import { generationOptions, type GenerationOptions } from "../../control/generation/options.ts";
import { proxyIdentity } from "../../control/identity/proxy.ts";
import { buildRegistry } from "../../control/registry/build.ts";
import { formatError, type Registry, type Resource } from "../../control/registry/model.ts";
import { parseRegistryText } from "../../control/registry/istio/parse.ts";
import { LOOP_GUARD_WASM, PROJECT_ROOT } from "../../envoy/paths.ts";
import { envoyJudgedFile } from "../support/envoy-accepts.ts";

const DOCS = join(PROJECT_ROOT, "test", "fixtures", "istio", "docs");
const OPTS = generationOptions({ loopGuard: { wasmPath: LOOP_GUARD_WASM, mode: "enforce" } });

function resourcesOf(file: string): Resource[] {
  const r = parseRegistryText(readFileSync(join(DOCS, file), "utf8"), file);
  assert.equal(r.errors.map(formatError), [], `${file} must load`);
  return r.resources;
}

/** One example: the named documents of a fixture file, as their own registry. */
function example(file: string, names?: string[]): Registry {
  const all = resourcesOf(file);
  const picked = names ? all.filter((r) => names.includes(r.name)) : all;
  if (names) assert.is(picked.length, names.length, `${file}: ${names.join(", ")}`);
  const built = buildRegistry(picked);
  if (!built.ok) throw new Error(built.errors.map(formatError).join("\n"));
  return built.registry;
}

const proxy = (ip = "10.0.0.9", namespace = "default", metadata: Record<string, unknown> = {}) =>
  proxyIdentity({ id: `sidecar~${ip}~app-1.${namespace}~${namespace}.svc.cluster.local`, metadata: { INSTANCE_IPS: ip, ...metadata } });
const named = (list: readonly object[], name: string) => list.find((x: any) => x.name === name || x.cluster_name === name) as any;
const hostsOf = (cluster: any) => cluster.load_assignment.endpoints.flatMap((g: any) => g.lb_endpoints.map((e: any) => `${e.endpoint.address.socket_address?.address ?? e.endpoint.address.pipe?.path}:${e.endpoint.address.socket_address?.port_value ?? ""}`));
const edsHosts = (r: Resources, name: string) => named(r.endpoints, name).endpoints.flatMap((g: any) => g.lb_endpoints.map((e: any) => {
  const a = e.endpoint.address;
  return a.pipe ? `unix:${a.pipe.path}` : `${a.socket_address.address}:${a.socket_address.port_value}`;
}));
const chains = (r: Resources, port: number) => named(r.listeners, `0.0.0.0_${port}`).filter_chains.map((c: any) => ({
  cluster: c.name,
  match: [...c.filter_chain_match.prefix_ranges.map((p: any) => `${p.address_prefix}/${p.prefix_len.value}`), ...(c.filter_chain_match.server_names ?? []).map((s: string) => `sni:${s}`)].join(" "),
}));
/** An HTTP port's virtual hosts (RDS route config `<port>`), each as "name -> cluster". */
const vhosts = (r: Resources, port: number) => named(r.routes, String(port)).virtual_hosts.map((v: any) => `${v.name} -> ${v.routes[0].route.cluster}`);

const envoy = envoyJudgedFile(test);
const gen = (what: string, registry: Registry, p = proxy(), options: GenerationOptions = OPTS) => envoy.record(what, generate(p, registry, options));

test("API reference, external HTTPS APIs (TLS, DNS, three hosts): a STRICT_DNS cluster per host, matched by SNI", () => {
  const r = gen("external-svc-https", example("reference-service-entry.yaml", ["external-svc-https"]));
  for (const host of ["api.dropboxapi.com", "www.googleapis.com", "api.facebook.com"]) {
    const c = named(r.clusters, `outbound|443||${host}`);
    assert.is(c.type, "STRICT_DNS");
    assert.equal(hostsOf(c), [`${host}:443`]);
  }
  assert.equal(named(r.listeners, "0.0.0.0_443").listener_filters.map((f: any) => f.name), ["envoy.filters.listener.tls_inspector"]);
  assert.equal(chains(r, 443), [
    { cluster: "outbound|443||api.dropboxapi.com", match: "0.0.0.0/0 ::/0 sni:api.dropboxapi.com" },
    { cluster: "outbound|443||api.facebook.com", match: "0.0.0.0/0 ::/0 sni:api.facebook.com" },
    { cluster: "outbound|443||www.googleapis.com", match: "0.0.0.0/0 ::/0 sni:www.googleapis.com" },
  ]);
});

test("API reference, MongoDB VMs (STATIC, VIP range): EDS to 2.2.2.2 and 3.3.3.3, matched by the VIP CIDR", () => {
  const r = gen("external-svc-mongocluster", example("reference-service-entry.yaml", ["external-svc-mongocluster"]));
  assert.is(named(r.clusters, "outbound|27018||mymongodb.somedomain").type, "EDS");
  assert.equal(edsHosts(r, "outbound|27018||mymongodb.somedomain"), ["2.2.2.2:27018", "3.3.3.3:27018"]);
  assert.equal(chains(r, 27018), [{ cluster: "outbound|27018||mymongodb.somedomain", match: "192.192.192.192/24 2.2.2.2/32 3.3.3.3/32" }]);
});

test("API reference, Wikipedia by SNI (NONE, wildcard): ORIGINAL_DST clusters, one SNI chain per host", () => {
  const r = gen("external-svc-redirect", example("reference-service-entry.yaml", ["external-svc-redirect"]));
  for (const host of ["wikipedia.org", "*.wikipedia.org"]) {
    assert.equal(named(r.clusters, `outbound|443||${host}`), { name: `outbound|443||${host}`, type: "ORIGINAL_DST", lb_policy: "CLUSTER_PROVIDED", connect_timeout: { seconds: 1, nanos: 0 } });
  }
  assert.equal(chains(r, 443).map((c: any) => c.match), ["0.0.0.0/0 ::/0 sni:*.wikipedia.org", "0.0.0.0/0 ::/0 sni:wikipedia.org"]);
  assert.equal(r.endpoints, [], "NONE has no endpoints to discover");
});

test("API reference, exportTo \".\": the egress namespace's proxies see example.com, others do not", () => {
  const reg = example("reference-service-entry.yaml", ["external-svc-httpbin"]);
  const egress = gen("external-svc-httpbin (egress)", reg, proxy("10.0.0.9", "egress"));
  assert.is(named(egress.clusters, "outbound|80||example.com").type, "STRICT_DNS");
  assert.equal(hostsOf(named(egress.clusters, "outbound|80||example.com")), ["example.com:80"]);
  const other = gen("external-svc-httpbin (default)", reg, proxy("10.0.0.9", "default"));
  assert.is(named(other.clusters, "outbound|80||example.com"), undefined);
  assert.is(named(other.listeners, "0.0.0.0_80"), undefined);
});

test("API reference, the same host in two namespaces: each proxy uses its own namespace's, else the first", () => {
  const reg = example("reference-service-entry.yaml", ["external-svc-httpbin", "httpbin"]);
  assert.is(named(gen("example.com (egress)", reg, proxy("10.0.0.9", "egress")).clusters, "outbound|80||example.com").type, "STRICT_DNS");
  assert.is(named(gen("example.com (httpbin-ns)", reg, proxy("10.0.0.9", "httpbin-ns")).clusters, "outbound|80||example.com").type, "EDS");
  // Not exported to default: only httpbin-ns's (exported everywhere) remains for it.
  assert.is(named(gen("example.com (default)", reg, proxy("10.0.0.9", "default")).clusters, "outbound|80||example.com").type, "EDS");
});

test("API reference, a wildcard host with NONE on HTTP: the whole port, *.bar.com by Host to an ORIGINAL_DST cluster", () => {
  const r = gen("external-svc-wildcard-example", example("reference-service-entry.yaml", ["external-svc-wildcard-example"]));
  assert.is(named(r.clusters, "outbound|80||*.bar.com").type, "ORIGINAL_DST");
  assert.equal(chains(r, 80), [{ cluster: "http 80", match: "0.0.0.0/0 ::/0" }]);
  assert.equal(vhosts(r, 80), ["*.bar.com:80 -> outbound|80||*.bar.com", "allow_any -> PassthroughCluster"]);
  assert.equal(named(r.routes, "80").virtual_hosts[0].domains, ["*.bar.com", "*.bar.com:80"]);
});

test("API reference, a unix domain socket endpoint: EDS with a pipe address", () => {
  const r = gen("unix-domain-socket-example", example("reference-service-entry.yaml", ["unix-domain-socket-example"]));
  assert.is(named(r.clusters, "outbound|80||example.unix.local").type, "EDS");
  assert.equal(edsHosts(r, "outbound|80||example.unix.local"), ["unix:/var/run/example/socket"]);
});

test("API reference, DNS endpoints with ports of their own: STRICT_DNS to us:8080, uk:9080, in:7080", () => {
  const r = gen("external-svc-dns", example("reference-service-entry.yaml", ["external-svc-dns"]));
  assert.equal(hostsOf(named(r.clusters, "outbound|80||foo.bar.com")), ["us.foo.bar.com:8080", "uk.foo.bar.com:9080", "in.foo.bar.com:7080"]);
});

test("API reference, subjectAltNames: served (STATIC), the SAN itself warned about", () => {
  const parsed = parseRegistryText(readFileSync(join(DOCS, "reference-service-entry.yaml"), "utf8"), "f.yaml");
  assert.ok(parsed.warnings.some((w) => /subjectAltNames is ignored/.test(w.reason)));
  const r = gen("httpbin", example("reference-service-entry.yaml", ["httpbin"]), proxy("10.0.0.9", "httpbin-ns"));
  assert.equal(edsHosts(r, "outbound|80||example.com"), ["2.2.2.2:80", "3.3.3.3:80"]);
});

test("API reference, details.bookinfo.com on two VMs (workloadSelector): EDS to both WorkloadEntries; each VM's proxy gets its inbound", () => {
  const reg = example("reference-service-entry.yaml", ["details-vm-1", "details-vm-2", "details-svc"]);
  const r = gen("details-svc", reg);
  assert.equal(edsHosts(r, "outbound|80||details.bookinfo.com"), ["2.2.2.2:80", "3.3.3.3:80"]);
  const vm = gen("details-svc (vm1)", reg, proxy("2.2.2.2"));
  assert.ok(named(vm.listeners, "2.2.2.2_80"));
});

test("WorkloadEntry reference, target port 8080: clients send to 2.2.2.2:8080; the VM's sidecar takes 8080 to the application on localhost:8080", () => {
  const reg = example("reference-workload-entry-static.yaml");
  const r = gen("details-svc targetPort", reg);
  assert.equal(edsHosts(r, "outbound|80||details.bookinfo.com"), ["2.2.2.2:8080"]);
  const vm = gen("details-svc targetPort (vm)", reg, proxy("2.2.2.2"));
  const inbound = named(vm.listeners, "2.2.2.2_8080");
  // An HTTP port: a connection manager whose one route sends every Host to the local application.
  assert.is(inbound.filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.cluster, "inbound|80|http|details.bookinfo.com");
  const local = named(vm.clusters, "inbound|80|http|details.bookinfo.com");
  assert.equal(local.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: "127.0.0.1", port_value: 8080 });
  assert.ok(named(vm.listeners, "2.2.2.2_80"), "the service port on the registered address too");
});

test("WorkloadEntry reference, the VM by DNS name (resolution DNS): STRICT_DNS to vm1.vpc01.corp.net:8080", () => {
  const r = gen("details-svc dns", example("reference-workload-entry-dns.yaml"));
  const c = named(r.clusters, "outbound|80||details.bookinfo.com");
  assert.is(c.type, "STRICT_DNS");
  assert.equal(hostsOf(c), ["vm1.vpc01.corp.net:8080"]);
});

test("WorkloadEntry reference, a remote network's workloads without an address: through that network's gateway, or not at all", () => {
  const reg = example("reference-workload-entry-network.yaml");
  const networks = generationOptions({ ...OPTS, meshNetworks: [
    { name: "cluster-1-network", fromCidrs: [], gateways: [{ address: "192.0.2.1", port: 15443 }] },
    { name: "cluster-2-network", fromCidrs: [], gateways: [{ address: "192.0.2.2", port: 15443 }] },
  ] });
  const local = gen("foo (network 1)", reg, proxy("10.0.0.9", "default", { NETWORK: "cluster-1-network" }), networks);
  assert.equal(edsHosts(local, "outbound|8080||foo.default.svc.cluster.local"), ["192.0.2.2:15443"]);
  const remote = gen("foo (network 2)", reg, proxy("10.0.0.9", "default", { NETWORK: "cluster-2-network" }), networks);
  assert.equal(named(remote.endpoints, "outbound|8080||foo.default.svc.cluster.local").endpoints, [], "no address to reach it at inside its own network");
});

test("tasks, accessing external services: httpbin.org (HTTP) and www.google.com (HTTPS by SNI), resolved by DNS", () => {
  const r = gen("httpbin-ext + google", example("tasks-egress.yaml", ["httpbin-ext", "google"]));
  assert.equal(hostsOf(named(r.clusters, "outbound|80||httpbin.org")), ["httpbin.org:80"]);
  assert.equal(chains(r, 80), [{ cluster: "http 80", match: "0.0.0.0/0 ::/0" }]);
  assert.equal(vhosts(r, 80), ["httpbin.org:80 -> outbound|80||httpbin.org", "allow_any -> PassthroughCluster"]);
  assert.equal(hostsOf(named(r.clusters, "outbound|443||www.google.com")), ["www.google.com:443"]);
  assert.equal(chains(r, 443), [{ cluster: "outbound|443||www.google.com", match: "0.0.0.0/0 ::/0 sni:www.google.com" }]);
});

test("tasks, egress TLS origination: port 80 goes on to edition.cnn.com:443 (targetPort)", () => {
  const r = gen("edition-cnn-com", example("tasks-egress.yaml", ["edition-cnn-com"]));
  assert.equal(hostsOf(named(r.clusters, "outbound|80||edition.cnn.com")), ["edition.cnn.com:443"]);
  assert.equal(hostsOf(named(r.clusters, "outbound|443||edition.cnn.com")), ["edition.cnn.com:443"]);
});

test("tasks, wildcard egress (*.wikipedia.org, no resolution: NONE): ORIGINAL_DST by SNI", () => {
  const r = gen("wikipedia", example("tasks-egress.yaml", ["wikipedia"]));
  assert.is(named(r.clusters, "outbound|443||*.wikipedia.org").type, "ORIGINAL_DST");
  assert.equal(chains(r, 443), [{ cluster: "outbound|443||*.wikipedia.org", match: "0.0.0.0/0 ::/0 sni:*.wikipedia.org" }]);
});

test("tasks, TCP egress to MongoDB and a VM database: EDS to their IPs, matched by address", () => {
  const r = gen("mongo", example("tasks-egress.yaml", ["mongo"]));
  assert.equal(edsHosts(r, "outbound|27017||my-mongo.tcp.svc"), ["203.0.113.7:27017"]);
  assert.equal(chains(r, 27017), [{ cluster: "outbound|27017||my-mongo.tcp.svc", match: "203.0.113.7/32" }]);
  const vm = gen("mysqldb", example("tasks-egress.yaml", ["mysqldb-vm", "mysqldb"]));
  assert.equal(edsHosts(vm, "outbound|3306||mysqldb.vm.svc.cluster.local"), ["10.0.0.5:3306"]);
});

test("a real Envoy ACKs every configuration above", () => envoy.assertAllAccepted(15));

test.run();
