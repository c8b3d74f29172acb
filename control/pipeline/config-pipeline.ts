// One control plane's way from a registry version to what each proxy is served:
//   registry version (frozen) -> shared config, built and packed once per version (generation/sharedConfig)
//   -> per node-IP set: the proxy's own resources (generation/proxyConfig), packed into a small layer
//   -> snapshot = shared layer + own layer.
// Proxies that report the same node IPs get the same config object (and the same address the control
// plane was reached at, when the loop guard module is fetched from there). Interning and packing caches
// belong to this instance, so two control planes in one process share nothing.
import { deepFreeze } from "../deep-freeze.ts";
import { decide, type Decision } from "../generation/decisions.ts";
import { joinConfig, proxyConfig, sharedConfig, type GeneratedResources, type SharedConfig } from "../generation/generate.ts";
import { Interner } from "../generation/intern.ts";
import { nodeIpsOf } from "../generation/node-ips.ts";
import type { GenerationOptions } from "../generation/options.ts";
import { guardFetchDependsOnConnection } from "../generation/loop-guard.ts";
import type { ProxyIdentity } from "../identity/proxy.ts";
import { EMPTY_REGISTRY, type Registry } from "../registry/model.ts";
import { Encoder } from "../xds/encode.ts";
import { Layer, Packer, Snapshot } from "../xds/snapshot.ts";

/** What one node-IP set is served. Deep-frozen resources, shared where unchanged across versions. */
export class ProxyConfig {
  constructor(
    /** The version's shared part (and its packed layer, in the snapshot), the same object for every proxy. */
    readonly shared: SharedConfig,
    /** The proxy's own resources: inbound listeners and clusters, the loop guard's configuration. */
    readonly own: GeneratedResources,
    readonly snapshot: Snapshot,
  ) {}

  /** Everything, one list per type (for config dumps: built on request, not kept). */
  resources(): GeneratedResources {
    return joinConfig(this.shared, this.own);
  }
}

interface SharedPart {
  config: SharedConfig;
  layer: Layer;
}

export class ConfigPipeline {
  private readonly interned = new Interner();
  private readonly packer: Packer;
  private current: Registry = EMPTY_REGISTRY;
  private shared?: SharedPart;
  /** Configs of the current version by node-IP set (and `via`, see key()); only sets some connected proxy uses. */
  private readonly configs = new Map<string, ProxyConfig>();
  /** How many retained proxies use each node-IP set. */
  private readonly users = new Map<string, number>();

  constructor(readonly options: GenerationOptions, encoder: Encoder = new Encoder()) {
    this.packer = new Packer(encoder);
  }

  get registry(): Registry {
    return this.current;
  }

  /** A new registry version: configs are built again, lazily, reusing every unchanged object. */
  setRegistry(registry: Registry): void {
    this.current = registry;
    this.shared = undefined;
    this.configs.clear();
  }

  /** The IPs that count as this proxy's node (only node.id's in legacy mode). */
  nodeIps(proxy: ProxyIdentity): string[] {
    return nodeIpsOf(proxy, this.options.legacySingleIp).ips;
  }

  /**
   * The proxy's config for the current version. `via`: the control plane address its xDS connection
   * arrived at. Throws on a generation bug; callers keep the last config.
   */
  configFor(proxy: ProxyIdentity, via?: string): ProxyConfig {
    const key = this.key(proxy, via);
    let config = this.configs.get(key);
    if (!config) {
      const shared = this.sharedPart();
      const own = deepFreeze(proxyConfig(shared.config, proxy, this.options, via));
      config = new ProxyConfig(shared.config, own, new Snapshot(shared.layer, Layer.pack(this.packer, own)));
      if (this.users.has(key)) this.configs.set(key, config);
    }
    return config;
  }

  /** Whether configFor(proxy) would be served from what is kept (no generation). */
  hasConfig(proxy: ProxyIdentity, via?: string): boolean {
    return this.configs.has(this.key(proxy, via));
  }

  /** A proxy with these node IPs is connected: keep its config between calls. */
  retain(proxy: ProxyIdentity, via?: string): void {
    const key = this.key(proxy, via);
    this.users.set(key, (this.users.get(key) ?? 0) + 1);
  }

  /** The proxy is gone; a node-IP set nobody uses any more is forgotten. */
  release(proxy: ProxyIdentity, via?: string): void {
    const key = this.key(proxy, via);
    const n = (this.users.get(key) ?? 1) - 1;
    if (n > 0) return void this.users.set(key, n);
    this.users.delete(key);
    this.configs.delete(key);
  }

  /** The inbound/outbound choice for every instance, from the same shared config generation uses. */
  decisions(proxy: ProxyIdentity): Decision[] {
    return decide(proxy, this.sharedPart().config, this.options);
  }

  /** Configs kept, one per node-IP set in use (leak checks). */
  cachedConfigs(): number {
    return this.configs.size;
  }

  /** Node IPs decide a config; so does `via` when the guard module is fetched from where the proxy reached us. */
  private key(proxy: ProxyIdentity, via: string | undefined): string {
    const ips = this.nodeIps(proxy).join(",");
    return guardFetchDependsOnConnection(this.options.loopGuard) ? `${ips}@${via ?? ""}` : ips;
  }

  /** Built and packed once per registry version, on first use. */
  private sharedPart(): SharedPart {
    if (!this.shared) {
      const config = deepFreeze(sharedConfig(this.current, this.options, this.interned));
      this.shared = { config, layer: Layer.pack(this.packer, { ...config, extensionConfigs: [] }) };
    }
    return this.shared;
  }
}
