// The Kubernetes rows of bench/control.ts: the meshes' services (bench/mesh.ts) as Kubernetes Services
// with EndpointSlices of 3 endpoints, and one pod per proxy, in a real kube-apiserver on its own etcd
// (test/support/kube-apiserver.ts).
//  1. Cold: serve() with --kubeconfig until every Service serves (list, translate, build), per round.
//  2. N proxies (bench/mesh-clients.ts; proxy i's node id names pod bench-i) connect; then one
//     EndpointSlice edit moves service 7's first endpoint, and every proxy is timed until it has
//     received and ACKed the new address. The control plane's RSS: idle, connected, peak (it runs in
//     a process of its own for this part, bench/mesh-server.ts, so the figures are its own).
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as k8s from "@kubernetes/client-node";
import { serve } from "../control/serve/serve.ts";
import { startKubeApiserver } from "../test/support/kube-apiserver.ts";
import { endpointIp, isHttpService, jsonLines, MeshServer, routeNames, servicePort } from "./mesh.ts";

export interface KubernetesResult {
  services: number;
  pods: number;
  proxies: number;
  protocol: "sotw" | "delta";
  /** Creating the Services, EndpointSlices and pods through the API (setup, for scale). */
  populateMs: number;
  /** Per round: serve() until every Service serves. */
  loadMs: number[];
  connectMs: number;
  /** Per proxy: EndpointSlice replaced -> ACK of the EDS response carrying the new address. */
  latenciesMs: number[];
  rssMb: { idle: number; connected: number; peak: number };
}

const NS = "bench";

/** Runs `count` tasks, `width` at a time. */
async function inParallel(count: number, width: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < count) await task(next++);
  }));
}

const slice = (i: number, first = endpointIp(i, 0)) => ({
  metadata: { name: `svc-${i}-1`, labels: { "kubernetes.io/service-name": `svc-${i}` } },
  addressType: "IPv4",
  ports: [{ name: isHttpService(i) ? "http" : "tcp", port: servicePort(i) }],
  endpoints: [first, endpointIp(i, 1), endpointIp(i, 2)].map((ip) => ({ addresses: [ip], conditions: { ready: true } })),
});

export async function kubernetesBench(services: number, proxies: number, protocol: "sotw" | "delta", rounds: number): Promise<KubernetesResult> {
  const kube = await startKubeApiserver();
  try {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kube.kubeconfigFile());
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
    const tPopulate = performance.now();
    await core.createNamespace({ body: { metadata: { name: NS } } });
    await inParallel(services, 32, async (i) => {
      // Headless: the API server allocates cluster IPs from a /16, and the endpoints select the service anyway.
      await core.createNamespacedService({ namespace: NS, body: { metadata: { name: `svc-${i}` }, spec: { clusterIP: "None", ports: [{ name: isHttpService(i) ? "http" : "tcp", port: servicePort(i) }] } } });
      await discovery.createNamespacedEndpointSlice({ namespace: NS, body: slice(i) });
    });
    // Proxy i's pod: its node IP in status.podIPs (mesh-clients.ts's node ids name these pods).
    await inParallel(proxies, 32, async (i) => {
      await core.createNamespacedPod({ namespace: NS, body: { metadata: { name: `bench-${i}` }, spec: { nodeName: "node-1", containers: [{ name: "app", image: "app:1" }] } } });
      await core.patchNamespacedPodStatus({ namespace: NS, name: `bench-${i}`, body: { status: { phase: "Running", podIPs: [{ ip: `10.200.${i >> 8}.${i & 255}` }] } } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch));
    });
    const populateMs = performance.now() - tPopulate;
    const kubeconfig = kube.kubeconfigFile();

    const loadMs: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      const cp = await serve({ kubernetes: { kubeconfig }, xdsPort: 0, httpPort: false, log: () => {} });
      while (cp.store.registry.services.length < services) await new Promise((res) => setTimeout(res, 5));
      loadMs.push(performance.now() - t0);
      await cp.stop();
    }

    // The control plane under test in a process of its own, as the meshes' (bench/mesh-server.ts).
    const { server, port } = await MeshServer.start({ kubeconfig });
    const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./mesh-clients.ts", import.meta.url)), `127.0.0.1:${port}`, String(proxies), protocol, routeNames(services).join(",")], { stdio: ["pipe", "pipe", "inherit"] });
    const lines = jsonLines(child, "mesh clients");
    const next = () => lines<any>(() => true);
    try {
      await server.servingAtLeast(services);
      const idle = await server.sample();
      const tConnect = performance.now();
      await next(); // {"ready": N}
      const connectMs = performance.now() - tConnect;
      const connected = await server.sample();
      const latenciesMs: number[] = [];
      for (let round = 1; round <= rounds; round++) {
        // Service i's first endpoint moves; proxy i (if there is one) hosts it.
        const i = (round * 997) % services;
        const moved = `10.250.${round}.${(i % 250) + 1}`;
        const result = next();
        const t0 = process.hrtime.bigint();
        child.stdin!.write(JSON.stringify({ t0: t0.toString(), cluster: `outbound|${servicePort(i)}||svc-${i}.${NS}.svc.cluster.local`, address: moved }) + "\n");
        await discovery.replaceNamespacedEndpointSlice({ namespace: NS, name: `svc-${i}-1`, body: slice(i, moved) });
        const { latenciesMs: one, checked } = await result as { latenciesMs: number[]; checked: number };
        if (checked !== proxies) throw new Error(`only ${checked} of ${proxies} proxies saw the new address`);
        latenciesMs.push(...one);
      }
      const after = await server.sample();
      return { services, pods: proxies, proxies, protocol, populateMs, loadMs, connectMs, latenciesMs, rssMb: { idle: idle.rssMb, connected: connected.peakMb, peak: Math.max(connected.peakMb, after.peakMb) } };
    } finally {
      child.kill();
      await server.stop();
    }
  } finally {
    await kube.stop();
  }
}
