// Whether a new xDS stream is served, and what is noted about it. Under mutual TLS the certificate
// must prove the identity the proxy claims (authorize.ts) and a stream that disagrees with an open
// stream of the same node id is refused; without a client certificate nothing is proven, so streams
// are served, each with its own config, and a disagreement is only warned about. Pure.
import type { ProxyIdentity } from "../identity/proxy.ts";
import { authorize, type AuthzPolicy, type RefusalKind } from "./authorize.ts";
import type { PeerIdentity } from "./peer-identity.ts";
import { sameNodeConflict, type StreamClaim } from "./same-node.ts";

export interface AdmissionInput {
  proxy: ProxyIdentity;
  streamId: number;
  /** The node IPs its config is built for. */
  nodeIps: readonly string[];
  /** The verified client certificate's identity; undefined without mutual TLS. */
  peer?: PeerIdentity;
  /** The open streams with the same node id. */
  open: readonly StreamClaim[];
  policy: AuthzPolicy;
}

export type Admission =
  | { ok: true; peerIdentity?: string; warning?: string }
  | { ok: false; kind: RefusalKind; reason: string };

export function admit(input: AdmissionInput): Admission {
  const { proxy, peer } = input;
  if (peer) {
    const decision = authorize(proxy, peer, input.policy);
    if (!decision.ok) return decision;
  }
  const claim: StreamClaim = { streamId: input.streamId, nodeIps: input.nodeIps, ...(peer ? { peerIdentity: peer.display } : {}) };
  const conflict = sameNodeConflict(input.open, claim);
  if (conflict && peer) {
    return { ok: false, kind: "conflict", reason: `node id ${proxy.id} is already connected and this stream differs: ${conflict}` };
  }
  return {
    ok: true,
    ...(peer ? { peerIdentity: peer.display } : {}),
    ...(conflict ? { warning: `another stream claims node id ${proxy.id}: ${conflict}; each stream gets its own config` } : {}),
  };
}
