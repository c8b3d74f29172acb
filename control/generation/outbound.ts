// The part of the configuration that depends on the registry, not on the proxy's node IPs: outbound
// clusters, their endpoints (EDS), and which service each destination on each port belongs to. The
// config pipeline computes it once per registry version and proxy view (network, visible services).
import { isHttpProtocol, isTlsProtocol } from "../registry/istio/syntax.ts";
import type { Endpoint, Registry, Service, ServicePort } from "../registry/model.ts";
import { outboundCluster } from "./clusters.ts";
import { isHttp2Protocol } from "./http.ts";
import type { HttpRoute } from "./routes.ts";
import { buildEndpointSet, endpointSet, type EndpointSet } from "./endpoints.ts";
import { endpointNetworkKey, networkView, type NetworkView } from "./networks.ts";
import type { Cluster, ClusterLoadAssignment } from "./envoy-types.ts";
import { Interner } from "./intern.ts";
import { outboundClusterName } from "./names.ts";
import type { GenerationOptions } from "./options.ts";
import { isolatedFrom, planeGroups, shapeCluster, type PlaneGroup } from "./planes.ts";
import type { ProxyView } from "./proxy-view.ts";
import type { IpFamily } from "../identity/ip.ts";
import type { Plane } from "../planes/plane.ts";
import type { Scope } from "./scope.ts";

/** Every destination, both families: a service without addresses of its own takes the whole port (Istio: 0.0.0.0:<port>). */
export const CATCH_ALL = ["0.0.0.0/0", "::/0"] as const;

/** One of the clusters a port's connections are spread over (its endpoints on one plane), and its share. */
export interface WeightedCluster {
  name: string;
  weight: number;
}

export interface OutboundChain {
  /** Istio's name for the service port's cluster: what owns destinations and names the chain. */
  cluster: string;
  /** Set when the port's endpoints lie on several planes: the clusters connections go to instead. */
  split?: readonly WeightedCluster[];
  service: Service;
  port: ServicePort;
  /** Destination IPs or CIDRs this chain matches: spec.addresses, then endpoint IPs, or CATCH_ALL. */
  destinations: string[];
  /** TLS by SNI: set where no VIP tells the service apart (see matchedBySni). */
  serverNames?: string[];
  /** DYNAMIC_DNS: the port the dynamic forward proxy connects to on the host the SNI names. */
  dynamicForwardPort?: number;
  /** Equal keys, equal chains: a serial for a chain derived with its service (see serviceChains), else its content. */
  key: string;
}

/** A port's HTTP services, told apart by Host in one HTTP connection manager (RDS route config `<port>`). */
export interface OutboundHttp {
  /** What the HTTP chain matches: every destination no earlier service took (Istio: 0.0.0.0:<port>). */
  destinations: string[];
  /** One virtual host each, in registry order. */
  routes: HttpRoute[];
}

export interface OutboundPort {
  port: number;
  /** Services proxied at L4 (TCP, TLS, ...), told apart by destination IP and SNI. */
  chains: OutboundChain[];
  /** Set when some service on the port speaks HTTP. */
  http?: OutboundHttp;
  /** Some destination is IPv6, so the listener also needs the [::]:port address. */
  ipv6: boolean;
  /** Some chain matches by SNI, so the listener needs the TLS inspector. */
  sni: boolean;
  /** destination (and SNI) -> cluster (or httpRoutesOwner) that owns it on this port (the first service, in registry order). */
  owner: Map<string, string>;
}

/** Clusters of a bindSource plane the proxy has a node IP on, of one address family: they connect from the proxy's IP there. */
export interface BoundClusters {
  /** "plane/family". */
  key: string;
  plane: Plane;
  family: IpFamily | undefined;
  clusters: Cluster[];
}

export interface OutboundPlan {
  ports: OutboundPort[];
  clusters: Cluster[];
  /** Left out of `clusters`: each proxy gets them with its source address (generate.ts boundGroups). */
  bound: BoundClusters[];
  endpoints: ClusterLoadAssignment[];
  /** The services of the registry this plan covers (those visible to the view). */
  services: readonly Service[];
}

