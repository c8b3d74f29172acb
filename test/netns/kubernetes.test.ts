// The seed's request with node IPs learned only from Kubernetes (root only): the node in network
// namespaces behind Istio 1.0's iptables capture, `multiplane serve --kubeconfig` and Envoy (uid 1337)
// inside it, and a real kube-apiserver (test/support/kube-apiserver.ts) holding the node as a pod:
// eth0 192.168.10.63 in status.podIPs, net1 10.75.8.101 in Multus's network-status, and Service A
// whose endpoints are its pods' addresses on net1. The proxy reports only 192.168.10.63, as Istio 1.0's
// did; the request to 10.75.8.101:9080 from the node is answered 200 by Service A through the inbound
// listener, and the loop guard never acts.
//
// The API server listens on the test's loopback, which the node's namespace cannot reach; a unix
// socket (a file, seen from every namespace) carries the node's connections to it: a relay inside the
// node's namespace listens on 127.0.0.1:6443 (in the server certificate's names) and forwards there.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { chmodSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { whenAvailable } from "../support/available.ts";
import { assertNothingLeftBehind, assertServiceAServedUnguarded, seedTopology, startCapturedNode } from "../support/captured-node.ts";
import { kubeApiserverUnavailableReason, startKubeApiserver } from "../support/kube-apiserver.ts";
import { waitFor } from "../support/net.ts";
import { netnsUnavailableReason, SEED } from "../support/netns.ts";

const NODE_ID = `sidecar~${SEED.nodeIp1}~a-1.default~default.svc.cluster.local`;
const NODE_API_PORT = 6443;
const mergePatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);

/** Inside the node's namespace: 127.0.0.1:PORT -> the unix socket. */
const RELAY_SOURCE = String.raw`
const net = require("node:net");
const [socket, port] = process.argv.slice(1);
net.createServer((c) => {
  const up = net.connect(socket);
  c.pipe(up); up.pipe(c);
  c.on("error", () => up.destroy()); up.on("error", () => c.destroy());
}).listen(Number(port), "127.0.0.1", () => process.stdout.write("ready\n"));
`;

const unavailable = netnsUnavailableReason() ?? kubeApiserverUnavailableReason();

whenAvailable(unavailable, "the seed's node with node IPs from Kubernetes, in network namespaces", (test) => {
  let namespaces: string[] = [];
  const pids: number[] = [];

  test("an Istio 1.0 proxy reporting one IP: the request to 10.75.8.101:9080 is answered 200 through the inbound listener, guard counters 0", async () => {
    const kube = await startKubeApiserver();
    const { t, dir, close } = seedTopology("mp-kubernetes-");
    namespaces = Object.values(t.ns);
    const socket = join(dir, "kube-apiserver.sock");
    const bridge = net.createServer((c) => {
      const up = net.connect(Number(new URL(kube.url).port), "127.0.0.1");
      c.pipe(up); up.pipe(c);
      c.on("error", () => up.destroy()); up.on("error", () => c.destroy());
    });
    try {
      await new Promise<void>((resolve) => bridge.listen(socket, resolve));
      const relay = t.spawn(t.ns.node, process.execPath, ["-e", RELAY_SOURCE, socket, String(NODE_API_PORT)], { label: "API relay" });
      if (relay.child.pid) pids.push(relay.child.pid);
      assert.ok(await waitFor(() => relay.output().includes("ready"), 5000), relay.output());

      // What a kubelet and Multus would have written about the node's pod, and Service A on net1.
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(kube.kubeconfigFile());
      const core = kc.makeApiClient(k8s.CoreV1Api);
      await core.createNamespacedPod({ namespace: "default", body: {
        metadata: { name: "a-1", labels: { app: "a" }, annotations: { "k8s.v1.cni.cncf.io/network-status": JSON.stringify([
          { name: "cbr0", interface: "eth0", ips: [SEED.nodeIp1], default: true },
          { name: "default/data-net", interface: "net1", ips: [SEED.nodeIp2] },
        ]) } },
        spec: { nodeName: "node-1", containers: [{ name: "a", image: "a:1", ports: [{ name: "http", containerPort: 9080 }] }] },
      } });
      await core.patchNamespacedPodStatus({ namespace: "default", name: "a-1", body: { status: {
        phase: "Running", podIP: SEED.nodeIp1, podIPs: [{ ip: SEED.nodeIp1 }], conditions: [{ type: "Ready", status: "True" }],
      } } }, mergePatch);
      await core.createNamespacedService({ namespace: "default", body: {
        metadata: { name: "service-a", annotations: { "k8s.v1.cni.cncf.io/service-network": "data-net" } },
        spec: { selector: { app: "a" }, ports: [{ name: "tcp", port: 9080, targetPort: 9080 }] },
      } });

      // The control plane in the node reaches the API server through the relay.
      const kubeconfig = join(dir, "kubeconfig");
      writeFileSync(kubeconfig, JSON.stringify({
        apiVersion: "v1", kind: "Config",
        clusters: [{ name: "test", cluster: { server: `https://127.0.0.1:${NODE_API_PORT}`, "certificate-authority": kube.caFile } }],
        users: [{ name: "admin", user: { token: kube.adminToken } }],
        contexts: [{ name: "admin", context: { cluster: "test", user: "admin" } }],
        "current-context": "admin",
      }));
      chmodSync(kubeconfig, 0o600);

      const captured = await startCapturedNode(t, dir, {
        registry: "", nodeId: NODE_ID, instanceIps: SEED.nodeIp1, wanted: ["virtual", `${SEED.nodeIp2}_9080`], pids,
        serveArgs: ["--kubeconfig", kubeconfig],
      });
      // Service A: the application behind the sidecar, on the node's loopback.
      await captured.node.httpServer("127.0.0.1", 9080, "service A\n");
      await assertServiceAServedUnguarded(captured, SEED.nodeIp2);
    } finally {
      bridge.close();
      await close();
      await kube.stop();
    }
  });

  test("nothing left behind: namespaces and processes", () => assertNothingLeftBehind(namespaces, pids));
});

test.run();
