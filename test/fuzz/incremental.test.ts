// Incremental work across registry versions must not change what is served: a registry built from
// the previous build's Service objects, an index updated from the previous version's, generation
// memoised per Service, and shared parts and proxies' configs kept where nothing they come from
// changed give, version after version, exactly what a fresh build gives.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { deepFreeze } from "../../control/common/deep-freeze.ts";
import { generate } from "../../control/generation/generate.ts";
import { generationOptions, type MeshNetwork } from "../../control/generation/options.ts";
import { proxyIdentity } from "../../control/identity/proxy.ts";
import { ConfigPipeline } from "../../control/pipeline/config-pipeline.ts";
import { buildRegistry } from "../../control/registry/build.ts";
import { formatError, type Registry } from "../../control/registry/model.ts";
import { parseRegistryText } from "../../control/registry/istio/parse.ts";
import { RegistryQuery } from "../../control/registry/query.ts";
import { LOOP_GUARD_WASM } from "../../envoy/paths.ts";
import { registryVersions, serviceEntryYaml, type ServiceSpec } from "../support/registry.ts";

const RUNS = Number(process.env.PROPERTY_RUNS ?? 150);
const IPS = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "fd00::1"];
// Endpoints on 10.0.0.1-2 are on network n1, reached through its gateway from elsewhere: the same Service gives each network its own endpoints.
const NETWORKS: MeshNetwork[] = [{ name: "n1", fromCidrs: ["10.0.0.0/31"], gateways: [{ address: "192.0.2.1", port: 15443 }] }, { name: "n2", fromCidrs: [], gateways: [{ address: "192.0.2.2", port: 15443 }] }];
const OPTIONS = generationOptions({ loopGuard: { wasmPath: LOOP_GUARD_WASM, mode: "enforce" }, meshNetworks: NETWORKS });

/** The same documents (each parsed on its own, as registryVersions does), built from scratch. */
function fresh(specs: ServiceSpec[]): Registry {
  const b = buildRegistry(specs.flatMap((s) => parseRegistryText(serviceEntryYaml(s), "test.yaml").resources));
  if (!b.ok) throw new Error(b.errors.map(formatError).join("\n"));
  return b.registry;
}

const service = (name: string) => fc.record({
  port: fc.constantFrom(80, 9080),
  protocol: fc.constantFrom("TCP", "HTTP", "GRPC"),
  ips: fc.subarray(IPS, { minLength: 1, maxLength: 3 }),
  vip: fc.option(fc.constantFrom("240.0.0.1", "10.0.0.1"), { nil: undefined }),
  namespace: fc.constantFrom("default", "team"),
}).map((s): ServiceSpec => ({
  name, namespace: s.namespace, ports: [{ number: s.port, name: "p", protocol: s.protocol }],
  endpoints: s.ips.map((address) => ({ address })), ...(s.vip ? { addresses: [s.vip] } : {}),
}));
const version = fc.subarray(["a", "b", "c", "d", "e"], { minLength: 1 }).chain((names) => fc.tuple(...names.map(service)));

test(`property: ${RUNS} sequences of registry versions serve what fresh builds serve`, () => {
  fc.assert(fc.property(fc.array(version, { minLength: 2, maxLength: 5 }), fc.subarray(IPS, { minLength: 1, maxLength: 2 }), fc.constantFrom("default", "team"), (versions, nodeIps, namespace) => {
    const versionOf = registryVersions();
    const pipeline = new ConfigPipeline(OPTIONS);
    const proxy = (network: string) => proxyIdentity({ id: `sidecar~${nodeIps[0]}~p.${namespace}~${namespace}.svc.cluster.local`, metadata: { INSTANCE_IPS: nodeIps.join(","), NETWORK: network } });
    let query: RegistryQuery | undefined;
    // Retained, as connected proxies are: their configs (and own parts) are kept across versions where nothing they come from changed.
    for (const network of ["n1", "n2"]) pipeline.retain(proxy(network));
    for (const specs of versions) {
      const registry = versionOf(specs.map(serviceEntryYaml));
      const scratch = fresh(specs);
      assert.equal(registry, scratch);
      query = new RegistryQuery(registry, query);
      assert.equal(query.instancesOn(new Set(nodeIps)), new RegistryQuery(scratch).instancesOn(new Set(nodeIps)));
      pipeline.setRegistry(registry);
      // Frozen as handed out: reuse in later versions must only read.
      for (const p of [proxy("n1"), proxy("n2")]) {
        const config = pipeline.configFor(p);
        deepFreeze([config.own, config.shared]);
        assert.equal(config.resources(), generate(p, scratch, OPTIONS));
      }
    }
  }), { numRuns: RUNS });
});

test("a build keeps the Service objects of documents (and selections) it has seen; what changed is new", () => {
  const doc = (name: string, selector?: string) => serviceEntryYaml({ name, ports: [{ number: 80, name: "tcp" }], endpoints: [{ address: "10.0.0.1" }] })
    .replace(/"endpoints":\[[^\]]*\],?/, selector ? `"workloadSelector":{"labels":{"app":"${selector}"}},` : "$&");
  const workload = (name: string, ip: string) => `{"apiVersion":"networking.istio.io/v1","kind":"WorkloadEntry","metadata":{"name":"${name}","namespace":"default"},"spec":{"address":"${ip}","labels":{"app":"w"}}}\n---\n`;
  const versionOf = registryVersions();
  const host = (r: Registry, name: string) => r.services.find((s) => s.host.startsWith(`${name}.`))!;
  const v1 = versionOf([doc("a"), doc("b"), doc("s", "w"), workload("w1", "10.0.0.7")]);
  const v2 = versionOf([doc("a"), doc("b").replace("10.0.0.1", "10.0.0.2"), doc("s", "w"), workload("w1", "10.0.0.7")]);
  assert.is(host(v2, "a"), host(v1, "a"));
  assert.is(host(v2, "s"), host(v1, "s"));
  assert.is.not(host(v2, "b"), host(v1, "b"));
  assert.is(host(v2, "b").endpoints[0]!.address, "10.0.0.2");
  // A selected WorkloadEntry that changes makes the selecting service new, with the new address.
  const v3 = versionOf([doc("a"), doc("b").replace("10.0.0.1", "10.0.0.2"), doc("s", "w"), workload("w1", "10.0.0.8")]);
  assert.is.not(host(v3, "s"), host(v2, "s"));
  assert.equal(host(v3, "s").endpoints.map((e) => e.address), ["10.0.0.8"]);
  assert.is(host(v3, "a"), host(v2, "a"));
});

test.run();
