// Node IPs from a node agent: the seed's proxy starts with only 192.168.10.63; its node gains
// 10.75.8.101 (where service A is registered) and the agent reports it: the proxy's service-A listener
// turns inbound without a reconnect, and back when the address goes. The agent's set replaces what the
// proxy reported at its start, stands until its expiry once the agent goes away, and under mutual TLS
// is limited to the certificate's addresses, the floating ranges, and proxies on the agent's node.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { AgentPeer } from "../../control/authz/agent-claims.ts";
import type { PeerIdentity } from "../../control/authz/peer-identity.ts";
import { generationOptions } from "../../control/generation/options.ts";
import { parseCidr, type Cidr } from "../../control/identity/ip.ts";
import { proxyIdentity } from "../../control/identity/proxy.ts";
import { AgentIpLearning } from "../../control/pipeline/agent-ips.ts";
import { ConfigPipeline } from "../../control/pipeline/config-pipeline.ts";
import { ConfigDistributor } from "../../control/pipeline/distributor.ts";
import { LearnedIps } from "../../control/pipeline/learned-ips.ts";
import { PodIpLearning } from "../../control/pipeline/pod-ips.ts";
import { Proxies } from "../../control/pipeline/proxies.ts";
import { SnapshotCache } from "../../control/xds/cache/cache.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { waitFor } from "../support/net.ts";
import { registryOf } from "../support/registry.ts";

const SEED = registryOf(readFileSync(join(PROJECT_ROOT, "examples", "registry", "seed.yaml"), "utf8"));
const NODE_ID = "sidecar~192.168.10.63~a-1.default~default.svc.cluster.local";
const PLAINTEXT: AgentPeer = { mutualTls: false };
const certificate = (ips: string[]): AgentPeer => {
  const cert: PeerIdentity = { ips, uris: [], dns: [], display: `node-${ips[0] ?? "none"}` };
  return { mutualTls: true, certificate: cert };
};
const cidr = (text: string): Cidr => (parseCidr(text) as { ok: true; cidr: Cidr }).cidr;

function setUp(options: { floating?: Cidr[]; expiryMs?: number } = {}) {
  const pipeline = new ConfigPipeline(generationOptions());
  const cache = new SnapshotCache();
  const proxies = new Proxies();
  const distributor = new ConfigDistributor(pipeline, cache, proxies);
  const learned = new LearnedIps(distributor, proxies);
  const pods = new PodIpLearning((affects) => learned.refresh(affects));
  const refused: { kind: string; reason: string }[] = [];
  const expired: string[] = [];
  const agents = new AgentIpLearning((nodeIds) => learned.refreshNodes(nodeIds), proxies, { trust: { floating: options.floating ?? [] }, expiryMs: options.expiryMs ?? 60_000 }, {
    refused: (_agent, reason, kind) => refused.push({ kind, reason }),
    expired: (_agent, nodeIds) => expired.push(...nodeIds),
  });
  learned.add(pods);
  learned.add(agents);
  distributor.registryChanged(SEED, performance.now());
  const listeners = (streamId: number) => [...(cache.get(streamId)?.get(TYPE_URL.listener)?.resources.keys() ?? [])];
  const connect = (streamId: number, id = NODE_ID, instanceIps = "192.168.10.63") => {
    distributor.open(learned.learn(proxyIdentity({ id, metadata: { INSTANCE_IPS: instanceIps } }), streamId), streamId, "sotw");
  };
  const nodeIps = (streamId: number) => proxies.get(streamId)!.nodeIps;
  return {
    agents, pods, pipeline, proxies, refused, expired, listeners, connect, nodeIps, close: (streamId: number) => distributor.close(streamId),
    stop: () => { distributor.stop(); agents.stop(); },
  };
}

const agent = (agentId: number, name = `node agent ${agentId}`) => ({ agentId, name });

