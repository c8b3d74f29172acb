// One control plane's way from a registry version to what each proxy is served:
//   registry version (frozen) -> shared config, built and packed once per version and proxy view (its
//   network, the services its namespace sees, and what of its DNS domain its HTTP routes depend on;
//   generation/sharedConfig)
//   -> per node-IP set and view: the proxy's own resources (generation/proxyConfig), packed into a small layer
//   -> snapshot = shared layer + own layer.
// Proxies that report the same node IPs and view get the same config object (and the same address the
// control plane was reached at, when the loop guard module is fetched from there); proxies of one
// network whose namespaces and Sidecars give them the same services share the shared layer (and with it
// the outbound route configurations), unless their DNS domains give HTTP services different short names.
// Across versions, a view whose services are the very same objects keeps its shared part, and a proxy
// whose node IPs no change touched keeps its own part: a change costs the views and proxies it reaches. Interning and packing caches
// belong to this instance, so two control planes in one process share nothing.
import { hash } from "node:crypto";
import { decide, type Decision } from "../generation/decisions.ts";
import { boundGroups, joinConfig, proxyConfig, sharedConfig, type BoundGroup, type Resources, type SharedConfig } from "../generation/generate.ts";
import { Interner } from "../generation/intern.ts";
import { guardFetchDependsOnConnection, guardFetchUsesXdsSecrets } from "../generation/loop-guard.ts";
import { endpointNetworkKey } from "../generation/networks.ts";
import { nodeIpsOf } from "../generation/node-ips.ts";
import type { GenerationOptions } from "../generation/options.ts";
import type { Planes } from "../planes/plane.ts";
import { viewOf, type ProxyView } from "../generation/proxy-view.ts";
import { scopeKey, scopeOf, sidecarFor, type Scope } from "../generation/scope.ts";
import { isHttpProtocol } from "../generation/http.ts";
import { routeDomainKey } from "../generation/virtual-hosts.ts";
import type { ProxyIdentity } from "../identity/proxy.ts";
import { EMPTY_REGISTRY, type Registry } from "../registry/model.ts";
import { RegistryQuery } from "../registry/query.ts";
import { Encoder } from "../xds/cache/encode.ts";
import { sameList } from "../common/same-list.ts";
import { BoundType, Layer, packBoundBase, Packer, Snapshot, type BoundPart, type PackedType } from "../xds/cache/snapshot.ts";
import { TYPE_URL } from "../xds/cache/protos.ts";

const NO_SUFFIX = Object.freeze({ suffix: Buffer.alloc(0), mix: 0 });

/**
 * What one node-IP set (and view) is served: resources shared where unchanged across versions and
 * proxies, so nobody may write to them (the tests freeze everything handed out and go on building).
 */
export class ProxyConfig {
  constructor(
    /** The shared part of the proxy's view (its packed layer is in the snapshot), the same object for every proxy of the view. */
    readonly shared: SharedConfig,
    /** The proxy's own resources: inbound listeners and clusters, the loop guard's configuration. */
    readonly own: Resources,
    /** Clusters of planes it binds on: shared ones, with its source address (appended in the snapshot). */
    readonly bound: readonly BoundGroup[],
    readonly snapshot: Snapshot,
  ) {}

  /** Everything, one list per type (for config dumps: built on request, not kept). */
  resources(): Resources {
    return joinConfig(this.shared, this.own, this.bound);
  }
}

interface SharedPart {
  config: SharedConfig;
  layer: Layer;
  /** A bound group's clusters packed once for every proxy of the view, by group key. */
  bound: Map<string, PackedType>;
}

export class ConfigPipeline {
  private interned = new Interner();
  private readonly packer: Packer;
  private current: Registry = EMPTY_REGISTRY;
  /** The current version's index, shared by its views. */
  private query?: RegistryQuery;
  /** The last index built: the next version's is built from it. */
  private lastQuery?: RegistryQuery;
  /** Shared parts of the current version by view key (network and visible services). */
  private shared = new Map<string, SharedPart>();
  /** The previous version's: a view whose services are the very same objects keeps its part (see sharedPart). */
  private previous = new Map<string, SharedPart>();
  /** Scopes of the current version (and their keys) by namespace and Sidecar. */
  private readonly scopes = new Map<string, { scope: Scope; key: string }>();
  /** Route domain keys of the current version by namespace and DNS domain. */
  private readonly routeDomains = new Map<string, string>();
  /** Configs of the current version by key(); only those some connected proxy uses. */
  private configs = new Map<string, ProxyConfig>();
  /** The previous version's: a proxy whose node IPs no change touched keeps its own part, and its whole config when its shared part was kept too. */
  private previousConfigs = new Map<string, ProxyConfig>();
  /** How many retained proxies use each of those keys. */
  private readonly users = new Map<string, number>();
  /** Source address -> the bytes that bind a cluster to it. */
  private readonly suffixes = new Map<string, { suffix: Buffer; mix: number }>();
  /** Something was built since the interner's last round: a new version starts a new round. */
  private builtThisRound = false;

