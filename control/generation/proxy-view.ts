// What, besides its node IPs, decides which part of the registry a proxy is given: its namespace
// (exportTo visibility), its network (split-horizon endpoints) and its DNS domain (the short names
// its HTTP routes accept). Istio's sources: node metadata NAMESPACE, else the namespace in node.id;
// node metadata NETWORK; node.id's domain, else <namespace>.svc.cluster.local.
import type { ProxyIdentity } from "../identity/proxy.ts";

export interface ProxyView {
  /** undefined: unknown (an opaque node id without NAMESPACE): the proxy sees services exported to every namespace only. */
  namespace?: string;
  /** undefined: the proxy names no network; with gateways configured, endpoints on named networks are reached through them. */
  network?: string;
  /** undefined: unknown (an opaque node id without NAMESPACE): HTTP routes accept no short names. */
  dnsDomain?: string;
}

export function proxyView(proxy: ProxyIdentity): ProxyView {
  const meta = proxy.metadata;
  const fromMeta = typeof meta.NAMESPACE === "string" && meta.NAMESPACE !== "" ? meta.NAMESPACE : undefined;
  const namespace = fromMeta ?? (proxy.nodeId.form === "istio" && proxy.nodeId.namespace !== "" ? proxy.nodeId.namespace : undefined);
  const network = typeof meta.NETWORK === "string" && meta.NETWORK !== "" ? meta.NETWORK : undefined;
  const fromId = proxy.nodeId.form === "istio" && proxy.nodeId.domain !== "" ? proxy.nodeId.domain.toLowerCase() : undefined;
  const dnsDomain = fromId ?? (namespace ? `${namespace}.svc.cluster.local` : undefined);
  return { ...(namespace ? { namespace } : {}), ...(network ? { network } : {}), ...(dnsDomain ? { dnsDomain } : {}) };
}