test("an agent's report turns the service on the node's new IP inbound, and back when the IP goes", async () => {
  const t = setUp();
  try {
    t.connect(1);
    assert.ok(await waitFor(() => t.listeners(1).length > 0, 2000));
    assert.not.ok(t.listeners(1).includes("10.75.8.101_9080"));
    const answer = t.agents.report(agent(1), PLAINTEXT, { nodeIds: [NODE_ID], ips: ["192.168.10.63", "10.75.8.101"] });
    assert.equal(answer.accepted, ["192.168.10.63", "10.75.8.101"]);
    assert.equal(answer.nodes, [{ nodeId: NODE_ID, applied: 1, refused: [] }]);
    assert.ok(await waitFor(() => t.listeners(1).includes("10.75.8.101_9080"), 2000), `listeners: ${t.listeners(1)}`);
    assert.equal(t.nodeIps(1), ["192.168.10.63", "10.75.8.101"]);
    // /debug/decisions names the agent and when it reported.
    const inbound = t.pipeline.decisions(t.proxies.get(1)!.identity).find((d) => d.direction === "inbound" && d.reason.startsWith("10.75.8.101"));
    assert.match(inbound?.reason ?? "", /10\.75\.8\.101 is node IP 2 of 2 \(from node agent 1, reported \d{4}-\d\d-\d\dT[\d:.]+Z\)/);
    t.agents.report(agent(1), PLAINTEXT, { nodeIds: [NODE_ID], ips: ["192.168.10.63"] });
    assert.ok(await waitFor(() => !t.listeners(1).includes("10.75.8.101_9080"), 2000));
    assert.equal(t.nodeIps(1), ["192.168.10.63"]);
  } finally {
    t.stop();
  }
});

test("the agent's set replaces what the proxy reported at its start: an address the node lost is not local any more", async () => {
  const t = setUp();
  try {
    t.connect(1, NODE_ID, "192.168.10.63,10.75.8.101");
    assert.ok(await waitFor(() => t.listeners(1).includes("10.75.8.101_9080"), 2000));
    t.agents.report(agent(1), PLAINTEXT, { nodeIds: [NODE_ID], ips: ["192.168.10.63"] });
    assert.ok(await waitFor(() => !t.listeners(1).includes("10.75.8.101_9080"), 2000));
    assert.equal(t.nodeIps(1), ["192.168.10.63"]);
    assert.is(t.proxies.get(1)!.identity.replacedBy, "node agent 1");
  } finally {
    t.stop();
  }
});

test("a proxy that connects after its agent reported has the agent's set from the start; pod IPs are added to it", async () => {
  const t = setUp();
  try {
    t.agents.report(agent(1), PLAINTEXT, { nodeIds: [NODE_ID], ips: ["192.168.10.63"] });
    t.pods.setPods([{ namespace: "default", name: "a-1", serviceAccount: "default", ips: [{ ip: "10.75.8.101", from: "Kubernetes pod default/a-1" }] }]);
    t.connect(1);
    assert.ok(await waitFor(() => t.listeners(1).includes("10.75.8.101_9080"), 2000));
    assert.equal(t.nodeIps(1), ["10.75.8.101", "192.168.10.63"]);
  } finally {
    t.stop();
  }
});

test("when the agent goes away its report stands until the expiry, then the proxy's own set applies again", async () => {
  const t = setUp({ expiryMs: 150 });
  try {
    t.connect(1);
    t.agents.report(agent(1), PLAINTEXT, { nodeIds: [NODE_ID], ips: ["192.168.10.63", "10.75.8.101"] });
    assert.ok(await waitFor(() => t.listeners(1).includes("10.75.8.101_9080"), 2000));
    t.agents.gone(1);
    assert.ok(t.agents.list()[0]!.expiresAt, "the report says when it lapses");
    assert.ok(t.listeners(1).includes("10.75.8.101_9080"), "still standing right after the agent went away");
    assert.ok(await waitFor(() => !t.listeners(1).includes("10.75.8.101_9080"), 2000));
    assert.equal(t.expired, [NODE_ID]);
    assert.equal(t.nodeIps(1), ["192.168.10.63"]);
    assert.is(t.proxies.get(1)!.identity.replacedBy, undefined);
  } finally {
    t.stop();
  }
});

