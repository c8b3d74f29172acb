// Node IPs learned from a proxy's pod: the seed's Istio 1.0 sidecar reports only 192.168.10.63, its
// pod also has 10.75.8.101 on net1; once the pod is known the proxy gets the inbound listener for the
// service there, and loses it when the IP goes, without reconnecting. A certificate for another
// service account does not get its pod's IPs.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { SpiffeId } from "../../control/authz/peer-identity.ts";
import { generationOptions } from "../../control/generation/options.ts";
import { proxyIdentity } from "../../control/identity/proxy.ts";
import { ConfigPipeline } from "../../control/pipeline/config-pipeline.ts";
import { ConfigDistributor } from "../../control/pipeline/distributor.ts";
import { LearnedIps } from "../../control/pipeline/learned-ips.ts";
import { PodIpLearning } from "../../control/pipeline/pod-ips.ts";
import type { PodAddresses } from "../../control/registry/sources/kubernetes/kubernetes-source.ts";
import { Proxies } from "../../control/pipeline/proxies.ts";
import { SnapshotCache } from "../../control/xds/cache/cache.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { waitFor } from "../support/net.ts";
import { registryOf } from "../support/registry.ts";

const SEED = registryOf(readFileSync(join(PROJECT_ROOT, "examples", "registry", "seed.yaml"), "utf8"));
const NODE_ID = "sidecar~192.168.10.63~a-1.default~default.svc.cluster.local";
const pod = (ips: string[], serviceAccount = "default"): PodAddresses => ({
  namespace: "default", name: "a-1", serviceAccount,
  ips: ips.map((ip) => ({ ip, from: `Kubernetes pod default/a-1 (${ip === "192.168.10.63" ? "status.podIPs" : "network-status default/data-net net1"})` })),
});

function setUp() {
  const pipeline = new ConfigPipeline(generationOptions());
  const cache = new SnapshotCache();
  const proxies = new Proxies();
  const distributor = new ConfigDistributor(pipeline, cache, proxies);
  const refused: string[] = [];
  const learned = new LearnedIps(distributor, proxies);
  const learning = new PodIpLearning((affects) => learned.refresh(affects), { refused: (_id, _s, reason) => refused.push(reason) });
  learned.add(learning);
  distributor.registryChanged(SEED, performance.now());
  const listeners = (streamId: number) => [...(cache.get(streamId)?.get(TYPE_URL.listener)?.resources.keys() ?? [])];
  const connect = (streamId: number, peer?: SpiffeId) => {
    learning.connected(streamId, peer, peer !== undefined);
    const identity = learned.learn(proxyIdentity({ id: NODE_ID, metadata: {} }), streamId);
    distributor.open(identity, streamId, "sotw");
  };
  return { learning, distributor, pipeline, proxies, refused, listeners, connect, stop: () => distributor.stop() };
}

test("a proxy reporting one IP gets the inbound listener for its pod's net1 IP, and loses it when the pod does", async () => {
  const t = setUp();
  try {
    t.connect(1);
    assert.ok(await waitFor(() => t.listeners(1).length > 0, 2000));
    assert.not.ok(t.listeners(1).includes("10.75.8.101_9080"), "without its pod, only its own IP counts (Istio 1.0's view)");
    t.learning.setPods([pod(["192.168.10.63", "10.75.8.101"])]);
    assert.ok(await waitFor(() => t.listeners(1).includes("10.75.8.101_9080"), 2000), `listeners: ${t.listeners(1)}`);
    assert.equal(t.proxies.get(1)!.nodeIps, ["192.168.10.63", "10.75.8.101"]);
    assert.ok(t.proxies.get(1)!.identity.learned.some((l) => l.ip === "10.75.8.101" && l.from.includes("network-status")));
    // /debug/decisions names where the IP came from.
    const inbound = t.pipeline.decisions(t.proxies.get(1)!.identity).find((d) => d.direction === "inbound" && d.reason.startsWith("10.75.8.101"));
    assert.match(inbound?.reason ?? "", /10\.75\.8\.101 is node IP 2 of 2 \(from Kubernetes pod default\/a-1 \(network-status default\/data-net net1\)\)/);
    // The pod loses net1: the listener goes, the stream stays.
    t.learning.setPods([pod(["192.168.10.63"])]);
    assert.ok(await waitFor(() => !t.listeners(1).includes("10.75.8.101_9080"), 2000));
    assert.equal(t.proxies.get(1)!.nodeIps, ["192.168.10.63"]);
  } finally {
    t.stop();
  }
});

test("a proxy connecting after its pod is known has its IPs from the start", async () => {
  const t = setUp();
  try {
    t.learning.setPods([pod(["192.168.10.63", "10.75.8.101"])]);
    t.connect(1);
    assert.ok(await waitFor(() => t.listeners(1).includes("10.75.8.101_9080"), 2000));
  } finally {
    t.stop();
  }
});

test("under mutual TLS, a certificate for another service account does not get the pod's IPs, and the refusal is reported once", async () => {
  const t = setUp();
  try {
    t.learning.setPods([pod(["192.168.10.63", "10.75.8.101"], "service-a")]);
    const wrong: SpiffeId = { uri: "spiffe://cluster.local/ns/default/sa/other", trustDomain: "cluster.local", namespace: "default", serviceAccount: "other" };
    const right: SpiffeId = { uri: "spiffe://cluster.local/ns/default/sa/service-a", trustDomain: "cluster.local", namespace: "default", serviceAccount: "service-a" };
    t.connect(1, wrong);
    t.connect(2, right);
    assert.ok(await waitFor(() => t.listeners(2).includes("10.75.8.101_9080"), 2000), "the right certificate gets them");
    assert.ok(await waitFor(() => t.listeners(1).length > 0, 2000));
    assert.not.ok(t.listeners(1).includes("10.75.8.101_9080"));
    t.learning.setPods([pod(["192.168.10.63", "10.75.8.101", "10.75.8.102"], "service-a")]);
    assert.is(t.refused.length, 1, t.refused.join("\n"));
    assert.match(t.refused[0]!, /pod default\/a-1's IPs not added: certificate spiffe:\/\/cluster.local\/ns\/default\/sa\/other is for default\/other, pod default\/a-1 runs as default\/service-a/);
  } finally {
    t.stop();
  }
});

test.run();
