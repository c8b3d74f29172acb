// Planes on the wire (root only), with the seed's node: management 192.168.10.63, data 10.75.8.101, its
// default route via management. `multiplane serve --planes examples/planes.yaml` (the README's example)
// and Envoy (uid 1337, Istio 1.0 capture) run on the node; a router joins management, data and a far
// data-plane network 172.20.0.0/16:
//
//   node   192.168.10.63 ─┬─ mgmt ─┬─ rt 192.168.10.1      msrv 192.168.10.20 (management service)
//          10.75.8.101   ─┼─ data ─┴─ rt 10.75.8.1
//   peer   192.168.10.64 ─┘          rt 172.20.0.1 ── far ── dsrv 172.20.0.5 (data-plane service)
//
// The kernel alone would send to 172.20.0.5 from 192.168.10.63 (the default route); the data plane's
// cluster binds 10.75.8.101 and marks DSCP 46, counted by iptables `-m dscp` rules in the server's
// namespace, and the server sees the source. A second Envoy on `peer`, with no data-plane IP, gets
// none of the data plane's services. Every namespace and process is removed afterwards.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AGENT_SOURCE, NsAgent } from "../../control/cmd/demo/agent.ts";
import { CleanupRegistry } from "../../control/cmd/demo/cleanup.ts";
import type { SpawnedProcess } from "../../control/cmd/demo/netns.ts";
import { setprivAs } from "../../control/cmd/demo/runner.ts";
import { parseAdminStats } from "../../control/cmd/demo/scenario.ts";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { resolveEnvoy } from "../../envoy/resolve.ts";
import { createHosts, type Hosts } from "../support/hosts.ts";
import { netnsUnavailableReason } from "../support/netns.ts";
import { waitFor } from "../support/net.ts";
import { whenAvailable } from "../support/available.ts";
import { envoyValidates } from "../support/envoy-validate.ts";

const CLI = join(PROJECT_ROOT, "dist", "multiplane.js");
const PLANES_FILE = join(PROJECT_ROOT, "examples", "planes.yaml");
const NODE = { mgmt: "192.168.10.63", data: "10.75.8.101", id: "sidecar~192.168.10.63~app-1.default~default.svc.cluster.local" };
const OTHER = { mgmt: "192.168.10.64", id: "sidecar~192.168.10.64~other-1.default~default.svc.cluster.local" };
const DATA_SERVER = "172.20.0.5";
const MGMT_SERVER = "192.168.10.20";

const se = (name: string, port: number, address: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${name}.example]
  ports: [{number: ${port}, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: ${address}}]
