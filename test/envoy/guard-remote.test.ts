// The loop guard module fetched over the network by a real Envoy (ECDS remote code source, pinned by
// sha256, through the cluster multiplane-guard-wasm the control plane supplies), on loopback: from the
// control plane's own module server in plaintext and over mutual TLS, and from another URL. A module
// with the wrong bytes, or one Envoy cannot reach, leaves the guarded listeners warming, and
// /debug/proxies says what the control plane can tell: whether the proxy fetched the module, and what
// its own look at a --guard-wasm-url found.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ServeOptions } from "../../control/serve/options.ts";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { setUpLoopGuard } from "../../control/guard-wasm/setup.ts";
import { generateBootstrap, sdsPathsNextTo, writeXdsSdsFiles } from "../../envoy/bootstrap.ts";
import { LOOP_GUARD_WASM } from "../../envoy/paths.ts";
import { whenAvailable } from "../support/available.ts";
import { makeCa, makeLeaf, opensslUnavailableReason } from "../support/certs.ts";
import { startEnvoy, type RunningEnvoy } from "../support/envoy.ts";
import { freePort, startEcho, waitFor } from "../support/net.ts";
import { envoyListeners, SEED_IPS, SEED_NODE_ID, tempRegistryDir, throughVirtual } from "../support/control.ts";

const SHA256 = createHash("sha256").update(readFileSync(LOOP_GUARD_WASM)).digest("hex");

interface Plane {
  cp: ControlPlane;
  envoy: RunningEnvoy;
  vport: number;
  logs: string[];
  stop(): Promise<void>;
}

let registry: string;
let echoPort: number;
let stopEcho: () => Promise<void>;

async function plane(opts: Partial<ServeOptions>, bootstrapTls?: Parameters<typeof generateBootstrap>[0]["tls"]): Promise<Plane> {
  const logs: string[] = [];
  const vport = await freePort();
  const cp = await serve({ registry, xdsPort: 0, httpPort: 0, virtualListener: { address: "127.0.0.1", port: vport, handoff: "proxy_protocol" }, log: (l) => logs.push(l), ...opts });
  const envoy = await startEnvoy(generateBootstrap({ nodeId: SEED_NODE_ID, instanceIps: SEED_IPS, xds: { host: "127.0.0.1", port: cp.xds.port }, ...(bootstrapTls ? { tls: bootstrapTls } : {}) }));
  return { cp, envoy, vport, logs, stop: async () => { await envoy.stop(); await cp.stop(); } };
}

const connection = (p: Plane) => p.cp.view.proxies()[0]?.connections?.[0];
const ecdsAcked = (p: Plane) => waitFor(() => connection(p)?.types.ecds?.state === "ACK", 10000);
const guardedActive = (p: Plane) => waitFor(async () => {
  const l = await envoyListeners(p.envoy);
  return l.get("virtual")?.state === "active" && l.get(`0.0.0.0_${echoPort}`)?.state === "active";
}, 15000);

/** The remote code source in Envoy's own ECDS config. */
async function envoyModuleSource(envoy: RunningEnvoy): Promise<any> {
  const dump = await envoy.configDump("ecds_filters");
  return dump.configs?.[0]?.ecds_filter?.typed_config?.config?.vm_config?.code;
}

test.before(async () => {
  const echo = await startEcho("127.0.0.3");
  echoPort = echo.port;
  stopEcho = () => echo.close();
  registry = tempRegistryDir({ "s.yaml": `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: service-c}\nspec:\n  hosts: [service-c.example]\n  ports: [{number: ${echoPort}, name: tcp}]\n  resolution: STATIC\n  endpoints: [{address: 127.0.0.3}]\n` });
});

test.after(async () => {
  await stopEcho();
  rmSync(registry, { recursive: true, force: true });
});

test("served by the control plane (--guard-wasm-port): Envoy fetches it, checks its sha256, and the guard runs", async () => {
  const p = await plane({ guardWasmPort: 0 });
  try {
    assert.ok(p.cp.guardModule, "the module server runs");
    assert.ok(await guardedActive(p), `guarded listeners not active\n${p.logs.join("\n")}\n${p.envoy.log().slice(-3000)}`);
    const code = await envoyModuleSource(p.envoy);
    assert.equal(code.remote.http_uri, { uri: `http://127.0.0.1:${p.cp.guardModule!.port}/loop-guard.wasm`, cluster: "multiplane-guard-wasm", timeout: "10s" });
    assert.is(code.remote.sha256, SHA256);
    assert.is(code.remote.retry_policy.num_retries, 20);
    assert.ok(((await p.envoy.stat("cluster.multiplane-guard-wasm.upstream_rq_200")) ?? 0) >= 1, "fetched through the supplied cluster");
    assert.ok(p.logs.some((l) => l === `loop guard module: GET /loop-guard.wasm from 127.0.0.1: 200 ${readFileSync(LOOP_GUARD_WASM).length} bytes sha256 ${SHA256}`), p.logs.join("\n"));
    const c = connection(p)!;
    assert.equal({ ...c.guardModule, fetched: c.guardModule?.fetched && c.guardModule.fetched.status }, { source: "url", location: `http://127.0.0.1:${p.cp.guardModule!.port}/loop-guard.wasm`, sha256: SHA256, fetched: 200 });
    // The fetched module guards outbound traffic.
    assert.is(await throughVirtual(p.vport, "127.0.0.3", echoPort, "through the fetched guard"), "through the fetched guard");
    assert.ok(await waitFor(async () => (await p.envoy.stat("wasmcustom.loop_guard.connections_checked")) === 1, 3000));
  } finally {
    await p.stop();
  }
});

