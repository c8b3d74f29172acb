// Istio Sidecars on a real Envoy, on loopback: a proxy whose Sidecar does not import a service gets no
// listener or cluster for it; under REGISTRY_ONLY a connection to it, or to any address outside the
// registry, ends in BlackHoleCluster; under ALLOW_ANY it passes through to the address dialled; a
// Sidecar selecting the proxy's labels (node metadata LABELS from `bootstrap --labels`) takes
// precedence over its namespace's. On an HTTP port, REGISTRY_ONLY answers a Host no service claims
// 502 (block_all), ALLOW_ANY sends it on to the address dialled; the loop guard stays first either way. Each step is a registry file edit the running Envoy receives.
// Connections reach the virtual listener with a PROXY header naming the original destination.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { LOOP_GUARD_WASM } from "../../envoy/paths.ts";
import { envoyClusterNames, envoyListeners, httpThroughVirtual, sidecarBootstrap, tempRegistryDir, throughVirtual } from "../support/control.ts";
import { startEnvoy, type RunningEnvoy } from "../support/envoy.ts";
import { freePort, startEcho, waitFor, type EchoServer } from "../support/net.ts";
import { serviceEntryYaml, sidecarYaml } from "../support/registry.ts";

const NODE = "sidecar~127.0.0.9~client-1.shop~shop.svc.cluster.local";
const CART = "cart.shop.svc.cluster.local";
const LEDGER = "ledger.bank.svc.cluster.local";
const WEB = "web.shop.svc.cluster.local";
let dir: string, cp: ControlPlane, envoy: RunningEnvoy, vport = 0;
/** An HTTP server answering "web" on 127.0.0.35. */
let web: { host: string; port: number; server: http.Server };
let cart: EchoServer, ledger: EchoServer, direct: EchoServer;
const logs: string[] = [];

const entry = (ns: string, name: string, host: string, echo: EchoServer) =>
  serviceEntryYaml({ name, namespace: ns, host, ports: [{ number: echo.port, name: "tcp", protocol: "TCP" }], endpoints: [{ address: echo.host }] });
const sidecar = (name: string, spec: string) => sidecarYaml("shop", name, spec);

const context = () => `\ncontrol plane:\n${logs.slice(-15).join("\n")}\nenvoy:\n${envoy.log().slice(-2000)}`;
const virtualTarget = async () => (await envoyListeners(envoy)).get("virtual")?.listener.filter_chains[0].filters.at(-1).typed_config.cluster;
const getWeb = (host: string) => httpThroughVirtual(vport, web.host, web.port, { host });
const stat = async (name: string) => (await envoy.stat(name)) ?? 0;

/** Writes the Sidecars and waits until Envoy serves the config they make (`ready` says when). */
async function sidecars(docs: string[], ready: () => Promise<boolean>, what: string): Promise<void> {
  writeFileSync(join(dir, "sidecars.yaml"), docs.join(""));
  assert.ok(await waitFor(ready, 10_000, 50), `${what}: never served${context()}`);
}

test.before(async () => {
  [cart, ledger, direct] = await Promise.all([startEcho("127.0.0.31"), startEcho("127.0.0.32"), startEcho("127.0.0.33")]);
  const server = http.createServer((_req, res) => res.end("web\n"));
  await new Promise<void>((r) => server.listen(0, "127.0.0.35", r));
  web = { host: "127.0.0.35", port: (server.address() as { port: number }).port, server };
  vport = await freePort();
  const webEntry = serviceEntryYaml({ name: "web", namespace: "shop", host: WEB, ports: [{ number: web.port, name: "http", protocol: "HTTP" }], endpoints: [{ address: web.host }] });
  dir = tempRegistryDir({
    "services.yaml": entry("shop", "cart", CART, cart) + entry("bank", "ledger", LEDGER, ledger) + webEntry,
    "sidecars.yaml": sidecar("default", `{egress: [{hosts: ["./*"]}], outboundTrafficPolicy: {mode: REGISTRY_ONLY}}`),
  });
  cp = await serve({
    registry: dir, xdsPort: 0, httpPort: false, loopGuard: { wasmPath: LOOP_GUARD_WASM, mode: "enforce" },
    virtualListener: { address: "127.0.0.1", port: vport, handoff: "proxy_protocol" }, log: (l) => logs.push(l),
  });
  envoy = await startEnvoy(sidecarBootstrap(cp.xds.port, { nodeId: NODE, instanceIps: ["127.0.0.9"], labels: { app: "client" } }));
  assert.ok(await waitFor(async () => (await virtualTarget()) === "BlackHoleCluster", 15_000), `not ready${context()}`);
});

