// The connected proxies as the control plane sees them: one record per xDS stream (its identity, what
// its certificate proves, and per resource type what was pushed and whether Envoy ACKed or NACKed it).
// Records are per stream so that two Envoys claiming the same node id never share or overwrite state;
// /debug/proxies groups them by node id. State only; serve/events.ts feeds it from xDS callbacks.
import type { ProxyConfig } from "./config-pipeline.ts";
import type { GuardModuleStatus } from "../guard-wasm/setup.ts";
import type { ProxyIdentity } from "../identity/proxy.ts";
import { TYPE_URL } from "../xds/cache/protos.ts";

export interface ProxyRecord {
  streamId: number;
  protocol: "sotw" | "delta";
  identity: ProxyIdentity;
  /** The IPs decisions use (only node.id's in legacy mode). */
  nodeIps: string[];
  /** What the client certificate proves (SPIFFE id), when the stream is mutual TLS. */
  peerIdentity?: string;
  /** The control plane's address this stream arrived at (the loop guard module is served there). */
  via?: string;
  /** The proxy's address as the control plane sees it. */
  remoteAddress?: string;
  /** The HTTP/2 connection the stream is on: the distributor serves connections in turn. */
  connection?: string;
  /** How this stream disagrees with another stream of its node id (shown while it is open). */
  warning?: string;
  connectedAt: Date;
  types: Map<string, TypeState>;
  /** What it is served now. */
  config?: ProxyConfig;
  /** When the change that the next pushes carry happened (performance.now()), for the push latency histogram. */
  triggeredAt?: number;
}

export interface TypeState {
  /**
   * "ACK": Envoy applied `version` (or held it already when it opened the stream: then `nonce` is "",
   * nothing was sent); "NACK": it refused the last push and keeps `ackedVersion`; "PENDING": sent, no answer yet.
   */
  state: "ACK" | "NACK" | "PENDING";
  sentVersion: string;
  ackedVersion?: string;
  nonce: string;
  resources: number;
  errorDetail?: string;
  updatedAt: string;
}

export interface ProxyStatus {
  id: string;
  nodeIdIp?: string;
  instanceIps: string[];
  /** The IPs decisions use (only node.id's in legacy mode). */
  nodeIps: string[];
  problems: string[];
  streams: { streamId: number; protocol: "sotw" | "delta" }[];
  connectedAt: string;
  /** By short type name: lds, cds, eds, rds, ecds. */
  types: Record<string, TypeState>;
  /** Every open stream claiming this node id, each with its own config; the fields above are the oldest's. */
  connections?: ConnectionStatus[];
  /** Why its streams disagree (e.g. two Envoys with the same node id and different node IPs). */
  warnings?: string[];
}

export interface ConnectionStatus {
  streamId: number;
  protocol: "sotw" | "delta";
  nodeIdIp?: string;
  instanceIps: string[];
  nodeIps: string[];
  /** What the client certificate proved (mutual TLS): its SPIFFE id, or its subject. */
  peerIdentity?: string;
  /** The control plane address the stream arrived at. */
  via?: string;
  /** The proxy's address as the control plane sees it. */
  remoteAddress?: string;
  /** Where this proxy's loop guard module comes from and, when fetched, whether that worked as far as the control plane can tell. */
  guardModule?: GuardModuleStatus;
  /** How it disagrees with another stream of the same node id. */
  warning?: string;
  connectedAt: string;
  types: Record<string, TypeState>;
}

const SHORT: Record<string, string> = { [TYPE_URL.listener]: "lds", [TYPE_URL.cluster]: "cds", [TYPE_URL.endpoint]: "eds", [TYPE_URL.route]: "rds", [TYPE_URL.extensionConfig]: "ecds" };
export const shortType = (typeUrl: string) => SHORT[typeUrl] ?? typeUrl.slice(typeUrl.lastIndexOf(".") + 1);

export class Proxies {
  private readonly byStream = new Map<number, ProxyRecord>();
  /** Node id -> its streams, oldest first. */
  private readonly byNode = new Map<string, Set<number>>();

  get(streamId: number): ProxyRecord | undefined {
    return this.byStream.get(streamId);
  }

  /** The open streams that claim `nodeId`, oldest first. */
  forNode(nodeId: string): ProxyRecord[] {
    return [...(this.byNode.get(nodeId) ?? [])].map((s) => this.byStream.get(s)!);
  }

