// The part of the configuration that depends on the registry, not on the proxy's node IPs: outbound
// clusters, their endpoints (EDS), and which service each destination on each port belongs to. The
// config pipeline computes it once per registry version and proxy view (network, visible services).
import { isTlsProtocol } from "../registry/istio-syntax.ts";
import type { Endpoint, Registry, Service, ServicePort } from "../registry/model.ts";
import { outboundCluster } from "./clusters.ts";
import { buildEndpointSet, endpointSet, type EndpointSet } from "./endpoints.ts";
import { endpointNetworkKey, networkView, type NetworkView } from "./networks.ts";
import type { Cluster, ClusterLoadAssignment } from "./envoy-types.ts";
import { Interner } from "./intern.ts";
import { outboundClusterName } from "./names.ts";
import type { MeshNetwork } from "./options.ts";
import type { ProxyView } from "./proxy-view.ts";
import { servicesFor } from "./visibility.ts";

/** Every destination, both families: a service without addresses of its own takes the whole port (Istio: 0.0.0.0:<port>). */
export const CATCH_ALL = ["0.0.0.0/0", "::/0"] as const;

export interface OutboundChain {
  cluster: string;
  service: Service;
  port: ServicePort;
  /** Destination IPs or CIDRs this chain matches: spec.addresses, then endpoint IPs, or CATCH_ALL. */
  destinations: string[];
  /** TLS by SNI: set where destinations cannot tell services apart (no addresses of their own). */
  serverNames?: string[];
  /** DYNAMIC_DNS: the port the dynamic forward proxy connects to on the host the SNI names. */
  dynamicForwardPort?: number;
  /** Equal keys, equal chains: a serial for a chain derived with its service (see serviceOutbound), else its content. */
  key: string;
}

export interface OutboundPort {
  port: number;
  chains: OutboundChain[];
  /** Some destination is IPv6, so the listener also needs the [::]:port address. */
  ipv6: boolean;
  /** Some chain matches by SNI, so the listener needs the TLS inspector. */
  sni: boolean;
  /** destination (and SNI) -> cluster that owns it on this port (the first service, in registry order). */
  owner: Map<string, string>;
}

export interface OutboundPlan {
  ports: OutboundPort[];
  clusters: Cluster[];
  endpoints: ClusterLoadAssignment[];
  /** The services of the registry this plan covers (those visible to the view). */
  services: readonly Service[];
}

/** The owner key of a destination on a port, optionally for one SNI name. */
export const ownerKey = (destination: string, serverName?: string) => (serverName ? `${destination} sni ${serverName}` : destination);

/**
 * What one service port brings to every plan of a network view: its cluster, its endpoints (EDS) and
 * the destinations it wants on its port. Derived once per frozen Service (see intern.ts), so a
 * registry change costs the services it changed.
 */
interface PortOutbound {
  port: ServicePort;
  cluster: string;
  resource: Cluster;
  endpoints?: ClusterLoadAssignment;
  wanted: readonly string[];
  serverNames?: string[];
  dynamicForwardPort?: number;
  /** The chain when it gets every destination it wants (the usual case). */
  chain: OutboundChain;
}

/** The chain of a service port some of whose destinations an earlier service on the port already has. */
function narrowedChain(o: PortOutbound, port: OutboundPort): OutboundChain {
  const destinations: string[] = [];
  const seen = new Set<string>();
  for (const d of o.wanted) {
    const k = ownerKey(d, o.serverNames?.[0]);
    if (port.owner.has(k) || seen.has(k)) continue;
    seen.add(k);
    destinations.push(d);
  }
  return { ...o.chain, destinations, key: chainKey(o.cluster, destinations, o.serverNames, o.dynamicForwardPort) };
}

