// xDS over TLS and mutual TLS against a real Envoy, with certificates made by openssl: Envoy configured
// by `multiplane bootstrap --xds-ca --cert --key` gets its config over mutual TLS; an Envoy without a
// client certificate, or with one from another CA, gets nothing; the control plane's certificate is
// reloaded from disk without a restart (a broken rotation keeps the previous one); plaintext xDS outside
// loopback is refused unless --insecure-xds.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { xdsExposure } from "../../control/tls/exposure.ts";
import { generateBootstrap, sdsPathsNextTo, writeXdsSdsFiles, type XdsTlsOptions } from "../../envoy/bootstrap.ts";
import { makeCa, makeLeaf, opensslUnavailableReason, type CertPair } from "../support/certs.ts";
import { startEnvoy, type RunningEnvoy } from "../support/envoy.ts";
import { waitFor } from "../support/net.ts";
import { envoyListeners, SEED_IPS, SEED_NODE_ID, tempRegistryDir } from "../support/control.ts";
import { whenAvailable } from "../support/available.ts";

/** The SHA-256 fingerprint of the certificate a TLS server on 127.0.0.1:port presents. */
function servedFingerprint(port: number, ca: string, client: CertPair): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port, ca: readPem(ca), cert: readPem(client.cert), key: readPem(client.key), ALPNProtocols: ["h2"] }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.destroy();
    });
    s.on("error", reject);
  });
}
const readPem = (p: string) => readFileSync(p);