  all(): ProxyRecord[] {
    return [...this.byStream.values()];
  }

  /** Distinct node ids with at least one open stream. */
  get size(): number {
    return this.byNode.size;
  }

  streamCounts(): { sotw: number; delta: number } {
    const out = { sotw: 0, delta: 0 };
    for (const r of this.byStream.values()) out[r.protocol]++;
    return out;
  }

  open(record: Omit<ProxyRecord, "connectedAt" | "types">): ProxyRecord {
    const r: ProxyRecord = { ...record, connectedAt: new Date(), types: new Map() };
    this.byStream.set(r.streamId, r);
    let streams = this.byNode.get(r.identity.id);
    if (!streams) this.byNode.set(r.identity.id, (streams = new Set()));
    streams.add(r.streamId);
    return r;
  }

  /** A stream closed; returns its record (undefined if unknown). */
  close(streamId: number): ProxyRecord | undefined {
    const r = this.byStream.get(streamId);
    if (!r) return undefined;
    this.byStream.delete(streamId);
    const streams = this.byNode.get(r.identity.id)!;
    streams.delete(streamId);
    if (streams.size === 0) this.byNode.delete(r.identity.id);
    return r;
  }

  pushed(streamId: number, typeUrl: string, version: string, nonce: string, resources: number): void {
    const r = this.byStream.get(streamId);
    if (!r) return;
    const prev = r.types.get(typeUrl);
    r.types.set(typeUrl, {
      state: "PENDING", sentVersion: version, ...(prev?.ackedVersion ? { ackedVersion: prev.ackedVersion } : {}),
      nonce, resources, updatedAt: new Date().toISOString(),
    });
  }

  /** The proxy holds `version` already (a re-opened stream): as good as an ACK, though nothing was sent. */
  current(streamId: number, typeUrl: string, version: string, resources: number): void {
    const r = this.byStream.get(streamId);
    if (!r) return;
    r.types.set(typeUrl, { state: "ACK", sentVersion: version, ackedVersion: version, nonce: "", resources, updatedAt: new Date().toISOString() });
  }

  answered(streamId: number, typeUrl: string, nonce: string, version: string, errorDetail?: string): void {
    const r = this.byStream.get(streamId);
    const t = r?.types.get(typeUrl);
    if (!t || t.nonce !== nonce) return; // an answer to a response that a newer one replaced
    if (errorDetail === undefined) {
      r!.types.set(typeUrl, { state: "ACK", sentVersion: t.sentVersion, ackedVersion: version, nonce, resources: t.resources, updatedAt: new Date().toISOString() });
    } else {
      r!.types.set(typeUrl, { ...t, state: "NACK", errorDetail, updatedAt: new Date().toISOString() });
    }
  }

  /** One entry per node id; its top-level fields are its oldest stream's, `connections` lists every stream. */
  status(): ProxyStatus[] {
    return [...this.byNode.keys()].sort().map((id) => {
      const conns = this.forNode(id);
      const first = conns[0]!;
      return {
        id,
        ...(first.identity.nodeIdIp ? { nodeIdIp: first.identity.nodeIdIp } : {}),
        instanceIps: first.identity.instanceIps,
        nodeIps: first.nodeIps,
        problems: first.identity.problems,
        streams: conns.map((c) => ({ streamId: c.streamId, protocol: c.protocol })),
        connectedAt: first.connectedAt.toISOString(),
        types: typesOf(first),
        connections: conns.map(connectionStatus),
        warnings: conns.flatMap((c) => (c.warning ? [`stream ${c.streamId}: ${c.warning}`] : [])),
      };
    });
  }
}

const typesOf = (r: ProxyRecord) => Object.fromEntries([...r.types].map(([url, t]) => [shortType(url), t]));

function connectionStatus(r: ProxyRecord): ConnectionStatus {
  return {
    streamId: r.streamId, protocol: r.protocol,
    ...(r.identity.nodeIdIp ? { nodeIdIp: r.identity.nodeIdIp } : {}),
    instanceIps: r.identity.instanceIps, nodeIps: r.nodeIps,
    ...(r.peerIdentity ? { peerIdentity: r.peerIdentity } : {}),
    ...(r.via ? { via: r.via } : {}),
    ...(r.remoteAddress ? { remoteAddress: r.remoteAddress } : {}),
    ...(r.warning ? { warning: r.warning } : {}),
    connectedAt: r.connectedAt.toISOString(),
    types: typesOf(r),
  };
}
