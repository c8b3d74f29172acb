// Hands each connected proxy its config and keeps it current: on connect, and for every proxy after a
// registry change. A change reaches proxies in rounds that yield now and then, so pushes already made
// are written and new streams and HTTP requests are served while the rest are generated; a newer
// change abandons an older round (its proxies get the newer registry anyway).
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

const YIELD_EVERY = 25;

export class ConfigDistributor {
  private round = 0;

  constructor(
    private readonly pipeline: ConfigPipeline,
    private readonly cache: SnapshotCache,
    private readonly proxies: Proxies,
    private readonly events: DistributorEvents = {},
  ) {}

  /** A stream opened for `identity`: record it and give it its config. */
  open(identity: ProxyIdentity, streamId: number, protocol: "sotw" | "delta"): ProxyRecord {
    const known = this.proxies.get(identity.id);
    const r = this.proxies.open(identity, this.pipeline.nodeIps(identity), streamId, protocol);
    // Retained by what decides its config (node IPs, network, namespace): a reconnect that changes any of them moves it.
    if (!known || this.pipeline.configKey(known.identity) !== this.pipeline.configKey(identity)) {
      if (known) this.pipeline.release(known.identity);
      this.pipeline.retain(identity);
    }
    this.update(r, performance.now());
    return r;
  }

  /** A stream closed; the proxy's last stream takes its config with it. */
  close(nodeId: string, streamId: number): void {
    const r = this.proxies.get(nodeId);
    if (r && this.proxies.close(nodeId, streamId)) {
      this.cache.delete(nodeId);
      this.pipeline.release(r.identity);
    }
  }

  /** A new registry version: every connected proxy gets its new config. */
  async registryChanged(registry: Registry, triggeredAt: number): Promise<void> {
    this.pipeline.setRegistry(registry);
    const mine = ++this.round;
    let n = 0;
    for (const r of this.proxies.all()) {
      if (mine !== this.round) return;
      this.update(r, triggeredAt);
      if (++n % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Abandons a round in progress. */
  stop(): void {
    this.round++;
  }

  private update(r: ProxyRecord, triggeredAt: number): void {
    if (this.proxies.get(r.identity.id) !== r) return; // disconnected meanwhile: store nothing for it
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
