// The part of the configuration that is the same for every proxy: outbound clusters, their endpoints
// (EDS), and which service each destination IP on each port belongs to. Computed once per registry
// and shared by all proxies (memoised on the registry object, which is immutable).
import type { Registry, Service } from "../registry/model.ts";
import { duration, prefixRange, socketAddress, tcpProxy } from "./envoy-objects.ts";
import { outboundClusterName } from "./names.ts";

export interface OutboundChain {
  cluster: string;
  service: Service;
  /** Destination IPs or CIDRs this chain matches: spec.addresses, then the endpoint IPs. */
  destinations: string[];
  /** The chain's filter_chain_match and tcp_proxy filter, built once and shared by every proxy. */
  match: object;
  tcpProxy: object;
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
  clusters: object[];
  endpoints: object[];
}

const plans = new WeakMap<Registry, Map<number, OutboundPlan>>();

export function outboundPlan(registry: Registry, connectTimeoutMs: number): OutboundPlan {
  let byTimeout = plans.get(registry);
  if (!byTimeout) plans.set(registry, (byTimeout = new Map()));
  let plan = byTimeout.get(connectTimeoutMs);
  if (!plan) byTimeout.set(connectTimeoutMs, (plan = buildPlan(registry, connectTimeoutMs)));
  return plan;
}

function buildPlan(registry: Registry, connectTimeoutMs: number): OutboundPlan {
  // Shared sub-objects: less garbage, and a serializer that caches by object identity encodes them once.
  const timeout = duration(connectTimeoutMs);
  const edsConfig = { eds_config: { ads: {}, resource_api_version: "V3" } };
  const byPort = new Map<number, OutboundPort>();
  const clusters: object[] = [];
  const endpoints: object[] = [];
  for (const service of registry.services) {
    for (const p of service.ports) {
      const cluster = outboundClusterName(p.number, service.host);
      clusters.push({ name: cluster, type: "EDS", connect_timeout: timeout, eds_cluster_config: edsConfig });
      endpoints.push({
        cluster_name: cluster,
        endpoints: service.endpoints.length === 0 ? [] : [{
          lb_endpoints: service.endpoints.map((e) => ({ endpoint: { address: socketAddress(e.address, e.ports[p.name] ?? p.number) } })),
        }],
      });
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
      port.chains.push({ cluster, service, destinations, match: { prefix_ranges: destinations.map(prefixRange) }, tcpProxy: tcpProxy(cluster) });
    }
  }
  const ports = [...byPort.values()].sort((a, b) => a.port - b.port);
  return { ports, clusters, endpoints };
}
