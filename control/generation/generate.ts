// proxy + registry + options -> the proxy's listeners, clusters and endpoints, in Istio 1.0's sidecar
// layout. Pure: same input, same output, no I/O. Split in two so the config pipeline can build the
// part proxies share once per registry version and proxy view (sharedConfig: a network and the
// services a namespace sees) and only the rest per proxy (proxyConfig); generate() is the two in one.
import type { ProxyIdentity } from "../identity/proxy.ts";
import type { Endpoint, Registry } from "../registry/model.ts";
import { RegistryQuery } from "../registry/query.ts";
import { DFP_DNS_CACHE } from "./clusters.ts";
import type { Cluster, ClusterLoadAssignment, Filter, FilterChain, Listener, RouteConfiguration, SniDynamicForwardProxy, TypedExtensionConfig } from "./envoy-types.ts";
import { duration, encodeOnce, listenerFilter, prefixRange, socketAddress, tcpProxy, typedConfig } from "./envoy-objects.ts";
import { DOWNSTREAM_PROTOCOL_UPSTREAM, httpConnectionManager, isHttpProtocol, routeTo, upstreamProtocolOptions } from "./http.ts";
import { inboundInstances, type InboundInstance } from "./inbound.ts";
import { Interner } from "./intern.ts";
import { guardWasmCluster, LOOP_GUARD_FILTER, LOOP_GUARD_HTTP_FILTER, loopGuardExtensionConfig, loopGuardHttpExtensionConfig } from "./loop-guard.ts";
import { BLACKHOLE_CLUSTER, inboundVirtualHostName, outboundListenerName, outboundRouteName, PASSTHROUGH_CLUSTER, VIRTUAL_LISTENER } from "./names.ts";
import { endpointNetwork } from "./networks.ts";
import { nodeIpsOf } from "./node-ips.ts";
import type { GenerationOptions } from "./options.ts";
import { outboundPlan, type OutboundChain, type OutboundPlan } from "./outbound.ts";
import { boundCluster } from "./planes.ts";
import type { Plane, Planes } from "../planes/plane.ts";
import type { IpFamily } from "../identity/ip.ts";
import { viewOf, type ProxyView } from "./proxy-view.ts";
import { scopeOf, sidecarFor, type Scope } from "./scope.ts";
import { outboundRouteConfig, routeConfigKey, virtualHosts } from "./routes.ts";

/**
 * A proxy's resources by xDS type, in protobufjs object form (what the snapshot packs). Order is deterministic:
 * listeners by name; clusters fixed ones, outbound (registry order), inbound; endpoints registry order;
 * routes by port.
 */
export interface Resources {
  readonly listeners: readonly Listener[];
  readonly clusters: readonly Cluster[];
  readonly endpoints: readonly ClusterLoadAssignment[];
  /** RDS: one route configuration per outbound HTTP port (shared; inbound listeners carry theirs inline). */
  readonly routes: readonly RouteConfiguration[];
  /** ECDS: the loop guard's configurations with this proxy's node IPs (empty without the guard). */
  readonly extensionConfigs: readonly TypedExtensionConfig[];
}

/** The part proxies of one view share for one registry version: virtual and outbound listeners, fixed and outbound clusters, endpoints, outbound routes. */
export interface SharedConfig {
  readonly registry: Registry;
  /** The registry's questions (which instances live on a proxy), answered from one index per version. */
  readonly query: RegistryQuery;
  readonly view: ProxyView;
  /** The services the view is sent (exportTo, its Sidecar) and where other destinations go. */
  readonly scope: Scope;
  readonly plan: OutboundPlan;
  readonly listeners: readonly Listener[];
  readonly clusters: readonly Cluster[];
  readonly endpoints: readonly ClusterLoadAssignment[];
  readonly routes: readonly RouteConfiguration[];
}

/** In every listener that matches by SNI: frozen, and encoded once. */
const TLS_INSPECTOR = encodeOnce(listenerFilter("tls_inspector"));

