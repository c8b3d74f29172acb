// Node IPs that follow the interfaces (root only): `multiplane agent` beside real Envoys in network
// namespaces.
// 1. The seed's node behind Istio 1.0's capture, Envoy (uid 1337) started knowing only 192.168.10.63:
//    `ip addr add 10.75.8.101/24` on the data NIC makes Service A (registered at 10.75.8.101:9080)
//    inbound within 1 s, and the request from the node is answered 200 by Service A with the guard's
//    self_destined and self_learned both 0 (it never had to act); `ip addr del` turns it back.
// 2. Two nodes over mutual TLS (the seed's node and its LAN peer): a floating VIP moved from one node
//    to the other is followed within 1 s by both Envoys; a hostile agent on the second node claiming
//    the first node's proxy is refused, counted, and changes nothing.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AGENT_SOURCE, NsAgent } from "../../control/cmd/demo/agent.ts";
import { activeListeners } from "../../control/cmd/demo/runner.ts";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { resolveEnvoy } from "../../envoy/resolve.ts";
import { whenAvailable } from "../support/available.ts";
import { assertNothingLeftBehind, assertServiceAServedUnguarded, NODE_PORTS, seedTopology, startCapturedNode } from "../support/captured-node.ts";
import { makeCa, makeLeaf, opensslUnavailableReason } from "../support/certs.ts";
import { waitFor } from "../support/net.ts";
import { netnsUnavailableReason, SEED, type SpawnedProcess, type Topology } from "../support/netns.ts";

const CLI = join(PROJECT_ROOT, "dist", "multiplane.js");
const SEED_REGISTRY = readFileSync(join(PROJECT_ROOT, "examples", "registry", "seed.yaml"), "utf8");
const NODE_ID = `sidecar~${SEED.nodeIp1}~a-1.default~default.svc.cluster.local`;

/** Envoy's active listeners, asked in its namespace. */
async function listenersOf(agent: NsAgent): Promise<string[]> {
  const r = await agent.request(`http://127.0.0.1:${NODE_PORTS.admin}/config_dump?resource=dynamic_listeners`, { timeoutMs: 2000 });
  return r.status === 200 && r.body ? activeListeners(r.body).active : [];
}

/** Milliseconds until `cond` holds (polled every 10 ms), or undefined after `timeoutMs`. */
async function timeUntil(cond: () => Promise<boolean>, timeoutMs = 5000): Promise<number | undefined> {
  const t0 = performance.now();
  return (await waitFor(cond, timeoutMs, 10)) ? performance.now() - t0 : undefined;
}

function startAgent(t: Topology, ns: string, args: string[], pids: number[], label = "multiplane agent"): SpawnedProcess {
  const agent = t.spawn(ns, process.execPath, [CLI, "agent", ...args], { label });
  if (agent.child.pid) pids.push(agent.child.pid);
  return agent;
}