  constructor(private opts: GenerationOptions, encoder: Encoder = new Encoder()) {
    this.packer = new Packer(encoder);
  }

  get options(): GenerationOptions {
    return this.opts;
  }

  /**
   * New planes (`serve --planes`, reloaded): every config is built again from scratch, with a new
   * interner, since what was kept per Service and key was shaped by the old planes.
   */
  setPlanes(planes: Planes): void {
    this.opts = { ...this.opts, planes };
    this.interned = new Interner();
    this.setRegistry(this.current);
    this.previous.clear();
    this.previousConfigs.clear();
  }

  get registry(): Registry {
    return this.current;
  }

  /** A new registry version: configs are built again, lazily, reusing every unchanged object. */
  setRegistry(registry: Registry): void {
    this.current = registry;
    this.query = undefined;
    // Kept for one version: what nobody asked for in between is not worth keeping.
    if (this.shared.size > 0) [this.previous, this.shared] = [this.shared, this.previous];
    this.shared.clear();
    if (this.configs.size > 0) [this.previousConfigs, this.configs] = [this.configs, this.previousConfigs];
    this.scopes.clear();
    this.routeDomains.clear();
    this.configs.clear();
    // Versions nobody was built for (one replaced by the next before any proxy asked) keep the round
    // open, so the objects of the last version built are still found.
    if (this.builtThisRound) this.interned.nextRound();
    this.builtThisRound = false;
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
      const shared = this.sharedPart(viewOf(proxy, this.options));
      const prev = this.unchangedOwn(key, proxy, shared.config);
      if (prev && prev.snapshot.shared === shared.layer) {
        // Nothing it was built from changed: the very snapshot, so its stream is not even compared again.
        config = new ProxyConfig(shared.config, prev.own, prev.bound, prev.snapshot);
        if (this.users.has(key)) this.configs.set(key, config);
        return config;
      }
      const own = prev?.own ?? proxyConfig(shared.config, proxy, this.options, via, this.interned);
      const bound = boundGroups(shared.config, proxy, this.options);
      const parts = bound.map((g): BoundPart => {
        let base = shared.bound.get(g.key);
        if (!base) shared.bound.set(g.key, (base = packBoundBase(this.packer, TYPE_URL.cluster, g.clusters, shared.layer)));
        return { base, ...this.sourceSuffix(g.source) };
      });
      const boundTypes = parts.length > 0 ? [new BoundType(TYPE_URL.cluster, parts)] : [];
      config = new ProxyConfig(shared.config, own, bound, new Snapshot(shared.layer, prev?.snapshot.own ?? Layer.pack(this.packer, own), boundTypes));
      if (this.users.has(key)) this.configs.set(key, config);
    }
    return config;
  }

  /**
   * The previous version's config for `key` when its own part (inbound listeners and clusters, the
   * loop guard's configurations) is still what a build would give: no service on its node IPs came or
   * left since the version it was built for, which is where that part comes from, and its view still
   * has HTTP routes exactly when it had (the HTTP guard's configuration goes with them).
   */
  private unchangedOwn(key: string, proxy: ProxyIdentity, shared: SharedConfig): ProxyConfig | undefined {
    const prev = this.previousConfigs.get(key);
    if (!prev || (prev.shared.routes.length === 0) !== (shared.routes.length === 0)) return undefined;
    const since = this.versionQuery().since;
    if (since?.registry !== prev.shared.registry) return undefined;
    for (const ip of this.nodeIps(proxy)) if (since.touched.has(ip)) return undefined;
    return prev;
  }

  /** A cluster's bytes that bind it to `source` (none: unbound), encoded once per address. */
  private sourceSuffix(source: string | undefined): { suffix: Buffer; mix: number } {
    if (source === undefined) return NO_SUFFIX;
    let s = this.suffixes.get(source);
    if (!s) {
      const suffix = Buffer.from(this.packer.encoder.encode(TYPE_URL.cluster, { upstream_bind_config: { source_address: { address: source, port_value: 0 } } }));
      s = { suffix, mix: parseInt(hash("sha256", suffix, "hex").slice(0, 13), 16) };
      // One per source address in use; addresses that come and go over a long run start it again.
      if (this.suffixes.size >= 100_000) this.suffixes.clear();
      this.suffixes.set(source, s);
    }
    return s;
  }

  /** Whether configFor(proxy) would be served from what is kept (no generation). */
  hasConfig(proxy: ProxyIdentity, via?: string): boolean {
    return this.configs.has(this.key(proxy, via));
  }

  /** A proxy is connected: keep its config between calls. */
  retain(proxy: ProxyIdentity, via?: string): void {
    const key = this.key(proxy, via);
    this.users.set(key, (this.users.get(key) ?? 0) + 1);
  }

  /** The proxy is gone; a key nobody uses any more is forgotten. */
  release(proxy: ProxyIdentity, via?: string): void {
    const key = this.key(proxy, via);
    const n = (this.users.get(key) ?? 1) - 1;
    if (n > 0) return void this.users.set(key, n);
    this.users.delete(key);
    this.configs.delete(key);
  }

  /** The inbound/outbound choice for every instance, from the same shared config generation uses. */
  decisions(proxy: ProxyIdentity): Decision[] {
    return decide(proxy, this.sharedPart(viewOf(proxy, this.options)).config, this.options);
  }

  /** Configs kept, one per key in use (leak checks). */
  cachedConfigs(): number {
    return this.configs.size;
  }

  /** Shared configs of the current version (one per view in use). */
  sharedConfigs(): number {
    return this.shared.size;
  }

  /**
   * What decides a proxy's config, stable across registry versions (so retain and release agree): its
   * node IPs, its network (its inbound part compares it with endpoints' networks), its namespace and
   * DNS domain (its shared part); `via` when the guard module is fetched from where the proxy reached us;
   * and its SDS files when the module's cluster names its xDS secrets.
   */
  private key(proxy: ProxyIdentity, via: string | undefined): string {
    const view = viewOf(proxy, this.options);
    let key = `${this.nodeIps(proxy).join(",")}|${view.network ?? ""}|${view.namespace ?? ""}|${view.dnsDomain ?? ""}`;
    // JSON: label keys and values may hold any character.
    if (view.labels) key += ` labels${JSON.stringify(view.labels)}`;
    if (guardFetchDependsOnConnection(this.options.loopGuard)) key += `@${via ?? ""}`;
    // JSON: paths may hold any character but a control character, so no separator is safe.
    if (guardFetchUsesXdsSecrets(this.options.loopGuard)) key += ` sds${JSON.stringify(proxy.xdsSecrets ?? null)}`;
    return key;
  }

  /**
   * Proxies whose network reaches endpoints alike, whose namespaces and Sidecars give them the same
   * services and whose DNS domains give the HTTP services they see the same short names share a shared part.
   */
  private viewKey(view: ProxyView, scoped: { id: string; scope: Scope; key: string }): string {
    const domainKey = `${scoped.id}|${view.dnsDomain ?? ""}`;
    let routes = this.routeDomains.get(domainKey);
    if (routes === undefined) {
      const hosts = scoped.scope.services.filter((x) => x.ports.some((p) => isHttpProtocol(p.protocol))).map((x) => x.host);
      this.routeDomains.set(domainKey, (routes = routeDomainKey(hosts, view.dnsDomain)));
    }
    return `${endpointNetworkKey(view.network, this.options.meshNetworks)}|${scoped.key}|${routes}|${view.planes?.join(",") ?? ""}`;
  }

  /** What the view is sent (its namespace's exportTo view and its Sidecar), once per version and pair. */
  private scoped(view: ProxyView): { id: string; scope: Scope; key: string } {
    const sidecar = sidecarFor(this.current, view, this.options.rootNamespace);
    // A Sidecar's "." is the proxy's namespace: the root namespace's default scopes each namespace on its own.
    const id = `${view.namespace ?? ""}|${sidecar ? `${sidecar.namespace}/${sidecar.name}` : ""}`;
    let scoped = this.scopes.get(id);
    if (!scoped) {
      const query = this.versionQuery();
      const scope = scopeOf(query, view, sidecar);
      this.scopes.set(id, (scoped = { scope, key: scopeKey(query, scope) }));
    }
    return { id, ...scoped };
  }

  /**
   * The previous version's part for this view, when the view's scope is the very same services (a
   * registry build hands unchanged services on as the same objects) and ports: its outbound
   * configuration and packed layer are then what a build would give again. A change to one namespace
   * costs the views that import it. The part is re-pointed at the current registry and index, from which
   * proxies' inbound parts are built.
   */
  private unchanged(key: string, scope: Scope): SharedPart | undefined {
    const prev = this.previous.get(key);
    if (!prev) return undefined;
    const before = prev.config.scope;
    if (before.registryOnly !== scope.registryOnly || !sameList(before.services, scope.services) || before.ports.size !== scope.ports.size) return undefined;
    for (const [s, ports] of scope.ports) {
      const had = before.ports.get(s);
      if (!had || had.size !== ports.size || [...ports].some((p) => !had.has(p))) return undefined;
    }
    return { ...prev, config: { ...prev.config, registry: this.current, query: this.versionQuery(), scope } };
  }

  /** The current version's index, built from the last one. */
  private versionQuery(): RegistryQuery {
    return (this.query ??= this.lastQuery = new RegistryQuery(this.current, this.lastQuery));
  }

  /** Built and packed once per registry version and view, on first use. */
  private sharedPart(view: ProxyView): SharedPart {
    const scoped = this.scoped(view);
    const key = this.viewKey(view, scoped);
    let part = this.shared.get(key);
    if (!part && (part = this.unchanged(key, scoped.scope))) this.shared.set(key, part);
    if (!part) {
      const config = sharedConfig(this.current, this.options, this.interned, view, this.versionQuery(), scoped.scope);
      this.shared.set(key, (part = { config, layer: Layer.pack(this.packer, { ...config, extensionConfigs: [] }), bound: new Map() }));
      this.builtThisRound = true;
    }
    return part;
  }
}
