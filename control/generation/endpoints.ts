// A service port's endpoints as Envoy load-balances them, for one network: grouped by locality, with
// Istio's weights, unix sockets as pipes, and endpoints of other networks replaced by those networks'
// gateways weighted by what they stand for (split-horizon EDS).
import { endpointPort } from "../registry/query.ts";
import type { Endpoint, Service, ServicePort } from "../registry/model.ts";
import type { Address, ClusterLoadAssignment } from "./envoy-types.ts";
import { socketAddress } from "./envoy-objects.ts";
import { reach, type NetworkView } from "./networks.ts";

type LocalityLbEndpoints = NonNullable<ClusterLoadAssignment["endpoints"]>[number];
type LbEndpoint = NonNullable<LocalityLbEndpoints["lb_endpoints"]>[number];

const MAX_WEIGHT = 0xffffffff;

export interface EndpointSet {
  endpoints: readonly Endpoint[];
  port: ServicePort;
  view: NetworkView;
}

/** The address Envoy connects to for this endpoint on this port (none for an address-less endpoint). */
export function endpointAddress(e: Endpoint, port: ServicePort): Address | undefined {
  switch (e.addressType) {
    case "ip":
    case "hostname":
      return socketAddress(e.address, endpointPort(e, port));
    case "unix":
      return { pipe: { path: e.address.slice("unix://".length) } };
    case "none":
      return undefined;
  }
}

/** `endpoints` defaults to the service's; DNS services without endpoints pass the host itself. */
export function endpointSet(service: Service, port: ServicePort, view: NetworkView, endpoints: readonly Endpoint[] = service.endpoints): EndpointSet {
  return { endpoints, port, view };
}

/** The endpoints grouped by locality (built once per Service and network view: see outbound.ts). */
export function buildEndpointSet(set: EndpointSet): LocalityLbEndpoints[] {
  return buildGroups(set.endpoints, set.port, set.view);
}

function buildGroups(endpoints: readonly Endpoint[], port: ServicePort, view: NetworkView): LocalityLbEndpoints[] {
  const groups = new Map<string, { direct: LbEndpoint[]; gateways: Map<string, { address: Address; weight: number }> }>();
  for (const e of endpoints) {
    const r = reach(e, view);
    if (r.kind === "unreachable") continue;
    const weight = Math.min(MAX_WEIGHT, (e.weight ?? 1) * view.scale);
    const k = e.locality ?? "";
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { direct: [], gateways: new Map() }));
    if (r.kind === "direct") {
      g.direct.push({ endpoint: { address: endpointAddress(e, port)! }, ...(weight !== 1 ? { load_balancing_weight: { value: weight } } : {}) });
      continue;
    }
    // Split the endpoint's weight among its network's gateways (exact: weights were scaled by the lcm of gateway counts).
    for (const gw of r.gateways) {
      const gk = `${gw.address}:${gw.port}`;
      const share = weight / r.gateways.length;
      const prev = g.gateways.get(gk);
      if (prev) prev.weight = Math.min(MAX_WEIGHT, prev.weight + share);
      else g.gateways.set(gk, { address: socketAddress(gw.address, gw.port), weight: share });
    }
  }
  const out: LocalityLbEndpoints[] = [];
  for (const [locality, g] of groups) {
    const lb = [...g.direct, ...[...g.gateways.values()].map((x): LbEndpoint => ({ endpoint: { address: x.address }, ...(x.weight !== 1 ? { load_balancing_weight: { value: Math.max(1, Math.round(x.weight)) } } : {}) }))];
    if (lb.length === 0) continue;
    out.push({ ...(locality ? { locality: parseLocality(locality) } : {}), lb_endpoints: capWeights(lb) });
  }
  return out;
}

/** "region/zone/subzone": Istio's locality string. */
function parseLocality(s: string): NonNullable<LocalityLbEndpoints["locality"]> {
  const [region, zone, ...rest] = s.split("/");
  return { ...(region ? { region } : {}), ...(zone ? { zone } : {}), ...(rest.length ? { sub_zone: rest.join("/") } : {}) };
}

/** Envoy refuses a locality whose weights sum past 2^32-1: scale down, keeping every weight at least 1. */
function capWeights(lb: LbEndpoint[]): LbEndpoint[] {
  const total = lb.reduce((n, e) => n + (e.load_balancing_weight?.value ?? 1), 0);
  if (total <= MAX_WEIGHT) return lb;
  const f = (MAX_WEIGHT - lb.length) / total;
  return lb.map((e) => ({ ...e, load_balancing_weight: { value: Math.max(1, Math.floor((e.load_balancing_weight?.value ?? 1) * f)) } }));
}
