// Two streams that claim the same node id: the same Envoy reconnecting (or holding two streams) is
// fine; two different proxies are not. They are told apart by what shapes their config (node IPs)
// and what proves who they are (the certificate's identity). Pure.

export interface StreamClaim {
  streamId: number;
  nodeIps: readonly string[];
  /** What the client certificate proves (mutual TLS), e.g. a SPIFFE id. */
  peerIdentity?: string;
}

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...a].sort().join(",") === [...b].sort().join(",");
const list = (ips: readonly string[]) => ips.join(",") || "none";

/** How `next` differs from the first open stream of its node id that it differs from; undefined when none does. */
export function sameNodeConflict(open: readonly StreamClaim[], next: StreamClaim): string | undefined {
  for (const o of open) {
    if (o.streamId === next.streamId) continue;
    if ((o.peerIdentity ?? "") !== (next.peerIdentity ?? "")) {
      return `certificate identity ${next.peerIdentity ?? "(none)"} differs from stream ${o.streamId}'s ${o.peerIdentity ?? "(none)"}`;
    }
    if (!sameSet(o.nodeIps, next.nodeIps)) return `node IPs ${list(next.nodeIps)} differ from stream ${o.streamId}'s ${list(o.nodeIps)}`;
  }
  return undefined;
}
