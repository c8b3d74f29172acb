// Across hosts, for real (root only): a control-plane host and two node hosts in network namespaces,
// each node on a management network (192.168.10.0/24) and a data-plane network (10.75.8.0/24):
//
//   cp  192.168.10.1 ─┐ mgmt bridge
//   n1  192.168.10.11 ┤            n1  10.75.8.11 ─┐ data bridge
//   n2  192.168.10.12 ┘            n2  10.75.8.12 ─┘
//
// Everything is the README's "Running across hosts": certificates made with openssl (a CA, the control
// plane's with its IP, each node's with its SPIFFE id and both IPs), `multiplane serve` with mutual TLS
// on 192.168.10.1, `multiplane bootstrap --xds-ca --cert --key` and `multiplane capture install` on each
// node, Envoy as uid 1337. Plaintext xDS on the network address is refused; the nodes fetch the loop
// guard from the control plane over the network (Envoy checks its sha256); service-a (an HTTP port, routed
// by Host) on node 1's data-plane IP is reached from node 2 over the data network and delivered by node 1's
// inbound listener;
// node 1's certificate claiming node 2's IPs is refused, and so is a second Envoy with node 1's id and
// other node IPs, neither changing anything; the control plane's certificate rotated on disk is served
// without a restart; with the control plane killed traffic still flows; restarted (with a new service)
// everything converges. Each process, namespace, veth, bridge and rule is removed afterwards, also when a
// step fails.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash } from "node:crypto";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AGENT_SOURCE, NsAgent } from "../../control/cmd/demo/agent.ts";
import { CleanupRegistry } from "../../control/cmd/demo/cleanup.ts";
import type { SpawnedProcess } from "../../control/cmd/demo/netns.ts";
import { parseAdminStats } from "../../control/cmd/demo/scenario.ts";
import { LOOP_GUARD_WASM, PROJECT_ROOT } from "../../envoy/paths.ts";
import { resolveEnvoy } from "../../envoy/resolve.ts";
import { giveKeyTo, makeCa, makeLeaf, opensslUnavailableReason, type CertPair } from "../support/certs.ts";
import { createHosts, type Hosts } from "../support/hosts.ts";
import { netnsUnavailableReason } from "../support/netns.ts";
import { waitFor } from "../support/net.ts";
import { whenAvailable } from "../support/available.ts";
import { ENVOY_UID, setprivAs } from "../../control/cmd/demo/runner.ts";

const CLI = join(PROJECT_ROOT, "dist", "multiplane.js");
const CP_IP = "192.168.10.1";
const NODES = {
  n1: { mgmt: "192.168.10.11", data: "10.75.8.11", id: "sidecar~192.168.10.11~service-a-1.default~default.svc.cluster.local", sa: "service-a" },
  n2: { mgmt: "192.168.10.12", data: "10.75.8.12", id: "sidecar~192.168.10.12~service-b-1.default~default.svc.cluster.local", sa: "service-b" },
} as const;
type Node = keyof typeof NODES;
const SERVICE_A = "service-a.default.svc.cluster.local";
const SERVICE_B = "service-b.default.svc.cluster.local";
const spiffe = (sa: string) => `spiffe://cluster.local/ns/default/sa/${sa}`;

const registryYaml = (withB: boolean) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: service-a, namespace: default}
spec:
  hosts: [${SERVICE_A}]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: ${NODES.n1.data}}]
