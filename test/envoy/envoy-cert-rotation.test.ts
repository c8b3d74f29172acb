// Envoy's own xDS certificate and CA rotated on disk, against a real Envoy: a bootstrap written with
// SDS files (as `multiplane bootstrap --xds-ca --cert --key --out FILE` writes it) makes Envoy reload
// the PEM files when an operator replaces them (new file, then a rename over the old one), without a
// restart. Proof: Envoy's admin /certs shows the new serial numbers, and its next xDS connection (after
// the old one is cut, to a control plane whose certificate only the new CA signed) presents the new
// certificate. The static secrets of older bootstraps are read once: the same steps fail with them.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { generateBootstrap, sdsPathsNextTo, writeXdsSdsFiles, type XdsTlsOptions } from "../../envoy/bootstrap.ts";
import { makeCa, makeLeaf, opensslUnavailableReason, type CertPair } from "../support/certs.ts";
import { startEnvoy, type RunningEnvoy } from "../support/envoy.ts";
import { waitFor } from "../support/net.ts";
import { SEED_IPS, SEED_NODE_ID, tempRegistryDir } from "../support/control.ts";
import { whenAvailable } from "../support/available.ts";

/** A certificate's serial number as Envoy's /certs prints it (lowercase hex). */
const serialOf = (pem: string): string =>
  /serial=([0-9A-Fa-f]+)/.exec(execFileSync("openssl", ["x509", "-in", pem, "-noout", "-serial"], { encoding: "utf8" }))![1]!.toLowerCase();

/** Replaces `target` as an operator would: the new content written beside it, then renamed over it. */
function replaceFile(target: string, content: Buffer | string): void {
  writeFileSync(`${target}.new`, content);
  renameSync(`${target}.new`, target);
}

interface EnvoyCerts {
  ca: string[];
  chain: string[];
}

/** The serial numbers of the CA and certificate chain Envoy's xDS TLS context uses (admin /certs). */
async function envoyCerts(envoy: RunningEnvoy): Promise<EnvoyCerts> {
  const body = (await (await fetch(`${envoy.adminUrl}/certs`)).json()) as { certificates?: { ca_cert?: { serial_number: string }[]; cert_chain?: { serial_number: string }[] }[] };
  const out: EnvoyCerts = { ca: [], chain: [] };
  for (const c of body.certificates ?? []) {
    out.ca.push(...(c.ca_cert ?? []).map((x) => x.serial_number.toLowerCase()));
    out.chain.push(...(c.cert_chain ?? []).map((x) => x.serial_number.toLowerCase()));
  }
  return out;
}

interface Relay {
  port: number;
  /** Ends every relayed connection (both sides), as a network failure would. */
  cut(): void;
  close(): void;
}

