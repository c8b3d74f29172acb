// `serve --mesh-networks FILE`: Istio's meshNetworks shape, checked with file:line reasons, and a
// control plane that serves each proxy the endpoints of its network directly and the others through
// their gateways.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseServeArgs } from "../../control/cmd/cli.ts";
import { formatError } from "../../control/registry/model.ts";
import { parseMeshNetworks } from "../../control/registry/istio/mesh-networks.ts";
import { serve } from "../../control/serve/serve.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";
import { adsClient } from "../support/ads-client.ts";
import { tempRegistryDir } from "../support/control.ts";
import { waitFor } from "../support/net.ts";

const MESH_NETWORKS = `networks:
  network1:
    endpoints:
    - fromCidr: 10.1.0.0/16
    gateways:
    - address: 192.0.2.1
      port: 15443
  network2:
    endpoints:
    - fromRegistry: cluster-2
    gateways:
    - address: 192.0.2.2
      port: 15443
      locality: us-east
`;

test("Istio's meshNetworks: networks, fromCidr ranges, gateways by address and port", () => {
  const r = parseMeshNetworks(MESH_NETWORKS, "mesh.yaml");
  assert.equal(r.errors, []);
  assert.equal(r.networks, [
    { name: "network1", fromCidrs: ["10.1.0.0/16"], gateways: [{ address: "192.0.2.1", port: 15443 }] },
    { name: "network2", fromCidrs: [], gateways: [{ address: "192.0.2.2", port: 15443, locality: "us-east" }] },
  ]);
  assert.equal(r.warnings.map(formatError), ["mesh.yaml:10:7: fromRegistry cluster-2 is ignored: multiplane has one registry; endpoints join network network2 by their own network field or by fromCidr"]);
  const wrapped = parseMeshNetworks(`meshNetworks:\n  ${MESH_NETWORKS.replace(/\n/g, "\n  ")}`, "cm.yaml");
  assert.equal(wrapped.networks.map((n) => n.name), ["network1", "network2"], "a ConfigMap's meshNetworks key holding it");
});

test("what multiplane cannot do is refused by name, at its line", () => {
  const r = parseMeshNetworks(`networks:
  n1:
    gateways:
    - registryServiceName: istio-eastwestgateway.istio-system.svc.cluster.local
      port: 15443
    - address: gw.example.com
      port: 15443
    - address: 192.0.2.9
      port: 99999
    endpoints:
    - fromCidr: 10.0.0.0/99
    - {}
`, "bad.yaml");
  assert.equal(r.errors.map(formatError), [
    "bad.yaml:11:7: fromCidr 10.0.0.0/99 is not a valid CIDR block (\"10.0.0.0/99\": prefix length must be 0..32)",
    "bad.yaml:12:7: networks.n1.endpoints[1] needs exactly one of fromCidr and fromRegistry",
    "bad.yaml:4:7: registryServiceName gateways are not supported: Istio reads the address of a Kubernetes LoadBalancer service, and multiplane has no Kubernetes registry; give the gateway's address",
    "bad.yaml:6:7: gateway address \"gw.example.com\" must be an IP: multiplane does not resolve gateway hostnames (Istio does with RESOLVE_HOSTNAME_GATEWAYS)",
    "bad.yaml:9:7: networks.n1.gateways[2].port must be a port number 1..65535, got 99999",
  ]);
});

test("serve --mesh-networks: a bad file stops serve with its errors; a good one reaches generation", () => {
  const dir = tempRegistryDir();
  try {
    writeFileSync(join(dir, "mesh.yaml"), MESH_NETWORKS);
    writeFileSync(join(dir, "bad.yaml"), "networks:\n  n1:\n    gateways: [{address: gw.example, port: 1}]\n");
    assert.equal(parseServeArgs(["--registry", "r", "--mesh-networks", join(dir, "mesh.yaml")]).meshNetworks!.map((n) => n.gateways[0]!.address), ["192.0.2.1", "192.0.2.2"]);
    assert.throws(() => parseServeArgs(["--registry", "r", "--mesh-networks", join(dir, "bad.yaml")]), /--mesh-networks: .*bad\.yaml is invalid:\n  .*bad\.yaml:3:17: gateway address "gw\.example" must be an IP/);
    assert.throws(() => parseServeArgs(["--registry", "r", "--mesh-networks", join(dir, "none.yaml")]), /--mesh-networks: cannot read .*none\.yaml: ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a control plane with meshNetworks: each connected proxy's NETWORK decides which endpoints it reaches directly", async () => {
  const dir = tempRegistryDir({ "s.yaml": `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: s}
spec:
  hosts: [s.example]
  addresses: [240.7.7.7]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.1.0.5}, {address: 10.2.0.5, network: network2}]
` });
  const cp = await serve({ registry: dir, xdsPort: 0, httpPort: false, loopGuard: false, meshNetworks: parseMeshNetworks(MESH_NETWORKS, "m").networks, log: () => {} });
  const client = adsClient(`127.0.0.1:${cp.xds.port}`);
  const streams = ["network1", "network2"].map((network) => {
    const s = client.StreamAggregatedResources();
    s.on("data", () => {});
    s.on("error", () => {});
    s.write({ node: { id: `proxy-${network}`, metadata: { fields: { NETWORK: { stringValue: network } } } }, type_url: TYPE_URL.endpoint });
    return s;
  });
  try {
    const eds = (network: string) => (cp.view.configDump(`proxy-${network}`)?.endpoints[0] as any)?.endpoints[0].lb_endpoints
      .map((e: any) => `${e.endpoint.address.socket_address.address}:${e.endpoint.address.socket_address.port_value}`);
    assert.ok(await waitFor(() => eds("network1") && eds("network2"), 5000), "both proxies connected");
    assert.equal(eds("network1"), ["10.1.0.5:80", "192.0.2.2:15443"], "10.1.0.5 is in network1 by fromCidr");
    assert.equal(eds("network2"), ["10.2.0.5:80", "192.0.2.1:15443"]);
  } finally {
    for (const s of streams) s.cancel();
    client.close();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