${withB ? `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: service-b, namespace: default}
spec:
  hosts: [${SERVICE_B}]
  ports: [{number: 9081, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: ${NODES.n2.data}}]
` : ""}`;

whenAvailable(netnsUnavailableReason() ?? opensslUnavailableReason(), "multiple hosts in network namespaces", (test) => {
  let cleanup: CleanupRegistry;
  let hosts: Hosts;
  let dir: string;
  let certs: { ca: CertPair; cp: CertPair; n1: CertPair; n2: CertPair };
  let cp: SpawnedProcess;
  const agents = {} as Record<"cp" | Node, NsAgent>;
  const envoys = {} as Record<Node, SpawnedProcess>;
  let sha256: string;
  const namespaces: string[] = [];
  const pids: number[] = [];
  const removeDir = () => rmSync(dir, { recursive: true, force: true });

  const startControlPlane = () => {
    cp = hosts.spawn("cp", process.execPath, [CLI, "serve", "--registry", join(dir, "registry"), "--xds-host", CP_IP,
      "--tls-cert", certs.cp.cert, "--tls-key", certs.cp.key, "--client-ca", certs.ca.cert], { label: "control plane" });
    if (cp.child.pid) pids.push(cp.child.pid);
  };
  const cpGet = (path: string) => agents.cp.request(`http://127.0.0.1:15014${path}`, { timeoutMs: 2000 });
  const proxies = async (): Promise<any[]> => {
    const r = await cpGet("/debug/proxies");
    return r.status === 200 ? JSON.parse(r.body!).proxies : [];
  };
  const metric = async (line: RegExp) => Number(line.exec((await cpGet("/metrics")).body ?? "")?.[1] ?? 0);
  const admin = (node: Node, path: string, port = 15000) => agents[node].request(`http://127.0.0.1:${port}${path}`, { timeoutMs: 3000 });
  const stats = async (node: Node, filter: string) => parseAdminStats((await admin(node, `/stats?filter=${encodeURIComponent(filter)}`)).body ?? "");
  const listeners = async (node: Node) => {
    const r = await admin(node, "/config_dump?resource=dynamic_listeners");
    const out = new Map<string, "active" | "warming">();
    for (const c of r.status === 200 ? JSON.parse(r.body!).configs ?? [] : []) {
      if (c.active_state) out.set(c.name, "active");
      else if (c.warming_state) out.set(c.name, "warming");
    }
    return out;
  };
  const allActive = async (node: Node, wanted: string[]) => {
    const l = await listeners(node);
    return wanted.every((n) => l.get(n) === "active") && ![...l.values()].includes("warming");
  };
  const context = async () => `\ncontrol plane:\n${cp?.output().slice(-4000)}\nn1 envoy:\n${envoys.n1?.output().slice(-2000)}\nn2 envoy:\n${envoys.n2?.output().slice(-2000)}\nproxies: ${JSON.stringify(await proxies().catch(() => []))}`;

  function startEnvoy(node: Node, nodeId: string, instanceIps: string, cert: CertPair, adminPort: number): SpawnedProcess {
    const out = join(dir, `${node}-${adminPort}.json`);
    // The README's bootstrap command, run on the node (so --instance-ips auto sees its interfaces).
    hosts.exec(node, process.execPath, [CLI, "bootstrap", "--xds", `${CP_IP}:15010`, "--node-id", nodeId, "--instance-ips", instanceIps,
      "--xds-ca", certs.ca.cert, "--cert", cert.cert, "--key", cert.key, "--admin", `127.0.0.1:${adminPort}`, "--out", out]);
    chmodSync(out, 0o644);
    const p = hosts.spawn(node, "setpriv", [...setprivAs(), resolveEnvoy().path,
      "-c", out, "--concurrency", "1", "-l", "warning", "--disable-hot-restart", "--use-dynamic-base-id"], { label: `envoy ${node}` });
    if (p.child.pid) pids.push(p.child.pid);
    return p;
  }

  test.before(async () => {
    cleanup = new CleanupRegistry();
    sha256 = createHash("sha256").update(readFileSync(LOOP_GUARD_WASM)).digest("hex");
    dir = mkdtempSync(join(tmpdir(), "multiplane-hosts-"));
    chmodSync(dir, 0o755); // Envoy runs as uid 1337 and reads its bootstrap and certificates from here
    cleanup.add(removeDir);
    hosts = createHosts(cleanup, [
      { name: "cp", interfaces: { mgmt: `${CP_IP}/24` } },
      { name: "n1", interfaces: { mgmt: `${NODES.n1.mgmt}/24`, data: `${NODES.n1.data}/24` } },
      { name: "n2", interfaces: { mgmt: `${NODES.n2.mgmt}/24`, data: `${NODES.n2.data}/24` } },
    ]);
    namespaces.push(...hosts.namespaces());
    const ca = makeCa(dir);
    certs = {
      ca,
      cp: makeLeaf(dir, ca, "control-plane", { ips: [CP_IP] }),
      n1: makeLeaf(dir, ca, "n1", { uris: [spiffe(NODES.n1.sa)], ips: [NODES.n1.mgmt, NODES.n1.data] }),
      n2: makeLeaf(dir, ca, "n2", { uris: [spiffe(NODES.n2.sa)], ips: [NODES.n2.mgmt, NODES.n2.data] }),
    };
    giveKeyTo(certs.n1, ENVOY_UID);
    giveKeyTo(certs.n2, ENVOY_UID);
    mkdirSync(join(dir, "registry"));
    writeFileSync(join(dir, "registry", "services.yaml"), registryYaml(false));

    for (const h of ["cp", "n1", "n2"] as const) agents[h] = new NsAgent(hosts.spawn(h, process.execPath, ["-e", AGENT_SOURCE], { label: `agent ${h}` }));
    // service-a's process on node 1, service-b's on node 2, on loopback: only Envoy's inbound listeners reach them.
    await agents.n1.httpServer("127.0.0.1", 9080, "hello from service-a on n1\n");
    await agents.n2.httpServer("127.0.0.1", 9081, "hello from service-b on n2\n");

    startControlPlane();
    assert.ok(await waitFor(async () => cp.exited() || (await cpGet("/readyz")).status === 200, 15000) && !cp.exited(), `control plane did not start${await context()}`);
    for (const node of ["n1", "n2"] as const) {
      hosts.exec(node, process.execPath, [CLI, "capture", "install"]);
      envoys[node] = startEnvoy(node, NODES[node].id, "auto", certs[node], 15000);
    }
  });

  test.after(async () => {
    await Promise.all(Object.values(agents).map((a) => a.stop().catch(() => {})));
    await hosts?.destroy();
    cleanup.close();
  });

  test("plaintext xDS on the control plane's network address is refused unless --insecure-xds", async () => {
    const plain = hosts.spawn("cp", process.execPath, [CLI, "serve", "--registry", join(dir, "registry"), "--xds-host", CP_IP, "--xds-port", "0", "--http-port", "0"], { label: "plaintext serve" });
    assert.ok(await waitFor(() => plain.exited(), 10000), plain.output());
    assert.is(plain.exitInfo()?.code, 1);
    assert.match(plain.output(), `xDS on ${CP_IP}:0 would be plaintext and unauthenticated outside loopback: give --tls-cert and --tls-key`);
  });

  test("both nodes fetch the loop guard from the control plane over mutual TLS, verify its sha256, and run it", async () => {
    const ok = await waitFor(async () => (await allActive("n1", ["virtual", "0.0.0.0_9080", `${NODES.n1.data}_9080`])) && (await allActive("n2", ["virtual", "0.0.0.0_9080"])), 30000, 200);
    assert.ok(ok, `listeners not active${await context()}`);
    for (const node of ["n1", "n2"] as const) {
      const ecds = JSON.parse((await admin(node, "/config_dump?resource=ecds_filters")).body!).configs[0].ecds_filter.typed_config.config;
      assert.equal(ecds.vm_config.code.remote.http_uri.uri, `https://${CP_IP}:15013/loop-guard.wasm`);
      assert.is(ecds.vm_config.code.remote.sha256, sha256, "Envoy was told the module's sha256");
      assert.equal(JSON.parse(ecds.configuration.value).node_ips, [NODES[node].mgmt, NODES[node].data]);
      const s = await stats(node, "wasm\\.remote_load|guard-wasm.*(ssl\\.handshake|upstream_rq_200)");
      assert.ok((s.get("wasm.remote_load_fetch_successes") ?? 0) >= 1, `fetched and verified: ${JSON.stringify([...s])}`);
      assert.ok((s.get("cluster.multiplane-guard-wasm.ssl.handshake") ?? 0) >= 1, "over TLS");
      // The control plane served it to this node's management address, to its certificate.
      assert.match(cp.output(), `loop guard module: GET /loop-guard.wasm from ${NODES[node].mgmt} (URI:${spiffe(NODES[node].sa)}`);
    }
    const byId = new Map((await proxies()).map((p) => [p.id, p]));
    for (const node of ["n1", "n2"] as const) {
      const c = byId.get(NODES[node].id)?.connections?.[0];
      assert.ok(c, `proxy ${NODES[node].id} connected${await context()}`);
      assert.equal([c.peerIdentity, c.remoteAddress, c.via, c.guardModule.fetched.status, c.guardModule.sha256], [spiffe(NODES[node].sa), NODES[node].mgmt, CP_IP, 200, sha256]);
      assert.equal(c.nodeIps, [NODES[node].mgmt, NODES[node].data]);
    }
  });

  let dataRxBefore = 0;
  test("node 2 reaches service-a on node 1's data-plane IP over the data network; node 1's inbound listener delivers it", async () => {
    dataRxBefore = Number(hosts.exec("n1", "cat", [`/sys/class/net/${hosts.ifaces.n1!.data}/statistics/rx_packets`]).trim());
    const r = await agents.n2.request(`http://${NODES.n1.data}:9080/`, { timeoutMs: 5000, headers: { host: SERVICE_A } });
    assert.is(r.status, 200, `${JSON.stringify(r)}${await context()}`);
    assert.is(r.body, "hello from service-a on n1\n");
    const n2 = await stats("n2", `outbound\\|9080\\|\\|${SERVICE_A}.upstream_cx_total|wasmcustom.loop_guard.connections_checked`);
    assert.is(n2.get(`cluster.outbound|9080||${SERVICE_A}.upstream_cx_total`), 1, "node 2's Envoy sent it outbound");
    assert.is(n2.get("wasmcustom.loop_guard.connections_checked"), 1, "through node 2's HTTP loop guard (one request)");
    const n1 = await stats("n1", `inbound\\|9080\\|http\\|${SERVICE_A}.upstream_cx_total|wasmcustom.loop_guard`);
    assert.is(n1.get(`cluster.inbound|9080|http|${SERVICE_A}.upstream_cx_total`), 1, "node 1's inbound listener delivered it");
    assert.is(n1.get("wasmcustom.loop_guard.connections_checked") ?? 0, 0, "inbound: not through node 1's guard");
    const rx = Number(hosts.exec("n1", "cat", [`/sys/class/net/${hosts.ifaces.n1!.data}/statistics/rx_packets`]).trim());
    assert.ok(rx > dataRxBefore, "packets arrived on node 1's data-plane interface");
  });

  test("an Envoy with node 1's certificate claiming node 2's IPs is refused; node 2 keeps its config", async () => {
    const before = await metric(/^multiplane_xds_refusals_total\{reason="node_ip"\} (\d+)$/m);
    const impostor = startEnvoy("n1", NODES.n2.id, `${NODES.n2.mgmt},${NODES.n2.data}`, certs.n1, 15100);
    try {
      assert.ok(await waitFor(async () => (await metric(/^multiplane_xds_refusals_total\{reason="node_ip"\} (\d+)$/m)) > before, 20000), `no refusal${await context()}\nimpostor:\n${impostor.output().slice(-2000)}`);
      assert.ok(await waitFor(() => /gRPC config stream to xds-grpc closed.*: 7, node%20IPs%20192\.168\.10\.12%20\(node\.id\)/.test(impostor.output()), 10000), impostor.output().slice(-2000));
      assert.match(cp.output(), new RegExp(`refused peer=\\S+ stream=\\d+ protocol=\\w+ proxy=${NODES.n2.id.replace(/[.~]/g, "\\$&")} status=PERMISSION_DENIED`));
      const n2 = (await proxies()).find((p) => p.id === NODES.n2.id);
      assert.is(n2.connections.length, 1, "only node 2's own stream");
      assert.is(n2.connections[0].peerIdentity, spiffe(NODES.n2.sa));
      const impostorListeners = await agents.n1.request("http://127.0.0.1:15100/config_dump?resource=dynamic_listeners", { timeoutMs: 3000 });
      assert.equal(JSON.parse(impostorListeners.body!).configs ?? [], [], "the impostor got no config");
    } finally {
      await impostor.stop(2000);
    }
  });

  test("a second Envoy for node 1, started by mistake with --instance-ips none, is refused; node 1's config is untouched", async () => {
    const conflicts = () => metric(/^multiplane_xds_refusals_total\{reason="conflict"\} (\d+)$/m);
    const before = await conflicts();
    const n1Guard = async () => JSON.parse(JSON.parse((await admin("n1", "/config_dump?resource=ecds_filters")).body!).configs[0].ecds_filter.typed_config.config.configuration.value).node_ips;
    const n1Before = { listeners: [...(await listeners("n1")).keys()].sort(), guard: await n1Guard(), lds: (await proxies()).find((p) => p.id === NODES.n1.id).types.lds.ackedVersion };
    // Same certificate, same node id, but other node IPs than node 1's open stream.
    const second = startEnvoy("n1", NODES.n1.id, "none", certs.n1, 15102);
    try {
      assert.ok(await waitFor(async () => (await conflicts()) > before, 20000), `${await context()}\n${second.output().slice(-1500)}`);
      assert.ok(await waitFor(() => second.output().split("\n").some((l) => /closed.*: 7, /.test(l) && decodeURIComponent(l).includes(`node id ${NODES.n1.id} is already connected and this stream differs: node IPs 192.168.10.11 differ`)), 10000), second.output().slice(-2000));
      const n1 = (await proxies()).find((p) => p.id === NODES.n1.id);
      assert.is(n1.connections.length, 1, "only node 1's own stream");
      assert.equal({ listeners: [...(await listeners("n1")).keys()].sort(), guard: await n1Guard(), lds: n1.types.lds.ackedVersion }, n1Before, "node 1's config is untouched");
    } finally {
      await second.stop(2000);
    }
  });

  test("the control plane's certificate, rotated on disk, is served without a restart (xDS and the module server)", async () => {
    // What a TLS client on node 1 (presenting node 1's certificate) is shown, by openssl.
    const servedSubject = (port: number) => spawnSync("ip", ["netns", "exec", hosts.ns.n1!, "sh", "-c",
      `openssl s_client -connect ${CP_IP}:${port} -cert "$0" -key "$1" -CAfile "$2" -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -subject`,
      certs.n1.cert, certs.n1.key, certs.ca.cert], { encoding: "utf8", timeout: 10000 }).stdout;
    const next = makeLeaf(dir, certs.ca, "control-plane-2", { ips: [CP_IP] });
    writeFileSync(certs.cp.cert, readFileSync(next.cert));
    writeFileSync(certs.cp.key, readFileSync(next.key));
    assert.ok(await waitFor(() => /TLS certificate reloaded from .*CN=control-plane-2/.test(cp.output()), 10000), cp.output().slice(-2000));
    for (const port of [15010, 15013]) {
      const peer = servedSubject(port);
      assert.match(peer, /CN ?= ?control-plane-2/, `port ${port}: ${peer}`);
    }
    // The Envoys connected before keep working on the connections they have.
    const r = await agents.n2.request(`http://${NODES.n1.data}:9080/`, { timeoutMs: 5000, headers: { host: SERVICE_A } });
    assert.is(r.status, 200, JSON.stringify(r));
  });

  test("the control plane killed: traffic keeps flowing on the config the Envoys hold", async () => {
    cp.child.kill("SIGKILL");
    assert.ok(await waitFor(() => cp.exited(), 5000));
    for (const node of ["n1", "n2"] as const) {
      assert.ok(await waitFor(async () => (await stats(node, "^control_plane.connected_state$")).get("control_plane.connected_state") === 0, 10000), `${node} still connected`);
    }
    const r = await agents.n2.request(`http://${NODES.n1.data}:9080/`, { timeoutMs: 5000, headers: { host: SERVICE_A } });
    assert.is(r.status, 200, JSON.stringify(r));
  });

  test("restarted, with a new service in the registry: both Envoys reconnect and converge", async () => {
    writeFileSync(join(dir, "registry", "services.yaml"), registryYaml(true));
    startControlPlane();
    const converged = await waitFor(async () => {
      const ps = await proxies();
      const acked = [NODES.n1.id, NODES.n2.id].every((id) => {
        const c = ps.find((p) => p.id === id)?.connections;
        return c?.length === 1 && ["lds", "cds", "eds", "rds", "ecds"].every((t) => c[0].types[t]?.state === "ACK");
      });
      return acked && (await allActive("n1", ["0.0.0.0_9081", `${NODES.n1.data}_9080`])) && (await allActive("n2", [`${NODES.n2.data}_9081`, "0.0.0.0_9080"]));
    }, 60000, 250);
    assert.ok(converged, `did not converge${await context()}`);
    const b = await agents.n1.request(`http://${NODES.n2.data}:9081/`, { timeoutMs: 5000, headers: { host: SERVICE_B } });
    assert.equal([b.status, b.body], [200, "hello from service-b on n2\n"], JSON.stringify(b));
    const a = await agents.n2.request(`http://${NODES.n1.data}:9080/`, { timeoutMs: 5000, headers: { host: SERVICE_A } });
    assert.is(a.status, 200, JSON.stringify(a));
  });

  test("torn down: no namespace, process, veth or rule left", async () => {
    await Promise.all(Object.values(agents).map((a) => a.stop().catch(() => {})));
    await hosts.destroy();
    removeDir();
    const left = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
    assert.is(namespaces.length, 4);
    for (const ns of namespaces) assert.not.match(left, ns, `namespace ${ns} still exists`);
    for (const pid of pids) {
      let running = true;
      try { process.kill(pid, 0); } catch { running = false; }
      assert.not.ok(running, `process ${pid} still running`);
    }
    assert.not.ok(existsSync(dir), `${dir} still exists`);
  });
});

test.run();
