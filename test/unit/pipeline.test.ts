// The config pipeline: what every proxy shares is built and packed once per registry version and
// shared by reference; unchanged content keeps its objects across versions; it never writes to what
// it handed out; generation and /debug/decisions answer from the same registry query.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { deepFreeze } from "../../control/common/deep-freeze.ts";
import { generationOptions } from "../../control/generation/options.ts";
import { ConfigPipeline } from "../../control/pipeline/config-pipeline.ts";
import { Encoder } from "../../control/xds/cache/encode.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { registryFrom, registryOf, registryVersions, serviceEntryYaml, sidecar, type ServiceSpec } from "../support/registry.ts";

const encoder = new Encoder();
const SEED = registryOf(readFileSync(join(PROJECT_ROOT, "examples", "registry", "seed.yaml"), "utf8"));
const OPTS = generationOptions({ loopGuard: { wasmPath: "/opt/multiplane/loop-guard.wasm", mode: "enforce" } });
const named = (list: readonly object[], name: string) => list.find((x: any) => x.name === name || x.cluster_name === name) as any;
const pipelineOn = (registry = SEED) => {
  const p = new ConfigPipeline(OPTS, encoder);
  p.setRegistry(registry);
  return p;
};

test("proxies with different node IPs share the very same outbound objects and packed bytes; their own parts differ", () => {
  const p = pipelineOn();
  const a = p.configFor(sidecar("192.168.10.63", "192.168.10.63,10.75.8.101"));
  const b = p.configFor(sidecar("10.0.0.9", "10.0.0.9"));
  assert.is(named(a.resources().listeners, "0.0.0.0_9080"), named(b.resources().listeners, "0.0.0.0_9080"));
  assert.is(named(a.resources().clusters, "outbound|9080||service-b.default.svc.cluster.local"), named(b.resources().clusters, "outbound|9080||service-b.default.svc.cluster.local"));
  assert.is(a.snapshot.get(TYPE_URL.listener)!.resources.get("0.0.0.0_9080"), b.snapshot.get(TYPE_URL.listener)!.resources.get("0.0.0.0_9080"), "packed once");
  assert.ok(named(a.resources().listeners, "10.75.8.101_9080"));
  assert.not.ok(named(b.resources().listeners, "10.75.8.101_9080"));
  assert.is.not(a.snapshot.get(TYPE_URL.extensionConfig)!.version, b.snapshot.get(TYPE_URL.extensionConfig)!.version);
});

test("the pipeline never writes to what it handed out: frozen, it goes on building versions, proxies and decisions from it", () => {
  const p = pipelineOn();
  const proxy = sidecar("192.168.10.63", "192.168.10.63,10.75.8.101");
  const a = p.configFor(proxy);
  deepFreeze([a.own, a.shared]); // generated objects (the packed snapshot keeps lazy caches of its own)
  assert.throws(() => { (named(a.resources().listeners, "0.0.0.0_9080") as any).name = "x"; }, TypeError);
  deepFreeze(p.decisions(proxy));
  // Writing to anything frozen throws (ES modules are strict): reuse must read only.
  p.configFor(sidecar("10.0.0.9", "10.0.0.9"));
  p.setRegistry(SEED);
  const b = p.configFor(proxy);
  assert.is(named(b.resources().listeners, "0.0.0.0_9080"), named(a.resources().listeners, "0.0.0.0_9080"));
  p.decisions(proxy);
});