/**
 * Builds the shared part for proxies of `view` (their network, the namespace and labels that decide
 * which services they see, and the DNS domain whose short names their HTTP routes accept). `interned`
 * (owned by the caller, one per set of options; its owner ends a round per registry version) hands
 * back earlier objects wherever content is unchanged; `query` is the version's index, shared by its views;
 * `scope` what the view is sent (the caller may have it already).
 */
export function sharedConfig(
  registry: Registry, options: GenerationOptions, interned: Interner = new Interner(), view: ProxyView = {}, query = new RegistryQuery(registry),
  scope: Scope = scopeOf(query, view, sidecarFor(registry, view, options.rootNamespace)),
): SharedConfig {
  const plan = outboundPlan(scope, options, interned, view);
  const timeout = duration(options.connectTimeoutMs);
  const guarded = (...filters: Filter[]): Filter[] => (options.loopGuard ? [LOOP_GUARD_FILTER, ...filters] : filters);
  // Destinations no service claims: on to where the client dialled, or dropped under REGISTRY_ONLY (as Istio does).
  const registryOnly = scope.registryOnly;
  const fallback = registryOnly ? BLACKHOLE_CLUSTER : PASSTHROUGH_CLUSTER;
  const passthrough: FilterChain = { name: fallback, filters: guarded(tcpProxy(fallback)) };
  const vl = options.virtualListener;

  // The fixed resources depend on the options (and the policy) only: the same objects in every version.
  const listeners: Listener[] = [interned.get(`L virtual${registryOnly ? " R" : ""}`, (): Listener => ({
    name: VIRTUAL_LISTENER,
    address: socketAddress(vl.address, vl.port),
    use_original_dst: { value: true },
    listener_filters: [listenerFilter(vl.handoff)],
    filter_chains: [passthrough],
  }))];
  // Outbound: one listener per service port; services sharing a port are told apart by destination IP
  // and SNI (L4), or by Host in the port's one HTTP chain.
  const routes: RouteConfiguration[] = [];
  for (const port of plan.ports) {
    if (port.port === vl.port) continue; // the virtual listener's own port: see decisions
    const http = port.http && port.http.destinations.length > 0 ? port.http : undefined;
    let key = `L ${port.port} ${options.loopGuard ? "g" : ""}${registryOnly ? "R" : ""} ${http ? http.destinations.join(",") : "-"}`;
    for (const c of port.chains) key += `|${c.key}`;
    const live = port.chains.filter((c) => c.destinations.length > 0);
    listeners.push(interned.get(key, (): Listener => ({
      name: outboundListenerName(port.port),
      address: socketAddress("0.0.0.0", port.port),
      ...(port.ipv6 ? { additional_addresses: [{ address: socketAddress("::", port.port) }] } : {}),
      bind_to_port: { value: false },
      traffic_direction: "OUTBOUND",
      ...(port.sni ? { listener_filters: [TLS_INSPECTOR] } : {}),
      filter_chains: [
        ...live.map((c): FilterChain => ({
          name: c.cluster,
          filter_chain_match: { prefix_ranges: c.destinations.map(prefixRange), ...(c.serverNames ? { server_names: c.serverNames } : {}) },
          filters: guarded(...chainFilters(c)),
        })),
        ...(http ? [httpChain(port.port, http.destinations, options.loopGuard !== undefined)] : []),
      ],
      // Other destinations on this port were handed here by the virtual listener: pass them through too.
      default_filter_chain: passthrough,
    })));
    if (!http) continue;
    routes.push(interned.get(routeConfigKey(port.port, http.routes, view.dnsDomain, registryOnly), () => outboundRouteConfig(port.port, virtualHosts(port.port, http.routes, view.dnsDomain), registryOnly)));
  }
  const clusters: Cluster[] = [
    interned.get("C passthrough", (): Cluster => ({
      name: PASSTHROUGH_CLUSTER, type: "ORIGINAL_DST", lb_policy: "CLUSTER_PROVIDED", connect_timeout: timeout,
      typed_extension_protocol_options: DOWNSTREAM_PROTOCOL_UPSTREAM,
    })),
    interned.get("C blackhole", (): Cluster => ({ name: BLACKHOLE_CLUSTER, type: "STATIC", connect_timeout: timeout })),
    ...plan.clusters,
  ];
  return { registry, query, view, scope, plan, listeners, clusters, endpoints: plan.endpoints, routes };
}