test.after(async () => {
  await envoy?.stop();
  await cp?.stop();
  await Promise.all([cart, ledger, direct].map((e) => e?.close()));
  web?.server.closeAllConnections();
  await new Promise((r) => (web ? web.server.close(r) : r(undefined)));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("namespace Sidecar './*' with REGISTRY_ONLY: no listener or cluster for the bank's ledger; it and unknown addresses end in BlackHoleCluster", async () => {
  const listeners = [...(await envoyListeners(envoy)).keys()].sort();
  assert.equal(listeners, [`0.0.0.0_${cart.port}`, `0.0.0.0_${web.port}`, "virtual"].sort(), context());
  assert.equal((await envoyClusterNames(envoy)).filter((c) => c.startsWith("outbound|")), [`outbound|${cart.port}||${CART}`, `outbound|${web.port}||${WEB}`].sort());
  assert.is(await throughVirtual(vport, cart.host, cart.port, "to cart"), "to cart", context());
  const blackholed = await stat("cluster.BlackHoleCluster.upstream_cx_none_healthy");
  assert.is(await throughVirtual(vport, ledger.host, ledger.port, "to ledger", 1500), "");
  assert.is(await throughVirtual(vport, direct.host, direct.port, "to direct", 1500), "");
  // Cart's port at an address no service has: cart's outbound listener's default chain drops it too.
  assert.is(await throughVirtual(vport, direct.host, cart.port, "to cart's port elsewhere", 1500), "");
  assert.equal([ledger.connections, direct.connections], [0, 0], "nothing reached either server");
  assert.is(await stat("cluster.BlackHoleCluster.upstream_cx_none_healthy"), blackholed + 3);
  // The loop guard is still the virtual listener's first filter.
  assert.is((await envoyListeners(envoy)).get("virtual")!.listener.filter_chains[0].filters[0].name, "loop_guard");
});

test("REGISTRY_ONLY on an HTTP port: the imported host is routed, any other Host is answered 502 by block_all", async () => {
  const ok = await getWeb(WEB);
  assert.equal([ok.status, ok.body], [200, "web\n"], context());
  const other = await getWeb("unknown.example");
  assert.is(other.status, 502, `${JSON.stringify(other)}${context()}`);
  const routes = await envoy.configDump("dynamic_route_configs");
  const config = routes.configs.find((c: any) => c.route_config.name === String(web.port)).route_config;
  assert.equal(config.virtual_hosts.map((v: any) => v.name), [`${WEB}:${web.port}`, "block_all"]);
});

test("ALLOW_ANY: the same proxy's connections to addresses outside its scope pass through to the address dialled", async () => {
  await sidecars([sidecar("default", `{egress: [{hosts: ["./*"]}], outboundTrafficPolicy: {mode: ALLOW_ANY}}`)], async () => (await virtualTarget()) === "PassthroughCluster", "ALLOW_ANY");
  const passed = await stat("cluster.PassthroughCluster.upstream_cx_total");
  assert.is(await throughVirtual(vport, direct.host, direct.port, "to direct"), "to direct", context());
  assert.is(await throughVirtual(vport, ledger.host, ledger.port, "to ledger"), "to ledger");
  assert.is(await stat("cluster.PassthroughCluster.upstream_cx_total"), passed + 2, "both through PassthroughCluster: the ledger is still not imported");
  assert.not.ok((await envoyClusterNames(envoy)).some((c) => c.endsWith(LEDGER)));
  // On the HTTP port, a Host no service claims goes on to the address dialled (allow_any).
  assert.ok(await waitFor(async () => (await getWeb("unknown.example").catch(() => undefined))?.status === 200, 5000, 50), `allow_any${context()}`);
  assert.is((await getWeb("unknown.example")).body, "web\n");
});

test("a Sidecar whose workloadSelector matches the proxy's LABELS wins over the namespace's: the ledger's listener and cluster arrive", async () => {
  await sidecars([
    sidecar("default", `{egress: [{hosts: ["./*"]}], outboundTrafficPolicy: {mode: REGISTRY_ONLY}}`),
    sidecar("client", `{workloadSelector: {labels: {app: client}}, egress: [{hosts: ["bank/*"]}]}`),
  ], async () => (await envoyListeners(envoy)).get(`0.0.0.0_${ledger.port}`)?.state === "active", "selector Sidecar");
  assert.equal([...(await envoyListeners(envoy)).keys()].sort(), [`0.0.0.0_${ledger.port}`, "virtual"], "cart is not imported by the selected Sidecar");
  assert.is(await virtualTarget(), "PassthroughCluster", "no policy in the selected Sidecar: the mesh's ALLOW_ANY");
  const before = await stat(`cluster.outbound|${ledger.port}||${LEDGER}.upstream_cx_total`);
  assert.is(await throughVirtual(vport, ledger.host, ledger.port, "to ledger"), "to ledger", context());
  assert.is(await stat(`cluster.outbound|${ledger.port}||${LEDGER}.upstream_cx_total`), before + 1);
});

test.run();