/** The owner key of a destination on a port, optionally for one SNI name. */
export const ownerKey = (destination: string, serverName?: string) => (serverName ? `${destination} sni ${serverName}` : destination);

/** Who owns the destinations a port's HTTP chain matches. */
export const httpRoutesOwner = (port: number) => `the HTTP routes of port ${port}`;

/** Claims each destination (with the SNI name) no earlier service owns on `port`; returns those it got. */
function claim(port: OutboundPort, wanted: readonly string[], owner: string, serverName?: string): string[] {
  const got: string[] = [];
  for (const d of wanted) {
    const k = ownerKey(d, serverName);
    if (port.owner.has(k)) continue; // an earlier service (or this one) already matches it
    port.owner.set(k, owner);
    got.push(d);
    if (d.includes(":")) port.ipv6 = true;
  }
  return got;
}

/**
 * What one service port brings to every plan: its cluster's name, and either its virtual host (HTTP)
 * or the destinations it wants on its port with its filter chain when it gets them all (the usual
 * case). Derived once per frozen Service (see intern.ts), for every network view alike, so a registry
 * change costs the services it changed.
 */
type PortChain =
  | { port: ServicePort; cluster: string; route: HttpRoute }
  | { port: ServicePort; cluster: string; wanted: readonly string[]; chain: OutboundChain; ipv6: boolean };

/** And what it brings to one network view: its cluster and its endpoints (EDS). */
interface PortResources {
  cluster: Cluster;
  endpoints?: ClusterLoadAssignment;
  group: PlaneGroup;
}

/**
 * `interned` reuses the previous version's objects: per unchanged Service, and by key for the rest (see
 * intern.ts). `view.planes`: the proxy's planes that isolate or bind (isolated services it is not on are
 * left out; clusters of planes it binds on go to `bound`).
 */
export function outboundPlan(scope: Scope, options: Pick<GenerationOptions, "connectTimeoutMs" | "meshNetworks" | "planes">, interned: Interner, view: ProxyView = {}): OutboundPlan {
  const { connectTimeoutMs, meshNetworks: networks, planes } = options;
  const byPort = new Map<number, OutboundPort>();
  const clusters: Cluster[] = [];
  const bound = new Map<string, BoundClusters>();
  const endpoints: ClusterLoadAssignment[] = [];
  const own = new Set(view.planes ?? []);
  const services = scope.services;
  const nv = networkView(view.network, networks);
  const resourcesKey = `${endpointNetworkKey(view.network, networks)}|${connectTimeoutMs}`;
  const used: Service[] = [];
  for (const service of services) {
    const groups = interned.derive(service, "planes", () => planeGroups(service, planes));
    const visible = groups.filter((g) => !isolatedFrom(g, own));
    if (visible.length === 0) continue; // on isolated planes the proxy is not on
    used.push(service);
    const hidden = visible.length === groups.length ? "" : visible.map((g) => g.suffix).join(",");
    const chains = interned.derive(service, `chains|${hidden}`, () => serviceChains(service, interned, visible));
    const resources = interned.derive(service, `${resourcesKey}|${hidden}`, () => serviceResources(service, nv, connectTimeoutMs, interned, visible));
    // A Sidecar's egress listener with a port imports the service on that port only.
    const only = scope.ports.get(service);
    chains.forEach((c, i) => {
      if (only && !only.has(c.port.number)) return;
      for (const r of resources[i]!) {
        const plane = r.group.plane;
        if (plane?.bindSource && own.has(plane.name)) {
          const key = `${plane.name}/${r.group.family ?? ""}`;
          let g = bound.get(key);
          if (!g) bound.set(key, (g = { key, plane, family: r.group.family, clusters: [] }));
          g.clusters.push(r.cluster);
        } else clusters.push(r.cluster);
        if (r.endpoints) endpoints.push(r.endpoints);
      }
      const number = c.port.number;
      let port = byPort.get(number);
      if (!port) byPort.set(number, (port = { port: number, chains: [], ipv6: false, sni: false, owner: new Map() }));
      if ("route" in c) {
        // Told apart by Host, so the port's one HTTP chain takes every destination still free.
        port.http ??= { destinations: claim(port, CATCH_ALL, httpRoutesOwner(number)), routes: [] };
        port.http.routes.push(c.route);
        return;
      }
      const serverName = c.chain.serverNames?.[0];
      const owner = port.owner;
      // Usually no earlier service took any of these destinations: the chain derived with the service is the one.
      const chain = c.wanted.some((d) => owner.has(ownerKey(d, serverName))) ? narrowed(port, c) : c.chain;
      if (chain === c.chain) {
        for (const d of chain.destinations) owner.set(ownerKey(d, serverName), c.cluster);
        if (c.ipv6) port.ipv6 = true;
      }
      if (serverName && chain.destinations.length > 0) port.sni = true;
      port.chains.push(chain);
    });
  }
  const ports = [...byPort.values()].sort((a, b) => a.port - b.port);
  return { ports, clusters, bound: [...bound.values()], endpoints, services: used.length === services.length ? services : used };
}