test("the newest report wins: an older agent going away does not expire a newer agent's report", async () => {
  const t = setUp({ expiryMs: 50 });
  try {
    t.connect(1);
    t.agents.report(agent(1), PLAINTEXT, { nodeIds: [NODE_ID], ips: ["192.168.10.63"] });
    t.agents.report(agent(2), PLAINTEXT, { nodeIds: [NODE_ID], ips: ["192.168.10.63", "10.75.8.101"] });
    t.agents.gone(1);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(t.expired, []);
    assert.ok(await waitFor(() => t.listeners(1).includes("10.75.8.101_9080"), 2000));
  } finally {
    t.stop();
  }
});

test("under mutual TLS an agent claims only its certificate's addresses and the floating ranges", () => {
  const t = setUp({ floating: [cidr("10.75.9.0/24")] });
  try {
    t.connect(1);
    const answer = t.agents.report(agent(1), certificate(["192.168.10.63"]), { nodeIds: [NODE_ID], ips: ["192.168.10.63", "10.75.9.7", "10.75.8.101"] });
    assert.equal(answer.accepted, ["192.168.10.63", "10.75.9.7"]);
    assert.is(answer.refused.length, 1);
    assert.match(answer.refused[0]!.reason, /10\.75\.8\.101 is not among certificate node-192\.168\.10\.63's IP addresses 192\.168\.10\.63 nor in the floating ranges 10\.75\.9\.0\/24/);
    assert.equal(t.refused.map((r) => r.kind), ["ip"]);
  } finally {
    t.stop();
  }
});

test("a hostile agent with another node's certificate cannot change this node's proxy, even with a floating address", async () => {
  const t = setUp({ floating: [cidr("10.75.8.0/24")] });
  try {
    t.connect(1);
    assert.ok(await waitFor(() => t.listeners(1).length > 0, 2000));
    const before = t.listeners(1);
    // Node B's agent: its certificate is for 192.168.10.64; it claims the floating 10.75.8.101 for node A's proxy.
    const answer = t.agents.report(agent(9), certificate(["192.168.10.64"]), { nodeIds: [NODE_ID], ips: ["192.168.10.64", "10.75.8.101"] });
    assert.equal(answer.nodes[0]!.applied, 0);
    assert.match(answer.nodes[0]!.refused[0]!.reason, /is not on this agent's node: none of its own IPs 192\.168\.10\.63 is among certificate node-192\.168\.10\.64's IP addresses 192\.168\.10\.64/);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(t.listeners(1), before);
    assert.equal(t.nodeIps(1), ["192.168.10.63"]);
    assert.equal(t.refused.map((r) => r.kind), ["proxy"]);
    // The proxy reconnecting does not report (and remember) the refusal again.
    for (let stream = 2; stream <= 50; stream++) {
      t.close(stream - 1);
      t.connect(stream);
    }
    assert.equal(t.refused.map((r) => r.kind), ["proxy"], "once per agent and proxy, not per stream");
    assert.equal(t.nodeIps(50), ["192.168.10.63"]);
    t.close(50);
    t.connect(1);
    assert.ok(await waitFor(() => t.listeners(1).length > 0, 2000));
    // Node A's own agent may: its certificate carries the node's address.
    t.agents.report(agent(1), certificate(["192.168.10.63"]), { nodeIds: [NODE_ID], ips: ["192.168.10.63", "10.75.8.101"] });
    assert.ok(await waitFor(() => t.listeners(1).includes("10.75.8.101_9080"), 2000));
  } finally {
    t.stop();
  }
});

test("a report whose every address is refused changes nothing", async () => {
  const t = setUp();
  try {
    t.connect(1);
    const answer = t.agents.report(agent(1), certificate(["192.168.10.63"]), { nodeIds: [NODE_ID], ips: ["10.75.8.101"] });
    assert.equal(answer.accepted, []);
    assert.equal(answer.nodes[0]!.applied, 0);
    assert.equal(t.agents.list(), []);
    assert.equal(t.nodeIps(1), ["192.168.10.63"]);
  } finally {
    t.stop();
  }
});

test.run();
