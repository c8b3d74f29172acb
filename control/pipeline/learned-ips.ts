// A proxy's node IPs beyond what it reported at its start, from every source that knows more: its pod
// (Kubernetes, pod-ips.ts) and its node's agent (agent-ips.ts). Each source says what it knows of a
// stream; this joins them into the proxy's identity, and when a source's knowledge changes, moves each
// affected stream to its new node IPs (the distributor regenerates only those).
import { withLearnedIps, type LearnedIp, type ProxyIdentity } from "../identity/proxy.ts";
import type { ConfigDistributor } from "./distributor.ts";
import type { Proxies, ProxyRecord } from "./proxies.ts";

/** What one source knows of a stream's node IPs. */
export interface Learned {
  ips: readonly LearnedIp[];
  /** Set when these IPs are the node's whole current set, in place of what the proxy reported: who says so. */
  replaces?: string;
}

export interface LearnedIpSource {
  ipsFor(proxy: ProxyIdentity, streamId: number): Learned | undefined;
}

/** Which open streams a source's change may affect (judged on the identity they have now). */
export type Affects = (proxy: ProxyIdentity, streamId: number) => boolean;

const sameLearned = (a: ProxyIdentity, b: ProxyIdentity) =>
  a.replacedBy === b.replacedBy && a.learned.length === b.learned.length
  && a.learned.every((x, i) => x.ip === b.learned[i]!.ip && x.from === b.learned[i]!.from && x.at === b.learned[i]!.at);

export class LearnedIps {
  private readonly sources: LearnedIpSource[] = [];

  constructor(private readonly distributor: ConfigDistributor, private readonly proxies: Proxies) {}

  add(source: LearnedIpSource): void {
    this.sources.push(source);
  }

  /** The proxy as it connects, with what every source knows of it. */
  learn(reported: ProxyIdentity, streamId: number): ProxyIdentity {
    const ips: LearnedIp[] = [];
    let replaces: string | undefined;
    for (const source of this.sources) {
      const learned = source.ipsFor(reported, streamId);
      if (!learned) continue;
      ips.push(...learned.ips);
      replaces ??= learned.replaces;
    }
    return withLearnedIps(reported, ips, replaces);
  }

  /** A source knows something new: every open stream it may affect is given its node IPs again, if they changed. O(streams). */
  refresh(affects: Affects): void {
    for (const r of this.proxies.all()) if (affects(r.identity, r.streamId)) this.relearn(r);
  }

  /** The same for the streams of these node ids only: O(their streams), not O(every stream). */
  refreshNodes(nodeIds: Iterable<string>): void {
    for (const id of nodeIds) for (const r of this.proxies.forNode(id)) this.relearn(r);
  }

  private relearn(r: ProxyRecord): void {
    // r.identity still holds what the proxy reported (node.id's IP, INSTANCE_IPS): learning starts from it again.
    const next = this.learn(r.identity, r.streamId);
    if (!sameLearned(next, r.identity)) this.distributor.relearn(r.streamId, next);
  }
}
