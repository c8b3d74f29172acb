// Istio Sidecars scope what a proxy is sent: which Sidecar applies (Istio's precedence), which services
// its egress hosts import (namespaces, ".", wildcards, "~" exclusions, ports), what a REGISTRY_ONLY
// policy does to destinations no service claims, and that inbound listeners and the loop guard are
// unaffected. Checked on generate()'s output and on the config pipeline's sharing.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { generate, type Resources } from "../../control/generation/generate.ts";
import { generationOptions } from "../../control/generation/options.ts";
import { scopeOf, sidecarFor, hostSubsetOf } from "../../control/generation/scope.ts";
import { decide } from "../../control/generation/decisions.ts";
import { proxyIdentity } from "../../control/identity/proxy.ts";
import { buildRegistry } from "../../control/registry/build.ts";
import type { Registry } from "../../control/registry/model.ts";
import { parseRegistryText } from "../../control/registry/istio/parse.ts";
import { ConfigPipeline } from "../../control/pipeline/config-pipeline.ts";
import { registryOf, registryVersions, serviceEntryYaml, sidecarYaml as sidecar } from "../support/registry.ts";
import { RegistryQuery } from "../../control/registry/query.ts";
import { LOOP_GUARD_WASM } from "../../envoy/paths.ts";

const OPTS = generationOptions({ loopGuard: { wasmPath: LOOP_GUARD_WASM, mode: "enforce" } });

/** A STATIC ServiceEntry `name` in `ns`, host name.ns.svc.cluster.local unless given, one endpoint. */
const entry = (ns: string, name: string, ip: string, ports: [number, string][] = [[9080, "HTTP"]], host?: string) =>
  serviceEntryYaml({ name, namespace: ns, ...(host ? { host } : {}), ports: ports.map(([n, p]) => ({ number: n, name: `p${n}`, protocol: p })), endpoints: [{ address: ip }] });
const registry = (...docs: string[]): Registry => registryOf(docs.join(""));

const proxy = (ip: string, ns: string, labels?: Record<string, string>) =>
  proxyIdentity({ id: `sidecar~${ip}~app-1.${ns}~${ns}.svc.cluster.local`, metadata: { INSTANCE_IPS: ip, NAMESPACE: ns, ...(labels ? { LABELS: labels } : {}) } });
const clusters = (r: Resources) => r.clusters.map((c) => c.name!).filter((n) => n.startsWith("outbound|")).sort();
const hostsOf = (r: Resources) => [...new Set(clusters(r).map((n) => n.split("|")[3]))].sort();

const LEDGER = entry("bank", "ledger", "10.2.0.1");
const MESH = [
  entry("shop", "cart", "10.1.0.1"), entry("shop", "pay", "10.1.0.2", [[9080, "HTTP"], [5432, "TCP"]]),
  LEDGER, entry("istio-system", "telemetry", "10.9.0.1", [[15004, "TCP"]]),
  entry("ext", "api", "10.3.0.1", [[443, "TLS"]], "api.example.com"), entry("ext", "cdn", "10.3.0.2", [[443, "TLS"]], "cdn.example.com"),
];

test("without a Sidecar a proxy gets every service; a namespace's Sidecar narrows it to its egress hosts", () => {
  assert.is(hostsOf(generate(proxy("10.1.0.9", "shop"), registry(...MESH), OPTS)).length, 6);
  const r = registry(...MESH, sidecar("shop", "default", `{egress: [{hosts: ["./*", "istio-system/*"]}]}`));
  assert.equal(hostsOf(generate(proxy("10.1.0.9", "shop"), r, OPTS)), ["cart.shop.svc.cluster.local", "pay.shop.svc.cluster.local", "telemetry.istio-system.svc.cluster.local"]);
  // Listeners, endpoints and routes follow: nothing of the bank's or the external hosts' is sent.
  const res = generate(proxy("10.1.0.9", "shop"), r, OPTS);
  assert.equal(res.listeners.map((l) => l.name).sort(), ["0.0.0.0_15004", "0.0.0.0_5432", "0.0.0.0_9080", "virtual"]);
  assert.equal(res.endpoints.map((e) => e.cluster_name).sort(), clusters(res));
  assert.equal(res.routes[0]!.virtual_hosts!.map((v) => v.name), ["cart.shop.svc.cluster.local:9080", "pay.shop.svc.cluster.local:9080", "allow_any"]);
  // Another namespace is not scoped by shop's Sidecar.
  assert.is(hostsOf(generate(proxy("10.2.0.9", "bank"), r, OPTS)).length, 6);
});

