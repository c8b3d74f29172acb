// One outbound cluster per service port, of the type Istio builds for the service's resolution:
// STATIC -> EDS, DNS -> STRICT_DNS, DNS_ROUND_ROBIN -> LOGICAL_DNS, NONE -> ORIGINAL_DST (to the
// address the client dialled, or its targetPort), DYNAMIC_DNS -> Envoy's dynamic forward proxy.
// HTTP2 and gRPC ports' clusters speak HTTP/2 upstream.
import { deepFreeze } from "../common/deep-freeze.ts";
import type { Service, ServicePort } from "../registry/model.ts";
import { duration, typedConfig } from "./envoy-objects.ts";
import type { Cluster, DnsCacheConfig, DynamicForwardProxyCluster } from "./envoy-types.ts";
import { buildEndpointSet, type EndpointSet } from "./endpoints.ts";
import { upstreamProtocolOptions } from "./http.ts";

const EDS_CONFIG: Cluster["eds_cluster_config"] = deepFreeze({ eds_config: { ads: {}, resource_api_version: "V3" } });
/** Istio's DNS settings: v4 first (multiplane shares clusters across proxies, so one family choice for all), refresh by TTL, else every 60 s. */
const DNS_SETTINGS = deepFreeze({ dns_lookup_family: "V4_PREFERRED", respect_dns_ttl: true, dns_refresh_rate: duration(60_000) } as const);

/** One DNS cache for every dynamic-forward-proxy cluster and filter: Envoy requires caches of one name to be configured alike. */
export const DFP_DNS_CACHE: DnsCacheConfig = deepFreeze({ name: "dynamic_forward_proxy_cache_config", dns_lookup_family: "V4_PREFERRED" });

/** `set`: the endpoints of DNS clusters (inline); unused for the others. */
export function outboundCluster(name: string, service: Service, port: ServicePort, connectTimeoutMs: number, set?: EndpointSet): Cluster {
  return { ...byResolution(name, service, port, connectTimeoutMs, set), ...upstreamProtocolOptions(port.protocol) };
}

function byResolution(name: string, service: Service, port: ServicePort, connectTimeoutMs: number, set?: EndpointSet): Cluster {
  const connect_timeout = duration(connectTimeoutMs);
  switch (service.resolution) {
    case "STATIC":
      return { name, type: "EDS", connect_timeout, eds_cluster_config: EDS_CONFIG };
    case "DNS":
    case "DNS_ROUND_ROBIN": {
      const groups = set ? buildEndpointSet(set) : [];
      // No endpoints (a selector that selects nothing): a cluster with no hosts, so connections fail fast.
      if (groups.length === 0) return { name, type: "STATIC", connect_timeout, load_assignment: { cluster_name: name, endpoints: [] } };
      if (service.resolution === "DNS") return { name, type: "STRICT_DNS", connect_timeout, ...DNS_SETTINGS, load_assignment: { cluster_name: name, endpoints: groups } };
      // LOGICAL_DNS takes exactly one host (validation allows one endpoint; a network's gateways can make more).
      const first = groups[0]!;
      return { name, type: "LOGICAL_DNS", connect_timeout, ...DNS_SETTINGS, load_assignment: { cluster_name: name, endpoints: [{ ...first, lb_endpoints: first.lb_endpoints!.slice(0, 1) }] } };
    }
    case "NONE":
      return {
        name, type: "ORIGINAL_DST", lb_policy: "CLUSTER_PROVIDED", connect_timeout,
        ...(port.targetPort ? { original_dst_lb_config: { upstream_port_override: { value: port.targetPort } } } : {}),
      };
    case "DYNAMIC_DNS":
      return {
        name, lb_policy: "CLUSTER_PROVIDED", connect_timeout,
        cluster_type: {
          name: "envoy.clusters.dynamic_forward_proxy",
          typed_config: typedConfig<DynamicForwardProxyCluster>("type.googleapis.com/envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig", { dns_cache_config: DFP_DNS_CACHE }),
        },
      };
  }
}