whenAvailable(opensslUnavailableReason(), "xDS over TLS", (test) => {
  let dir: string;
  let certs: string;
  let ca: CertPair;
  let cp: ControlPlane;
  const logs: string[] = [];
  const envoys: RunningEnvoy[] = [];

  // As `multiplane bootstrap --out` writes it: the secrets by SDS files next to the bootstrap.
  let bootstraps = 0;
  const bootstrap = (tls: XdsTlsOptions) => {
    const withSds = { ...tls, sds: sdsPathsNextTo(join(certs, `envoy-${++bootstraps}.json`), tls.certFile !== undefined) };
    writeXdsSdsFiles(withSds);
    return generateBootstrap({ nodeId: SEED_NODE_ID, instanceIps: SEED_IPS, xds: { host: "127.0.0.1", port: cp.xds.port }, tls: withSds });
  };

  test.before(async () => {
    dir = tempRegistryDir({ "a.yaml": "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: service-a}\nspec:\n  hosts: [service-a.example]\n  ports: [{number: 9080, name: http}]\n  resolution: STATIC\n  endpoints: [{address: 10.75.8.101}]\n" });
    certs = mkdtempSync(join(tmpdir(), "mp-certs-"));
    ca = makeCa(certs);
    const server = makeLeaf(certs, ca, "control-plane", { ips: ["127.0.0.1"] });
    copyFileSync(server.cert, join(certs, "serving.pem"));
    copyFileSync(server.key, join(certs, "serving-key.pem"));
    cp = await serve({
      registry: dir, xdsPort: 0, httpPort: false, loopGuard: false, log: (l) => logs.push(l),
      tls: { certFile: join(certs, "serving.pem"), keyFile: join(certs, "serving-key.pem"), clientCaFile: ca.cert },
    });
  });

  test.after(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await cp?.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(certs, { recursive: true, force: true });
  });

  test("Envoy bootstrapped with --xds-ca, --cert and --key gets its config over mutual TLS", async () => {
    const proxy = makeLeaf(certs, ca, "proxy", { uris: ["spiffe://cluster.local/ns/default/sa/service-a"], ips: SEED_IPS });
    const envoy = await startEnvoy(bootstrap({ caFile: ca.cert, certFile: proxy.cert, keyFile: proxy.key }));
    envoys.push(envoy);
    assert.ok(await waitFor(() => cp.view.proxies()[0]?.types.lds?.state === "ACK", 10000), `no ACK\n${logs.join("\n")}\n${envoy.log().slice(-2000)}`);
    assert.is((await envoyListeners(envoy)).get("10.75.8.101_9080")?.state, "active");
    assert.ok(logs.some((l) => /^xDS on 127\.0\.0\.1:\d+ \(mutual TLS\)/.test(l)), logs.join("\n"));
    assert.ok(await waitFor(async () => (await envoy.stat("cluster.xds-grpc.ssl.handshake")) === 1, 3000), "one TLS handshake to the control plane");
  });

  test("an Envoy without a client certificate, or with one from another CA, gets nothing", async () => {
    const before = cp.view.proxies().length;
    const other = makeCa(certs, "other-ca", "/CN=another CA");
    const stranger = makeLeaf(certs, other, "stranger", { ips: SEED_IPS });
    const noCert = await startEnvoy(bootstrap({ caFile: ca.cert }));
    const wrongCa = await startEnvoy(bootstrap({ caFile: ca.cert, certFile: stranger.cert, keyFile: stranger.key }));
    envoys.push(noCert, wrongCa);
    for (const e of [noCert, wrongCa]) {
      assert.ok(await waitFor(async () => ((await e.stat("cluster.xds-grpc.ssl.connection_error")) ?? 0) + ((await e.stat("cluster.xds-grpc.upstream_cx_connect_fail")) ?? 0) + ((await e.stat("cluster.xds-grpc.upstream_cx_destroy_remote")) ?? 0) > 0, 10000), e.log().slice(-2000));
      assert.is((await envoyListeners(e)).size, 0, "no listener reached it");
    }
    assert.is(cp.view.proxies().length, before);
  });

  test("Envoy refuses a control plane whose certificate does not carry the name it expects (--xds-san)", async () => {
    const proxy = makeLeaf(certs, ca, "proxy-san", { uris: ["spiffe://cluster.local/ns/default/sa/service-a"], ips: SEED_IPS });
    const envoy = await startEnvoy(bootstrap({ caFile: ca.cert, certFile: proxy.cert, keyFile: proxy.key, san: "xds.example" }));
    envoys.push(envoy);
    assert.ok(await waitFor(async () => ((await envoy.stat("cluster.xds-grpc.ssl.fail_verify_san")) ?? 0) > 0, 10000), envoy.log().slice(-2000));
    assert.is((await envoyListeners(envoy)).size, 0);
  });

  test("a rotated certificate is served without a restart; a broken rotation keeps the previous one", async () => {
    const client = makeLeaf(certs, ca, "probe", { uris: ["spiffe://cluster.local/ns/default/sa/probe"] });
    const first = await servedFingerprint(cp.xds.port, ca.cert, client);
    const next = makeLeaf(certs, ca, "control-plane-2", { ips: ["127.0.0.1"] });
    copyFileSync(next.cert, join(certs, "serving.pem"));
    copyFileSync(next.key, join(certs, "serving-key.pem"));
    const rotated = await waitFor(async () => (await servedFingerprint(cp.xds.port, ca.cert, client)) !== first, 5000);
    assert.ok(rotated, `still serving the first certificate\n${logs.join("\n")}`);
    assert.ok(logs.some((l) => l.startsWith("TLS certificate reloaded from ") && l.includes("CN=control-plane-2")), logs.join("\n"));
    const second = await servedFingerprint(cp.xds.port, ca.cert, client);

    // A key that does not match the certificate: refused, the previous pair keeps serving.
    copyFileSync(client.key, join(certs, "serving-key.pem"));
    assert.ok(await waitFor(() => logs.some((l) => l.startsWith("warning: TLS files not reloaded, the previous certificate keeps serving")), 5000), logs.join("\n"));
    assert.is(await servedFingerprint(cp.xds.port, ca.cert, client), second);
    assert.not.ok(logs.some((l) => l.includes("PRIVATE KEY")), "no key material in logs");
    // The Envoy connected before the rotations still has its config.
    assert.is(cp.view.proxies()[0]?.types.lds?.state, "ACK");
    copyFileSync(next.key, join(certs, "serving-key.pem"));
  });
});

test("plaintext xDS outside loopback needs --insecure-xds, and is warned about", async () => {
  assert.equal(xdsExposure("127.0.0.1", 15010, "none", false), { ok: true });
  assert.equal(xdsExposure("::1", 15010, "none", false), { ok: true });
  assert.equal(xdsExposure("10.0.0.1", 15010, "mtls", false), { ok: true });
  const refused = xdsExposure("0.0.0.0", 15010, "none", false);
  assert.ok(!refused.ok && /plaintext and unauthenticated outside loopback: give --tls-cert and --tls-key .* or --insecure-xds/.test(refused.error), JSON.stringify(refused));
  const allowed = xdsExposure("0.0.0.0", 15010, "none", true);
  assert.ok(allowed.ok && /plaintext and unauthenticated \(--insecure-xds\)/.test(allowed.warning ?? ""), JSON.stringify(allowed));
  const tlsOnly = xdsExposure("192.168.10.1", 15010, "tls", false);
  assert.ok(tlsOnly.ok && /without client certificates/.test(tlsOnly.warning ?? ""));
  // serve() refuses before it binds anything.
  const err = await serve({ xdsHost: "0.0.0.0", xdsPort: 0, httpPort: false, log: () => {} }).then(() => "started", (e: Error) => e.message);
  assert.match(err, "xDS on 0.0.0.0:0 would be plaintext and unauthenticated outside loopback");
});

test.run();
