// The Kubernetes test harness (test/support/kube-apiserver.ts) against a real kube-apiserver, through
// the client library a Kubernetes registry source would use: the objects such a source reads
// (Namespace, Service, EndpointSlice, Pod) are stored and read back; a pod's IPs and its CNI
// network-status annotation are written the way a kubelet and a CNI plugin write them, and a watch
// sees that; RBAC refuses a user without a role; a restart keeps the port and the data.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as k8s from "@kubernetes/client-node";
import { whenAvailable } from "../support/available.ts";
import { kubeApiserverUnavailableReason, startKubeApiserver, type KubeApiserver } from "../support/kube-apiserver.ts";
import { waitFor } from "../support/net.ts";

const NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status";
const mergePatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);

function client(kube: KubeApiserver, token?: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kube.kubeconfigFile(token));
  return kc;
}

whenAvailable(kubeApiserverUnavailableReason(), "kube-apiserver", (test) => {
  let kube: KubeApiserver;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  test.before(async () => {
    kube = await startKubeApiserver();
    kc = client(kube);
    core = kc.makeApiClient(k8s.CoreV1Api);
  });
  test.after(async () => {
    await kube?.stop();
  });

  test("Namespace, Service, EndpointSlice and Pod read back; pod IPs and network-status written as a kubelet and a CNI would, and watched", async () => {
    const namespace = "shop";
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    const service = await core.createNamespacedService({
      namespace,
      body: {
        metadata: { name: "cart" },
        spec: { selector: { app: "cart" }, ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }] },
      },
    });
    assert.match(service.spec?.clusterIP ?? "", /^10\.96\./, "the API server allocates a cluster IP from --service-cluster-ip-range");

    const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
    await discovery.createNamespacedEndpointSlice({
      namespace,
      body: {
        metadata: { name: "cart-1", labels: { "kubernetes.io/service-name": "cart" } },
        addressType: "IPv4",
        ports: [{ name: "http", port: 8080, protocol: "TCP" }],
        endpoints: [{ addresses: ["10.244.1.5"], conditions: { ready: true }, targetRef: { kind: "Pod", namespace, name: "cart-0" } }],
      },
    });
    const slices = await discovery.listNamespacedEndpointSlice({ namespace, labelSelector: "kubernetes.io/service-name=cart" });
    assert.equal(slices.items.map((s) => s.endpoints.flatMap((e) => e.addresses)), [["10.244.1.5"]]);

    // Bound to a node from the start: there is no scheduler.
    const pod = await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: "cart-0", labels: { app: "cart" } },
        spec: { nodeName: "node-1", serviceAccountName: "cart", containers: [{ name: "app", image: "cart:1" }] },
      },
    });
    assert.is(pod.status?.phase, "Pending");

    const events: k8s.V1Pod[] = [];
    const watching = await new k8s.Watch(kc).watch(
      `/api/v1/namespaces/${namespace}/pods`,
      { resourceVersion: pod.metadata!.resourceVersion },
      (type: string, obj: k8s.V1Pod) => { if (type === "MODIFIED") events.push(obj); },
      () => {},
    );
    try {
      // The kubelet's part: the pod's status, through the status subresource.
      await core.patchNamespacedPodStatus({
        namespace, name: "cart-0",
        body: {
          status: {
            phase: "Running",
            hostIP: "192.0.2.10", hostIPs: [{ ip: "192.0.2.10" }],
            podIP: "10.244.1.5", podIPs: [{ ip: "10.244.1.5" }, { ip: "fd00:10:244:1::5" }],
            conditions: [{ type: "Ready", status: "True" }],
          },
        },
      }, mergePatch);
      // A CNI meta-plugin's part: every network the pod is attached to, in an annotation.
      const networkStatus = [
        { name: "cbr0", interface: "eth0", ips: ["10.244.1.5", "fd00:10:244:1::5"], default: true },
        { name: "shop/storage", interface: "net1", ips: ["192.168.50.5"] },
      ];
      await core.patchNamespacedPod({
        namespace, name: "cart-0",
        body: { metadata: { annotations: { [NETWORK_STATUS]: JSON.stringify(networkStatus) } } },
      }, mergePatch);

      const read = await core.readNamespacedPod({ namespace, name: "cart-0" });
      assert.equal(read.status?.podIPs?.map((p) => p.ip), ["10.244.1.5", "fd00:10:244:1::5"]);
      assert.is(read.status?.phase, "Running");
      assert.is(read.spec?.serviceAccountName, "cart");
      assert.equal(JSON.parse(read.metadata?.annotations?.[NETWORK_STATUS] ?? "null"), networkStatus);

      assert.ok(await waitFor(() => events.some((p) => p.metadata?.annotations?.[NETWORK_STATUS]), 5000), "the watch sees both updates");
      assert.equal(events[0]?.status?.podIPs?.map((p) => p.ip), ["10.244.1.5", "fd00:10:244:1::5"], "the status update first");
    } finally {
      watching.abort();
    }
  });

  test("RBAC: the limited user may not list pods (403)", async () => {
    const limited = client(kube, kube.limitedToken).makeApiClient(k8s.CoreV1Api);
    const err = await limited.listNamespacedPod({ namespace: "default" }).then(() => undefined, (e: unknown) => e);
    assert.instance(err, k8s.ApiException);
    assert.is((err as k8s.ApiException<unknown>).code, 403);
    assert.match(String((err as k8s.ApiException<unknown>).body), /forbidden/);
    // The admin may.
    await core.listNamespacedPod({ namespace: "default" });
  });

  test("restart: the API server comes back on the same port with the same data", async () => {
    let refused = false;
    await kube.restart({
      whileDown: async () => {
        refused = await core.readNamespace({ name: "shop" }).then(() => false, () => true);
      },
    });
    assert.ok(refused, "down while stopped");
    const ns = await core.readNamespace({ name: "shop" });
    assert.is(ns.metadata?.name, "shop");
  });
});

test.run();
