// Authorization under mutual TLS against real Envoys (certificates made by openssl): a proxy gets config
// only for what its certificate proves. Presenting node 1's certificate while claiming another node's
// IPs, another namespace, or node 1's id with other node IPs is refused with PERMISSION_DENIED and the
// reason; refusals are counted, and logged at most 20 per 10 s per peer; the legitimate proxy is untouched.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { adsServiceDefinition, TYPE_URL } from "../../control/xds/cache/protos.ts";
import { generateBootstrap } from "../../envoy/bootstrap.ts";
import { makeCa, makeLeaf, opensslUnavailableReason, type CertPair } from "../support/certs.ts";
import { node } from "../support/ads-client.ts";
import { startEnvoy, type RunningEnvoy } from "../support/envoy.ts";
import { waitFor } from "../support/net.ts";
import { envoyListeners, SEED_IPS, SEED_NODE_ID, tempRegistryDir } from "../support/control.ts";
import { whenAvailable } from "../support/available.ts";

const SA = "spiffe://cluster.local/ns/default/sa/service-a";

whenAvailable(opensslUnavailableReason(), "xDS authorization", (test) => {
  let dir: string;
  let certs: string;
  let ca: CertPair;
  let node1: CertPair;
  let cp: ControlPlane;
  let victim: RunningEnvoy;
  const logs: string[] = [];
  const envoys: RunningEnvoy[] = [];

  const bootstrap = (nodeId: string, instanceIps: string[], pair: CertPair) =>
    generateBootstrap({ nodeId, instanceIps, xds: { host: "127.0.0.1", port: cp.xds.port }, tls: { caFile: ca.cert, certFile: pair.cert, keyFile: pair.key } });
  const refusals = (reason: string) => Number(new RegExp(`^multiplane_xds_refusals_total\\{reason="${reason}"\\} (\\d+)$`, "m").exec(cp.view.metricsText())?.[1] ?? 0);

  /** Opens an ADS stream over mutual TLS with `pair`, sends one request, and resolves with how the stream ended. */
  function adsOnce(pair: CertPair, nodeId: string, instanceIps: string): Promise<{ code: number; details: string }> {
    const pkg = grpc.loadPackageDefinition(adsServiceDefinition()) as any;
    const creds = grpc.credentials.createSsl(readFileSync(ca.cert), readFileSync(pair.key), readFileSync(pair.cert));
    const client = new pkg.envoy.service.discovery.v3.AggregatedDiscoveryService(`127.0.0.1:${cp.xds.port}`, creds);
    return new Promise((resolve) => {
      const call = client.StreamAggregatedResources();
      const done = (r: { code: number; details: string }) => { client.close(); resolve(r); };
      call.on("data", () => { call.cancel(); done({ code: 0, details: "served" }); });
      call.on("error", (e: grpc.ServiceError) => done({ code: e.code, details: e.details }));
      call.write({ node: node(nodeId, instanceIps), type_url: TYPE_URL.listener });
    });
  }

  test.before(async () => {
    dir = tempRegistryDir({ "s.yaml": `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: service-a}
spec: {hosts: [service-a.example], ports: [{number: 9080, name: http}], resolution: STATIC, endpoints: [{address: 10.75.8.101}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: service-b}
spec: {hosts: [service-b.example], ports: [{number: 9081, name: http}], resolution: STATIC, endpoints: [{address: 10.75.8.102}]}
` });
    certs = mkdtempSync(join(tmpdir(), "mp-authz-"));
    ca = makeCa(certs);
    const server = makeLeaf(certs, ca, "control-plane", { ips: ["127.0.0.1"] });
    node1 = makeLeaf(certs, ca, "node1", { uris: [SA], ips: SEED_IPS });
    cp = await serve({ registry: dir, xdsPort: 0, httpPort: false, loopGuard: false, log: (l) => logs.push(l), tls: { certFile: server.cert, keyFile: server.key, clientCaFile: ca.cert } });
    victim = await startEnvoy(bootstrap(SEED_NODE_ID, SEED_IPS, node1));
    envoys.push(victim);
    assert.ok(await waitFor(() => cp.view.proxies()[0]?.types.lds?.state === "ACK", 10000), `${logs.join("\n")}\n${victim.log().slice(-2000)}`);
  });

  test.after(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await cp?.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(certs, { recursive: true, force: true });
  });

  test("the proxy its certificate proves is served, and /debug/proxies shows the certificate's identity", async () => {
    const [p] = cp.view.proxies();
    assert.is(p!.connections![0]!.peerIdentity, SA);
    assert.is(p!.connections![0]!.via, "127.0.0.1");
    assert.ok(logs.some((l) => l.startsWith(`connect proxy=${SEED_NODE_ID} `) && l.endsWith(` peer=${SA}`)), logs.join("\n"));
  });

  test("an Envoy with node 1's certificate claiming another node's IPs is refused, and node 1 is untouched", async () => {
    const before = refusals("node_ip");
    const impostor = await startEnvoy(bootstrap("sidecar~192.168.10.64~service-a-2.default~default.svc.cluster.local", ["10.75.8.102"], node1));
    envoys.push(impostor);
    assert.ok(await waitFor(() => refusals("node_ip") > before, 10000), `${logs.join("\n")}\n${impostor.log().slice(-2000)}`);
    // Envoy saw PERMISSION_DENIED (7) with the reason (gRPC percent-encodes it on the wire; Envoy logs it so).
    const denied = () => impostor.log().split("\n").map((l) => /gRPC config stream to xds-grpc closed.*: 7, (.*)$/.exec(l)?.[1]).find(Boolean);
    assert.ok(await waitFor(denied, 5000), impostor.log().slice(-2000));
    assert.match(decodeURIComponent(denied()!), /^node IPs 192\.168\.10\.64 \(node\.id\), 10\.75\.8\.102 \(INSTANCE_IPS\) are not among the certificate's IP addresses 192\.168\.10\.63, 10\.75\.8\.101/);
    assert.ok(logs.some((l) => /^refused peer=127\.0\.0\.1 stream=\d+ protocol=sotw proxy=sidecar~192\.168\.10\.64\S* status=PERMISSION_DENIED reason="node IPs 192\.168\.10\.64/.test(l)), logs.join("\n"));
    assert.is((await envoyListeners(impostor)).size, 0, "the impostor got no config");
    assert.equal(cp.view.proxies().map((p) => p.id), [SEED_NODE_ID]);
    assert.ok((await envoyListeners(victim)).has("10.75.8.101_9080"));
    await impostor.stop();
  });

  test("node 1's own id with other node IPs while node 1 is connected: refused (conflict)", async () => {
    const r = await adsOnce(node1, SEED_NODE_ID, "192.168.10.63");
    assert.is(r.code, grpc.status.PERMISSION_DENIED);
    assert.match(r.details, `node id ${SEED_NODE_ID} is already connected and this stream differs: node IPs 192.168.10.63 differ from stream`);
    assert.is(cp.view.proxies()[0]!.connections!.length, 1);
    // The same claims are the same proxy (an Envoy reconnecting): served.
    assert.equal(await adsOnce(node1, SEED_NODE_ID, SEED_IPS.join(",")), { code: 0, details: "served" });
  });

  test("another namespace than the certificate's: refused; every refusal counted, at most 20 per 10 s logged per peer", async () => {
    const r = await adsOnce(node1, "sidecar~192.168.10.63~x-1.prod~prod.svc.cluster.local", "10.75.8.101");
    assert.is(r.code, grpc.status.PERMISSION_DENIED);
    assert.match(r.details, "claims namespace prod; certificate spiffe://cluster.local/ns/default/sa/service-a is for namespace default");
    const before = refusals("namespace");
    const logged = logs.length;
    for (let i = 0; i < 30; i++) await adsOnce(node1, `sidecar~192.168.10.63~x-${i}.prod~prod.svc.cluster.local`, "");
    assert.is(refusals("namespace"), before + 30);
    const lines = logs.slice(logged).filter((l) => l.startsWith("refused "));
    assert.ok(lines.length <= 20, `${lines.length} lines for 30 refusals:\n${lines.join("\n")}`);
  });
});

test.run();
