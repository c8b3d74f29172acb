// What, besides its node IPs, decides which part of the registry a proxy is given: its namespace
// (exportTo visibility) and labels (which Sidecar applies to it), its network (split-horizon endpoints) and its DNS domain (the short names
// its HTTP routes accept). Istio's sources: node metadata NAMESPACE, else the namespace in node.id;
// node metadata LABELS; node metadata NETWORK; node.id's domain, else <namespace>.svc.cluster.local.
import type { ProxyIdentity } from "../identity/proxy.ts";
import { NO_PLANES, type Planes } from "../planes/plane.ts";
import { nodeIpsOf } from "./node-ips.ts";
import type { GenerationOptions } from "./options.ts";

export interface ProxyView {
  /** undefined: unknown (an opaque node id without NAMESPACE): the proxy sees services exported to every namespace only. */
  namespace?: string;
  /** The workload's labels (node metadata LABELS), which Sidecars' workloadSelectors match; undefined: none. */
  labels?: Readonly<Record<string, string>>;
  /** undefined: the proxy names no network; with gateways configured, endpoints on named networks are reached through them. */
  network?: string;
  /** undefined: unknown (an opaque node id without NAMESPACE): HTTP routes accept no short names. */
  dnsDomain?: string;
  /** The planes of its node IPs that isolate services or bind sources (file order); undefined: none. */
  planes?: readonly string[];
}

/** `nodeIps`: the IPs that count as the proxy's node (generation/node-ips.ts), which put it on planes. */
export function proxyView(proxy: ProxyIdentity, planes: Planes = NO_PLANES, nodeIps: readonly string[] = []): ProxyView {
  const meta = proxy.metadata;
  const fromMeta = typeof meta.NAMESPACE === "string" && meta.NAMESPACE !== "" ? meta.NAMESPACE : undefined;
  const namespace = fromMeta ?? (proxy.nodeId.form === "istio" && proxy.nodeId.namespace !== "" ? proxy.nodeId.namespace : undefined);
  const network = typeof meta.NETWORK === "string" && meta.NETWORK !== "" ? meta.NETWORK : undefined;
  const fromId = proxy.nodeId.form === "istio" && proxy.nodeId.domain !== "" ? proxy.nodeId.domain.toLowerCase() : undefined;
  const dnsDomain = fromId ?? (namespace ? `${namespace}.svc.cluster.local` : undefined);
  const on = planes.empty ? [] : planes.list.filter((p) => (p.isolated || p.bindSource) && nodeIps.some((ip) => planes.planeOf(ip) === p)).map((p) => p.name);
  return { ...(namespace ? { namespace } : {}), ...(proxy.labels ? { labels: proxy.labels } : {}), ...(network ? { network } : {}), ...(dnsDomain ? { dnsDomain } : {}), ...(on.length ? { planes: on } : {}) };
}

/** The view generation uses: with the planes of the IPs that count as the proxy's node. */
export function viewOf(proxy: ProxyIdentity, options: Pick<GenerationOptions, "planes" | "legacySingleIp">): ProxyView {
  return proxyView(proxy, options.planes, options.planes.empty ? [] : nodeIpsOf(proxy, options.legacySingleIp).ips);
}
