// `multiplane serve --kubeconfig` against a real kube-apiserver (test/support/kube-apiserver.ts): the
// seed's node as a pod (eth0 192.168.10.63, net1 10.75.8.101 on network data-net) with an Istio 1.0
// proxy that reports only 192.168.10.63. From Kubernetes data alone it gets the inbound listener
// 10.75.8.101_9080 for Service A on net1; network-status and EndpointSlice changes reach it; an API
// server restart keeps the last registry serving and /readyz says why; RBAC refusal and bad
// annotations are named, never a crash; Istio's own objects apply once their CRDs are installed, and
// an invalid one is refused as a file would be; --namespaces limits what is read; beside a registry
// directory both serve and a clash is refused naming both. Each test has namespaces of its own (deleted ones never go).
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as k8s from "@kubernetes/client-node";
import * as grpc from "@grpc/grpc-js";
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { adsServiceDefinition } from "../../control/xds/cache/protos.ts";
import { makeCa, makeLeaf, opensslUnavailableReason } from "../support/certs.ts";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";
import { adsClient, node } from "../support/ads-client.ts";
import { whenAvailable } from "../support/available.ts";
import { kubeApiserverUnavailableReason, startKubeApiserver, type KubeApiserver } from "../support/kube-apiserver.ts";
import { waitFor } from "../support/net.ts";

const NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status";
const SERVICE_NETWORK = "k8s.v1.cni.cncf.io/service-network";
const mergePatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
const FAST = { coalesce: { quietMs: 5, maxWaitMs: 50 }, backoff: { initialMs: 100, maxMs: 1000 }, forbiddenRetryMs: 500, absentRecheckMs: 500 };

/** A SotW proxy: LDS, CDS, then EDS for every cluster; keeps the latest of each, ACKs everything. */
function proxy(address: string, id: string, instanceIps?: string, credentials?: grpc.ChannelCredentials) {
  const client = credentials
    ? new (grpc.loadPackageDefinition(adsServiceDefinition()) as any).envoy.service.discovery.v3.AggregatedDiscoveryService(address, credentials)
    : adsClient(address);
  const call = client.StreamAggregatedResources();
  const latest = new Map<string, any[]>();
  let edsAsked = false;
  call.on("error", () => {});
  call.on("data", (res: any) => {
    call.write({ type_url: res.type_url, version_info: res.version_info, response_nonce: res.nonce });
    latest.set(res.type_url, res.resources);
    if (res.type_url === TYPE_URL.cluster && !edsAsked) { edsAsked = true; call.write({ type_url: TYPE_URL.endpoint }); }
  });
  call.write({ node: node(id, instanceIps), type_url: TYPE_URL.listener });
  call.write({ type_url: TYPE_URL.cluster });
  return {
    listeners: () => (latest.get(TYPE_URL.listener) ?? []).map((r) => decodeName(r)),
    close: () => { call.cancel(); client.close(); },
  };
}

/** A packed resource's name: field 1 of the Any's bytes (every xDS resource type keeps its name there). */
function decodeName(any: { value: Buffer }): string {
  const b = any.value;
  let i = 0;
  while (i < b.length) {
    const tag = b[i++]!;
    let len = 0, shift = 0, byte: number;
    do { byte = b[i++]!; len |= (byte & 0x7f) << shift; shift += 7; } while (byte & 0x80);
    if (tag === 0x0a) return b.subarray(i, i + len).toString();
    if ((tag & 7) !== 2) break;
    i += len;
  }
  return "";
}