test("after a registry change, unchanged services keep their very objects and changed ones are rebuilt", () => {
  const spec = (ip: string): ServiceSpec[] => [
    { name: "x", ports: [{ number: 7000, name: "tcp" }], endpoints: [{ address: ip }] },
    { name: "y", ports: [{ number: 7000, name: "tcp" }], endpoints: [{ address: "10.9.9.9" }] },
    { name: "z", ports: [{ number: 7001, name: "tcp" }], endpoints: [{ address: "10.9.9.8" }] },
  ];
  const versionOf = registryVersions();
  const p = pipelineOn(versionOf(spec("10.1.1.1").map(serviceEntryYaml)));
  const proxy = sidecar("192.168.10.63", "192.168.10.63");
  const before = p.configFor(proxy).resources();
  p.setRegistry(versionOf(spec("10.1.1.2").map(serviceEntryYaml)));
  const after = p.configFor(proxy).resources();
  const x = "outbound|7000||x.default.svc.cluster.local";
  // x moved: its endpoints and the shared 7000 listener (destination match) are new, with the new IP.
  assert.is.not(named(after.endpoints, x), named(before.endpoints, x));
  assert.is(named(after.endpoints, x).endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address, "10.1.1.2");
  assert.is.not(named(after.listeners, "0.0.0.0_7000"), named(before.listeners, "0.0.0.0_7000"));
  assert.equal(named(after.listeners, "0.0.0.0_7000").filter_chains[0].filter_chain_match.prefix_ranges[0].address_prefix, "10.1.1.2");
  // y and z did not change: same objects, so the snapshot does not encode them again.
  assert.is(named(after.endpoints, "outbound|7000||y.default.svc.cluster.local"), named(before.endpoints, "outbound|7000||y.default.svc.cluster.local"));
  assert.is(named(after.clusters, x), named(before.clusters, x));
  assert.is(named(after.listeners, "0.0.0.0_7001"), named(before.listeners, "0.0.0.0_7001"));
});

test("two pipelines share nothing: each builds its own objects", () => {
  const a = pipelineOn().configFor(sidecar("10.0.0.9"));
  const b = new ConfigPipeline(OPTS); // its own encoder too
  b.setRegistry(SEED);
  const c = b.configFor(sidecar("10.0.0.9"));
  assert.equal(c.resources, a.resources);
  assert.is.not(named(c.resources().listeners, "0.0.0.0_9080"), named(a.resources().listeners, "0.0.0.0_9080"));
});

test("a retained node-IP set keeps its config until released; an unretained one is not kept", () => {
  const p = pipelineOn();
  const proxy = sidecar("10.0.0.9");
  p.configFor(proxy);
  assert.is(p.cachedConfigs(), 0);
  p.retain(proxy);
  const first = p.configFor(proxy);
  assert.is(p.configFor(proxy), first);
  assert.is(p.cachedConfigs(), 1);
  p.release(proxy);
  assert.is(p.cachedConfigs(), 0);
});

const IPS = ["10.0.0.1", "10.0.0.2", "192.168.10.63", "10.75.8.101", "fd00::1"];
const PORTS = [80, 9080, 15001, 8080];
const registry = fc.uniqueArray(fc.record({
  name: fc.constantFrom("a", "b", "c", "d", "e"),
  ports: fc.uniqueArray(fc.constantFrom(...PORTS), { minLength: 1, maxLength: 2 }),
  endpoints: fc.array(fc.record({ address: fc.constantFrom(...IPS), remap: fc.option(fc.constantFrom(...PORTS), { nil: undefined }) }), { maxLength: 3 }),
}), { selector: (s) => s.name, maxLength: 5 }).map((services) => services.map((s): ServiceSpec => ({
  name: s.name,
  ports: s.ports.map((n, i) => ({ number: n, name: `p${i}` })),
  endpoints: s.endpoints.map((e) => ({ address: e.address, ...(e.remap ? { ports: { p0: e.remap } } : {}) })),
})));

test("property: every inbound decision with a listener has that <ip>_<port> listener, and every inbound listener has its decision", () => {
  fc.assert(fc.property(registry, fc.subarray(IPS, { minLength: 1 }), fc.boolean(), (services, nodeIps, legacy) => {
    const p = new ConfigPipeline(generationOptions({ legacySingleIp: legacy }), encoder);
    p.setRegistry(registryFrom(services));
    const proxy = sidecar(nodeIps[0]!, nodeIps.join(","));
    const fromDecisions = new Set(p.decisions(proxy).filter((d) => d.direction === "inbound" && d.listener).map((d) => d.listener!));
    const listeners = p.configFor(proxy).resources().listeners;
    const inbound = new Set(listeners.filter((l) => l.traffic_direction === "INBOUND").map((l) => l.name));
    assert.equal([...fromDecisions].sort(), [...inbound].sort());
    for (const d of p.decisions(proxy)) if (d.direction === "inbound") assert.ok(p.nodeIps(proxy).includes(d.address), `${d.address} is a node IP`);
  }), { numRuns: 300 });
});

test.run();