---
`;
const REGISTRY = se("media", 9000, DATA_SERVER) + se("console", 9001, MGMT_SERVER) + se("service-a", 9080, NODE.data);

whenAvailable(netnsUnavailableReason(), "planes in network namespaces", (test) => {
  let cleanup: CleanupRegistry;
  let hosts: Hosts;
  let dir: string;
  let cp: SpawnedProcess;
  const agents = {} as Record<"node" | "peer" | "dsrv" | "msrv", NsAgent>;
  const envoys = {} as Record<"node" | "peer", SpawnedProcess>;

  const admin = (h: "node" | "peer", path: string) => agents[h].request(`http://127.0.0.1:15000${path}`, { timeoutMs: 3000 });
  const dump = async (h: "node" | "peer", resource: string): Promise<any[]> => {
    const r = await admin(h, `/config_dump?resource=${resource}`);
    return r.status === 200 ? JSON.parse(r.body!).configs ?? [] : [];
  };
  const clusterNames = async (h: "node" | "peer") => (await dump(h, "dynamic_active_clusters")).map((c) => c.cluster.name as string);
  const listenerNames = async (h: "node" | "peer") => (await dump(h, "dynamic_listeners")).filter((l) => l.active_state).map((l) => l.name as string);
  const cpGet = async (path: string) => agents.node.request(`http://127.0.0.1:15014${path}`, { timeoutMs: 3000 });
  const context = async () => `\ncontrol plane:\n${cp?.output().slice(-3000)}\nnode envoy:\n${envoys.node?.output().slice(-1500)}\npeer envoy:\n${envoys.peer?.output().slice(-1500)}\nproxies: ${(await cpGet("/debug/proxies")).body?.slice(0, 3000)}`;
  /** Packets to `port` in `host`'s INPUT chain: [with DSCP `dscp`, with any other]. */
  const dscpCounts = (host: string, port: number): [number, number] => {
    const out = hosts.exec(host, "iptables", ["-w", "-L", "INPUT", "-v", "-n", "-x"]);
    const counts = out.split("\n").filter((l) => l.includes(`dpt:${port}`)).map((l) => Number(l.trim().split(/\s+/)[0]));
    return [counts[0] ?? -1, counts[1] ?? -1];
  };
  const countDscp = (host: string, port: number, dscp: number) => {
    hosts.exec(host, "iptables", ["-w", "-A", "INPUT", "-p", "tcp", "--dport", String(port), "-m", "dscp", "--dscp", String(dscp)]);
    hosts.exec(host, "iptables", ["-w", "-A", "INPUT", "-p", "tcp", "--dport", String(port), "-m", "dscp", "!", "--dscp", String(dscp)]);
  };

  function startEnvoy(h: "node" | "peer", nodeId: string, xds: string): SpawnedProcess {
    const out = join(dir, `${h}.json`);
    hosts.exec(h, process.execPath, [CLI, "bootstrap", "--xds", xds, "--node-id", nodeId, "--instance-ips", "auto", "--out", out]);
    chmodSync(out, 0o644);
    return hosts.spawn(h, "setpriv", [...setprivAs(), resolveEnvoy().path, "-c", out, "--concurrency", "1", "-l", "warning", "--disable-hot-restart", "--use-dynamic-base-id"], { label: `envoy ${h}` });
  }

  test.before(async () => {
    cleanup = new CleanupRegistry();
    dir = mkdtempSync(join(tmpdir(), "multiplane-planes-"));
    chmodSync(dir, 0o755); // Envoy (uid 1337) reads its bootstrap here
    cleanup.add(() => rmSync(dir, { recursive: true, force: true }));
    hosts = createHosts(cleanup, [
      { name: "rt", interfaces: { mgmt: "192.168.10.1/24", data: "10.75.8.1/24", far: "172.20.0.1/16" } },
      { name: "node", interfaces: { mgmt: `${NODE.mgmt}/24`, data: `${NODE.data}/24` } },
      { name: "peer", interfaces: { mgmt: `${OTHER.mgmt}/24` } },
      { name: "dsrv", interfaces: { far: `${DATA_SERVER}/16` } },
      { name: "msrv", interfaces: { mgmt: `${MGMT_SERVER}/24` } },
    ]);
    hosts.exec("rt", "sysctl", ["-qw", "net.ipv4.ip_forward=1"]);
    // The node's packets from its data IP leave by the management interface (its default route): the
    // router must not drop them for arriving on the "wrong" side.
    for (const h of ["rt", "node"]) hosts.exec(h, "sysctl", ["-qw", "net.ipv4.conf.all.rp_filter=0"]);
    for (const [h, iface] of [["rt", "mgmt"], ["rt", "data"], ["rt", "far"], ["node", "mgmt"], ["node", "data"]] as const) {
      hosts.exec(h, "sysctl", ["-qw", `net.ipv4.conf.${hosts.ifaces[h]![iface]}.rp_filter=0`]);
    }
    hosts.exec("node", "ip", ["route", "add", "default", "via", "192.168.10.1"]);
    hosts.exec("peer", "ip", ["route", "add", "default", "via", "192.168.10.1"]);
    hosts.exec("dsrv", "ip", ["route", "add", "default", "via", "172.20.0.1"]);
    hosts.exec("msrv", "ip", ["route", "add", "default", "via", "192.168.10.1"]);
    countDscp("dsrv", 9000, 46);
    countDscp("msrv", 9001, 0);

    for (const h of ["node", "dsrv", "msrv"] as const) agents[h] = new NsAgent(hosts.spawn(h, process.execPath, ["-e", AGENT_SOURCE], { label: `agent ${h}` }));
    agents.peer = new NsAgent(hosts.spawn("peer", process.execPath, ["-e", AGENT_SOURCE], { label: "agent peer" }));
    await agents.dsrv.httpServer("0.0.0.0", 9000, "media from {peer}\n");
    await agents.msrv.httpServer("0.0.0.0", 9001, "console from {peer}\n");
    await agents.node.httpServer("127.0.0.1", 9080, "service-a\n");

    writeFileSync(join(dir, "registry.yaml"), REGISTRY);
    cp = hosts.spawn("node", process.execPath, [CLI, "serve", "--registry", join(dir, "registry.yaml"), "--planes", PLANES_FILE, "--xds-host", "0.0.0.0", "--insecure-xds"], { label: "control plane" });
    assert.ok(await waitFor(async () => cp.exited() || (await cpGet("/readyz")).status === 200, 20000) && !cp.exited(), `control plane did not start${await context()}`);
    // The control plane runs on the node too: its xDS and module ports are not for the sidecar.
    hosts.exec("node", process.execPath, [CLI, "capture", "install", "--exclude-inbound-ports", "15010,15013"]);
    envoys.node = startEnvoy("node", NODE.id, "127.0.0.1:15010");
    envoys.peer = startEnvoy("peer", OTHER.id, `${NODE.mgmt}:15010`);
    const ready = await waitFor(async () => (await listenerNames("node")).includes(`${NODE.data}_9080`) && (await listenerNames("peer")).includes("0.0.0.0_9001"), 30000, 200);
    assert.ok(ready, `listeners not active${await context()}`);
  });

  test.after(async () => {
    await Promise.all(Object.values(agents).map((a) => a.stop().catch(() => {})));
    await hosts?.destroy();
    cleanup?.close();
  });

  test("the control plane reads the README's planes file and every proxy ACKs what it is sent", async () => {
    assert.match(cp.output(), "planes: data (10.75.8.0/24, 172.20.0.0/16, DSCP 46, source bound, isolated); management (192.168.10.0/24)");
    const proxies = JSON.parse((await cpGet("/debug/proxies")).body!).proxies;
    assert.is(proxies.length, 2, await context());
    for (const p of proxies) {
      const c = p.connections[0];
      assert.ok(c && !JSON.stringify(c).includes("nack"), `${p.id}: ${JSON.stringify(c)}`);
    }
  });

  test("the kernel alone would reach the data-plane service from the management address", () => {
    assert.match(hosts.exec("node", "ip", ["route", "get", DATA_SERVER]), `src ${NODE.mgmt}`);
  });

  test("a data-plane request leaves from 10.75.8.101, every packet marked DSCP 46", async () => {
    const r = await agents.node.request(`http://${DATA_SERVER}:9000/`, { timeoutMs: 5000 });
    assert.is(r.status, 200, `${JSON.stringify(r)}${await context()}`);
    assert.is(r.body, `media from ${NODE.data}\n`);
    const [marked, other] = dscpCounts("dsrv", 9000);
    assert.ok(marked >= 3, `packets with DSCP 46: ${marked}`);
    assert.is(other, 0, "packets without DSCP 46");
    // The cluster as Envoy holds it: the shared bytes' DSCP merged with the source appended for this proxy.
    const media = (await dump("node", "dynamic_active_clusters")).find((c) => c.cluster.name === "outbound|9000||media.example").cluster;
    assert.equal(media.upstream_bind_config.source_address, { address: NODE.data, port_value: 0 });
    assert.equal(media.upstream_bind_config.socket_options.map((o: any) => [o.level ?? "0", o.name, o.int_value]), [["0", "1", "184"]], "IP_TOS once: merged, not repeated");
    assert.equal([media.connect_timeout, media.circuit_breakers.thresholds[0].max_connections], ["0.250s", 10000], "the plane's connect timeout and limit");
    const s = parseAdminStats((await admin("node", "/stats?filter=media")).body ?? "");
    assert.ok((s.get("cluster.outbound|9000||media.example.upstream_cx_total") ?? 0) >= 1, "through the data plane's cluster");
  });

  test("a management-plane request leaves from 192.168.10.63 with DSCP 0", async () => {
    const r = await agents.node.request(`http://${MGMT_SERVER}:9001/`, { timeoutMs: 5000 });
    assert.is(r.status, 200, `${JSON.stringify(r)}${await context()}`);
    assert.is(r.body, `console from ${NODE.mgmt}\n`);
    const [zero, other] = dscpCounts("msrv", 9001);
    assert.ok(zero >= 3, `packets with DSCP 0: ${zero}`);
    assert.is(other, 0, "packets with another DSCP");
  });

  test("a proxy with no data-plane IP receives none of the data plane's services", async () => {
    const clusters = await clusterNames("peer");
    assert.ok(clusters.includes("outbound|9001||console.example"), clusters.join(", "));
    assert.not.ok(clusters.some((c) => c.includes("media.example") || c.includes("service-a")), clusters.join(", "));
    const listeners = await listenerNames("peer");
    assert.not.ok(listeners.includes("0.0.0.0_9000") || listeners.includes("0.0.0.0_9080"), listeners.join(", "));
    const eds = JSON.stringify(JSON.parse((await admin("peer", "/config_dump?include_eds")).body ?? "{}"));
    assert.not.ok(eds.includes(DATA_SERVER) || eds.includes(NODE.data), "no data-plane endpoint");
    const d = JSON.parse((await cpGet(`/debug/decisions?proxy=${encodeURIComponent(OTHER.id)}`)).body!).decisions.find((x: any) => x.host === "media.example");
    assert.match(d.note, "isolated plane");
  });

  test("the seed's fix and the loop guard still hold: the node's own data IP is served inbound, the guard knows both IPs", async () => {
    const r = await agents.node.request(`http://${NODE.data}:9080/`, { timeoutMs: 5000 });
    assert.is(r.status, 200, `${JSON.stringify(r)}${await context()}`);
    assert.is(r.body, "service-a\n");
    const ecds = (await dump("node", "ecds_filters"))[0].ecds_filter.typed_config.config;
    assert.equal(JSON.parse(ecds.configuration.value).node_ips, [NODE.mgmt, NODE.data]);
    const s = parseAdminStats((await admin("node", "/stats?filter=loop_guard")).body ?? "");
    assert.is([...s].filter(([k]) => k.includes("short_circuited")).reduce((n, [, v]) => n + v, 0), 0, "nothing short-circuited");
  });

  test("envoy --mode validate accepts the node's configuration as the control plane generated it", async () => {
    const resources = JSON.parse((await cpGet(`/debug/config_dump?proxy=${encodeURIComponent(NODE.id)}`)).body!);
    const v = envoyValidates(resources);
    assert.ok(v.ok, v.output);
  });
});

test.run();