/** A CA, the control plane's certificate (127.0.0.1) and a proxy's (SPIFFE id, the seed's node IPs), made in `dir`. */
function mutualTlsCerts(dir: string) {
  const ca = makeCa(dir);
  return {
    ca,
    server: makeLeaf(dir, ca, "control-plane", { ips: ["127.0.0.1"] }),
    proxyCert: makeLeaf(dir, ca, "proxy", { uris: ["spiffe://cluster.local/ns/default/sa/a"], ips: SEED_IPS }),
  };
}

whenAvailable(opensslUnavailableReason(), "the loop guard module over mutual TLS", (test) => {
  test("served over mutual TLS with the xDS certificate: Envoy presents its xDS certificate; a client without one gets nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mp-guard-tls-"));
    try {
      const { ca, server, proxyCert } = mutualTlsCerts(dir);
      const p = await plane({ guardWasmPort: 0, tls: { certFile: server.cert, keyFile: server.key, clientCaFile: ca.cert } }, { caFile: ca.cert, certFile: proxyCert.cert, keyFile: proxyCert.key });
      try {
        assert.ok(await guardedActive(p), `guarded listeners not active\n${p.logs.join("\n")}\n${p.envoy.log().slice(-3000)}`);
        assert.is(p.cp.guardModule!.scheme, "https");
        assert.match((await envoyModuleSource(p.envoy)).remote.http_uri.uri, `https://127.0.0.1:${p.cp.guardModule!.port}/loop-guard.wasm`);
        assert.ok(((await p.envoy.stat("cluster.multiplane-guard-wasm.ssl.handshake")) ?? 0) >= 1, "fetched over TLS");
        assert.ok(p.logs.some((l) => l.startsWith("loop guard module: GET /loop-guard.wasm from 127.0.0.1 (URI:spiffe://cluster.local/ns/default/sa/a") && l.includes(": 200 ")), p.logs.join("\n"));
        // Without a client certificate the TLS handshake fails.
        const answer = await new Promise<string>((resolve) => {
          const r = httpsRequest({ host: "127.0.0.1", port: p.cp.guardModule!.port, path: "/loop-guard.wasm", ca: readFileSync(ca.cert) }, (res) => { res.resume(); resolve(`HTTP ${res.statusCode}`); });
          r.on("error", (e) => resolve(`error ${(e as NodeJS.ErrnoException).code ?? e.message}`));
          r.end();
        });
        assert.match(answer, /^error /);
      } finally {
        await p.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("over mutual TLS with a bootstrap whose secrets are SDS files: the guard cluster names the same files; Envoy ACKs it and fetches the module", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mp-guard-sds-"));
    try {
      const { ca, server, proxyCert } = mutualTlsCerts(dir);
      const sds = sdsPathsNextTo(join(dir, "envoy.json"), true);
      const tls = { caFile: ca.cert, certFile: proxyCert.cert, keyFile: proxyCert.key, sds };
      writeXdsSdsFiles(tls);
      const p = await plane({ guardWasmPort: 0, tls: { certFile: server.cert, keyFile: server.key, clientCaFile: ca.cert } }, tls);
      try {
        assert.ok(await guardedActive(p), `guarded listeners not active\n${p.logs.join("\n")}\n${p.envoy.log().slice(-3000)}`);
        assert.is(connection(p)?.types.cds?.state, "ACK");
        const dump = await p.envoy.configDump("dynamic_active_clusters");
        const cluster = dump.configs.map((c: any) => c.cluster).find((c: any) => c.name === "multiplane-guard-wasm");
        const common = cluster.transport_socket.typed_config.common_tls_context;
        assert.equal(common.validation_context_sds_secret_config.sds_config.path_config_source.path, sds.ca);
        assert.equal(common.tls_certificate_sds_secret_configs[0].sds_config.path_config_source.path, sds.cert);
        assert.ok(((await p.envoy.stat("wasm.remote_load_fetch_successes")) ?? 0) >= 1, "fetched and verified");
        assert.ok(((await p.envoy.stat("cluster.multiplane-guard-wasm.ssl.handshake")) ?? 0) >= 1, "fetched over TLS");
        assert.ok(p.logs.some((l) => l.startsWith("loop guard module: GET /loop-guard.wasm from 127.0.0.1 (URI:spiffe://cluster.local/ns/default/sa/a") && l.includes(": 200 ")), p.logs.join("\n"));
        // One secret per name and SDS file, shared by the xDS cluster and the guard's: one update each.
        assert.is(await p.envoy.stat("sds.multiplane-xds-cert.update_success"), 1);
        assert.is(await p.envoy.stat("sds.multiplane-xds-ca.update_success"), 1);
      } finally {
        await p.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test("the module server: one path, GET and HEAD, and a record of who fetched it", async () => {
  const logs: string[] = [];
  const g = await setUpLoopGuard({ xdsHost: "127.0.0.1", port: 0, defaultPath: LOOP_GUARD_WASM, mode: "enforce" }, (l) => logs.push(l));
  try {
    const base = `http://127.0.0.1:${g.server!.port}`;
    assert.equal(g.status("127.0.0.1", "127.0.0.1"), { source: "url", location: `${base}/loop-guard.wasm`, sha256: SHA256, fetched: false });
    const got = Buffer.from(await (await fetch(`${base}/loop-guard.wasm`)).arrayBuffer());
    assert.is(createHash("sha256").update(got).digest("hex"), SHA256);
    const head = await fetch(`${base}/loop-guard.wasm`, { method: "HEAD" });
    assert.equal([head.status, head.headers.get("content-type"), head.headers.get("etag")], [200, "application/wasm", `"${SHA256}"`]);
    assert.is((await fetch(`${base}/debug/proxies`)).status, 404, "nothing else is served");
    assert.is((await fetch(`${base}/loop-guard.wasm`, { method: "POST" })).status, 405);
    const fetched = g.status("127.0.0.1", undefined).fetched;
    assert.ok(fetched && fetched.status === 405, `the last answer to 127.0.0.1: ${JSON.stringify(fetched)}`);
    assert.is(g.status("127.0.0.9", undefined).fetched, false, "an address that never fetched it");
    assert.equal(g.options.remote, { sha256: SHA256, from: { kind: "control-plane", host: "127.0.0.1", port: g.server!.port, tls: "none", path: "/loop-guard.wasm" } });
  } finally {
    await g.close();
  }
});

async function fileServer(body: Buffer): Promise<{ url: string; server: Server }> {
  const server = createServer((_q, s) => s.end(body));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/loop-guard.wasm`, server };
}

test("--guard-wasm-url serving the module: fetched from there, the control plane's check says ok", async () => {
  const { url, server } = await fileServer(readFileSync(LOOP_GUARD_WASM));
  const p = await plane({ guardWasmUrl: url });
  try {
    assert.ok(await guardedActive(p), p.envoy.log().slice(-3000));
    assert.is((await envoyModuleSource(p.envoy)).remote.http_uri.uri, url);
    assert.ok(await waitFor(() => connection(p)?.guardModule?.check === "ok", 5000), JSON.stringify(connection(p)));
  } finally {
    await p.stop();
    server.close();
  }
});

test("a wrong sha256 (the URL serves other bytes): Envoy keeps the guarded listeners warming; the control plane says why", async () => {
  const { url, server } = await fileServer(Buffer.concat([readFileSync(LOOP_GUARD_WASM), Buffer.from("tampered")]));
  const p = await plane({ guardWasmUrl: url });
  try {
    assert.ok(await ecdsAcked(p), p.logs.join("\n"));
    assert.ok(await waitFor(async () => (await envoyListeners(p.envoy)).get("virtual")?.state === "warming", 5000));
    assert.ok(await waitFor(() => /serves \d+ bytes with sha256 [0-9a-f]{64}, not [0-9a-f]{64}: Envoy refuses them/.test(connection(p)?.guardModule?.check ?? ""), 5000), JSON.stringify(connection(p)));
    assert.ok(p.logs.some((l) => l.startsWith("warning: loop guard module: ") && l.includes(`not ${SHA256}`)), p.logs.join("\n"));
    assert.is((await envoyListeners(p.envoy)).get("virtual")?.state, "warming", "still warming: never served unguarded");
  } finally {
    await p.stop();
    server.close();
  }
});

test("an unreachable module: warming in Envoy, 'not reachable' in /debug/proxies", async () => {
  const url = `http://127.0.0.1:${await freePort()}/loop-guard.wasm`;
  const p = await plane({ guardWasmUrl: url });
  try {
    assert.ok(await ecdsAcked(p));
    assert.ok(await waitFor(() => /is not reachable from the control plane: ECONNREFUSED/.test(connection(p)?.guardModule?.check ?? ""), 5000), JSON.stringify(connection(p)));
    assert.is((await envoyListeners(p.envoy)).get("virtual")?.state, "warming");
  } finally {
    await p.stop();
  }
});

test.run();