test("precedence: a matching workloadSelector, else the namespace's Sidecar, else the root namespace's with '.' as the proxy's own namespace", () => {
  const r = registry(...MESH,
    sidecar("istio-system", "default", `{egress: [{hosts: ["./*", "istio-system/*"]}]}`),
    sidecar("shop", "shop-default", `{egress: [{hosts: ["shop/*"]}]}`),
    sidecar("shop", "payments", `{workloadSelector: {labels: {app: pay}}, egress: [{hosts: ["bank/*"]}]}`));
  assert.equal(hostsOf(generate(proxy("10.1.0.9", "shop", { app: "pay", version: "v1" }), r, OPTS)), ["ledger.bank.svc.cluster.local"]);
  assert.equal(hostsOf(generate(proxy("10.1.0.9", "shop", { app: "cart" }), r, OPTS)), ["cart.shop.svc.cluster.local", "pay.shop.svc.cluster.local"]);
  assert.equal(hostsOf(generate(proxy("10.1.0.9", "shop"), r, OPTS)), ["cart.shop.svc.cluster.local", "pay.shop.svc.cluster.local"]);
  assert.equal(hostsOf(generate(proxy("10.2.0.9", "bank"), r, OPTS)), ["ledger.bank.svc.cluster.local", "telemetry.istio-system.svc.cluster.local"]);
  assert.equal(hostsOf(generate(proxy("10.3.0.9", "ext"), r, OPTS)), ["api.example.com", "cdn.example.com", "telemetry.istio-system.svc.cluster.local"]);
  // Another root namespace: istio-system's Sidecar is then just that namespace's.
  const other = generationOptions({ ...OPTS, rootNamespace: "mesh-root" });
  assert.is(hostsOf(generate(proxy("10.2.0.9", "bank"), r, other)).length, 6);
  // A root namespace Sidecar with a selector applies only to the root namespace's own workloads.
  const r2 = registry(...MESH, sidecar("istio-system", "sel", `{workloadSelector: {labels: {app: x}}, egress: [{hosts: ["bank/*"]}]}`));
  assert.is(hostsOf(generate(proxy("10.1.0.9", "shop", { app: "x" }), r2, OPTS)).length, 6);
  assert.equal(hostsOf(generate(proxy("10.9.0.9", "istio-system", { app: "x" }), r2, OPTS)), ["ledger.bank.svc.cluster.local"]);
});

test("hosts: wildcard names, any namespace, exclusions by namespace and by host, import nothing", () => {
  const scoped = (spec: string, ns = "shop") => hostsOf(generate(proxy("10.1.0.9", ns), registry(...MESH, sidecar(ns, "s", spec)), OPTS));
  assert.equal(scoped(`{egress: [{hosts: ["*/*.example.com"]}]}`), ["api.example.com", "cdn.example.com"]);
  assert.equal(scoped(`{egress: [{hosts: ["*/api.example.com"]}]}`), ["api.example.com"]);
  assert.equal(scoped(`{egress: [{hosts: ["ext/*.example.com", "~ext/cdn.example.com"]}]}`), ["api.example.com"]);
  assert.equal(scoped(`{egress: [{hosts: ["*/*", "~ext/*", "~istio-system/*"]}]}`), ["cart.shop.svc.cluster.local", "ledger.bank.svc.cluster.local", "pay.shop.svc.cluster.local"]);
  assert.equal(scoped(`{egress: [{hosts: ["*/*", "~/*.svc.cluster.local"]}]}`), ["api.example.com", "cdn.example.com"]);
  assert.equal(scoped(`{egress: [{hosts: ["~/*"]}]}`), []);
  assert.equal(scoped(`{egress: [{hosts: ["bank/cart.shop.svc.cluster.local"]}]}`), [], "a host is imported from the namespace named only");
  // A unix-socket listener imports for the socket only, which is not served: nothing, not Istio's default of everything.
  assert.equal(scoped(`{egress: [{port: {number: 0, protocol: HTTP, name: uds}, bind: "unix:///run/app.sock", hosts: ["*/*"]}]}`), []);
});

