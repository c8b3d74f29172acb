// The multi-IP fix on a real Envoy: the seed's proxy (node IPs 192.168.10.63 and 10.75.8.101) gets an INBOUND
// listener for service-a on its second IP, Envoy hands a connection for 10.75.8.101:9080 to it and
// delivers it once to the local process; legacy mode shows Istio 1.0's outbound mistake; registry
// edits and HTTP PUTs reach Envoy within a second.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { startEnvoy, type RunningEnvoy } from "../support/envoy.ts";
import { freePort, startEcho, waitFor, type EchoServer } from "../support/net.ts";
import { envoyClusterNames, envoyListeners, SEED_NODE_ID, sidecarBootstrap, tempRegistryDir, throughVirtual } from "../support/control.ts";

const TOKEN = "e2e-token";
let dir: string;
let cp: ControlPlane;
let envoy: RunningEnvoy;
let vport: number;
let echoA: EchoServer; // service-a's process, registered at 10.75.8.101:9080
let echoM: EchoServer; // mgmt's process, registered at 192.168.10.63:9080
let echoC: EchoServer; // a service on another "node" (127.0.0.3), reached outbound
const logs: string[] = [];

const registryYaml = (extra = "") => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: service-a, namespace: default}
spec:
  hosts: [service-a.default.svc.cluster.local]
  ports: [{number: 9080, name: http, protocol: TCP, targetPort: ${echoA.port}}]   # TCP: raw bytes to echo servers (HTTP ports: http-routes.test.ts)
  resolution: STATIC
  location: MESH_INTERNAL
  endpoints: [{address: 10.75.8.101}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: mgmt, namespace: default}
spec:
  hosts: [mgmt.default.svc.cluster.local]
  ports: [{number: 9080, name: http-mgmt, targetPort: ${echoM.port}}]
  resolution: STATIC
  endpoints: [{address: 192.168.10.63}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: service-c, namespace: default}
spec:
  hosts: [service-c.default.svc.cluster.local]
  ports: [{number: ${echoC.port}, name: tcp}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.3}]
