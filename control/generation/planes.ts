// What planes make of a service port's outbound traffic. Its endpoints are grouped by plane (and, on a
// plane that marks or binds, by address family: a socket option or a source address is of one
// family); each group is one cluster with the plane's connect timeout, circuit breakers and DSCP, and
// a port with several groups sends each connection to one of them, weighted by their endpoints.
// One group keeps Istio's cluster name; several are `outbound|PORT|plane:NAME|HOST` (`plane:` for the
// endpoints on no plane, `/ipv6` for a plane's IPv6 endpoints beside IPv4 ones).
import { parseIp, type IpFamily } from "../identity/ip.ts";
import { Planes, type Plane } from "../planes/plane.ts";
import type { Endpoint, Service } from "../registry/model.ts";
import { duration } from "./envoy-objects.ts";
import type { Cluster } from "./envoy-types.ts";

export interface PlaneGroup {
  plane?: Plane;
  /** Set on a plane that marks or binds: the family of every endpoint in the group. */
  family?: IpFamily;
  endpoints: readonly Endpoint[];
  /** The sum of the endpoints' weights: the group's share of connections. */
  weight: number;
  /** What tells this group's cluster apart from the port's other groups' ("" when it is the only one): its name's subset slot. */
  suffix: string;
}

/**
 * The service's endpoints by plane, in the order of the planes file (no plane last). A service
 * without IP endpoints is on the plane of its addresses when they all lie on one (else on none).
 */
export function planeGroups(service: Service, planes: Planes): PlaneGroup[] {
  if (planes.empty) return [{ endpoints: service.endpoints, weight: 1, suffix: "" }];
  const byKey = new Map<string, { plane?: Plane; family?: IpFamily; endpoints: Endpoint[]; weight: number }>();
  let anyIp = false;
  for (const e of service.endpoints) {
    const ip = e.addressType === "ip" ? parseIp(e.address) : undefined;
    if (ip?.ok) anyIp = true;
    const plane = ip?.ok ? planes.planeOf(ip.ip) : undefined;
    const family = plane && Planes.shapes(plane) && ip?.ok ? ip.family : undefined;
    const key = `${plane?.name ?? ""}/${family ?? ""}`;
    let g = byKey.get(key);
    if (!g) byKey.set(key, (g = { ...(plane ? { plane } : {}), ...(family ? { family } : {}), endpoints: [], weight: 0 }));
    g.endpoints.push(e);
    g.weight += e.weight ?? 1;
  }
  if (!anyIp) {
    const plane = addressPlane(service, planes);
    const first = plane && Planes.shapes(plane) ? parseIp(service.addresses[0]!.split("/")[0]!) : undefined;
    return [{ ...(plane ? { plane } : {}), ...(first?.ok ? { family: first.family } : {}), endpoints: service.endpoints, weight: 1, suffix: "" }];
  }
  const order = (g: { plane?: Plane; family?: IpFamily }) => (g.plane ? planes.list.indexOf(g.plane) : planes.list.length) * 8 + (g.family ?? 0);
  const groups = [...byKey.values()].sort((a, b) => order(a) - order(b));
  const mixed = new Set(groups.filter((g) => g.family === 6 && groups.some((o) => o.plane === g.plane && o.family === 4)).map((g) => g.plane));
  return groups.map((g) => ({
    ...g,
    suffix: groups.length === 1 ? "" : `plane:${g.plane?.name ?? ""}${g.family === 6 && mixed.has(g.plane) ? "/ipv6" : ""}`,
  }));
}

/** The plane every address of the service lies on (a range counts by its first address), if one. */
function addressPlane(service: Service, planes: Planes): Plane | undefined {
  let found: Plane | undefined;
  for (const a of service.addresses) {
    const p = planes.planeOf(a.split("/")[0]!);
    if (!p || (found && p !== found)) return undefined;
    found = p;
  }
  return found;
}

/** Whether a proxy whose planes are `own` (names) is denied this group: it is on an isolated plane the proxy is not on. */
export const isolatedFrom = (g: PlaneGroup, own: ReadonlySet<string>) => g.plane !== undefined && g.plane.isolated && !own.has(g.plane.name);

/** IP_TOS (IPv4, and IPv4 on a dual-stack socket) and IPV6_TCLASS: the DSCP is the top six bits. */
const IPPROTO_IP = 0, IP_TOS = 1, IPPROTO_IPV6 = 41, IPV6_TCLASS = 67;

/** The socket options that mark a plane's connections of one family (none without a DSCP). */
export function dscpOptions(plane: Plane, family: IpFamily | undefined): NonNullable<NonNullable<Cluster["upstream_bind_config"]>["socket_options"]> {
  if (plane.dscp === undefined) return [];
  const value = plane.dscp << 2;
  // Envoy fails a connection whose socket refuses an option, and an IPv4 socket refuses IPV6_TCLASS.
  return [
    { description: `DSCP ${plane.dscp} (plane ${plane.name})`, level: IPPROTO_IP, name: IP_TOS, int_value: value, state: "STATE_PREBIND" },
    ...(family === 6 ? [{ description: `DSCP ${plane.dscp} (plane ${plane.name}, IPv6)`, level: IPPROTO_IPV6, name: IPV6_TCLASS, int_value: value, state: "STATE_PREBIND" as const }] : []),
  ];
}

/** A cluster of the group with its plane's timeout, limits and marking (the source address is per proxy: boundCluster). */
export function shapeCluster(cluster: Cluster, g: PlaneGroup): Cluster {
  const plane = g.plane;
  if (!plane || !Planes.shapes(plane)) return cluster;
  const b = plane.circuitBreakers;
  const wrap = (n: number | undefined) => (n === undefined ? {} : { value: n });
  const options = dscpOptions(plane, g.family);
  return {
    ...cluster,
    ...(plane.connectTimeoutMs !== undefined ? { connect_timeout: duration(plane.connectTimeoutMs) } : {}),
    ...(b ? {
      circuit_breakers: { thresholds: [{
        ...(b.maxConnections !== undefined ? { max_connections: wrap(b.maxConnections) } : {}),
        ...(b.maxPendingRequests !== undefined ? { max_pending_requests: wrap(b.maxPendingRequests) } : {}),
        ...(b.maxRequests !== undefined ? { max_requests: wrap(b.maxRequests) } : {}),
        ...(b.maxRetries !== undefined ? { max_retries: wrap(b.maxRetries) } : {}),
        ...(b.maxConnectionPools !== undefined ? { max_connection_pools: wrap(b.maxConnectionPools) } : {}),
      }] },
    } : {}),
    ...(options.length > 0 ? { upstream_bind_config: { socket_options: options } } : {}),
  };
}

/** The proxy's copy of a shaped cluster on a bindSource plane: it connects from `source`. */
export function boundCluster(cluster: Cluster, source: string): Cluster {
  return { ...cluster, upstream_bind_config: { ...cluster.upstream_bind_config, source_address: { address: source, port_value: 0 } } };
}
