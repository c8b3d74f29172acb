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
 * What one service port brings to every plan: the destinations it wants on its port, and its filter
 * chain when it gets them all (the usual case). Derived once per frozen Service (see intern.ts), for
 * every network view alike, so a registry change costs the services it changed.
 */
interface PortChain {
  wanted: readonly string[];
  chain: OutboundChain;
}

/** And what it brings to one network view: its cluster and its endpoints (EDS). */
interface PortResources {
  cluster: Cluster;
  endpoints?: ClusterLoadAssignment;
}

/** The chain of a service port some of whose destinations an earlier service on the port already has. */
function narrowedChain({ wanted, chain }: PortChain, port: OutboundPort): OutboundChain {
  const destinations: string[] = [];
  const seen = new Set<string>();
  for (const d of wanted) {
    const k = ownerKey(d, chain.serverNames?.[0]);
    if (port.owner.has(k) || seen.has(k)) continue;
    seen.add(k);
    destinations.push(d);
  }
  return { ...chain, destinations, key: `${chain.cluster} ${destinations.join(",")} ${chain.serverNames?.join(",") ?? ""} ${chain.dynamicForwardPort ?? ""}` };
}

/** `interned` reuses the previous version's objects: per unchanged Service, and by key for the rest (see intern.ts). */
export function outboundPlan(registry: Registry, connectTimeoutMs: number, interned: Interner, view: ProxyView = {}, networks: readonly MeshNetwork[] = []): OutboundPlan {
  const byPort = new Map<number, OutboundPort>();
  const clusters: Cluster[] = [];
  const endpoints: ClusterLoadAssignment[] = [];
  const services = servicesFor(registry, view.namespace);
  const nv = networkView(view.network, networks);
  const resourcesKey = `${endpointNetworkKey(view.network, networks)}|${connectTimeoutMs}`;
  for (const service of services) {
    const chains = interned.derive(service, "chains", () => serviceChains(service, interned));
    const resources = interned.derive(service, resourcesKey, () => serviceResources(service, nv, connectTimeoutMs, interned));
    chains.forEach((c, i) => {
      clusters.push(resources[i]!.cluster);
      const eds = resources[i]!.endpoints;
      if (eds) endpoints.push(eds);
      const number = c.chain.port.number;
      let port = byPort.get(number);
      if (!port) byPort.set(number, (port = { port: number, chains: [], ipv6: false, sni: false, owner: new Map() }));
      const sni = c.chain.serverNames?.[0];
      // Usually no earlier service matches any of these destinations: the chain derived with the service is the one.
      const chain = c.wanted.some((d) => port!.owner.has(ownerKey(d, sni))) ? narrowedChain(c, port) : c.chain;
      for (const d of chain.destinations) {
        port.owner.set(ownerKey(d, sni), chain.cluster);
        if (d.includes(":")) port.ipv6 = true;
      }
      if (sni && chain.destinations.length > 0) port.sni = true;
      port.chains.push(chain);
    });
  }
  const ports = [...byPort.values()].sort((a, b) => a.port - b.port);
  return { ports, clusters, endpoints, services };
}

/** The ports a sidecar proxies: Envoy sidecars proxy TCP; Istio skips UDP ports too. */
const proxied = (service: Service) => service.ports.filter((p) => p.protocol !== "UDP");

function serviceChains(service: Service, interned: Interner): PortChain[] {
  const wanted = destinationsOf(service);
  // A service that names one destination twice (an address that is also an endpoint IP) matches it once.
  const destinations = [...new Set(wanted)];
  return proxied(service).map((p) => {
    const serverNames = service.resolution === "DYNAMIC_DNS" || (wanted === CATCH_ALL && isTlsProtocol(p.protocol)) ? [service.host] : undefined;
    const dynamicForwardPort = service.resolution === "DYNAMIC_DNS" ? p.targetPort ?? p.number : undefined;
    const chain: OutboundChain = {
      cluster: outboundClusterName(p.number, service.host), service, port: p, destinations,
      ...(serverNames ? { serverNames } : {}), ...(dynamicForwardPort ? { dynamicForwardPort } : {}),
      // Short, so that a listener's key (every chain of its port) is short; fixed while the Service lives.
      key: interned.serial(),
    };
    return { wanted, chain };
  });
}

function serviceResources(service: Service, nv: NetworkView, connectTimeoutMs: number, interned: Interner): PortResources[] {
  return proxied(service).map((p) => {
    const name = outboundClusterName(p.number, service.host);
    const set = endpointSetFor(service, p, nv);
    // One interner serves one set of options: an EDS cluster depends on its name alone; the others on their resolution's inputs.
    const key = service.resolution === "STATIC" ? `C ${name}` : `C ${name}|${service.resolution}|${p.targetPort ?? ""}|${set?.key ?? ""}`;
    const cluster = interned.get(key, () => outboundCluster(name, service, p, connectTimeoutMs, set));
    if (service.resolution !== "STATIC") return { cluster };
    return { cluster, endpoints: interned.get(`E ${name}${set!.key}`, (): ClusterLoadAssignment => ({ cluster_name: name, endpoints: buildEndpointSet(set!) })) };
  });
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

/** Endpoints for EDS (STATIC) and for DNS clusters (inline; the host itself when none are given and no selector is set). */
function endpointSetFor(service: Service, port: ServicePort, view: NetworkView): EndpointSet | undefined {
  if (service.resolution === "STATIC") return endpointSet(service, port, view);
  if (service.resolution !== "DNS" && service.resolution !== "DNS_ROUND_ROBIN") return undefined;
  const selfResolved = service.endpoints.length === 0 && !service.workloadSelector;
  const hostAsEndpoint: Endpoint = { address: service.host, addressType: "hostname", ports: {}, labels: {} };
  return endpointSet(service, port, view, selfResolved ? [hostAsEndpoint] : service.endpoints);
}
