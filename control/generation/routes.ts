// An outbound HTTP port's route configuration, served by RDS and named after the port as in Istio
// ("9080"): one virtual host `<host>:<port>` per service on the port, routing every path to its
// cluster, then `allow_any` for every other Host, on to the address the client dialled (`block_all`,
// answering 502, under a Sidecar's REGISTRY_ONLY).
import type { Service, ServicePort } from "../registry/model.ts";
import { encodeOnce } from "./envoy-objects.ts";
import type { RouteConfiguration, VirtualHost } from "./envoy-types.ts";
import { routeTo } from "./http.ts";
import { ALLOW_ANY_VIRTUAL_HOST, BLOCK_ALL_VIRTUAL_HOST, outboundRouteName, PASSTHROUGH_CLUSTER, virtualHostName } from "./names.ts";
import { serviceDomains } from "./virtual-hosts.ts";

/** One HTTP service port on an outbound port: a virtual host. */
export interface HttpRoute {
  service: Service;
  port: ServicePort;
  /** The cluster requests go to (Istio's name unless planes split or narrow it). */
  cluster: string;
  /** The port's endpoints lie on several planes: requests are spread over their clusters by weight. */
  split?: readonly { name: string; weight: number }[];
  /** Equal keys, equal routes: a serial, fixed while the Service lives (see outbound.ts). */
  key: string;
}

export interface VirtualHostPlan {
  name: string;
  cluster: string;
  split?: readonly { name: string; weight: number }[];
  domains: string[];
}

const ALLOW_ANY: VirtualHost = encodeOnce<VirtualHost>({
  name: ALLOW_ANY_VIRTUAL_HOST,
  domains: ["*"],
  routes: [routeTo(ALLOW_ANY_VIRTUAL_HOST, PASSTHROUGH_CLUSTER)],
});

/** Istio's answer to a Host outside the registry under REGISTRY_ONLY. */
const BLOCK_ALL: VirtualHost = encodeOnce<VirtualHost>({
  name: BLOCK_ALL_VIRTUAL_HOST,
  domains: ["*"],
  routes: [{ name: BLOCK_ALL_VIRTUAL_HOST, match: { prefix: "/" }, direct_response: { status: 502 } }],
});

/**
 * Each service's domains on `port` for a proxy in DNS domain `proxyDomain`. Envoy refuses a route
 * configuration that names a domain twice, so each goes to the first service that claims it (registry
 * order), every service's own host before any short name or VIP.
 */
export function virtualHosts(port: number, routes: readonly HttpRoute[], proxyDomain: string | undefined): VirtualHostPlan[] {
  const taken = new Set<string>();
  const claim = (into: string[], domains: readonly string[]) => {
    for (const d of domains) if (!taken.has(d)) { taken.add(d); into.push(d); }
  };
  const domains = routes.map((r) => serviceDomains(r.service, port, proxyDomain));
  const plans = routes.map((r, i): VirtualHostPlan => {
    const own: string[] = [];
    claim(own, domains[i]!.own);
    return { name: virtualHostName(r.service.host, port), cluster: r.cluster, ...(r.split ? { split: r.split } : {}), domains: own };
  });
  plans.forEach((p, i) => claim(p.domains, domains[i]!.other));
  return plans.filter((p) => p.domains.length > 0);
}

/** Determines the route configuration of `port` (the interning key): its routes, in order, and the proxies' DNS domain. */
export const routeConfigKey = (port: number, routes: readonly HttpRoute[], proxyDomain: string | undefined, registryOnly: boolean) =>
  `R ${port} ${proxyDomain ?? ""}${registryOnly ? " R" : ""}|${routes.map((r) => r.key).join("|")}`;

export function outboundRouteConfig(port: number, hosts: readonly VirtualHostPlan[], registryOnly: boolean): RouteConfiguration {
  return {
    name: outboundRouteName(port),
    virtual_hosts: [...hosts.map((h): VirtualHost => ({ name: h.name, domains: h.domains, routes: [routeTo("default", h.cluster, h.split)] })), registryOnly ? BLOCK_ALL : ALLOW_ANY],
    // A route naming a cluster Envoy does not have yet answers 503 instead of refusing the configuration.
    validate_clusters: { value: false },
  };
}
