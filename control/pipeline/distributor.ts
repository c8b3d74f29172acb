// Hands each connected proxy its config and keeps it current: on connect, and for every proxy after a
// registry change. Everything is per stream: a stream's config lives under its stream id, so streams
// that claim the same node id never change each other's config.
//
// Generating a config is the expensive step, so it never runs inside a request handler: streams wait
// in two queues and are served in slices of at most SLICE_MS, with the event loop free between slices.
// Requests that can be answered at once (ACKs, re-requests answered from the cache, other proxies'
// streams) are therefore never held up by more than a slice, however many proxies connect at the same
// moment. The queues take turns, so a connect storm does not hold back registry changes for proxies
// already served, nor the other way round; within a queue, connections take turns (common/fair-queue.ts),
// so a proxy on its own connection does not wait behind a storm that arrived on others. A stream waits
// at most once: a newer change leaves it where it is, and it gets the newest registry when its turn comes.
//
// Nothing is handed out before the first registry version: a replica that starts while its registry
// (etcd) cannot be reached must not give an Envoy failing over to it an empty configuration.
import type { ProxyIdentity } from "../identity/proxy.ts";
import type { Proxies, ProxyRecord } from "./proxies.ts";
import type { Registry } from "../registry/model.ts";
import type { Planes } from "../planes/plane.ts";
import type { SnapshotCache } from "../xds/cache/cache.ts";
import type { ConfigPipeline } from "./config-pipeline.ts";
import { FairQueue } from "../common/fair-queue.ts";
import { sameList } from "../common/same-list.ts";

export interface DistributorEvents {
  /** Generating and packing a config took this long (a config shared with another proxy costs nothing). */
  generated?(seconds: number): void;
  /** Generation threw: the proxy keeps the config it had. */
  failed?(proxyId: string, streamId: number, error: Error): void;
}

/** Longest run of generation before the event loop gets a turn. */
const SLICE_MS = 10;

export class ConfigDistributor {
  /** Streams waiting for a registry change, and streams that connected and have nothing yet. */
  private readonly changed = new FairQueue<number>();
  private readonly connected = new FairQueue<number>();
  /** Stream id -> when the change it waits for happened (performance.now()). */
  private readonly triggered = new Map<number, number>();
  private connectsNext = false;
  private scheduled = false;
  private stopped = false;
  private hasRegistry = false;

  constructor(
    private readonly pipeline: ConfigPipeline,
    private readonly cache: SnapshotCache,
    private readonly proxies: Proxies,
    private readonly events: DistributorEvents = {},
  ) {}

  /** A stream opened for `identity`: record it; its config follows shortly (the stream is answered once it exists). */
  open(identity: ProxyIdentity, streamId: number, protocol: "sotw" | "delta", extra: Pick<ProxyRecord, "connection" | "peerIdentity" | "via" | "remoteAddress" | "warning"> = {}): ProxyRecord {
    const r = this.proxies.open({ streamId, protocol, identity, nodeIps: this.pipeline.nodeIps(identity), ...extra });
    this.pipeline.retain(identity, r.via);
    this.enqueue(r, this.connected, performance.now());
    return r;
  }

  /** A stream closed: it takes its config, and nothing else, with it. */
  close(streamId: number): void {
    const r = this.proxies.close(streamId);
    if (!r) return;
    this.cache.delete(streamId);
    this.pipeline.release(r.identity, r.via);
    this.changed.delete(streamId);
    this.connected.delete(streamId);
    this.triggered.delete(streamId);
  }

  /**
   * The stream's proxy has other node IPs now (learned from its pod, or its node's agent): it is
   * counted under its new config key and queued like a registry change, so only it is regenerated.
   */
  relearn(streamId: number, identity: ProxyIdentity): void {
    const r = this.proxies.get(streamId);
    if (!r || identity.id !== r.identity.id) return;
    const nodeIps = this.pipeline.nodeIps(identity);
    // Only where they came from changed (a report of the same set): the config is the same.
    if (sameList(nodeIps, r.nodeIps)) {
      r.identity = identity;
      return;
    }
    this.pipeline.release(r.identity, r.via);
    r.identity = identity;
    r.nodeIps = nodeIps;
    this.pipeline.retain(identity, r.via);
    this.enqueue(r, this.changed, performance.now());
  }

  /** A new registry version: every connected stream gets its new config. O(streams) once per version. */
  registryChanged(registry: Registry, triggeredAt: number): void {
    this.pipeline.setRegistry(registry);
    this.hasRegistry = true;
    for (const r of this.proxies.all()) this.enqueue(r, this.changed, triggeredAt);
  }

  /** New planes: like a registry change, every connected stream gets its config built again. */
  planesChanged(planes: Planes, triggeredAt: number): void {
    this.pipeline.setPlanes(planes);
    for (const r of this.proxies.all()) this.enqueue(r, this.changed, triggeredAt);
  }

  /** Drops the work not done yet. */
  stop(): void {
    this.stopped = true;
    this.changed.clear();
    this.connected.clear();
    this.triggered.clear();
  }

  /** Queues the stream unless it already waits (then it keeps its place and its earlier trigger time). */
  private enqueue(r: ProxyRecord, queue: FairQueue<number>, triggeredAt: number): void {
    if (!this.triggered.has(r.streamId)) {
      this.triggered.set(r.streamId, triggeredAt);
      queue.add(r.streamId, r.connection ?? `stream ${r.streamId}`);
    }
    this.schedule();
  }

  private schedule(): void {
    // Streams wait in their queue; registryChanged() schedules them.
    if (this.scheduled || this.stopped || !this.hasRegistry) return;
    this.scheduled = true;
    setImmediate(() => this.work());
  }

  /** One slice: streams from both queues in turn, until SLICE_MS have passed; then the event loop's turn. */
  private work(): void {
    this.scheduled = false;
    const until = performance.now() + SLICE_MS;
    while (this.changed.size + this.connected.size > 0 && performance.now() < until) {
      const queue = (this.connectsNext && this.connected.size > 0) || this.changed.size === 0 ? this.connected : this.changed;
      this.connectsNext = queue !== this.connected;
      const streamId = queue.shift()!;
      const triggeredAt = this.triggered.get(streamId)!;
      this.triggered.delete(streamId);
      const r = this.proxies.get(streamId);
      if (r) this.update(r, triggeredAt);
    }
    if (this.changed.size + this.connected.size > 0) this.schedule();
  }

  private update(r: ProxyRecord, triggeredAt: number): void {
    const t0 = performance.now();
    const built = !this.pipeline.hasConfig(r.identity, r.via);
    let config;
    try {
      config = this.pipeline.configFor(r.identity, r.via);
    } catch (err) {
      this.events.failed?.(r.identity.id, r.streamId, err as Error);
      return;
    }
    if (built) this.events.generated?.((performance.now() - t0) / 1000);
    r.config = config;
    r.triggeredAt = triggeredAt;
    if (this.cache.get(r.streamId) !== config.snapshot) this.cache.set(r.streamId, config.snapshot);
  }
}