/** `interned` reuses the previous version's objects: per unchanged Service, and by key for the rest (see intern.ts). */
export function outboundPlan(registry: Registry, connectTimeoutMs: number, interned: Interner, view: ProxyView = {}, networks: readonly MeshNetwork[] = []): OutboundPlan {
  const byPort = new Map<number, OutboundPort>();
  const clusters: Cluster[] = [];
  const endpoints: ClusterLoadAssignment[] = [];
  const services = servicesFor(registry, view.namespace);
  const nv = networkView(view.network, networks);
  const derivedKey = `${endpointNetworkKey(view.network, networks)}|${connectTimeoutMs}`;
  for (const service of services) {
    for (const o of interned.derive(service, derivedKey, () => serviceOutbound(service, nv, connectTimeoutMs, interned))) {
      clusters.push(o.resource);
      if (o.endpoints) endpoints.push(o.endpoints);
      let port = byPort.get(o.port.number);
      if (!port) byPort.set(o.port.number, (port = { port: o.port.number, chains: [], ipv6: false, sni: false, owner: new Map() }));
      // Usually no earlier service matches any of these destinations: the chain derived with the service is the one.
      const clash = o.wanted.some((d) => port!.owner.has(ownerKey(d, o.serverNames?.[0])));
      const chain = clash ? narrowedChain(o, port) : o.chain;
      for (const d of chain.destinations) {
        port.owner.set(ownerKey(d, o.serverNames?.[0]), o.cluster);
        if (d.includes(":")) port.ipv6 = true;
      }
      if (o.serverNames && chain.destinations.length > 0) port.sni = true;
      port.chains.push(chain);
    }
  }
  const ports = [...byPort.values()].sort((a, b) => a.port - b.port);
  return { ports, clusters, endpoints, services };
}

function serviceOutbound(service: Service, nv: NetworkView, connectTimeoutMs: number, interned: Interner): PortOutbound[] {
  const out: PortOutbound[] = [];
  const wanted = destinationsOf(service);
  for (const p of service.ports) {
    if (p.protocol === "UDP") continue; // Envoy sidecars proxy TCP; Istio skips UDP ports too
    const cluster = outboundClusterName(p.number, service.host);
    const set = endpointSetFor(service, p, nv);
    // One interner serves one set of options: an EDS cluster depends on its name alone; the others on their resolution's inputs.
    const clusterKey = service.resolution === "STATIC" ? `C ${cluster}` : `C ${cluster}|${service.resolution}|${p.targetPort ?? ""}|${set?.key ?? ""}`;
    const resource = interned.get(clusterKey, () => outboundCluster(cluster, service, p, connectTimeoutMs, set));
    const endpoints = service.resolution === "STATIC"
      ? interned.get(`E ${cluster}${set!.key}`, (): ClusterLoadAssignment => ({ cluster_name: cluster, endpoints: buildEndpointSet(set!) }))
      : undefined;
    const serverNames = service.resolution === "DYNAMIC_DNS" || (wanted === CATCH_ALL && isTlsProtocol(p.protocol)) ? [service.host] : undefined;
    const dynamicForwardPort = service.resolution === "DYNAMIC_DNS" ? p.targetPort ?? p.number : undefined;
    // A service that names one destination twice (an address that is also an endpoint IP) matches it once.
    const destinations = [...new Set(wanted)];
    const chain: OutboundChain = {
      cluster, service, port: p, destinations,
      ...(serverNames ? { serverNames } : {}), ...(dynamicForwardPort ? { dynamicForwardPort } : {}),
      // Short, so listener keys (every chain of a port) stay short; the same for the same content while the interner remembers it.
      key: interned.get(`K ${chainKey(cluster, destinations, serverNames, dynamicForwardPort)}`, () => ({ serial: interned.serial() })).serial,
    };
    out.push({ port: p, cluster, resource, ...(endpoints ? { endpoints } : {}), wanted, ...(serverNames ? { serverNames } : {}), ...(dynamicForwardPort ? { dynamicForwardPort } : {}), chain });
  }
  return out;
}

const chainKey = (cluster: string, destinations: readonly string[], serverNames?: string[], dynamicForwardPort?: number) =>
  `${cluster} ${destinations.join(",")} ${serverNames?.join(",") ?? ""} ${dynamicForwardPort ?? ""}`;

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

/** Endpoints for EDS (STATIC) and for DNS clusters (inline; the host itself when none are given and no selector is set). */
function endpointSetFor(service: Service, port: ServicePort, view: NetworkView): EndpointSet | undefined {
  if (service.resolution === "STATIC") return endpointSet(service, port, view);
  if (service.resolution !== "DNS" && service.resolution !== "DNS_ROUND_ROBIN") return undefined;
  const selfResolved = service.endpoints.length === 0 && !service.workloadSelector;
  const hostAsEndpoint: Endpoint = { address: service.host, addressType: "hostname", ports: {}, labels: {} };
  return endpointSet(service, port, view, selfResolved ? [hostAsEndpoint] : service.endpoints);
}
