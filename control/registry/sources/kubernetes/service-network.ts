// A Service on a secondary network: annotated `k8s.v1.cni.cncf.io/service-network: NAME` (or NS/NAME),
// its endpoints are the IPs its selected pods have on that network (their network-status), not its
// EndpointSlices (which list the pods' cluster-network IPs). Each receives the Service's ports on their
// target ports, resolved per pod as the EndpointSlice controller resolves them.
import type { V1Pod, V1Service } from "@kubernetes/client-node";
import type { Endpoint } from "../../model.ts";
import { isNetwork, NETWORK_STATUS_ANNOTATION, type NetworkStatus } from "./network-status.ts";
import { objectName, selects } from "./objects.ts";
import { endpointLocality, podServes, type Cluster } from "./pods.ts";
import type { KubernetesPort } from "./service-ports.ts";

export const SERVICE_NETWORK_ANNOTATION = "k8s.v1.cni.cncf.io/service-network";

export interface NetworkRef {
  namespace: string;
  name: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

/** The network the Service names (NAME alone: a NetworkAttachmentDefinition in the Service's own namespace); undefined without the annotation. */
export function serviceNetwork(service: V1Service): { ok: true; ref: NetworkRef | undefined } | { ok: false; reason: string } {
  const value: unknown = service.metadata?.annotations?.[SERVICE_NETWORK_ANNOTATION];
  if (value === undefined || value === null) return { ok: true, ref: undefined };
  const bad = (why: string) => ({ ok: false as const, reason: `annotation ${SERVICE_NETWORK_ANNOTATION}: ${why}` });
  if (typeof value !== "string") return bad(`must be a string, got ${typeof value}`);
  const text = value.trim();
  const parts = text.split("/");
  const [namespace, name] = parts.length === 2 ? parts as [string, string] : [service.metadata?.namespace || "default", parts[0]!];
  if (parts.length > 2 || !DNS_LABEL.test(namespace) || !DNS_SUBDOMAIN.test(name)) {
    return bad(`${JSON.stringify(value.slice(0, 300))} is not NAME or NAMESPACE/NAME of a NetworkAttachmentDefinition`);
  }
  return { ok: true, ref: { namespace, name } };
}

/**
 * The endpoints of `service` on `network`: every pod of its namespace (`pods`) that its selector
 * selects and that serves (pods.ts), once per IP the pod has on that network.
 */
export function networkEndpoints(
  service: V1Service, network: NetworkRef, ports: readonly KubernetesPort[], pods: readonly V1Pod[],
  statusOf: (pod: V1Pod) => NetworkStatus, cluster: Cluster,
): { endpoints: Endpoint[]; warnings: string[] } {
  const warnings: string[] = [];
  const selector = service.spec?.selector ?? {};
  const networkName = `${network.namespace}/${network.name}`;
  if (Object.keys(selector).length === 0) {
    return { endpoints: [], warnings: [`annotation ${SERVICE_NETWORK_ANNOTATION} (${networkName}) needs spec.selector to find the pods on that network; the Service has none, so it has no endpoints`] };
  }
  const namespace = service.metadata?.namespace || "default";
  const publishNotReady = service.spec?.publishNotReadyAddresses === true;
  const byAddress = new Map<string, { endpoint: Endpoint; pod: string }>();
  const selected = pods.filter((p) => (p.metadata?.namespace || "default") === namespace && selects(selector, p.metadata?.labels))
    .sort((a, b) => cmp(a.metadata?.name ?? "", b.metadata?.name ?? ""));
  for (const pod of selected) {
    const podName = `pod ${objectName(pod.metadata)}`;
    if (!podServes(pod, publishNotReady).ok) continue;
    const attachments = statusOf(pod).networks.filter((n) => isNetwork(n.name, network, namespace));
    const ips = [...new Set(attachments.flatMap((n) => n.ips))];
    if (attachments.length === 0) {
      warnings.push(`${podName} is selected but has no network ${networkName} in its ${NETWORK_STATUS_ANNOTATION} annotation; left out`);
      continue;
    }
    if (ips.length === 0) {
      warnings.push(`${podName} is attached to network ${networkName} (${attachments.map((a) => a.interface ?? "?").join(", ")}) without an IP address; left out`);
      continue;
    }
    const endpointPorts: Record<string, number> = {};
    for (const kp of ports) {
      const n = targetPortOf(pod, kp);
      if (n !== undefined) endpointPorts[kp.port.name] = n;
      else warnings.push(`${podName} has no container port named ${JSON.stringify(kp.targetPortName)} (targetPort of service port ${kp.port.name}): it gets port ${kp.port.number}`);
    }
    const nodeName = pod.spec?.nodeName;
    const locality = endpointLocality(pod, nodeName ? cluster.nodes.get(nodeName) : undefined);
    for (const ip of ips) {
      const before = byAddress.get(ip);
      if (before) {
        warnings.push(`${podName} has ${ip} on network ${networkName}, as ${before.pod} has; ${podName} left out for that address`);
        continue;
      }
      byAddress.set(ip, {
        pod: podName,
        // Pod labels, as Istio gives a pod's endpoints. `network` stays unset: it names Istio's mesh
        // network (reached directly or through gateways), which a CNI attachment is not; meshNetworks'
        // fromCidr ranges place these addresses if the mesh spans networks.
        endpoint: { address: ip, addressType: "ip", ports: { ...endpointPorts }, labels: { ...(pod.metadata?.labels ?? {}) }, ...(locality ? { locality } : {}) },
      });
    }
  }
  const endpoints = [...byAddress.values()].map((x) => x.endpoint).sort((a, b) => cmp(a.address, b.address));
  return { endpoints, warnings };
}

/** The port `pod` receives a service port on: the numeric targetPort, the container port its name names, or the service port itself (Kubernetes' default). */
function targetPortOf(pod: V1Pod, kp: KubernetesPort): number | undefined {
  if (kp.targetPortName === undefined) return kp.port.targetPort ?? kp.port.number;
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c?.ports ?? []) {
      if (p?.name === kp.targetPortName && (p.protocol ?? "TCP") === "TCP" && typeof p.containerPort === "number") return p.containerPort;
    }
  }
  return undefined;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
