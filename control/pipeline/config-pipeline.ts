// One control plane's way from a registry version to what each proxy is served:
//   registry version (frozen) -> shared config, built once per version and proxy view (its network
//   and the services its namespace sees; generation/sharedConfig) -> per node-IP set and view: the
//   proxy's resources (generation/proxyConfig) -> packed snapshot.
// Proxies that report the same node IPs and view get the same config object; proxies of one network
// whose namespaces see the same services share the outbound part. Interning and packing caches
// belong to this instance, so two control planes in one process share nothing.
import { deepFreeze } from "../deep-freeze.ts";
import { decide, type Decision } from "../generation/decisions.ts";
import { proxyConfig, sharedConfig, type GeneratedResources, type SharedConfig } from "../generation/generate.ts";
import { Interner } from "../generation/intern.ts";
import { endpointNetworkKey } from "../generation/networks.ts";
import { nodeIpsOf } from "../generation/node-ips.ts";
import { proxyView, type ProxyView } from "../generation/proxy-view.ts";
import { visibilityKey } from "../generation/visibility.ts";
import type { GenerationOptions } from "../generation/options.ts";
import type { ProxyIdentity } from "../identity/proxy.ts";
import { EMPTY_REGISTRY, type Registry } from "../registry/model.ts";
import { Encoder } from "../xds/encode.ts";
import { Packer, Snapshot } from "../xds/snapshot.ts";

export interface ProxyConfig {
  /** Deep-frozen: shared with every proxy of the same node IPs, and across versions where unchanged. */
  readonly resources: GeneratedResources;
  readonly snapshot: Snapshot;
}

export class ConfigPipeline {
  private readonly interned = new Interner();
  private readonly packer: Packer;
  private current: Registry = EMPTY_REGISTRY;
  /** Shared configs of the current version by view key (network and visible services). */
  private readonly shared = new Map<string, SharedConfig>();
  /** Visibility keys of the current version by namespace. */
  private readonly visibility = new Map<string, string>();
  /** Configs of the current version by node-IP set and view; only those some connected proxy uses. */
  private readonly configs = new Map<string, ProxyConfig>();
  /** How many retained proxies use each of those keys. */
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
    this.shared.clear();
    this.visibility.clear();
    this.configs.clear();
    this.interned.nextRound();
  }

  /** The IPs that count as this proxy's node (only node.id's in legacy mode). */
  nodeIps(proxy: ProxyIdentity): string[] {
    return nodeIpsOf(proxy, this.options.legacySingleIp).ips;
  }

  /** The proxy's config for the current version. Throws on a generation bug; callers keep the last config. */
  configFor(proxy: ProxyIdentity): ProxyConfig {
    const key = this.key(proxy);
    let config = this.configs.get(key);
    if (!config) {
      const resources = deepFreeze(proxyConfig(this.sharedConfig(proxyView(proxy)), proxy, this.options));
      config = { resources, snapshot: Snapshot.fromResources(resources, this.packer) };
      if (this.users.has(key)) this.configs.set(key, config);
    }
    return config;
  }

  /** Whether configFor(proxy) would be served from what is kept (no generation). */
  hasConfig(proxy: ProxyIdentity): boolean {
    return this.configs.has(this.key(proxy));
  }

  /** A proxy with these node IPs is connected: keep its config between calls. */
  retain(proxy: ProxyIdentity): void {
    const key = this.key(proxy);
    this.users.set(key, (this.users.get(key) ?? 0) + 1);
  }

  /** The proxy is gone; a node-IP set nobody uses any more is forgotten. */
  release(proxy: ProxyIdentity): void {
    const key = this.key(proxy);
    const n = (this.users.get(key) ?? 1) - 1;
    if (n > 0) return void this.users.set(key, n);
    this.users.delete(key);
    this.configs.delete(key);
  }

  /** The inbound/outbound choice for every instance, from the same shared config generation uses. */
  decisions(proxy: ProxyIdentity): Decision[] {
    return decide(proxy, this.sharedConfig(proxyView(proxy)), this.options);
  }

  /** Configs kept, one per node-IP set in use (leak checks). */
  cachedConfigs(): number {
    return this.configs.size;
  }

  /** Shared configs of the current version (one per view in use). */
  sharedConfigs(): number {
    return this.shared.size;
  }

  /**
   * What decides a proxy's config, stable across registry versions (so retain and release agree): its
   * node IPs, its network (its inbound part compares it with endpoints' networks) and its namespace.
   */
  configKey(proxy: ProxyIdentity): string {
    const view = proxyView(proxy);
    return `${this.nodeIps(proxy).join(",")}|${view.network ?? ""}|${view.namespace ?? ""}`;
  }

  private key(proxy: ProxyIdentity): string {
    return this.configKey(proxy);
  }

  /** Proxies whose network reaches endpoints alike and whose namespaces see the same services share a shared config. */
  private viewKey(view: ProxyView): string {
    const ns = view.namespace ?? "";
    let vis = this.visibility.get(ns);
    if (vis === undefined) this.visibility.set(ns, (vis = visibilityKey(this.current, view.namespace)));
    return `${endpointNetworkKey(view.network, this.options.meshNetworks)}|${vis}`;
  }

  private sharedConfig(view: ProxyView): SharedConfig {
    const key = this.viewKey(view);
    let shared = this.shared.get(key);
    if (!shared) this.shared.set(key, (shared = deepFreeze(sharedConfig(this.current, this.options, this.interned, view))));
    return shared;
  }
}