whenAvailable(netnsUnavailableReason() ?? opensslUnavailableReason(), "node agent in network namespaces", (test) => {
  let namespaces: string[] = [];
  const pids: number[] = [];

  test("the seed's node gains 10.75.8.101: Service A turns inbound within 1 s and answers 200, guard counters 0; and back", async () => {
    const { t, dir, close } = seedTopology("mp-agent-");
    namespaces.push(...Object.values(t.ns));
    try {
      // The node starts with only its management address.
      t.exec(t.ns.node, "ip", ["addr", "del", `${SEED.nodeIp2}/${SEED.prefix}`, "dev", t.ifaces.nodeClient]);
      const captured = await startCapturedNode(t, dir, { registry: SEED_REGISTRY, nodeId: NODE_ID, instanceIps: "auto", wanted: ["virtual"], pids });
      const { node, ctx } = captured;
      assert.not.ok((await listenersOf(node)).includes(`${SEED.nodeIp2}_9080`), `only ${SEED.nodeIp1} at the start${ctx()}`);
      const agent = startAgent(t, t.ns.node, ["--xds", `127.0.0.1:${NODE_PORTS.xds}`, "--node-id", NODE_ID], pids);
      assert.ok(await waitFor(() => agent.output().includes("applied to 1 proxy stream"), 10000), agent.output());
      await node.httpServer("127.0.0.1", 9080, "service A\n");

      t.exec(t.ns.node, "ip", ["addr", "add", `${SEED.nodeIp2}/${SEED.prefix}`, "dev", t.ifaces.nodeClient]);
      const added = await timeUntil(async () => (await listenersOf(node)).includes(`${SEED.nodeIp2}_9080`));
      console.log(`    ip addr add -> inbound listener active in Envoy: ${added?.toFixed(0)} ms`);
      assert.ok(added !== undefined && added < 1000, `inbound listener within 1 s, took ${added} ms\nagent: ${agent.output()}${ctx()}`);
      await assertServiceAServedUnguarded(captured, SEED.nodeIp2);
      const decisions = await node.request(`http://127.0.0.1:${NODE_PORTS.http}/debug/decisions?proxy=${encodeURIComponent(NODE_ID)}`);
      assert.match(decisions.body ?? "", /10\.75\.8\.101 is node IP \d of 2 \(from node agent 127\.0\.0\.1, reported /);
      // The loop guard's config carries the new set too.
      const ecds = JSON.parse((await node.request(`http://127.0.0.1:${NODE_PORTS.admin}/config_dump?resource=ecds_filters`)).body ?? "{}");
      const guardIps = (ecds.configs ?? []).map((c: any) => JSON.parse(c.ecds_filter.typed_config.config.configuration.value).node_ips);
      assert.ok(guardIps.length > 0 && guardIps.every((ips: string[]) => ips.includes(SEED.nodeIp2)), `the guard's node IPs include the new address: ${JSON.stringify(guardIps)}`);

      t.exec(t.ns.node, "ip", ["addr", "del", `${SEED.nodeIp2}/${SEED.prefix}`, "dev", t.ifaces.nodeClient]);
      const removed = await timeUntil(async () => !(await listenersOf(node)).includes(`${SEED.nodeIp2}_9080`));
      console.log(`    ip addr del -> inbound listener gone: ${removed?.toFixed(0)} ms`);
      assert.ok(removed !== undefined && removed < 1000, `listener gone within 1 s, took ${removed} ms${ctx()}`);
    } finally {
      await close();
    }
  });

  test("a floating VIP moved between two nodes is followed within 1 s; a hostile agent claiming the other node's proxy is refused", async () => {
    const { t, dir, close } = seedTopology("mp-agent-vip-");
    namespaces.push(...Object.values(t.ns));
    // Node A: the seed's node (192.168.10.63, the control plane runs there); node B: its LAN peer (192.168.10.1).
    const A = { ns: t.ns.node, ip: SEED.nodeIp1, dev: t.ifaces.nodeLan, id: `router~${SEED.nodeIp1}~node-a.default~default.svc.cluster.local` };
    const B = { ns: t.ns.lan, ip: SEED.lanPeerIp, dev: t.ifaces.lan, id: `router~${SEED.lanPeerIp}~node-b.default~default.svc.cluster.local` };
    const VIP = "10.75.9.200";
    try {
      const ca = makeCa(dir);
      const leaf = (name: string, ips: string[], uris: string[] = []) => makeLeaf(dir, ca, name, { ips, uris });
      const server = leaf("control-plane", [A.ip]);
      const registry = join(dir, "vip.yaml");
      writeFileSync(registry, `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vip-service, namespace: default}
spec:
  hosts: [vip.default.svc.cluster.local]
  ports: [{number: 9090, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: ${VIP}}]
`);
      const cp = t.spawn(A.ns, process.execPath, [CLI, "serve", "--registry", registry, "--xds-host", A.ip, "--xds-port", String(NODE_PORTS.xds),
        "--http-port", String(NODE_PORTS.http), "--no-loop-guard", "--tls-cert", server.cert, "--tls-key", server.key, "--client-ca", ca.cert,
        "--agent-floating-ips", `${VIP}/32`], { label: "control plane" });
      if (cp.child.pid) pids.push(cp.child.pid);
      const agents = { A: new NsAgent(t.spawn(A.ns, process.execPath, ["-e", AGENT_SOURCE], { label: "ns agent A" })), B: new NsAgent(t.spawn(B.ns, process.execPath, ["-e", AGENT_SOURCE], { label: "ns agent B" })) };
      assert.ok(await waitFor(async () => cp.exited() || (await agents.A.request(`http://127.0.0.1:${NODE_PORTS.http}/readyz`, { timeoutMs: 500 })).status === 200, 10000), cp.output());
      const metric = async (series: string) => Number(new RegExp(`^${series.replace(/[{}"]/g, (c) => `\\${c}`)} (\\d+)$`, "m").exec((await agents.A.request(`http://127.0.0.1:${NODE_PORTS.http}/metrics`)).body ?? "")?.[1] ?? 0);

      // Each node: an Envoy (mutual TLS; its certificate binds its own address) and its agent (a certificate for the node's address).
      const envoys: SpawnedProcess[] = [];
      for (const [name, node] of [["a", A], ["b", B]] as const) {
        const proxy = leaf(`proxy-${name}`, [node.ip], ["spiffe://cluster.local/ns/default/sa/default"]);
        const out = join(dir, `envoy-${name}.json`);
        t.exec(node.ns, process.execPath, [CLI, "bootstrap", "--xds", `${A.ip}:${NODE_PORTS.xds}`, "--node-id", node.id, "--instance-ips", node.ip,
          "--admin", `127.0.0.1:${NODE_PORTS.admin}`, "--xds-ca", ca.cert, "--cert", proxy.cert, "--key", proxy.key, "--out", out]);
        chmodSync(out, 0o644);
        const envoy = t.spawn(node.ns, resolveEnvoy().path, ["-c", out, "--concurrency", "1", "-l", "warning", "--disable-hot-restart", "--use-dynamic-base-id"], { label: `envoy ${name}` });
        if (envoy.child.pid) pids.push(envoy.child.pid);
        envoys.push(envoy);
      }
      const ctx = () => `\ncontrol plane: ${cp.output().slice(-3000)}\nenvoys: ${envoys.map((e) => e.output().slice(-1500)).join("\n")}`;
      assert.ok(await waitFor(async () => (await listenersOf(agents.A)).includes("virtual") && (await listenersOf(agents.B)).includes("virtual"), 20000), `both Envoys served${ctx()}`);

      // The VIP starts on node A.
      t.exec(A.ns, "ip", ["addr", "add", `${VIP}/32`, "dev", A.dev]);
      const certA = leaf("agent-a", [A.ip]);
      const certB = leaf("agent-b", [B.ip]);
      const tls = (cert: { cert: string; key: string }) => ["--xds-ca", ca.cert, "--cert", cert.cert, "--key", cert.key];
      const agentA = startAgent(t, A.ns, ["--xds", `${A.ip}:${NODE_PORTS.xds}`, "--node-id", A.id, ...tls(certA)], pids, "agent A");
      const agentB = startAgent(t, B.ns, ["--xds", `${A.ip}:${NODE_PORTS.xds}`, "--node-id", B.id, ...tls(certB)], pids, "agent B");
      const inbound = `${VIP}_9090`;
      assert.ok(await waitFor(async () => (await listenersOf(agents.A)).includes(inbound), 5000), `node A has the VIP's inbound listener\nagent A: ${agentA.output()}${ctx()}`);
      assert.ok(await waitFor(() => agentB.output().includes("applied to 1 proxy stream"), 5000), agentB.output());
      assert.not.ok((await listenersOf(agents.B)).includes(inbound), "node B does not");

      // Failover: the VIP moves to node B.
      t.exec(A.ns, "ip", ["addr", "del", `${VIP}/32`, "dev", A.dev]);
      t.exec(B.ns, "ip", ["addr", "add", `${VIP}/32`, "dev", B.dev]);
      const moved = await timeUntil(async () => !(await listenersOf(agents.A)).includes(inbound) && (await listenersOf(agents.B)).includes(inbound));
      console.log(`    VIP moved -> both Envoys follow: ${moved?.toFixed(0)} ms`);
      assert.ok(moved !== undefined && moved < 1000, `both follow within 1 s, took ${moved} ms\nagent A: ${agentA.output()}\nagent B: ${agentB.output()}${ctx()}`);

      // A hostile agent on node B (node B's certificate) claims node A's proxy, with the VIP it holds now.
      const refusedBefore = await metric('multiplane_agent_refusals_total{kind="proxy"}');
      const hostile = startAgent(t, B.ns, ["--xds", `${A.ip}:${NODE_PORTS.xds}`, "--node-id", A.id, ...tls(certB)], pids, "hostile agent");
      assert.ok(await waitFor(() => hostile.output().includes("refused by 1"), 5000), hostile.output());
      assert.match(hostile.output(), /is not on this agent's node/);
      assert.ok(await metric('multiplane_agent_refusals_total{kind="proxy"}') > refusedBefore);
      await new Promise((r) => setTimeout(r, 300));
      assert.not.ok((await listenersOf(agents.A)).includes(inbound), "node A's proxy did not get the VIP from the hostile agent");
      const proxies = JSON.parse((await agents.A.request(`http://127.0.0.1:${NODE_PORTS.http}/debug/proxies`)).body ?? "{}").proxies as { id: string; nodeIps: string[] }[];
      assert.equal(proxies.find((p) => p.id === A.id)?.nodeIps, [A.ip]);
    } finally {
      await close();
    }
  });

  test("nothing left behind: namespaces and processes", () => assertNothingLeftBehind(namespaces, pids));
});

test.run();
