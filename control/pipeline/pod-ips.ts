// Node IPs from Kubernetes: a proxy whose node id names a pod (`sidecar~IP~POD.NS~...`) counts its
// pod's IPs as its own too (status.podIPs and every network's IPs from Multus's network-status), kept
// current as the pod changes. So an Istio 1.0 sidecar that reports only eth0's IP still gets the
// inbound listener for a service on net1. Under mutual TLS a certificate proves a namespace and a
// service account: the pod's must be those (the namespace is checked at admission already), else the
// pod's IPs are not added, and the refusal is reported.
import type { SpiffeId } from "../authz/peer-identity.ts";
import type { LearnedIp, ProxyIdentity } from "../identity/proxy.ts";
import type { PodAddresses } from "../registry/sources/kubernetes/kubernetes-source.ts";
import type { Affects, Learned, LearnedIpSource } from "./learned-ips.ts";

export interface PodIpEvents {
  /** The proxy's certificate may not claim its pod's IPs: they are left out. */
  refused?(proxyId: string, streamId: number, reason: string): void;
}

const podKey = (namespace: string, name: string) => `${namespace}/${name}`;

/** The pod a node id names, if it is in Istio's form. */
function podOf(proxy: ProxyIdentity): string | undefined {
  return proxy.nodeId.form === "istio" && proxy.nodeId.name !== "" && proxy.nodeId.namespace !== "" ? podKey(proxy.nodeId.namespace, proxy.nodeId.name) : undefined;
}

const sameIps = (a: readonly LearnedIp[], b: readonly LearnedIp[]) =>
  a.length === b.length && a.every((x, i) => x.ip === b[i]!.ip && x.from === b[i]!.from);

export class PodIpLearning implements LearnedIpSource {
  private pods = new Map<string, PodAddresses>();
  /** What each stream's certificate proved (mutual TLS), to judge its pod again when the pod changes. */
  private readonly peers = new Map<number, SpiffeId | undefined>();
  /** Refusals already reported, per stream, so a pod that changes often does not repeat them. */
  private readonly refusedStreams = new Set<number>();

  /** `refresh`: how the streams a pod change affects get their node IPs again (LearnedIps.refresh). */
  constructor(private readonly refresh: (affects: Affects) => void, private readonly events: PodIpEvents = {}) {}

  /** A stream opens; `peer`: its certificate's SPIFFE id under mutual TLS (its pod's IPs are then only its if they match). */
  connected(streamId: number, peer: SpiffeId | undefined, mutualTls: boolean): void {
    if (mutualTls) this.peers.set(streamId, peer);
  }

  /** The stream closed. */
  forget(streamId: number): void {
    this.peers.delete(streamId);
    this.refusedStreams.delete(streamId);
  }

  /** The pods as they are now: every open stream whose pod's IPs changed is given them (and regenerated). */
  setPods(pods: Iterable<PodAddresses>): void {
    const next = new Map<string, PodAddresses>();
    for (const p of pods) next.set(podKey(p.namespace, p.name), p);
    const before = this.pods;
    this.pods = next;
    this.refresh((proxy) => {
      const key = podOf(proxy);
      if (key === undefined) return false;
      const was = before.get(key);
      const now = next.get(key);
      return !(was === now || (was && now && sameIps(was.ips, now.ips) && was.serviceAccount === now.serviceAccount));
    });
  }

  /** Pods known (for /debug and tests). */
  get size(): number {
    return this.pods.size;
  }

  ipsFor(proxy: ProxyIdentity, streamId: number): Learned | undefined {
    const key = podOf(proxy);
    const pod = key === undefined ? undefined : this.pods.get(key);
    if (!pod) return undefined;
    if (this.peers.has(streamId)) {
      const peer = this.peers.get(streamId);
      const problem = !peer
        ? "the client certificate carries no SPIFFE id"
        : peer.namespace !== pod.namespace || peer.serviceAccount !== pod.serviceAccount
          ? `certificate ${peer.uri} is for ${peer.namespace}/${peer.serviceAccount}, pod ${key} runs as ${pod.namespace}/${pod.serviceAccount}`
          : undefined;
      if (problem) {
        if (!this.refusedStreams.has(streamId)) {
          this.refusedStreams.add(streamId);
          this.events.refused?.(proxy.id, streamId, `pod ${key}'s IPs not added: ${problem}`);
        }
        return undefined;
      }
    }
    return { ips: pod.ips };
  }
}
