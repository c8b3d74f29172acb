// The connected proxies as the control plane sees them: identity, open streams, and per resource type
// what was pushed and whether Envoy ACKed or NACKed it. State only; serve.ts feeds it from xDS callbacks.
import type { ProxyConfig } from "./pipeline/config-pipeline.ts";
import type { ProxyStatus, TypeState } from "./http/view.ts";
import type { ProxyIdentity } from "./identity/proxy.ts";
import { TYPE_URL } from "./xds/protos.ts";

export interface ProxyRecord {
  identity: ProxyIdentity;
  /** The IPs decisions use (only node.id's in legacy mode). */
  nodeIps: string[];
  streams: Map<number, "sotw" | "delta">;
  connectedAt: Date;
  types: Map<string, TypeState>;
  /** What it is served now. */
  config?: ProxyConfig;
  /** When the change that the next pushes carry happened (performance.now()), for the push latency histogram. */
  triggeredAt?: number;
}

const SHORT: Record<string, string> = { [TYPE_URL.listener]: "lds", [TYPE_URL.cluster]: "cds", [TYPE_URL.endpoint]: "eds", [TYPE_URL.extensionConfig]: "ecds" };
export const shortType = (typeUrl: string) => SHORT[typeUrl] ?? typeUrl.slice(typeUrl.lastIndexOf(".") + 1);

export class Proxies {
  private readonly byId = new Map<string, ProxyRecord>();

  get(id: string): ProxyRecord | undefined {
    return this.byId.get(id);
  }

  all(): ProxyRecord[] {
    return [...this.byId.values()];
  }

  get size(): number {
    return this.byId.size;
  }

  streamCounts(): { sotw: number; delta: number } {
    const out = { sotw: 0, delta: 0 };
    for (const r of this.byId.values()) for (const p of r.streams.values()) out[p]++;
    return out;
  }

  /** A stream opened: the proxy's identity is refreshed from the stream's node (it may have restarted with new IPs). */
  open(identity: ProxyIdentity, nodeIps: string[], streamId: number, protocol: "sotw" | "delta"): ProxyRecord {
    let r = this.byId.get(identity.id);
    if (!r) this.byId.set(identity.id, (r = { identity, nodeIps, streams: new Map(), connectedAt: new Date(), types: new Map() }));
    r.identity = identity;
    r.nodeIps = nodeIps;
    r.streams.set(streamId, protocol);
    return r;
  }

  /** A stream closed; returns true when it was the proxy's last, and forgets the proxy. */
  close(id: string, streamId: number): boolean {
    const r = this.byId.get(id);
    if (!r) return false;
    r.streams.delete(streamId);
    if (r.streams.size > 0) return false;
    this.byId.delete(id);
    return true;
  }

  pushed(id: string, typeUrl: string, version: string, nonce: string, resources: number): void {
    const r = this.byId.get(id);
    if (!r) return;
    const prev = r.types.get(typeUrl);
    r.types.set(typeUrl, {
      state: "PENDING", sentVersion: version, ...(prev?.ackedVersion ? { ackedVersion: prev.ackedVersion } : {}),
      nonce, resources, updatedAt: new Date().toISOString(),
    });
  }

  answered(id: string, typeUrl: string, nonce: string, version: string, errorDetail?: string): void {
    const r = this.byId.get(id);
    const t = r?.types.get(typeUrl);
    if (!t || t.nonce !== nonce) return; // an answer to a response that a newer one replaced
    if (errorDetail === undefined) {
      r!.types.set(typeUrl, { state: "ACK", sentVersion: t.sentVersion, ackedVersion: version, nonce, resources: t.resources, updatedAt: new Date().toISOString() });
    } else {
      r!.types.set(typeUrl, { ...t, state: "NACK", errorDetail, updatedAt: new Date().toISOString() });
    }
  }

  status(): ProxyStatus[] {
    return this.all().sort((a, b) => (a.identity.id < b.identity.id ? -1 : 1)).map((r) => ({
      id: r.identity.id,
      ...(r.identity.nodeIdIp ? { nodeIdIp: r.identity.nodeIdIp } : {}),
      instanceIps: r.identity.instanceIps,
      nodeIps: r.nodeIps,
      problems: r.identity.problems,
      streams: [...r.streams].map(([streamId, protocol]) => ({ streamId, protocol })),
      connectedAt: r.connectedAt.toISOString(),
      types: Object.fromEntries([...r.types].map(([url, t]) => [shortType(url), t])),
    }));
  }
}