${extra}`;

async function startPlane(legacySingleIp: boolean, port: number): Promise<ControlPlane> {
  return serve({
    registry: dir, xdsPort: 0, httpPort: 0, token: TOKEN, apiDir: `${dir}.api`, legacySingleIp,
    virtualListener: { address: "127.0.0.1", port, handoff: "proxy_protocol" },
    log: (l) => logs.push(l),
  });
}

async function acked(plane: ControlPlane, types = ["lds", "cds"]): Promise<boolean> {
  return waitFor(() => {
    const p = plane.view.proxies()[0];
    return p !== undefined && types.every((t) => p.types[t]?.state === "ACK");
  }, 10000);
}

test.before(async () => {
  [echoA, echoM, echoC] = await Promise.all([startEcho("127.0.0.1"), startEcho("127.0.0.1"), startEcho("127.0.0.3")]);
  dir = tempRegistryDir({ "services.yaml": registryYaml() });
  vport = await freePort();
  cp = await startPlane(false, vport);
  envoy = await startEnvoy(sidecarBootstrap(cp.xds.port));
  assert.ok(await acked(cp, ["lds", "cds", "eds"]), `no ACK: ${JSON.stringify(cp.view.proxies())}\n${logs.join("\n")}\n${envoy.log().slice(-3000)}`);
});

test.after(async () => {
  await envoy?.stop();
  await cp?.stop();
  await Promise.all([echoA?.close(), echoM?.close(), echoC?.close()]);
  rmSync(dir, { recursive: true, force: true });
  rmSync(`${dir}.api`, { recursive: true, force: true });
});

test("Envoy holds listener 10.75.8.101_9080, INBOUND, not bound, delivering to service-a's inbound cluster", async () => {
  const listeners = await envoyListeners(envoy);
  // targetPort: Istio's inbound listener on <ip>:<targetPort>, plus the service port on the registered address.
  assert.equal([...listeners.keys()].sort(), [`0.0.0.0_${echoC.port}`, "0.0.0.0_9080", `10.75.8.101_${echoA.port}`, "10.75.8.101_9080", `192.168.10.63_${echoM.port}`, "192.168.10.63_9080", "virtual"].sort());
  for (const l of listeners.values()) assert.is(l.state, "active", l.name);
  const a = listeners.get("10.75.8.101_9080")!.listener;
  assert.is(a.traffic_direction, "INBOUND");
  assert.is(a.bind_to_port, false);
  assert.equal(a.address.socket_address, { address: "10.75.8.101", port_value: 9080 });
  assert.is(a.filter_chains[0].filters[0].typed_config.cluster, "inbound|9080|http|service-a.default.svc.cluster.local");
  assert.ok((await envoyClusterNames(envoy)).includes("inbound|9080|http|service-a.default.svc.cluster.local"));
  const out = listeners.get("0.0.0.0_9080")!.listener;
  assert.is(out.traffic_direction, "OUTBOUND");
  assert.is(out.filter_chains[0].filters[0].name, "loop_guard");
});

test("hand-off: a connection for 10.75.8.101:9080 reaches service-a's process once (inbound); same port on the other IP reaches mgmt", async () => {
  assert.is(await throughVirtual(vport, "10.75.8.101", 9080, "to service-a"), "to service-a");
  assert.is(echoA.connections, 1, "delivered once, no loop");
  assert.is(await throughVirtual(vport, "192.168.10.63", 9080, "to mgmt"), "to mgmt");
  assert.is(echoM.connections, 1);
  assert.is(await envoy.stat("cluster.inbound|9080|http|service-a.default.svc.cluster.local.upstream_cx_total"), 1);
});

test("hand-off: a connection for a remote instance goes outbound through the guarded chain to its EDS endpoint", async () => {
  assert.is(await throughVirtual(vport, "127.0.0.3", echoC.port, "to service-c"), "to service-c");
  assert.is(echoC.connections, 1);
  assert.is(await envoy.stat(`cluster.outbound|${echoC.port}||service-c.default.svc.cluster.local.upstream_cx_total`), 1);
});

test("debug API and metrics: the proxy, its node IPs, ACK state per type, and why service-a is inbound", async () => {
  const [p] = cp.view.proxies();
  assert.is(p!.id, SEED_NODE_ID);
  assert.equal(p!.nodeIps, ["192.168.10.63", "10.75.8.101"]);
  assert.equal(Object.keys(p!.types).sort(), ["cds", "ecds", "eds", "lds"]);
  const res = await fetch(`${cp.httpUrl}/debug/decisions?proxy=${encodeURIComponent(SEED_NODE_ID)}`);
  const { decisions } = await res.json();
  const a = decisions.find((d: any) => d.entry === "default/service-a");
  assert.equal([a.direction, a.reason, a.listener, a.servicePortListener], ["inbound", "10.75.8.101 is node IP 2 of 2 (from INSTANCE_IPS)", `10.75.8.101_${echoA.port}`, "10.75.8.101_9080"]);
  const dump = await (await fetch(`${cp.httpUrl}/debug/config_dump?proxy=${encodeURIComponent(SEED_NODE_ID)}`)).json();
  assert.ok(dump.listeners.some((l: any) => l.name === "10.75.8.101_9080"));
  const metrics = await (await fetch(`${cp.httpUrl}/metrics`)).text();
  assert.match(metrics, /^multiplane_connected_proxies 1$/m);
  assert.match(metrics, /^multiplane_xds_streams\{protocol="sotw"\} 1$/m);
  assert.match(metrics, /^multiplane_xds_pushes_total\{type="lds"\} [1-9]/m);
  assert.match(metrics, /^multiplane_xds_acks_total\{type="cds"\} [1-9]/m);
  assert.match(metrics, /^multiplane_xds_push_latency_seconds_count\{type="lds"\} [1-9]/m);
  assert.ok(logs.some((l) => /^push proxy=sidecar~192\.168\.10\.63\S* stream=\d+ type=lds version=\w+ nonce=\d+ resources=7$/.test(l)), logs.join("\n"));
});

// How fast an edit arrives is a benchmark's question (`npm run bench:control`); here only that each
// of three edits in a row arrives. The deadline bounds the wait, it is not a goal.
test("a registry edit reaches Envoy (three edits in a row)", async () => {
  const latencies: number[] = [];
  for (const port of [7001, 7002, 7003]) {
    const extra = `---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: edit}\nspec:\n  hosts: [edit.example]\n  ports: [{number: ${port}, name: tcp}]\n  resolution: STATIC\n  endpoints: [{address: 10.75.8.101}]\n`;
    const t0 = Date.now();
    writeFileSync(join(dir, "services.yaml"), registryYaml(extra));
    const seen = await waitFor(async () => (await envoyListeners(envoy)).get(`10.75.8.101_${port}`)?.state === "active", 15_000, 10);
    latencies.push(Date.now() - t0);
    assert.ok(seen, `listener 10.75.8.101_${port} never reached Envoy`);
  }
  console.log(`    registry edit -> Envoy: ${latencies.join(", ")} ms`);
});

test("a broken registry file changes nothing in Envoy; an HTTP PUT reaches Envoy; a bad PUT does not", async () => {
  const before = [...(await envoyListeners(envoy)).keys()].sort();
  writeFileSync(join(dir, "services.yaml"), registryYaml("---\nkind: ServiceEntry\napiVersion: networking.istio.io/v1\nmetadata: {name: broken}\nspec: {hosts: [x.example], ports: [{number: 1, name: p}], resolution: STATIC, endpoints: [{address: 10.75.8.300}]}\n"));
  assert.ok(await waitFor(() => cp.store.status().lastErrors.length > 0, 2000));
  assert.match(cp.store.status().lastErrors[0]!, /services\.yaml:\d+:\d+: spec\.endpoints\[0\]\.address: "10\.75\.8\.300" is not an IPv4/);
  assert.equal([...(await envoyListeners(envoy)).keys()].sort(), before);
  assert.ok(await acked(cp));

  const body = JSON.stringify({ apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: "api", namespace: "default" },
    spec: { hosts: ["api.example"], ports: [{ number: 7500, name: "tcp" }], resolution: "STATIC", endpoints: [{ address: "10.75.8.101" }] } });
  const put = await fetch(`${cp.httpUrl}/registry/serviceentries/default/api`, { method: "PUT", body, headers: { authorization: `Bearer ${TOKEN}` } });
  assert.is(put.status, 200);
  assert.ok(await waitFor(async () => (await envoyListeners(envoy)).has("10.75.8.101_7500"), 2000));
  const bad = await fetch(`${cp.httpUrl}/registry/serviceentries/default/api2`, { method: "PUT", body: body.replace("7500", "75000").replace('"api"', '"api2"'), headers: { authorization: `Bearer ${TOKEN}` } });
  assert.is(bad.status, 400);
  assert.equal([...(await envoyListeners(envoy)).keys()].sort(), [...before, "0.0.0.0_7500", "10.75.8.101_7500"].sort());
});

test("--legacy-single-ip: Istio 1.0's layout, no inbound listener for service-a, and the decision says why", async () => {
  writeFileSync(join(dir, "services.yaml"), registryYaml());
  const port = await freePort();
  const legacy = await startPlane(true, port);
  const env2 = await startEnvoy(sidecarBootstrap(legacy.xds.port));
  try {
    assert.ok(await acked(legacy));
    const listeners = await envoyListeners(env2);
    assert.not.ok(listeners.has("10.75.8.101_9080"), "no inbound listener for service-a");
    assert.ok(listeners.has("192.168.10.63_9080"), "node.id's IP still counts");
    assert.not.ok((await envoyClusterNames(env2)).includes("inbound|9080|http|service-a.default.svc.cluster.local"));
    const a = legacy.view.decisions(SEED_NODE_ID)!.find((d) => d.entry === "default/service-a")!;
    assert.is(a.direction, "outbound");
    assert.match(a.reason, /^legacy single-IP mode: only node\.id's IP 192\.168\.10\.63 counts and 10\.75\.8\.101 is not it/);
    // The connection for service-a now lands on the outbound listener: service-a's process never sees it.
    // Wait for where it did go (the outbound listener's guard, which knows 10.75.8.101 from INSTANCE_IPS,
    // refuses it) rather than for a fixed time, then check service-a's count did not move.
    await throughVirtual(port, "10.75.8.101", 9080, "x", 1500);
    const refused = await waitFor(async () => ((await env2.stat("wasmcustom.loop_guard.short_circuited")) ?? 0) >= 1, 3000);
    assert.ok(refused, `not refused by the outbound listener's guard: ${JSON.stringify(Object.fromEntries([...(await env2.stats())].filter(([k]) => /loop_guard|0\.0\.0\.0_9080/.test(k))))}`);
    assert.is(echoA.connections, 1, "only the earlier, inbound delivery");
  } finally {
    await env2.stop();
    await legacy.stop();
  }
});

test.run();