/** The chain of a service port some of whose destinations an earlier service on the port already has: what is left of it. */
function narrowed(port: OutboundPort, { wanted, chain }: { wanted: readonly string[]; chain: OutboundChain }): OutboundChain {
  const destinations = claim(port, wanted, chain.cluster, chain.serverNames?.[0]);
  const split = chain.split?.map((w) => `${w.name}=${w.weight}`).join(",") ?? "";
  return { ...chain, destinations, key: `${chain.cluster} ${destinations.join(",")} ${chain.serverNames?.join(",") ?? ""} ${chain.dynamicForwardPort ?? ""} ${split}` };
}

/** The ports a sidecar proxies: Envoy sidecars proxy TCP; Istio skips UDP ports too. */
const proxied = (service: Service) => service.ports.filter((p) => p.protocol !== "UDP");

/** Where a port's connections go: its one cluster (by Istio's name, or a plane's when others are hidden), or a split over planes. */
function upstreamOf(port: number, host: string, groups: readonly PlaneGroup[]): { target: string; split?: WeightedCluster[] } {
  if (groups.length === 1) return { target: outboundClusterName(port, host, groups[0]!.suffix) };
  return { target: outboundClusterName(port, host), split: groups.map((g) => ({ name: outboundClusterName(port, host, g.suffix), weight: Math.max(1, Math.min(g.weight, 0xffffffff)) })) };
}

function serviceChains(service: Service, interned: Interner, groups: readonly PlaneGroup[]): PortChain[] {
  return proxied(service).map((p): PortChain => {
    const cluster = outboundClusterName(p.number, service.host);
    const { target, split } = upstreamOf(p.number, service.host, groups);
    if (isHttpProtocol(p.protocol)) return { port: p, cluster, route: { service, port: p, cluster: target, ...(split ? { split } : {}), key: interned.serial() } };
    const sni = matchedBySni(service, p);
    const serverNames = sni ? [service.host] : undefined;
    const wanted = sni ? sniDestinations(service) : destinationsOf(service);
    const dynamicForwardPort = service.resolution === "DYNAMIC_DNS" ? p.targetPort ?? p.number : undefined;
    const chain: OutboundChain = {
      // A service that names one destination twice (an address that is also an endpoint IP) matches it once.
      cluster, ...(split ? { split } : target !== cluster ? { split: [{ name: target, weight: 1 }] } : {}), service, port: p, destinations: [...new Set(wanted)],
      ...(serverNames ? { serverNames } : {}), ...(dynamicForwardPort ? { dynamicForwardPort } : {}),
      // Short, so that a listener's key (every chain of its port) is short; fixed while the Service lives.
      key: interned.serial(),
    };
    return { port: p, cluster, wanted, chain, ipv6: chain.destinations.some((d) => d.includes(":")) };
  });
}