/** An outbound port's HTTP services: one connection manager, routes by RDS from route config `<port>`. */
function httpChain(port: number, destinations: readonly string[], guard: boolean): FilterChain {
  return {
    name: `http ${port}`,
    filter_chain_match: { prefix_ranges: destinations.map(prefixRange) },
    // The HTTP guard, not the network one: it answers 508 and marks hops instead of closing.
    filters: [httpConnectionManager(`outbound_0.0.0.0_${port}`, outboundRouteName(port), guard ? [LOOP_GUARD_HTTP_FILTER] : [])],
  };
}

function chainFilters(c: OutboundChain): Filter[] {
  if (c.dynamicForwardPort === undefined) return [tcpProxy(c.cluster, c.split)];
  // DYNAMIC_DNS: resolve the host the SNI names, then connect to it through the forward-proxy cluster.
  return [{
    name: "envoy.filters.network.sni_dynamic_forward_proxy",
    typed_config: typedConfig<SniDynamicForwardProxy>("type.googleapis.com/envoy.extensions.filters.network.sni_dynamic_forward_proxy.v3.FilterConfig", {
      dns_cache_config: DFP_DNS_CACHE, port_value: c.dynamicForwardPort,
    }),
  }, tcpProxy(c.cluster)];
}

/** Endpoints on the proxy's node IPs count as local only on its network (or with no network): the same IP on another network is another machine. */
export function localTo(view: ProxyView, options: GenerationOptions): (e: Endpoint) => boolean {
  return (e) => {
    const n = endpointNetwork(e, options.meshNetworks);
    return n === undefined || view.network === undefined || n === view.network;
  };
}

/**
 * What only this proxy gets on top of the shared part of its view: inbound listeners and clusters for
 * the instances on its node IPs, and the loop guard's configuration with those IPs (with the cluster
 * to fetch the module through, when it is fetched). `via`: the control plane address the proxy's xDS
 * connection arrived at, where a module served on a wildcard address is fetched.
 */
export function proxyConfig(shared: SharedConfig, proxy: ProxyIdentity, options: GenerationOptions, via?: string, interned: Interner = new Interner()): Resources {
  const nodeIps = nodeIpsOf(proxy, options.legacySingleIp).ips;
  const timeout = duration(options.connectTimeoutMs);
  const listeners: Listener[] = [];
  const clusters: Cluster[] = [];

  // Inbound: service instances on this node's IPs, delivered to the local process.
  const inboundClusters = new Set<string>();
  for (const inst of inboundInstances(shared.query, new Set(nodeIps), options.virtualListener.port, localTo(viewOf(proxy, options), options))) {
    const own = inst.conflict || inst.repeat ? [] : [{ name: inst.listener, port: inst.listenerPort }];
    const sp = inst.servicePort;
    const extra = sp && !sp.conflict && !sp.repeat ? [{ name: sp.listener, port: sp.port }] : [];
    // Interned by what they are made of, like the guard's configurations below: a registry change
    // re-encodes no proxy's inbound resources that it did not change.
    const protocol = inst.port.protocol;
    for (const l of [...own, ...extra]) {
      listeners.push(interned.get(`IL ${l.name}|${inst.address}|${l.port}|${inst.cluster}|${protocol}`, (): Listener => ({
        name: l.name,
        address: socketAddress(inst.address, l.port),
        bind_to_port: { value: false },
        traffic_direction: "INBOUND",
        filter_chains: [{ filters: [inboundFilter(inst, l.name, l.port)] }],
      })));
    }
    if (own.length + extra.length === 0 || inboundClusters.has(inst.cluster)) continue;
    inboundClusters.add(inst.cluster);
    clusters.push(interned.get(`IC ${inst.cluster}|${inst.localPort}|${protocol}`, (): Cluster => ({
      name: inst.cluster,
      type: "STATIC",
      connect_timeout: timeout,
      load_assignment: {
        cluster_name: inst.cluster,
        endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress("127.0.0.1", inst.localPort) } }] }],
      },
      ...upstreamProtocolOptions(protocol),
    })));
  }

  const guard = options.loopGuard;
  if (guard?.remote) clusters.push(guardWasmCluster(guard.remote, via, options.connectTimeoutMs, proxy.xdsSecrets));
  // The guard's configurations depend on the node IPs (and where the module is fetched from) alone: the
  // same objects in every version, so a registry change does not encode them again for every proxy. The
  // HTTP filter's only where some HTTP chain names it.
  const at = `${nodeIps.join(",")}|${via ?? ""}`;
  const extensionConfigs = !guard ? [] : [
    interned.get(`X ${at}`, () => loopGuardExtensionConfig(nodeIps, guard, via)),
    ...(shared.routes.length === 0 ? [] : [interned.get(`XH ${at}`, () => loopGuardHttpExtensionConfig(nodeIps, guard, via))]),
  ];
  return { listeners, clusters, endpoints: [], routes: [], extensionConfigs };
}

