// A Service's EndpointSlices (discovery.k8s.io/v1) as ServiceEntry endpoints: the addresses that
// should receive new connections, each with the port it receives every service port on (the slice's
// ports, which the EndpointSlice controller resolved from targetPort for that pod), its pod's labels,
// and its locality. An address listed by several slices (a pod moving between slices) is one endpoint.
import type { V1EndpointSlice, V1Service } from "@kubernetes/client-node";
import { quote } from "../../../common/clip.ts";
import { isUnspecified, parseIp } from "../../../identity/ip.ts";
import type { Endpoint } from "../../model.ts";
import { objectName } from "./objects.ts";
import { endpointLocality, type Cluster } from "./pods.ts";
import type { KubernetesPort } from "./service-ports.ts";

/** The label that ties an EndpointSlice to its Service (same namespace). */
export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

/**
 * Whether an endpoint takes new connections. Kubernetes' API: `ready` unset means ready (a
 * consumer must treat an unknown state as ready); with publishNotReadyAddresses the Service wants
 * every address regardless (the controller then sets ready itself; honoured here too for slices others
 * wrote). An endpoint that is terminating but still `serving` has `ready` false: Istio keeps such
 * endpoints only as draining (for persistent sessions) and otherwise sends them to no one, and
 * multiplane's endpoints have no health status to say "draining" with, so it is left out. Envoy then
 * stops opening connections to it, while the connections it already has run until they close.
 */
function takesTraffic(ready: boolean | undefined | null, publishNotReady: boolean): boolean {
  return publishNotReady || ready !== false;
}

export function sliceEndpoints(service: V1Service, ports: readonly KubernetesPort[], slices: readonly V1EndpointSlice[], cluster: Cluster): { endpoints: Endpoint[]; warnings: string[] } {
  const warnings: string[] = [];
  const byAddress = new Map<string, Endpoint>();
  const publishNotReady = service.spec?.publishNotReadyAddresses === true;
  /** Per service port with a named targetPort: addresses whose slice gives no port for it. */
  const unresolved = new Map<KubernetesPort, string[]>();
  const sorted = [...slices].sort((a, b) => cmp(a.metadata?.name ?? "", b.metadata?.name ?? ""));
  for (const slice of sorted) {
    const sliceName = `EndpointSlice ${objectName(slice.metadata)}`;
    if (slice.addressType !== "IPv4" && slice.addressType !== "IPv6") {
      warnings.push(`${sliceName}: addressType ${JSON.stringify(slice.addressType)} is not served (IPv4 and IPv6 are; Istio skips FQDN slices too); left out`);
      continue;
    }
    // A slice port without a number stands for "all ports" (no port to map); an unnamed one is the Service's only, unnamed, port.
    const slicePorts = new Map<string, number>();
    for (const p of Array.isArray(slice.ports) ? slice.ports : []) {
      if (typeof p?.port === "number" && p.port >= 1 && p.port <= 65535 && !slicePorts.has(p.name ?? "")) slicePorts.set(p.name ?? "", p.port);
    }
    const namespace = slice.metadata?.namespace || service.metadata?.namespace || "default";
    for (const endpoint of Array.isArray(slice.endpoints) ? slice.endpoints : []) {
      if (!endpoint || !takesTraffic(endpoint.conditions?.ready, publishNotReady)) continue;
      const ref = endpoint.targetRef;
      const pod = ref?.kind === "Pod" && ref.name ? cluster.pods.get(`${ref.namespace || namespace}/${ref.name}`) : undefined;
      const nodeName = endpoint.nodeName ?? pod?.spec?.nodeName;
      const node = nodeName ? cluster.nodes.get(nodeName) : undefined;
      const locality = endpointLocality(pod, node, endpoint.zone);
      const endpointPorts: Record<string, number> = {};
      for (const kp of ports) {
        const n = slicePorts.get(kp.kubernetesName);
        if (n !== undefined) endpointPorts[kp.port.name] = n;
      }
      for (const raw of Array.isArray(endpoint.addresses) ? endpoint.addresses : []) {
        const ip = typeof raw === "string" ? parseIp(raw) : undefined;
        if (!ip?.ok || isUnspecified(ip.ip)) {
          warnings.push(`${sliceName}: address ${typeof raw === "string" ? quote(raw, 80) : String(raw)} is not a host's IP address; left out`);
          continue;
        }
        const known = byAddress.get(ip.ip);
        if (known) {
          // Another slice listed it first (slices in name order): what it says stands, this one fills the gaps.
          for (const [name, n] of Object.entries(endpointPorts)) if (!(name in known.ports)) known.ports[name] = n;
          if (Object.keys(known.labels).length === 0 && pod?.metadata?.labels) known.labels = { ...pod.metadata.labels };
          if (known.locality === undefined && locality) known.locality = locality;
          continue;
        }
        byAddress.set(ip.ip, {
          address: ip.ip, addressType: "ip", ports: { ...endpointPorts },
          // Pod labels are Istio's endpoint labels. A pod not (yet) known leaves them empty: Istio waits
          // for the pod instead, but here the address is what routes, and labels only refine it.
          labels: { ...(pod?.metadata?.labels ?? {}) },
          ...(locality ? { locality } : {}),
        });
      }
    }
  }
  const endpoints = [...byAddress.values()].sort((a, b) => cmp(a.address, b.address));
  for (const e of endpoints) {
    for (const kp of ports) {
      if (kp.targetPortName !== undefined && !(kp.port.name in e.ports)) {
        const list = unresolved.get(kp) ?? [];
        list.push(e.address);
        unresolved.set(kp, list);
      }
    }
  }
  // The EndpointSlice controller leaves a port out for a pod that has no container port of that name;
  // the pod does not serve it, but an endpoint here cannot say "not on this port": it would be sent to the service port number.
  for (const [kp, addresses] of unresolved) {
    warnings.push(`service port ${kp.port.name} (${kp.port.number}) has targetPort ${JSON.stringify(kp.targetPortName)}, and ${addresses.length} endpoint${addresses.length > 1 ? "s" : ""} (${addresses.slice(0, 3).join(", ")}${addresses.length > 3 ? ", ..." : ""}) have no such port in their EndpointSlice: they get port ${kp.port.number}`);
  }
  return { endpoints, warnings };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