whenAvailable(kubeApiserverUnavailableReason(), "Kubernetes registry: serve --kubeconfig on a real kube-apiserver", (test) => {
  let kube: KubeApiserver;
  let core: k8s.CoreV1Api;
  let discovery: k8s.DiscoveryV1Api;
  let n = 0;
  const cps: ControlPlane[] = [];
  const proxies: { close(): void }[] = [];

  test.before(async () => {
    kube = await startKubeApiserver();
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kube.kubeconfigFile());
    core = kc.makeApiClient(k8s.CoreV1Api);
    discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
  });
  test.after.each(async () => {
    for (const p of proxies.splice(0)) p.close();
    for (const cp of cps.splice(0)) await cp.stop();
  });
  test.after(async () => {
    await kube?.stop();
  });

  const namespace = async () => {
    const name = `seed-${++n}`;
    await core.createNamespace({ body: { metadata: { name } } });
    return name;
  };
  const controlPlane = async (token?: string, more: { namespaces?: string[]; registry?: string } = {}) => {
    const cp = await serve({
      kubernetes: { kubeconfig: kube.kubeconfigFile(token), watch: FAST, ...(more.namespaces ? { namespaces: more.namespaces } : {}) },
      ...(more.registry ? { registry: more.registry } : {}),
      xdsPort: 0, httpPort: 0, loopGuard: false, log: () => {},
    });
    cps.push(cp);
    return cp;
  };
  const networkStatus = (net1: string[]) => JSON.stringify([
    { name: "cbr0", interface: "eth0", ips: ["192.168.10.63"], default: true },
    { name: "data-net", interface: "net1", ips: net1 },
  ]);
  /** The seed's pod as a kubelet and a CNI leave it: Running, Ready, eth0 in status.podIPs, net1 in network-status. */
  const seedPod = async (ns: string, net1 = ["10.75.8.101"]) => {
    await core.createNamespacedPod({ namespace: ns, body: {
      metadata: { name: "a-1", labels: { app: "a" }, annotations: { [NETWORK_STATUS]: networkStatus(net1) } },
      spec: { nodeName: "node-1", serviceAccountName: "service-a", containers: [{ name: "a", image: "a:1", ports: [{ name: "http", containerPort: 9080 }] }] },
    } });
    await core.patchNamespacedPodStatus({ namespace: ns, name: "a-1", body: { status: {
      phase: "Running", podIP: "192.168.10.63", podIPs: [{ ip: "192.168.10.63" }], conditions: [{ type: "Ready", status: "True" }],
    } } }, mergePatch);
  };
  /** Service A, whose endpoints are its pods' addresses on net1 (the multus-service convention). */
  const serviceA = (ns: string) => core.createNamespacedService({ namespace: ns, body: {
    metadata: { name: "a", annotations: { [SERVICE_NETWORK]: "data-net" } },
    spec: { selector: { app: "a" }, ports: [{ name: "http", port: 9080, targetPort: 9080 }] },
  } });
  const seedProxy = (cp: ControlPlane, ns: string) => {
    const p = proxy(`127.0.0.1:${cp.xds.port}`, `sidecar~192.168.10.63~a-1.${ns}~${ns}.svc.cluster.local`);
    proxies.push(p);
    return p;
  };

  /** The seed's pod and Service A in a namespace of their own, a control plane, and the seed's proxy once it has its inbound listener. */
  const seedServed = async () => {
    const ns = await namespace();
    await seedPod(ns);
    await serviceA(ns);
    const cp = await controlPlane();
    const p = seedProxy(cp, ns);
    assert.ok(await waitFor(() => p.listeners().includes("10.75.8.101_9080"), 10_000), `listeners: ${p.listeners()}`);
    return { ns, cp, p };
  };

  test("the seed's pod, its proxy reporting one IP, gets the inbound listener for Service A on net1 from Kubernetes alone", async () => {
    const { ns, cp } = await seedServed();
    const status = await (await fetch(`${cp.httpUrl}/debug/proxies`)).json();
    const seen = status.proxies.find((x: any) => x.id.includes(`a-1.${ns}`));
    assert.equal(seen.nodeIps, ["192.168.10.63", "10.75.8.101"], "the pod's net1 IP counts as the proxy's own");
    const decisions = await (await fetch(`${cp.httpUrl}/debug/decisions?proxy=${encodeURIComponent(seen.id)}`)).text();
    assert.match(decisions, new RegExp(`Kubernetes pod ${ns}/a-1 \\(network-status:data-net/net1\\)`), `where the IP came from: ${decisions.slice(0, 1500)}`);
  });

  test("network-status changes reach the proxy: an IP added to net1 becomes inbound, one removed goes", async () => {
    const { ns, p } = await seedServed();
    await core.patchNamespacedPod({ namespace: ns, name: "a-1", body: { metadata: { annotations: { [NETWORK_STATUS]: networkStatus(["10.75.8.101", "10.75.8.102"]) } } } }, mergePatch);
    assert.ok(await waitFor(() => p.listeners().includes("10.75.8.102_9080"), 5000), `added: ${p.listeners()}`);
    await core.patchNamespacedPod({ namespace: ns, name: "a-1", body: { metadata: { annotations: { [NETWORK_STATUS]: networkStatus(["10.75.8.102"]) } } } }, mergePatch);
    assert.ok(await waitFor(() => !p.listeners().includes("10.75.8.101_9080") && p.listeners().includes("10.75.8.102_9080"), 5000), `removed: ${p.listeners()}`);
  });

  test("EndpointSlice churn: an ordinary Service's ready endpoints, as they change", async () => {
    const ns = await namespace();
    await core.createNamespacedService({ namespace: ns, body: { metadata: { name: "b" }, spec: { ports: [{ name: "tcp", port: 7000 }] } } });
    const slice = (addresses: { ip: string; ready: boolean }[]) => ({
      metadata: { name: "b-1", labels: { "kubernetes.io/service-name": "b" } },
      addressType: "IPv4", ports: [{ name: "tcp", port: 7000 }],
      endpoints: addresses.map((a) => ({ addresses: [a.ip], conditions: { ready: a.ready } })),
    });
    await discovery.createNamespacedEndpointSlice({ namespace: ns, body: slice([{ ip: "10.1.0.1", ready: true }, { ip: "10.1.0.2", ready: false }]) });
    // A Service that does not change: handed on as the same object, so nothing downstream is rebuilt for it.
    await core.createNamespacedService({ namespace: ns, body: { metadata: { name: "c" }, spec: { ports: [{ name: "tcp", port: 7001 }] } } });
    const cp = await controlPlane();
    const entryC = () => cp.store.registry.resources.find((r) => r.namespace === ns && r.name === "svc:c");
    assert.ok(await waitFor(() => entryC() !== undefined, 10_000));
    const c = entryC();
    const endpoints = () => cp.store.registry.services.find((s) => s.host === `b.${ns}.svc.cluster.local`)?.endpoints.map((e) => e.address).sort() ?? [];
    assert.ok(await waitFor(() => endpoints().join() === "10.1.0.1", 10_000), `first: ${endpoints()}`);
    for (let i = 2; i <= 6; i++) {
      await discovery.replaceNamespacedEndpointSlice({ namespace: ns, name: "b-1", body: slice([{ ip: `10.1.0.${i}`, ready: true }, { ip: "10.1.0.1", ready: i % 2 === 0 }]) });
      const want = [`10.1.0.${i}`, ...(i % 2 === 0 ? ["10.1.0.1"] : [])].sort().join();
      assert.ok(await waitFor(() => endpoints().join() === want, 5000), `change ${i}: ${endpoints()} want ${want}`);
    }
    assert.is(entryC(), c, "the unchanged Service's entry is the object it was");
  });

  test("an API server restart: the last registry keeps serving, /readyz says why, changes after it arrive", async () => {
    const { ns, cp, p } = await seedServed();
    let downReason = "";
    await kube.restart({
      whileDown: async () => {
        assert.ok(await waitFor(async () => (await fetch(`${cp.httpUrl}/readyz`)).status === 503, 10_000), "/readyz 503 while the API server is down");
        downReason = await (await fetch(`${cp.httpUrl}/readyz`)).text();
        assert.ok(p.listeners().includes("10.75.8.101_9080"), "the proxy keeps its config");
        assert.ok(cp.store.registry.services.some((s) => s.host === `a.${ns}.svc.cluster.local`), "the last registry serves");
      },
    });
    assert.match(downReason, /kubernetes/);
    await core.patchNamespacedPod({ namespace: ns, name: "a-1", body: { metadata: { annotations: { [NETWORK_STATUS]: networkStatus(["10.75.8.103"]) } } } }, mergePatch);
    assert.ok(await waitFor(() => p.listeners().includes("10.75.8.103_9080"), 15_000), `after the restart: ${p.listeners()}`);
    assert.ok(await waitFor(async () => (await fetch(`${cp.httpUrl}/readyz`)).status === 200, 15_000), "ready again");
  });

  test("RBAC refusal: nothing served yet, /readyz names the verb and the resource", async () => {
    const cp = await controlPlane(kube.limitedToken);
    const res = await fetch(`${cp.httpUrl}/readyz`);
    assert.is(res.status, 503);
    assert.match(await res.text(), /forbidden: cannot list (services|pods|endpointslices)/);
    assert.is(cp.store.registry.services.length, 0);
  });

  test("mutual TLS: the pod's IPs only for a certificate of the pod's service account; the refusal is counted", async () => {
    if (opensslUnavailableReason()) throw new Error(opensslUnavailableReason());
    const ns = await namespace();
    await seedPod(ns); // service account service-a
    await serviceA(ns);
    const dir = mkdtempSync(join(tmpdir(), "mp-k8s-tls-"));
    try {
      const ca = makeCa(dir);
      const server = makeLeaf(dir, ca, "server", { ips: ["127.0.0.1"] });
      const cert = (sa: string) => makeLeaf(dir, ca, sa, { uris: [`spiffe://cluster.local/ns/${ns}/sa/${sa}`] });
      const cp = await serve({
        kubernetes: { kubeconfig: kube.kubeconfigFile(), watch: FAST }, xdsPort: 0, httpPort: 0, loopGuard: false, log: () => {},
        tls: { certFile: server.cert, keyFile: server.key, clientCaFile: ca.cert },
      });
      cps.push(cp);
      const creds = (pair: { cert: string; key: string }) => grpc.credentials.createSsl(readFileSync(ca.cert), readFileSync(pair.key), readFileSync(pair.cert));
      const id = `sidecar~192.168.10.63~a-1.${ns}~${ns}.svc.cluster.local`;
      const right = proxy(`127.0.0.1:${cp.xds.port}`, id, undefined, creds(cert("service-a")));
      proxies.push(right);
      assert.ok(await waitFor(() => right.listeners().includes("10.75.8.101_9080"), 10_000), `the pod's own certificate: ${right.listeners()}`);
      right.close();
      const wrong = proxy(`127.0.0.1:${cp.xds.port}`, id, undefined, creds(cert("other")));
      proxies.push(wrong);
      assert.ok(await waitFor(() => wrong.listeners().length > 0, 10_000), "served");
      assert.not.ok(wrong.listeners().includes("10.75.8.101_9080"), "another service account's certificate does not get the pod's IPs");
      const metrics = await (await fetch(`${cp.httpUrl}/metrics`)).text();
      assert.match(metrics, /^multiplane_pod_ips_refused_total 1$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("Istio's ServiceEntries and WorkloadEntries from the API, once their CRDs are installed; an invalid one is refused with the file registry's message", async () => {
    const ns = await namespace();
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kube.kubeconfigFile());
    const cp = await controlPlane();
    const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
    // x-kubernetes-preserve-unknown-fields, as the client spells it.
    const schema = { openAPIV3Schema: { type: "object", properties: { spec: { type: "object", x_kubernetes_preserve_unknown_fields: true } } } };
    for (const [plural, kind] of [["serviceentries", "ServiceEntry"], ["workloadentries", "WorkloadEntry"], ["sidecars", "Sidecar"]] as const) {
      await ext.createCustomResourceDefinition({ body: {
        metadata: { name: `${plural}.networking.istio.io` },
        spec: { group: "networking.istio.io", names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` }, scope: "Namespaced", versions: [{ name: "v1", served: true, storage: true, schema }] },
      } });
    }
    // A new CRD's resources are served only once it is Established, and the apiserver's handler reads that
    // from its own informer a moment later: until then a create answers 404.
    for (const plural of ["serviceentries", "workloadentries", "sidecars"]) {
      const established = async () => (await ext.readCustomResourceDefinition({ name: `${plural}.networking.istio.io` })).status?.conditions?.some((c) => c.type === "Established" && c.status === "True") ?? false;
      assert.ok(await waitFor(established, 20_000), `${plural}: CRD established`);
    }
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const create = async (plural: string, body: object) => {
      const deadline = Date.now() + 10_000;
      for (;;) {
        try {
          return await custom.createNamespacedCustomObject({ group: "networking.istio.io", version: "v1", namespace: ns, plural, body });
        } catch (e) {
          if ((e as { code?: number }).code !== 404 || Date.now() > deadline) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    };
    await create("workloadentries", { apiVersion: "networking.istio.io/v1", kind: "WorkloadEntry", metadata: { name: "vm-1" }, spec: { address: "192.0.2.7", labels: { app: "legacy" } } });
    await create("serviceentries", { apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: "legacy" }, spec: {
      hosts: ["legacy.example"], ports: [{ number: 8080, name: "http", protocol: "HTTP" }], resolution: "STATIC", location: "MESH_INTERNAL", workloadSelector: { labels: { app: "legacy" } },
    } });
    const legacy = () => cp.store.registry.services.find((x) => x.host === "legacy.example");
    assert.ok(await waitFor(() => legacy()?.endpoints[0]?.address === "192.0.2.7", 45_000), "the ServiceEntry selects the WorkloadEntry (the CRDs are looked for again every 500 ms here)");
    await create("sidecars", { apiVersion: "networking.istio.io/v1", kind: "Sidecar", metadata: { name: "default" }, spec: { egress: [{ hosts: ["./*"] }], outboundTrafficPolicy: { mode: "REGISTRY_ONLY" } } });
    const sidecar = () => cp.store.registry.sidecars.find((x) => x.namespace === ns);
    assert.ok(await waitFor(() => sidecar() !== undefined, 10_000), "the namespace's Sidecar is read");
    assert.equal([sidecar()!.outboundTrafficPolicy, sidecar()!.egress], ["REGISTRY_ONLY", [{ hosts: [{ namespace: ".", host: "*" }] }]]);
    // Invalid as a file would be: refused with the same words; the last good registry keeps serving.
    await create("serviceentries", { apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: "bad" }, spec: { hosts: ["bad.example"], ports: [{ number: 99999, name: "tcp" }], resolution: "STATIC" } });
    assert.ok(await waitFor(async () => (await fetch(`${cp.httpUrl}/readyz`)).status === 503, 10_000), "the refused update shows in /readyz");
    assert.match(await (await fetch(`${cp.httpUrl}/readyz`)).text(), new RegExp(`kubernetes: ServiceEntry ${ns}/bad:0: .*99999`));
    assert.ok(legacy(), "the last good registry serves");
    // Removed, the cluster's registry applies again (and the tests after this one see a valid cluster).
    await custom.deleteNamespacedCustomObject({ group: "networking.istio.io", version: "v1", namespace: ns, plural: "serviceentries", name: "bad" });
    assert.ok(await waitFor(async () => (await fetch(`${cp.httpUrl}/readyz`)).status === 200, 10_000), "ready again without it");
  });

  test("--namespaces: only those namespaces' objects are read", async () => {
    const watched = await namespace();
    const other = await namespace();
    for (const ns of [watched, other]) await core.createNamespacedService({ namespace: ns, body: { metadata: { name: "s" }, spec: { ports: [{ name: "tcp", port: 7100 }] } } });
    const cp = await controlPlane(undefined, { namespaces: [watched] });
    const hosts = () => cp.store.registry.services.map((x) => x.host).filter((h) => h.startsWith("s."));
    assert.ok(await waitFor(() => hosts().length > 0, 10_000));
    assert.equal(hosts(), [`s.${watched}.svc.cluster.local`]);
  });

  test("beside a registry directory: both serve; the same host and port defined in both is refused as a conflict, naming both", async () => {
    const ns = await namespace();
    await core.createNamespacedService({ namespace: ns, body: { metadata: { name: "dup" }, spec: { ports: [{ name: "tcp", port: 7200 }] } } });
    const dir = mkdtempSync(join(tmpdir(), "mp-k8s-files-"));
    try {
      const entry = (name: string, host: string) => `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n  hosts: [${host}]\n  ports: [{number: 7200, name: tcp, protocol: TCP}]\n  resolution: STATIC\n  endpoints: [{address: 10.9.9.9}]\n`;
      writeFileSync(join(dir, "files.yaml"), entry("from-files", "files.example"));
      const cp = await controlPlane(undefined, { registry: dir });
      const has = (host: string) => cp.store.registry.services.some((x) => x.host === host);
      assert.ok(await waitFor(() => has("files.example") && has(`dup.${ns}.svc.cluster.local`), 10_000), "both sources serve");
      // The file now defines the Service's host too: the file's change is refused, both keep serving.
      writeFileSync(join(dir, ".files.yaml.tmp"), `${entry("from-files", "files.example")}---\n${entry("clash", `dup.${ns}.svc.cluster.local`)}`);
      renameSync(join(dir, ".files.yaml.tmp"), join(dir, "files.yaml"));
      assert.ok(await waitFor(async () => (await fetch(`${cp.httpUrl}/readyz`)).status === 503, 10_000), "the clash shows in /readyz");
      const why = await (await fetch(`${cp.httpUrl}/readyz`)).text();
      assert.match(why, new RegExp(`dup\\.${ns}\\.svc\\.cluster\\.local`));
      assert.match(why, /kubernetes: Service/);
      assert.ok(has("files.example") && has(`dup.${ns}.svc.cluster.local`), "the last good registry serves");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("bad annotations are warnings naming the pod; the rest is served", async () => {
    const ns = await namespace();
    await seedPod(ns);
    await serviceA(ns);
    for (const [name, value] of [["bad-json", "[{"], ["bad-types", JSON.stringify([{ name: 7, ips: "10.0.0.1" }])], ["huge", "x".repeat(100_000)]]) {
      await core.createNamespacedPod({ namespace: ns, body: { metadata: { name: name!, labels: { app: "a" }, annotations: { [NETWORK_STATUS]: value! } }, spec: { containers: [{ name: "c", image: "c:1" }] } } });
      await core.patchNamespacedPodStatus({ namespace: ns, name: name!, body: { status: { phase: "Running", podIPs: [{ ip: "10.2.0.1" }], conditions: [{ type: "Ready", status: "True" }] } } }, mergePatch);
    }
    const cp = await controlPlane();
    const p = seedProxy(cp, ns);
    assert.ok(await waitFor(() => p.listeners().includes("10.75.8.101_9080"), 10_000), "the good pod still counts");
    const registry = await (await fetch(`${cp.httpUrl}/debug/registry`)).text();
    for (const name of ["bad-json", "bad-types", "huge"]) assert.match(registry, new RegExp(`Pod ${ns}/${name}`), `a warning names ${name}`);
  });
});

test.run();
