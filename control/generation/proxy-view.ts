// What, besides its node IPs, decides which part of the registry a proxy is given: its namespace
// (exportTo visibility) and its network (split-horizon endpoints). Istio's sources: node metadata
// NAMESPACE, else the namespace in node.id; node metadata NETWORK.
import type { ProxyIdentity } from "../identity/proxy.ts";

export interface ProxyView {
  /** undefined: unknown (an opaque node id without NAMESPACE): the proxy sees services exported to every namespace only. */
  namespace?: string;
  /** undefined: the proxy names no network; with gateways configured, endpoints on named networks are reached through them. */
  network?: string;
}

export function proxyView(proxy: ProxyIdentity): ProxyView {
  const meta = proxy.metadata;
  const fromMeta = typeof meta.NAMESPACE === "string" && meta.NAMESPACE !== "" ? meta.NAMESPACE : undefined;
  const namespace = fromMeta ?? (proxy.nodeId.form === "istio" && proxy.nodeId.namespace !== "" ? proxy.nodeId.namespace : undefined);
  const network = typeof meta.NETWORK === "string" && meta.NETWORK !== "" ? meta.NETWORK : undefined;
  return { ...(namespace ? { namespace } : {}), ...(network ? { network } : {}) };
}
