// The Kubernetes watch (control/registry/sources/kubernetes/) against a real kube-apiserver
// (test/support/kube-apiserver.ts): listing in pages then watching; a burst of changes reported as
// one; 410 Gone answered by listing again with no empty state in between; an API server restart
// reported as unavailable while the maps keep their contents; RBAC refusals named precisely, and
// picked up once granted; Istio's custom resources absent until their definitions are installed.
// Each test works in its own namespace (a deleted one never finishes deleting here), and leaves the
// "default/kubernetes" Service the API server creates out of its counts.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as k8s from "@kubernetes/client-node";
import { whenAvailable } from "../support/available.ts";
import { kubeApiserverUnavailableReason, startKubeApiserver, type KubeApiserver } from "../support/kube-apiserver.ts";
import { waitFor } from "../support/net.ts";
import { etcdClient } from "../../control/registry/sources/etcd/etcd-client.ts";
import { loadKubeConfig } from "../../control/registry/sources/kubernetes/client.ts";
import { KubernetesWatch, type KubernetesState, type KubernetesWatchOptions } from "../../control/registry/sources/kubernetes/kubernetes-watch.ts";

const inNamespace = (map: ReadonlyMap<string, unknown>, ns: string) => [...map.keys()].filter((k) => k.startsWith(`${ns}/`)).sort();
const names = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(2, "0")}`);
const service = (name: string, extra: Record<string, string> = {}): k8s.V1Service => ({
  metadata: { name, labels: { app: name, ...extra } },
  spec: { selector: { app: name }, ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }] },
});

whenAvailable(kubeApiserverUnavailableReason(), "Kubernetes watch", (test) => {
  let kube: KubeApiserver;
  let core: k8s.CoreV1Api;
  const watches: KubernetesWatch[] = [];

  /** A started watch for `token` (default admin), with quick retries; stopped after the test file. */
  const watch = async (opts: Partial<KubernetesWatchOptions> & { token?: string } = {}) => {
    const { kubeConfig } = await loadKubeConfig({ kubeconfig: kube.kubeconfigFile(opts.token) });
    const w = new KubernetesWatch({ kubeConfig, backoff: { initialMs: 100, maxMs: 1000 }, ...opts });
    watches.push(w);
    w.start();
    return w;
  };
  const until = (w: KubernetesWatch, check: (s: KubernetesState) => boolean, what: string, ms = 10_000) =>
    waitFor(() => check(w.state()), ms, 20).then((ok) => assert.ok(ok, `${what}; status: ${JSON.stringify(w.state().status)}; stats: ${JSON.stringify(w.stats())}`));
  const createServices = (ns: string, list: string[]) => Promise.all(list.map((name) => core.createNamespacedService({ namespace: ns, body: service(name) })));

  test.before(async () => {
    kube = await startKubeApiserver();
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kube.kubeconfigFile());
    core = kc.makeApiClient(k8s.CoreV1Api);
  });
  test.after(async () => {
    await Promise.all(watches.map((w) => w.stop()));
    await kube?.stop();
  });

  test("lists in pages, then watches creates, updates and deletes; a burst is one change; handed-out maps never change", async () => {
    const ns = "paged";
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await createServices(ns, names(10, "svc-"));
    // Bound to a node from the start (no scheduler); the container's environment and volumes are dropped from the copy.
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: "pod-0", labels: { app: "svc-00" }, annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{\"big\":true}", keep: "me" } },
        spec: {
          nodeName: "node-1", serviceAccountName: "svc",
          containers: [{ name: "app", image: "app:1", env: [{ name: "SECRET_LOOKING", value: "x" }], ports: [{ name: "http", containerPort: 8080 }] }],
          volumes: [{ name: "scratch", emptyDir: {} }],
        },
      },
    });

    const changes: KubernetesState[] = [];
    const began = performance.now();
    const w = await watch({ pageSize: 3, onChange: (s) => changes.push(s) });
    assert.ok(await w.whenSynced(10_000), "synced");
    const syncedMs = Math.round(performance.now() - began);
    const stats = w.stats().services;
    assert.equal(inNamespace(w.state().services, ns), names(10, `${ns}/svc-`));
    assert.ok(stats.pages >= 4, `10 services and more in pages of 3: ${stats.pages} pages`);
    assert.is(stats.lists, 1);
    console.log(`    synced 5 kinds (services: ${stats.lastList?.objects} in ${stats.pages} pages of 3) in ${syncedMs} ms`);

    const pod = w.state().pods.get(`${ns}/pod-0`)!;
    assert.ok(pod, "the pod is listed");
    assert.is(pod.metadata.managedFields, undefined, "managedFields dropped");
    assert.equal(pod.metadata.annotations, { keep: "me" }, "kubectl's last-applied copy dropped, other annotations kept");
    assert.equal(pod.spec, { containers: [{ name: "app", ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }] }], nodeName: "node-1", serviceAccountName: "svc" });
    assert.is(typeof pod.metadata.creationTimestamp, "string", "objects are as the server sent them");
    const status = w.state().status;
    assert.equal(status.services, { synced: true, version: "v1" });
    assert.equal(status.endpointSlices, { synced: true, version: "discovery.k8s.io/v1" });
    assert.equal(status.serviceEntries, { synced: true, absent: true }, "no Istio definitions installed");

    // A burst: 10 creates at once are reported in far fewer changes, and a state handed out earlier stays as it was.
    const before = w.state();
    const seen = changes.length;
    await createServices(ns, names(10, "burst-"));
    await until(w, (s) => inNamespace(s.services, ns).length === 20, "the burst is seen");
    assert.is(inNamespace(before.services, ns).length, 10, "a map handed out never changes");
    const burstChanges = changes.length - seen;
    assert.ok(burstChanges >= 1 && burstChanges <= 4, `10 creates in ${burstChanges} changes`);

    await core.patchNamespacedService({ namespace: ns, name: "svc-03", body: { metadata: { labels: { tier: "gold" } } } }, k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch));
    await until(w, (s) => s.services.get(`${ns}/svc-03`)?.metadata.labels?.tier === "gold", "the update is seen");
    await core.deleteNamespacedService({ namespace: ns, name: "svc-04" });
    await until(w, (s) => !s.services.has(`${ns}/svc-04`), "the delete is seen");
    const discovery = new k8s.KubeConfig();
    discovery.loadFromFile(kube.kubeconfigFile());
    await discovery.makeApiClient(k8s.DiscoveryV1Api).createNamespacedEndpointSlice({
      namespace: ns,
      body: { metadata: { name: "svc-00-1", labels: { "kubernetes.io/service-name": "svc-00" } }, addressType: "IPv4", endpoints: [{ addresses: ["10.244.1.5"] }], ports: [{ name: "http", port: 8080 }] },
    });
    await until(w, (s) => s.endpointSlices.get(`${ns}/svc-00-1`)?.endpoints[0]?.addresses[0] === "10.244.1.5", "the EndpointSlice is seen");
    assert.is(w.stats().services.lists, 1, "all of it through the watch: no second listing");
  });

  test("410 Gone: a watch resumed after the history is gone lists again, and the state moves to the new one in one change", async () => {
    const ns = "gone";
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await createServices(ns, names(5, "s"));
    const sizes: number[] = [];
    const w = await watch({ onChange: (s) => sizes.push(inNamespace(s.services, ns).length) });
    assert.ok(await w.whenSynced(10_000));
    await until(w, (s) => inNamespace(s.services, ns).length === 5, "listed");
    const listsBefore = w.stats().services.lists;

    await w.pause();
    await core.deleteNamespacedService({ namespace: ns, name: "s00" });
    await core.patchNamespacedService({ namespace: ns, name: "s01", body: { metadata: { labels: { changed: "yes" } } } }, k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch));
    await createServices(ns, ["s05", "s06"]);
    // Compaction alone is not enough: the API server's watch cache still serves the versions etcd
    // dropped. A restarted server's cache starts at the current revision, so the paused watch's
    // version is older than anything it has: it must answer 410.
    const etcd = etcdClient(kube.etcd.endpoints);
    try {
      const revision = (await etcd.get("compact-here").exec()).header.revision;
      await etcd.kv.compact({ revision, physical: true });
    } finally {
      etcd.close();
    }
    await kube.restart();
    sizes.length = 0;
    const began = performance.now();
    w.resume();
    await until(w, (s) => inNamespace(s.services, ns).join() === ["s01", "s02", "s03", "s04", "s05", "s06"].map((n) => `${ns}/${n}`).join(), "the state after the relist");
    const relistMs = Math.round(performance.now() - began);
    const stats = w.stats().services;
    assert.ok(stats.gone >= 1, `410 seen (${stats.gone})`);
    assert.ok(stats.lists > listsBefore, "listed again");
    assert.is(w.state().services.get(`${ns}/s01`)?.metadata.labels?.changed, "yes");
    assert.ok(sizes.every((n) => n === 5 || n === 6), `never an empty or partial state in between: ${sizes.join(",")}`);
    console.log(`    resumed, 410, listed again (services: ${stats.lastList?.objects} objects in ${stats.lastList?.ms} ms) within ${relistMs} ms`);
  });

  test("API server restart: unavailable while it is down, the maps kept; then it catches up", async () => {
    const ns = "restart";
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await createServices(ns, names(3, "s"));
    const w = await watch();
    assert.ok(await w.whenSynced(10_000));
    await until(w, (s) => inNamespace(s.services, ns).length === 3, "listed");

    let downStatus: string | undefined;
    let keptWhileDown = 0;
    await kube.restart({
      whileDown: async () => {
        await until(w, (s) => s.status.services.unavailable !== undefined, "reported unavailable while down");
        downStatus = w.state().status.services.unavailable;
        keptWhileDown = inNamespace(w.state().services, ns).length;
      },
    });
    // The reason is the first failure seen: the stream cut ("socket hang up"), or the reconnection refused.
    assert.match(downStatus ?? "", /^cannot (watch|list) services \(v1\) in all namespaces: \S/);
    assert.is(keptWhileDown, 3, "the map keeps its contents while the server is down");
    assert.ok(w.state().status.services.synced, "still synced");

    await until(w, (s) => s.status.services.unavailable === undefined, "available again");
    await createServices(ns, ["s03"]);
    await core.deleteNamespacedService({ namespace: ns, name: "s00" });
    await until(w, (s) => inNamespace(s.services, ns).join() === `${ns}/s01,${ns}/s02,${ns}/s03`, "changes after the restart are seen");
  });

  test("RBAC: a refusal names the verb and the resource; a role granted later is picked up; per-namespace watches need only a Role", async () => {
    const ns = "rbac";
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await createServices(ns, ["only"]);
    const cluster = await watch({ token: kube.limitedToken, forbiddenRetryMs: 300 });
    // Each kind is listed on its own: wait for both refusals the assertions below read.
    await until(cluster, (s) => s.status.services.forbidden !== undefined && s.status.endpointSlices.forbidden !== undefined, "services and endpointslices refused");
    const st = cluster.state().status;
    assert.match(st.services.forbidden!, /^forbidden: cannot list services \(v1\) in all namespaces: services is forbidden: User "limited" cannot list resource "services" in API group "" at the cluster scope/);
    assert.match(st.endpointSlices.forbidden!, /^forbidden: cannot list endpointslices \(discovery\.k8s\.io\/v1\) in all namespaces: /);
    assert.is(st.services.synced, false);
    assert.is(st.services.unavailable, undefined, "refused is not unavailable");
    assert.is(await cluster.whenSynced(200), false);

    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kube.kubeconfigFile());
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    const rules: k8s.V1PolicyRule[] = [
      { apiGroups: [""], resources: ["services", "pods"], verbs: ["list", "watch"] },
      { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["list", "watch"] },
      { apiGroups: ["networking.istio.io"], resources: ["serviceentries", "workloadentries", "sidecars"], verbs: ["list", "watch"] },
    ];
    // A Role in one namespace: a watch of that namespace works, the cluster-wide one is still refused.
    await rbac.createNamespacedRole({ namespace: ns, body: { metadata: { name: "reader" }, rules } });
    await rbac.createNamespacedRoleBinding({ namespace: ns, body: { metadata: { name: "reader" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "reader" }, subjects: [{ kind: "User", name: "limited", apiGroup: "rbac.authorization.k8s.io" }] } });
    const scoped = await watch({ token: kube.limitedToken, namespaces: [ns] });
    assert.ok(await scoped.whenSynced(10_000), `scoped watch synced: ${JSON.stringify(scoped.state().status)}`);
    assert.equal([...scoped.state().services.keys()], [`${ns}/only`]);
    assert.ok(cluster.state().status.services.forbidden, "cluster-wide still refused");

    // A ClusterRole: the refused watch, retried, lists.
    await rbac.createClusterRole({ body: { metadata: { name: "reader" }, rules } });
    await rbac.createClusterRoleBinding({ body: { metadata: { name: "reader" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "reader" }, subjects: [{ kind: "User", name: "limited", apiGroup: "rbac.authorization.k8s.io" }] } });
    assert.ok(await cluster.whenSynced(10_000), `synced once granted: ${JSON.stringify(cluster.state().status)}`);
    assert.is(cluster.state().status.services.forbidden, undefined);
    assert.ok(cluster.state().services.has(`${ns}/only`));
  });

  test("Istio's custom resources: absent until their definitions are installed, then the preferred served version is watched", async () => {
    const ns = "istio";
    await core.createNamespace({ body: { metadata: { name: ns } } });
    const w = await watch({ absentRecheckMs: 300 });
    assert.ok(await w.whenSynced(10_000));
    assert.equal(w.state().status.serviceEntries, { synced: true, absent: true });
    assert.equal(w.state().status.workloadEntries, { synced: true, absent: true });

    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kube.kubeconfigFile());
    const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
    // x-kubernetes-preserve-unknown-fields, as the client spells it (it drops the JSON spelling).
    const schema = { openAPIV3Schema: { type: "object", properties: { spec: { type: "object", x_kubernetes_preserve_unknown_fields: true } } } };
    const crd = (plural: string, kind: string, versions: string[]): k8s.V1CustomResourceDefinition => ({
      metadata: { name: `${plural}.networking.istio.io` },
      spec: {
        group: "networking.istio.io",
        names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
        scope: "Namespaced",
        versions: versions.map((name, i) => ({ name, served: true, storage: i === 0, schema })),
      },
    });
    // ServiceEntry at all three versions (v1 wanted); WorkloadEntry at v1beta1 only (an older Istio).
    await ext.createCustomResourceDefinition({ body: crd("serviceentries", "ServiceEntry", ["v1", "v1beta1", "v1alpha3"]) });
    await ext.createCustomResourceDefinition({ body: crd("workloadentries", "WorkloadEntry", ["v1beta1"]) });
    const began = performance.now();
    await until(w, (s) => s.status.serviceEntries.version === "networking.istio.io/v1" && s.status.workloadEntries.version === "networking.istio.io/v1beta1", "definitions picked up");
    console.log(`    definitions installed, watched within ${Math.round(performance.now() - began)} ms (re-check every 300 ms)`);
    assert.equal(w.state().status.serviceEntries, { synced: true, version: "networking.istio.io/v1" });

    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    await custom.createNamespacedCustomObject({
      group: "networking.istio.io", version: "v1beta1", namespace: ns, plural: "serviceentries",
      body: { apiVersion: "networking.istio.io/v1beta1", kind: "ServiceEntry", metadata: { name: "ext" }, spec: { hosts: ["api.example.com"], resolution: "DNS" } },
    });
    await custom.createNamespacedCustomObject({
      group: "networking.istio.io", version: "v1beta1", namespace: ns, plural: "workloadentries",
      body: { apiVersion: "networking.istio.io/v1beta1", kind: "WorkloadEntry", metadata: { name: "vm-1" }, spec: { address: "192.0.2.7" } },
    });
    await until(w, (s) => s.serviceEntries.get(`${ns}/ext`)?.spec?.hosts !== undefined && s.workloadEntries.has(`${ns}/vm-1`), "custom objects seen");
    assert.equal(w.state().serviceEntries.get(`${ns}/ext`)?.spec, { hosts: ["api.example.com"], resolution: "DNS" });

    // Removed again: the objects go with it, and the kind is absent.
    await ext.deleteCustomResourceDefinition({ name: "workloadentries.networking.istio.io" });
    await until(w, (s) => s.status.workloadEntries.absent === true && s.workloadEntries.size === 0, "absent again once its definition is removed");
  });
});

test.run();
