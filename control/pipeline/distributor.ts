// Hands each connected proxy its config and keeps it current: on connect, and for every proxy after a
// registry change. Generating a config is the expensive step, so it never runs inside a request
// handler: proxies wait in two queues and are served in slices of at most SLICE_MS, with the event
// loop free between slices. Requests that can be answered at once (ACKs, re-requests answered from
// the cache, other proxies' streams) are therefore never held up by more than a slice, however many
// proxies connect at the same moment. The queues take turns, so a connect storm does not hold back
// registry changes for proxies already served, nor the other way round. A proxy waits at most once:
// a newer change leaves it where it is, and it gets the newest registry when its turn comes.
import type { ProxyIdentity } from "../identity/proxy.ts";
import type { Proxies, ProxyRecord } from "../proxies.ts";
import type { Registry } from "../registry/model.ts";
import type { SnapshotCache } from "../xds/cache.ts";
import type { ConfigPipeline } from "./config-pipeline.ts";

export interface DistributorEvents {
  /** Generating and packing a config took this long (a config shared with another proxy costs nothing). */
  generated?(seconds: number): void;
  /** Generation threw: the proxy keeps the config it had. */
  failed?(proxyId: string, error: Error): void;
}

/** Longest run of generation before the event loop gets a turn. */
const SLICE_MS = 10;

export class ConfigDistributor {
  /** Proxy id -> when the change it waits for happened (performance.now()); insertion order is the order served. */
  private readonly changed = new Map<string, number>();
  private readonly connected = new Map<string, number>();
  private connectsNext = false;
  private scheduled = false;
  private stopped = false;

  constructor(
    private readonly pipeline: ConfigPipeline,
    private readonly cache: SnapshotCache,
    private readonly proxies: Proxies,
    private readonly events: DistributorEvents = {},
  ) {}

  /** A stream opened for `identity`: record it; its config follows shortly (the stream is answered once it exists). */
  open(identity: ProxyIdentity, streamId: number, protocol: "sotw" | "delta"): ProxyRecord {
    const known = this.proxies.get(identity.id);
    const r = this.proxies.open(identity, this.pipeline.nodeIps(identity), streamId, protocol);
    const sameIps = known !== undefined && known.nodeIps.join(",") === r.nodeIps.join(",");
    if (!sameIps) {
      if (known) this.pipeline.release(known.identity);
      this.pipeline.retain(identity);
    }
    // Another stream of a proxy already served needs nothing new; new node IPs need a new config.
    const served = this.cache.get(identity.id) !== undefined;
    if (!sameIps || !served) this.enqueue(identity.id, served ? this.changed : this.connected, performance.now());
    return r;
  }

  /** A stream closed; the proxy's last stream takes its config with it. */
  close(nodeId: string, streamId: number): void {
    const r = this.proxies.get(nodeId);
    if (r && this.proxies.close(nodeId, streamId)) {
      this.cache.delete(nodeId);
      this.pipeline.release(r.identity);
      this.changed.delete(nodeId);
      this.connected.delete(nodeId);
    }
  }

  /** A new registry version: every connected proxy gets its new config. O(proxies) once per version. */
  registryChanged(registry: Registry, triggeredAt: number): void {
    this.pipeline.setRegistry(registry);
    for (const r of this.proxies.all()) this.enqueue(r.identity.id, this.changed, triggeredAt);
  }

  /** Drops the work not done yet. */
  stop(): void {
    this.stopped = true;
    this.changed.clear();
    this.connected.clear();
  }

  /** Queues the proxy unless it already waits (then it keeps its place and its earlier trigger time). */
  private enqueue(id: string, queue: Map<string, number>, triggeredAt: number): void {
    if (!this.connected.has(id) && !this.changed.has(id)) queue.set(id, triggeredAt);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => this.work());
  }

  /** One slice: proxies from both queues in turn, until SLICE_MS have passed; then the event loop's turn. */
  private work(): void {
    this.scheduled = false;
    const until = performance.now() + SLICE_MS;
    while (this.changed.size + this.connected.size > 0 && performance.now() < until) {
      const queue = (this.connectsNext && this.connected.size > 0) || this.changed.size === 0 ? this.connected : this.changed;
      this.connectsNext = queue !== this.connected;
      const [id, triggeredAt] = queue.entries().next().value!;
      queue.delete(id);
      const r = this.proxies.get(id);
      if (r) this.update(r, triggeredAt);
    }
    if (this.changed.size + this.connected.size > 0) this.schedule();
  }

  private update(r: ProxyRecord, triggeredAt: number): void {
    const t0 = performance.now();
    const built = !this.pipeline.hasConfig(r.identity);
    let config;
    try {
      config = this.pipeline.configFor(r.identity);
    } catch (err) {
      this.events.failed?.(r.identity.id, err as Error);
      return;
    }
    if (built) this.events.generated?.((performance.now() - t0) / 1000);
    r.resources = config.resources;
    r.triggeredAt = triggeredAt;
    if (this.cache.get(r.identity.id) !== config.snapshot) this.cache.set(r.identity.id, config.snapshot);
  }
}