/**
 * An inbound listener's one filter: tcp_proxy to the instance's cluster, or for HTTP ports an HTTP
 * connection manager whose inline route sends every Host and path there (as Istio 1.0's inbound
 * listeners). No loop guard: it acts on OUTBOUND listeners only.
 */
function inboundFilter(inst: InboundInstance, listener: string, port: number): Filter {
  if (!isHttpProtocol(inst.port.protocol)) return tcpProxy(inst.cluster);
  return httpConnectionManager(`inbound_${listener}`, {
    name: inst.cluster,
    virtual_hosts: [{ name: inboundVirtualHostName(port), domains: ["*"], routes: [routeTo("default", inst.cluster)] }],
    validate_clusters: { value: false },
  }, []);
}

/**
 * The clusters of planes this proxy binds on (left out of its view's shared config), by plane and
 * family, with the node IP they connect from: undefined where the proxy has no IP of the endpoints'
 * family on the plane (then they connect as without planes). The config pipeline sends each group as
 * the shared packed clusters with the source appended (xds/cache/snapshot.ts BoundType), so a proxy
 * costs memory for its source, not for a copy of every cluster.
 */
export interface BoundGroup {
  key: string;
  source?: string;
  clusters: readonly Cluster[];
}

export function boundGroups(shared: SharedConfig, proxy: ProxyIdentity, options: GenerationOptions): BoundGroup[] {
  if (shared.plan.bound.length === 0) return [];
  const nodeIps = nodeIpsOf(proxy, options.legacySingleIp).ips;
  return shared.plan.bound.map((g) => {
    const source = sourceOn(nodeIps, g.plane, g.family, options.planes);
    return { key: g.key, ...(source ? { source } : {}), clusters: g.clusters };
  });
}

/** The proxy's node IP a bound cluster connects from: the first on its plane of the endpoints' family. */
export function sourceOn(nodeIps: readonly string[], plane: Plane, family: IpFamily | undefined, planes: Planes): string | undefined {
  return nodeIps.find((ip) => planes.planeOf(ip) === plane && (family === undefined || (family === 6) === ip.includes(":")));
}

/** Everything a proxy is served, in one list per type: the shared part, its bound clusters and its own. */
export function joinConfig(shared: SharedConfig, own: Resources, bound: readonly BoundGroup[] = []): Resources {
  const listeners = [...shared.listeners, ...own.listeners].sort((a, b) => (a.name! < b.name! ? -1 : 1));
  const boundClusters = bound.flatMap((g) => (g.source ? g.clusters.map((c) => boundCluster(c, g.source!)) : g.clusters));
  return {
    listeners, clusters: [...shared.clusters, ...boundClusters, ...own.clusters], endpoints: [...shared.endpoints, ...own.endpoints],
    routes: [...shared.routes, ...own.routes], extensionConfigs: own.extensionConfigs,
  };
}

export function generate(proxy: ProxyIdentity, registry: Registry, options: GenerationOptions, via?: string): Resources {
  const shared = sharedConfig(registry, options, new Interner(), viewOf(proxy, options));
  return joinConfig(shared, proxyConfig(shared, proxy, options, via), boundGroups(shared, proxy, options));
}