function serviceResources(service: Service, nv: NetworkView, connectTimeoutMs: number, interned: Interner, groups: readonly PlaneGroup[]): PortResources[][] {
  return proxied(service).map((p) => groups.map((group): PortResources => {
    const name = outboundClusterName(p.number, service.host, group.suffix);
    // The port's only group has every endpoint (and a DNS service without endpoints, its host).
    const set = group.suffix === "" ? endpointSetFor(service, p, nv) : endpointSet(service, p, nv, group.endpoints);
    if (service.resolution !== "STATIC") return { cluster: shapeCluster(outboundCluster(name, service, p, connectTimeoutMs, set), group), group };
    // An EDS cluster depends on its name, upstream protocol and plane alone (one interner serves one set
    // of options and planes): one object for every network view.
    const key = `C ${name}|${isHttp2Protocol(p.protocol) ? "h2" : ""}|${group.plane?.name ?? ""}|${group.family ?? ""}`;
    const cluster = interned.get(key, () => shapeCluster(outboundCluster(name, service, p, connectTimeoutMs, set), group));
    return { cluster, endpoints: { cluster_name: name, endpoints: buildEndpointSet(set!) }, group };
  }));
}

/**
 * What selects this service on its ports: its addresses, then its endpoint IPs (multiplane tells
 * services on one port apart by them); with neither, a service that reaches endpoints the client did
 * not name (DNS) or that forwards to whatever it dialled (NONE) takes the whole port, as in Istio.
 */
export function destinationsOf(service: Service): readonly string[] {
  const ips: string[] = [];
  for (const e of service.endpoints) if (e.addressType === "ip") ips.push(e.address);
  switch (service.resolution) {
    case "STATIC":
      return [...service.addresses, ...ips];
    case "DNS":
    case "DNS_ROUND_ROBIN":
      return service.addresses.length + ips.length > 0 ? [...service.addresses, ...ips] : CATCH_ALL;
    case "NONE":
      return service.addresses.length > 0 ? service.addresses : CATCH_ALL;
    case "DYNAMIC_DNS":
      return CATCH_ALL;
  }
}

/**
 * Istio tells services on a TLS or HTTPS port apart by SNI where no VIP does: a service without IP
 * addresses of its own (none, or CIDRs), which is MESH_EXTERNAL (clients dial whatever its name
 * resolves to), has CIDRs, or has no IP endpoints to match either. DYNAMIC_DNS always (it resolves the SNI).
 */
function matchedBySni(service: Service, port: ServicePort): boolean {
  if (service.resolution === "DYNAMIC_DNS") return true;
  if (!isTlsProtocol(port.protocol) || service.addresses.some((a) => !a.includes("/"))) return false;
  return service.location === "MESH_EXTERNAL" || service.addresses.length > 0 || destinationsOf(service) === CATCH_ALL;
}

/** Where an SNI match applies: the service's CIDRs, else every destination on the port. */
const sniDestinations = (service: Service): readonly string[] => (service.addresses.length > 0 ? service.addresses : CATCH_ALL);

/** Endpoints for EDS (STATIC) and for DNS clusters (inline; the host itself when none are given and no selector is set). */
function endpointSetFor(service: Service, port: ServicePort, view: NetworkView): EndpointSet | undefined {
  if (service.resolution === "STATIC") return endpointSet(service, port, view);
  if (service.resolution !== "DNS" && service.resolution !== "DNS_ROUND_ROBIN") return undefined;
  const selfResolved = service.endpoints.length === 0 && !service.workloadSelector;
  const hostAsEndpoint: Endpoint = { address: service.host, addressType: "hostname", ports: {}, labels: {} };
  return endpointSet(service, port, view, selfResolved ? [hostAsEndpoint] : service.endpoints);
}