/** A TCP relay on 127.0.0.1 to `port`: TLS passes through it, so the control plane still sees Envoy's certificate. */
async function relay(port: number): Promise<Relay> {
  const sockets = new Set<Socket>();
  const server = createServer((inbound) => {
    const outbound = connect(port, "127.0.0.1");
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => { sockets.delete(s); inbound.destroy(); outbound.destroy(); });
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const cut = () => { for (const s of sockets) s.destroy(); };
  return { port: (server.address() as AddressInfo).port, cut, close: () => { cut(); server.close(); } };
}

whenAvailable(opensslUnavailableReason(), "Envoy certificate rotation", (test) => {
  let registry: string;
  let certs: string;
  const envoys: RunningEnvoy[] = [];
  const planes: ControlPlane[] = [];
  const relays: Relay[] = [];

  test.before(() => {
    registry = tempRegistryDir({ "a.yaml": "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: service-a}\nspec:\n  hosts: [service-a.example]\n  ports: [{number: 9080, name: http}]\n  resolution: STATIC\n  endpoints: [{address: 10.75.8.101}]\n" });
    certs = mkdtempSync(join(tmpdir(), "mp-rotation-"));
  });

  test.after(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    for (const r of relays) r.close();
    await Promise.all(planes.map((p) => p.stop()));
    rmSync(registry, { recursive: true, force: true });
    rmSync(certs, { recursive: true, force: true });
  });

  const logs: string[] = [];
  const peerIdentities = (cp: ControlPlane) => cp.view.proxies().flatMap((p) => p.connections ?? []).filter((c) => c.types.lds?.state === "ACK").map((c) => c.peerIdentity);

  /**
   * Rotates the proxy's CA file, certificate and key on disk (each renamed over the old file); with
   * SDS files, Envoy must follow. Then the control plane's certificate becomes one only the new CA
   * signed, and Envoy's xDS connection is cut: its next connection must trust the new CA and present
   * the new certificate.
   */
  async function rotate(name: string, sds: boolean): Promise<void> {
    const dir = join(certs, name);
    mkdirSync(dir);
    const caA = makeCa(dir, "ca-a", "/CN=CA A");
    const caB = makeCa(dir, "ca-b", "/CN=CA B");
    const serverA = makeLeaf(dir, caA, "control-plane-a", { ips: ["127.0.0.1"] });
    const serverB = makeLeaf(dir, caB, "control-plane-b", { ips: ["127.0.0.1"] });
    // Certificates A and B differ in serial number, and in service account (so the control plane's
    // /debug/proxies tells which one a connection presented).
    const certA = makeLeaf(dir, caA, "proxy-a", { uris: ["spiffe://cluster.local/ns/default/sa/service-a"], ips: SEED_IPS });
    const certB = makeLeaf(dir, caA, "proxy-b", { uris: ["spiffe://cluster.local/ns/default/sa/service-a-rotated"], ips: SEED_IPS });
    assert.is.not(serialOf(certA.cert), serialOf(certB.cert));

    const serving = { cert: join(dir, "serving.pem"), key: join(dir, "serving-key.pem") };
    copyFileSync(serverA.cert, serving.cert);
    copyFileSync(serverA.key, serving.key);
    const cp = await serve({ registry, xdsPort: 0, httpPort: false, loopGuard: false, log: (l) => logs.push(l), tls: { certFile: serving.cert, keyFile: serving.key, clientCaFile: caA.cert } });
    planes.push(cp);
    const link = await relay(cp.xds.port);
    relays.push(link);

    // The files the Envoy host keeps, which the operator replaces.
    const node = join(dir, "node");
    mkdirSync(node);
    const files = { caFile: join(node, "ca.pem"), certFile: join(node, "proxy.pem"), keyFile: join(node, "proxy-key.pem") };
    copyFileSync(caA.cert, files.caFile);
    copyFileSync(certA.cert, files.certFile);
    copyFileSync(certA.key, files.keyFile);
    const tls: XdsTlsOptions = { ...files, ...(sds ? { sds: sdsPathsNextTo(join(node, "envoy.json"), true) } : {}) };
    if (sds) writeXdsSdsFiles(tls);
    const envoy = await startEnvoy(generateBootstrap({ nodeId: SEED_NODE_ID, instanceIps: SEED_IPS, xds: { host: "127.0.0.1", port: link.port }, tls }));
    envoys.push(envoy);
    assert.ok(await waitFor(() => peerIdentities(cp).length === 1, 10000), `no ACK\n${logs.join("\n")}\n${envoy.log().slice(-2000)}`);
    assert.equal(peerIdentities(cp), ["spiffe://cluster.local/ns/default/sa/service-a"]);
    assert.equal(await envoyCerts(envoy), { ca: [serialOf(caA.cert)], chain: [serialOf(certA.cert)] });

    // The new CA only (a real rotation would trust both for a while; this proves the old one is gone),
    // then the certificate and then its key (in between, the pair does not match: Envoy keeps the old one).
    replaceFile(files.caFile, readFileSync(caB.cert));
    replaceFile(files.certFile, readFileSync(certB.cert));
    replaceFile(files.keyFile, readFileSync(certB.key));
    const expected = { ca: [serialOf(caB.cert)], chain: [serialOf(certB.cert)] };
    const reloaded = await waitFor(async () => JSON.stringify(await envoyCerts(envoy)) === JSON.stringify(expected), sds ? 10000 : 3000);
    if (!sds) {
      assert.not.ok(reloaded, "static secrets are read once");
      assert.equal(await envoyCerts(envoy), { ca: [serialOf(caA.cert)], chain: [serialOf(certA.cert)] });
      return;
    }
    assert.ok(reloaded, `Envoy did not reload: ${JSON.stringify(await envoyCerts(envoy))}, expected ${JSON.stringify(expected)}\n${envoy.log().slice(-3000)}`);
    assert.ok(envoy.alive());
    assert.equal(peerIdentities(cp), ["spiffe://cluster.local/ns/default/sa/service-a"], "the open xDS connection is not disturbed");

    // The control plane now serves a certificate of the new CA (reloaded from disk), and the xDS
    // connection is cut: Envoy's next one verifies it against CA B and presents certificate B.
    copyFileSync(serverB.cert, serving.cert);
    copyFileSync(serverB.key, serving.key);
    assert.ok(await waitFor(() => logs.some((l) => l.startsWith("TLS certificate reloaded from ") && l.includes("CN=control-plane-b")), 5000), logs.join("\n"));
    const handshakes = (await envoy.stat("cluster.xds-grpc.ssl.handshake")) ?? 0;
    link.cut();
    const reconnected = await waitFor(() => peerIdentities(cp).includes("spiffe://cluster.local/ns/default/sa/service-a-rotated"), 15000);
    assert.ok(reconnected, `no connection with certificate B: ${JSON.stringify(peerIdentities(cp))}\n${logs.slice(-20).join("\n")}\n${envoy.log().slice(-3000)}`);
    assert.equal(peerIdentities(cp), ["spiffe://cluster.local/ns/default/sa/service-a-rotated"]);
    assert.ok(((await envoy.stat("cluster.xds-grpc.ssl.handshake")) ?? 0) > handshakes, "a new TLS handshake");
  }

  test("Envoy reloads its rotated xDS certificate and CA from disk (SDS files), without a restart", async () => {
    await rotate("sds", true);
  });

  test("with static secrets (older bootstraps) Envoy keeps the certificates it started with", async () => {
    await rotate("static", false);
  });
});

test.run();
