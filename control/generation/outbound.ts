// The part of the configuration that is the same for every proxy: outbound clusters, their endpoints
// (EDS), and which service each destination IP on each port belongs to. The config pipeline computes
// it once per registry version and shares it with every proxy.
import type { Registry, Service } from "../registry/model.ts";
import { duration, socketAddress } from "./envoy-objects.ts";
import { Interner } from "./intern.ts";
import type { Cluster, ClusterLoadAssignment } from "./envoy-types.ts";
import { outboundClusterName } from "./names.ts";

export interface OutboundChain {
  cluster: string;
  service: Service;
  /** Destination IPs or CIDRs this chain matches: spec.addresses, then the endpoint IPs. */
  destinations: string[];
  /** Cluster, endpoints and addresses: with the keys of the chains before it, determines the chain. */
  key: string;
}

export interface OutboundPort {
  port: number;
  chains: OutboundChain[];
  /** Some destination is IPv6, so the listener also needs the [::]:port address. */
  ipv6: boolean;
  /** destination -> cluster that owns it on this port (the first service, in registry order). */
  owner: Map<string, string>;
}

export interface OutboundPlan {
  ports: OutboundPort[];
  clusters: Cluster[];
  endpoints: ClusterLoadAssignment[];
}

/** `interned` hands back the previous version's object for unchanged content (see intern.ts). */
export function outboundPlan(registry: Registry, connectTimeoutMs: number, interned: Interner): OutboundPlan {
  // Shared sub-objects: less garbage, and a serializer that caches by object identity encodes them once.
  const timeout = duration(connectTimeoutMs);
  const edsConfig: Cluster["eds_cluster_config"] = { eds_config: { ads: {}, resource_api_version: "V3" } };
  const byPort = new Map<number, OutboundPort>();
  const clusters: Cluster[] = [];
  const endpoints: ClusterLoadAssignment[] = [];
  for (const service of registry.services) {
    for (const p of service.ports) {
      const cluster = outboundClusterName(p.number, service.host);
      const portOf = (e: Service["endpoints"][number]) => e.ports[p.name] ?? p.number;
      let key = `E ${cluster}`;
      for (const e of service.endpoints) key += ` ${e.address}:${portOf(e)}`;
      // The cluster depends on its name alone (one interner serves one set of options), its endpoints on the key.
      clusters.push(interned.get(`C ${cluster}`, (): Cluster => ({ name: cluster, type: "EDS", connect_timeout: timeout, eds_cluster_config: edsConfig })));
      endpoints.push(interned.get(key, (): ClusterLoadAssignment => ({
        cluster_name: cluster,
        endpoints: service.endpoints.length === 0 ? [] : [{ lb_endpoints: service.endpoints.map((e) => ({ endpoint: { address: socketAddress(e.address, portOf(e)) } })) }],
      })));
      let port = byPort.get(p.number);
      if (!port) byPort.set(p.number, (port = { port: p.number, chains: [], ipv6: false, owner: new Map() }));
      const destinations: string[] = [];
      for (let i = 0; i < service.addresses.length + service.endpoints.length; i++) {
        const d = i < service.addresses.length ? service.addresses[i]! : service.endpoints[i - service.addresses.length]!.address;
        if (port.owner.has(d)) continue; // an earlier service (or this one) already matches it
        port.owner.set(d, cluster);
        destinations.push(d);
        if (d.includes(":")) port.ipv6 = true;
      }
      port.chains.push({ cluster, service, destinations, key: service.addresses.length ? `${key} @${service.addresses.join(",")}` : key });
    }
  }
  const ports = [...byPort.values()].sort((a, b) => a.port - b.port);
  return { ports, clusters, endpoints };
}
