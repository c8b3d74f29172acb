// May this proxy have the config it asks for? Under mutual TLS a proxy gets config only for the
// identity its certificate proves: the namespace in its node id (and the SERVICE_ACCOUNT in its
// metadata, if it names one) must be the certificate's SPIFFE namespace and service account, and when
// the certificate lists IP addresses, every node IP the proxy claims (node.id's IP and INSTANCE_IPS)
// must be one of them, so no proxy can claim another host's addresses. Pure.
import type { ProxyIdentity } from "../identity/proxy.ts";
import type { PeerIdentity } from "./peer-identity.ts";

export interface AuthzPolicy {
  /** SPIFFE trust domain certificates must belong to (Istio's default: cluster.local). */
  trustDomain: string;
}

/** Label values of multiplane_xds_refusals_total. */
export type RefusalKind = "no_identity" | "trust_domain" | "namespace" | "service_account" | "node_ip" | "conflict";

export type AuthzDecision = { ok: true } | { ok: false; kind: RefusalKind; reason: string };

const refuse = (kind: RefusalKind, reason: string): AuthzDecision => ({ ok: false, kind, reason });

export function authorize(proxy: ProxyIdentity, peer: PeerIdentity, policy: AuthzPolicy): AuthzDecision {
  const spiffe = peer.spiffe;
  if (!spiffe) {
    return refuse("no_identity", peer.spiffeProblem ?? `the client certificate (${peer.display}) carries no SPIFFE id spiffe://${policy.trustDomain}/ns/<namespace>/sa/<service-account>, so it proves no namespace`);
  }
  if (spiffe.trustDomain !== policy.trustDomain) {
    return refuse("trust_domain", `certificate ${spiffe.uri} belongs to trust domain ${spiffe.trustDomain}, not ${policy.trustDomain}`);
  }
  const id = proxy.nodeId;
  if (id.form !== "istio") {
    return refuse("namespace", `node id ${JSON.stringify(proxy.id)} names no namespace (Istio form <type>~<ip>~<name>.<namespace>~<namespace>.svc.cluster.local); certificate ${spiffe.uri} is for namespace ${spiffe.namespace}`);
  }
  const claimed = [...new Set([id.namespace, ...(id.domain ? [id.domain.split(".")[0]!] : [])])];
  const wrongNs = claimed.filter((ns) => ns !== spiffe.namespace);
  if (wrongNs.length > 0) {
    return refuse("namespace", `node id ${JSON.stringify(proxy.id)} claims namespace ${wrongNs.join(", ")}; certificate ${spiffe.uri} is for namespace ${spiffe.namespace}`);
  }
  const sa = proxy.metadata.SERVICE_ACCOUNT;
  if (sa !== undefined && sa !== spiffe.serviceAccount) {
    return refuse("service_account", `node metadata SERVICE_ACCOUNT ${JSON.stringify(sa)} is not the certificate's service account ${spiffe.serviceAccount} (${spiffe.uri})`);
  }
  if (peer.ips.length > 0) {
    const claimedIps = [...new Set([...(proxy.nodeIdIp ? [proxy.nodeIdIp] : []), ...proxy.instanceIps])];
    const foreign = claimedIps.filter((ip) => !peer.ips.includes(ip));
    if (foreign.length > 0) {
      const named = foreign.map((ip) => `${ip} (${ip === proxy.nodeIdIp ? "node.id" : "INSTANCE_IPS"})`);
      return refuse("node_ip", `node IPs ${named.join(", ")} are not among the certificate's IP addresses ${peer.ips.join(", ")} (${spiffe.uri})`);
    }
  }
  return { ok: true };
}