test("an egress listener with a port imports its hosts on that port only; the catch-all adds every port", () => {
  const r = registry(...MESH, sidecar("shop", "s", `{egress: [{port: {number: 5432, protocol: TCP, name: pg}, hosts: ["./*"]}, {hosts: ["istio-system/*"]}]}`));
  const res = generate(proxy("10.1.0.9", "shop"), r, OPTS);
  assert.equal(clusters(res), ["outbound|15004||telemetry.istio-system.svc.cluster.local", "outbound|5432||pay.shop.svc.cluster.local"]);
  assert.not.ok(res.listeners.some((l) => l.name === "0.0.0.0_9080"), "pay's HTTP port is not imported");
  const notes = decide(proxy("10.1.0.9", "shop"), sharedOf(r, proxy("10.1.0.9", "shop")), OPTS);
  const pay9080 = notes.find((d) => d.host === "pay.shop.svc.cluster.local" && d.port === 9080)!;
  assert.match(pay9080.note!, /Sidecar shop\/s imports pay.shop.svc.cluster.local on port 5432 only/);
  assert.is(pay9080.listener, undefined);
  assert.match(notes.find((d) => d.host === "ledger.bank.svc.cluster.local")!.note!, /not imported by Sidecar shop\/s's egress hosts/);
  const both = registry(...MESH, sidecar("shop", "s", `{egress: [{port: {number: 5432, protocol: TCP, name: pg}, hosts: ["./*"]}, {hosts: ["./pay.shop.svc.cluster.local"]}]}`));
  assert.equal(clusters(generate(proxy("10.1.0.9", "shop"), both, OPTS)), ["outbound|5432||pay.shop.svc.cluster.local", "outbound|9080||pay.shop.svc.cluster.local"]);
});

function sharedOf(r: Registry, p: ReturnType<typeof proxy>) {
  const pipeline = new ConfigPipeline(OPTS);
  pipeline.setRegistry(r);
  return pipeline.configFor(p).shared;
}

test("REGISTRY_ONLY: other destinations go to BlackHoleCluster, other Hosts get 502; ALLOW_ANY and no policy pass them through", () => {
  const policy = (spec: string) => generate(proxy("10.1.0.9", "shop"), registry(...MESH, sidecar("shop", "s", spec)), OPTS);
  const strict = policy(`{outboundTrafficPolicy: {mode: REGISTRY_ONLY}}`);
  const chainsOf = (r: Resources, name: string) => r.listeners.find((l) => l.name === name)!;
  const virtual = chainsOf(strict, "virtual");
  assert.is(virtual.filter_chains![0]!.name, "BlackHoleCluster");
  assert.is(chainsOf(strict, "0.0.0.0_9080").default_filter_chain!.name, "BlackHoleCluster");
  const last = strict.routes[0]!.virtual_hosts!.at(-1)!;
  assert.equal([last.name, last.routes![0]!.direct_response!.status], ["block_all", 502]);
  assert.is(hostsOf(strict).length, 6, "the policy alone imports everything (Istio's default egress */*)");
  // The loop guard still goes first on the blackhole chain.
  assert.is((virtual.filter_chains![0]!.filters![0] as { name?: string }).name, "loop_guard");
  // Istio's enum: a policy without a mode is REGISTRY_ONLY.
  assert.is(chainsOf(policy(`{outboundTrafficPolicy: {}}`), "virtual").filter_chains![0]!.name, "BlackHoleCluster");
  for (const open of [`{outboundTrafficPolicy: {mode: ALLOW_ANY}}`, `{egress: [{hosts: ["*/*"]}]}`]) {
    const r = policy(open);
    assert.is(chainsOf(r, "virtual").filter_chains![0]!.name, "PassthroughCluster", open);
    assert.is(r.routes[0]!.virtual_hosts!.at(-1)!.name, "allow_any", open);
  }
});

test("inbound listeners and the loop guard are unaffected: a proxy whose Sidecar imports nothing still serves its own instances", () => {
  const r = registry(...MESH, sidecar("shop", "s", `{egress: [{hosts: ["~/*"]}]}`));
  const res = generate(proxy("10.1.0.1", "shop"), r, OPTS);
  assert.equal(clusters(res), []);
  assert.ok(res.listeners.some((l) => l.name === "10.1.0.1_9080"), "cart's inbound listener");
  assert.ok(res.clusters.some((c) => c.name === "inbound|9080|p9080|cart.shop.svc.cluster.local"));
  assert.ok(JSON.stringify(res.extensionConfigs).includes("10.1.0.1"), "the guard holds the node IP");
});

test("two Sidecars without workloadSelector in one namespace: the second is refused, naming the first", () => {
  const parsed = parseRegistryText([...MESH, sidecar("shop", "a", `{egress: [{hosts: ["./*"]}]}`), sidecar("shop", "b", `{egress: [{hosts: ["*/*"]}]}`)].join(""), "r.yaml");
  const built = buildRegistry(parsed.resources);
  assert.not.ok(built.ok);
  if (built.ok) return;
  assert.equal(built.errors.map((e) => e.reason), ["Sidecar shop/b: namespace shop already has a Sidecar without workloadSelector (shop/a at r.yaml:13); one applies to the whole namespace"]);
});

test("the pipeline shares one shared part per scope: same namespace and Sidecar alike, the root default per namespace", () => {
  const r = registry(...MESH, sidecar("istio-system", "default", `{egress: [{hosts: ["./*", "istio-system/*"]}]}`), sidecar("shop", "pay", `{workloadSelector: {labels: {app: pay}}, egress: [{hosts: ["bank/*"]}]}`));
  const pipeline = new ConfigPipeline(OPTS);
  pipeline.setRegistry(r);
  const a = pipeline.configFor(proxy("10.1.0.7", "shop")), b = pipeline.configFor(proxy("10.1.0.8", "shop"));
  const c = pipeline.configFor(proxy("10.2.0.7", "bank")), d = pipeline.configFor(proxy("10.1.0.6", "shop", { app: "pay" }));
  assert.ok(a.shared === b.shared, "two shop proxies share");
  assert.ok(a.shared !== c.shared && a.shared !== d.shared && c.shared !== d.shared);
  assert.is(pipeline.sharedConfigs(), 3);
  // bank's pay-selector Sidecar proxy imports bank/*, as bank's root-default scope does minus istio-system.
  assert.equal(d.shared.scope.services.map((s) => s.host), ["ledger.bank.svc.cluster.local"]);
});

test("a change to one namespace rebuilds the views that import it; the others keep their shared part, re-pointed at the new registry for inbound", () => {
  // As the registry store builds versions: unchanged documents are the same objects, one BuildMemo.
  const versionOf = registryVersions();
  const unchanged = [...MESH.filter((d) => d !== LEDGER), sidecar("istio-system", "default", `{egress: [{hosts: ["./*"]}]}`)];
  const build = (ledgerIp: string) => versionOf([...unchanged, entry("bank", "ledger", ledgerIp)]);
  const pipeline = new ConfigPipeline(OPTS);
  const shop = proxy("10.1.0.7", "shop"), bank = proxy("10.2.0.7", "bank"), ledgerHost = proxy("10.2.0.1", "bank");
  // A shop proxy that hosts the ledger's instance: its view is kept, its inbound part must not be.
  const shopOnLedgerIp = proxy("10.2.0.1", "shop");
  for (const p of [shop, bank, ledgerHost, shopOnLedgerIp]) pipeline.retain(p);
  pipeline.setRegistry(build("10.2.0.1"));
  const before = [shop, bank, ledgerHost].map((p) => pipeline.configFor(p));
  const hostBefore = pipeline.configFor(shopOnLedgerIp);
  assert.ok(hostBefore.resources().listeners.some((l) => l.name === "10.2.0.1_9080"));
  // The bank's ledger moves to 10.2.0.5: shop's view is untouched, bank's is rebuilt.
  const moved = build("10.2.0.5");
  pipeline.setRegistry(moved);
  const after = [shop, bank, ledgerHost].map((p) => pipeline.configFor(p));
  assert.ok(after[0]!.snapshot === before[0]!.snapshot, "shop's proxy keeps its very snapshot: nothing it was built from changed");
  assert.ok(after[2]!.snapshot !== before[2]!.snapshot && after[1]!.snapshot !== before[1]!.snapshot, "the bank's proxies are built again");
  const hostAfter = pipeline.configFor(shopOnLedgerIp);
  assert.ok(hostAfter.snapshot.shared === hostBefore.snapshot.shared, "its shared layer is kept");
  assert.not.ok(hostAfter.resources().listeners.some((l) => l.name === "10.2.0.1_9080"), "but the instance that left its node IP is gone");
  assert.ok(after[0]!.shared.registry === moved, "re-pointed at the new registry");
  assert.ok(after[1]!.snapshot.shared !== before[1]!.snapshot.shared, "bank's view is rebuilt");
  assert.match(JSON.stringify(after[1]!.resources().endpoints), /10\.2\.0\.5/);
  // The proxy on the ledger's old address loses its inbound listener; one on the new address would get it.
  assert.ok(before[2]!.resources().listeners.some((l) => l.name === "10.2.0.1_9080"));
  assert.not.ok(after[2]!.resources().listeners.some((l) => l.name === "10.2.0.1_9080"));
  assert.ok(pipeline.configFor(proxy("10.2.0.5", "shop")).resources().listeners.some((l) => l.name === "10.2.0.5_9080"), "a reused view's proxy finds its inbound instance in the new registry");
  // Same content as a build from scratch.
  const fresh = new ConfigPipeline(OPTS);
  fresh.setRegistry(moved);
  assert.equal(JSON.stringify(fresh.configFor(shop).resources()), JSON.stringify(after[0]!.resources()));
});

test("property: '*/*' scopes like no Sidecar, '~/*' to nothing, an exclusion never adds a host, each host once", () => {
  const ns = fc.constantFrom("a", "b", "c");
  const svc = fc.record({ ns, name: fc.constantFrom("x", "y", "z"), domain: fc.constantFrom("svc.cluster.local", "example.com", "example.org") });
  const host = fc.tuple(fc.constantFrom("*", ".", "a", "b", "c"), fc.constantFrom("*", "*.example.com", "x.a.svc.cluster.local", "*.org", "y.example.com"));
  fc.assert(fc.property(fc.uniqueArray(svc, { selector: (s) => `${s.ns}/${s.name}/${s.domain}`, maxLength: 8 }), fc.array(host, { minLength: 1, maxLength: 4 }), host, ns, (svcs, hosts, excluded, proxyNs) => {
    const docs = svcs.map((s, i) => entry(s.ns, `${s.name}-${s.domain.replace(/\./g, "-")}`, `10.0.${i}.1`, [[80, "TCP"]], s.domain === "svc.cluster.local" ? `${s.name}.${s.ns}.svc.cluster.local` : `${s.name}.${s.domain}`));
    const base = docs.length ? registry(...docs) : registry(sidecar("zz", "x", `{outboundTrafficPolicy: {mode: ALLOW_ANY}}`));
    const view = { namespace: proxyNs };
    const withSidecar = (spec: string) => {
      const r = registry(...docs, sidecar(proxyNs, "s", spec));
      return scopeOf(new RegistryQuery(r), view, sidecarFor(r, view, "istio-system")).services.map((s) => `${s.entry} ${s.host}`);
    };
    const none = scopeOf(new RegistryQuery(base), view, undefined).services.map((s) => `${s.entry} ${s.host}`);
    const host = (s: string) => s.split(" ")[1]!;
    assert.equal(withSidecar(`{egress: [{hosts: ["*/*"]}]}`), none);
    assert.equal(withSidecar(`{egress: [{hosts: ["~/*"]}]}`), []);
    const list = hosts.map(([n, h]) => `"${n}/${h}"`).join(", ");
    const plain = withSidecar(`{egress: [{hosts: [${list}]}]}`);
    const less = withSidecar(`{egress: [{hosts: [${list}, "~${excluded[0]}/${excluded[1]}"]}]}`);
    // Hosts, not definitions: excluding one namespace's definition can leave another's in its place.
    assert.ok(less.every((s) => plain.map(host).includes(host(s))), `${less} within ${plain}`);
    assert.is(new Set(plain.map(host)).size, plain.length, "one definition per host");
  }), { numRuns: 150 });
});

test("hostSubsetOf: Istio's SubsetOf", () => {
  assert.ok(hostSubsetOf("a.example.com", "*.example.com"));
  assert.ok(hostSubsetOf("*.b.example.com", "*.example.com"));
  assert.ok(hostSubsetOf("*.example.com", "*"));
  assert.not.ok(hostSubsetOf("example.com", "*.example.com"));
  assert.not.ok(hostSubsetOf("*.example.com", "a.example.com"));
  assert.not.ok(hostSubsetOf("a.example.org", "*.example.com"));
});

test.run();
