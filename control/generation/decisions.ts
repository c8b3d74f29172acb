// For each service instance (service port x endpoint): inbound or outbound, and why, in words an
// operator can check against the node's interfaces, its network and its namespace. Services without
// endpoints (NONE, DYNAMIC_DNS, DNS resolving its own host) get one row per port. Served by
// GET /debug/decisions.
import type { ProxyIdentity } from "../identity/proxy.ts";
import { endpointPort } from "../registry/query.ts";
import type { Endpoint, Service, ServicePort } from "../registry/model.ts";
import { localTo, sourceOn, type SharedConfig } from "./generate.ts";
import { isolatedFrom, planeGroups, type PlaneGroup } from "./planes.ts";
import { isHttpProtocol } from "./http.ts";
import { inboundInstances, type InboundInstance } from "./inbound.ts";
import { outboundClusterName, outboundListenerName, outboundRouteName, virtualHostName } from "./names.ts";
import { endpointNetwork, networkView, reach, type NetworkView } from "./networks.ts";
import { nodeIpsOf } from "./node-ips.ts";
import type { GenerationOptions } from "./options.ts";
import { CATCH_ALL, ownerKey, type OutboundPort } from "./outbound.ts";
import { viewOf, type ProxyView } from "./proxy-view.ts";
import { sidecarImports, visibleTo, type Scope } from "./scope.ts";

export interface Decision {
  /** "namespace/name" of the ServiceEntry. */
  entry: string;
  host: string;
  port: number;
  portName: string;
  /** The endpoint's address (IP, DNS name, unix socket), or what the proxy connects to without one. */
  address: string;
  /** The port this instance receives the service port on. */
  endpointPort: number;
  direction: "inbound" | "outbound";
  reason: string;
  listener?: string;
  /** A second inbound listener on the service port (targetPort without an endpoint port of its own). */
  servicePortListener?: string;
  cluster: string;
  /** HTTP ports, outbound: the route configuration (RDS) and virtual host that send requests to the cluster by Host. */
  route?: string;
  virtualHost?: string;
  /** Why the listener above is missing or goes elsewhere, or how the endpoint is reached, when that matters. */
  note?: string;
}

/** `shared` is the shared config generation built (or would build) for the proxy's view: the same plan, so the same answers. */
export function decide(proxy: ProxyIdentity, shared: SharedConfig, options: GenerationOptions): Decision[] {
  const registry = shared.registry;
  const nodeIps = nodeIpsOf(proxy, options.legacySingleIp);
  const view = viewOf(proxy, options);
  const vport = options.virtualListener.port;
  const inbound = new Map<string, InboundInstance>();
  for (const inst of inboundInstances(shared.query, new Set(nodeIps.ips), vport, localTo(view, options))) {
    inbound.set(`${inst.service.entry}|${inst.service.host}|${inst.port.name}|${inst.address}|${inst.listenerPort}`, inst);
  }
  const ports = new Map(shared.plan.ports.map((p) => [p.port, p]));
  const used = new Set(shared.plan.services);
  const nv = networkView(view.network, options.meshNetworks);
  const ownPlanes = new Set(view.planes ?? []);
  const out: Decision[] = [];
  for (const s of registry.services) {
    const inScope = used.has(s);
    // The service's plane groups this proxy gets (undefined without planes): once per service.
    const groups = options.planes.empty ? undefined : planeGroups(s, options.planes).filter((g) => !isolatedFrom(g, ownPlanes));
    const only = shared.scope.ports.get(s);
    for (const p of s.ports) {
      if (p.protocol === "UDP") continue;
      const visible = inScope && (!only || only.has(p.number));
      const cluster = outboundClusterName(p.number, s.host);
      const port = ports.get(p.number);
      const http = isHttpProtocol(p.protocol);
      const routed = http && port?.http && port.http.destinations.length > 0 && p.number !== vport
        ? { route: outboundRouteName(p.number), virtualHost: virtualHostName(s.host, p.number) } : {};
      const listener = p.number === vport ? {} : { listener: outboundListenerName(p.number), ...routed };
      const routing = outboundNote(p, cluster, port, vport, visible, view, s, groups?.length === 0, shared.scope);
      if (s.endpoints.length === 0) {
        out.push({
          entry: s.entry, host: s.host, port: p.number, portName: p.name, ...withoutEndpoints(s, p), direction: "outbound",
          ...(visible ? listener : {}), cluster, ...(routing ? { note: routing } : {}),
        });
        continue;
      }
      for (const e of s.endpoints) {
        const base = { entry: s.entry, host: s.host, port: p.number, portName: p.name, address: e.address || `(network ${e.network})`, endpointPort: endpointPort(e, p) };
        const inst = e.addressType === "ip" ? inbound.get(`${s.entry}|${s.host}|${p.name}|${e.address}|${base.endpointPort}`) : undefined;
        if (inst) {
          const sp = inst.servicePort;
          out.push({
            ...base, direction: "inbound", reason: `${e.address} is ${nodeIps.describe(e.address)}`,
            ...(inst.conflict ? { note: inst.conflict } : { listener: inst.listener }),
            ...(sp && !sp.conflict ? { servicePortListener: sp.listener } : {}), cluster: inst.cluster,
          });
          continue;
        }
        // HTTP services are chosen by Host, whatever the destination.
        const owner = e.addressType === "ip" && s.resolution !== "NONE" && !http ? port?.owner.get(ownerKey(e.address)) : cluster;
        const claimed = s.resolution === "STATIC" && owner !== undefined && owner !== cluster ? `destination ${e.address}:${p.number} is matched to ${owner} first` : undefined;
        const note = [routing, claimed, reachNote(e, view, nv), planeNote(e, nodeIps.ips, view, options)].filter(Boolean).join("; ");
        out.push({
          ...base, direction: "outbound", reason: outboundReason(proxy, nodeIps.ips, e, view, options),
          ...(visible ? listener : {}), cluster: planeCluster(p.number, s.host, e, groups), ...(note ? { note } : {}),
        });
      }
    }
  }
  return out;
}

/** What a port of a service without endpoints connects to. */
function withoutEndpoints(s: Service, p: ServicePort): { address: string; endpointPort: number; reason: string } {
  const port = p.targetPort ?? p.number;
  switch (s.resolution) {
    case "DNS":
    case "DNS_ROUND_ROBIN":
      return s.workloadSelector
        ? { address: "", endpointPort: port, reason: "the workloadSelector selects no usable WorkloadEntry: the cluster has no hosts" }
        : { address: s.host, endpointPort: port, reason: `resolution ${s.resolution}: Envoy resolves ${s.host} itself (${s.resolution === "DNS" ? "STRICT_DNS, every address" : "LOGICAL_DNS, the first address"})` };
    case "NONE":
      return { address: "(original destination)", endpointPort: port, reason: `resolution NONE: connections go on to the address the client dialled${p.targetPort ? `, at port ${p.targetPort}` : ""}` };
    case "DYNAMIC_DNS":
      return { address: "(SNI host)", endpointPort: port, reason: `resolution DYNAMIC_DNS: Envoy resolves the host each connection's SNI names and connects to it on port ${port}` };
    case "STATIC":
      return { address: "", endpointPort: port, reason: s.workloadSelector ? "the workloadSelector selects no usable WorkloadEntry: no endpoints" : "no endpoints" };
  }
}

/** `isolatedAway`: every endpoint is on an isolated plane the proxy is not on. */
function outboundNote(p: ServicePort, cluster: string, port: OutboundPort | undefined, vport: number, used: boolean, view: ProxyView, s: Service, isolatedAway: boolean, scope: Scope): string | undefined {
  if (!used && !visibleTo(s, view.namespace)) return `not visible to namespace ${view.namespace ?? "(unknown)"} (exportTo ${s.exportTo.length ? s.exportTo.join(",") : "~"}): no outbound listener chain or cluster`;
  const sidecar = scope.sidecar ? `Sidecar ${scope.sidecar.namespace}/${scope.sidecar.name}` : undefined;
  if (!used && sidecar && !sidecarImports(scope.sidecar!, s, view.namespace)) return `not imported by ${sidecar}'s egress hosts: no outbound listener chain or cluster`;
  if (!used && sidecar && scope.ports.has(s)) return `${sidecar} imports ${s.host} on port${scope.ports.get(s)!.size > 1 ? "s" : ""} ${[...scope.ports.get(s)!].join(", ")} only: no outbound listener chain or cluster on port ${p.number}`;
  if (!used && isolatedAway) return `every endpoint is on an isolated plane the proxy has no node IP on: no outbound listener chain or cluster`;
  if (!used) return `host ${s.host} is also defined in another namespace, and this proxy uses that definition (its own namespace's first, else the first): no outbound listener chain or cluster from ${s.entry}`;
  if (p.number === vport) return `port ${p.number} is the virtual listener's; no outbound listener`;
  if (isHttpProtocol(p.protocol)) {
    if (port?.http && port.http.destinations.length === 0) return `HTTP, but every destination on port ${p.number} belongs to ${port.owner.get(ownerKey(CATCH_ALL[0]))} first (a service proxied at L4 without addresses of its own): no HTTP routes on this port`;
    return undefined;
  }
  if (port && ![...port.owner.values()].includes(cluster)) return `every destination ${cluster} would match on port ${p.number} belongs to another service first: no chain`;
  return undefined;
}

/** The cluster the endpoint is in: Istio's name, or its plane's where the port's endpoints span planes (planes.ts). */
function planeCluster(port: number, host: string, e: Endpoint, groups: readonly PlaneGroup[] | undefined): string {
  const g = groups?.length === 1 ? groups[0] : groups?.find((x) => x.endpoints.includes(e));
  return outboundClusterName(port, host, g?.suffix);
}

/** The endpoint's plane and what the proxy's connections to it get there. */
function planeNote(e: Endpoint, nodeIps: readonly string[], view: ProxyView, options: GenerationOptions): string | undefined {
  if (options.planes.empty || e.addressType !== "ip") return undefined;
  const plane = options.planes.planeOf(e.address);
  if (!plane) return "on no plane: connections as without planes";
  if (plane.isolated && !(view.planes ?? []).includes(plane.name)) return `on isolated plane ${plane.name}, where the proxy has no node IP: left out of its configuration`;
  const family = e.address.includes(":") ? 6 : 4;
  const source = !plane.bindSource ? undefined : sourceOn(nodeIps, plane, family, options.planes);
  const got = [
    plane.bindSource ? (source ? `connects from ${source}` : `the proxy has no IPv${family} node IP on it: connects from the address the kernel picks`) : "",
    plane.dscp !== undefined ? `DSCP ${plane.dscp}` : "",
    plane.connectTimeoutMs !== undefined ? `connect timeout ${plane.connectTimeoutMs} ms` : "",
    plane.circuitBreakers ? `circuit breakers ${Object.entries(plane.circuitBreakers).map(([k, v]) => `${k} ${v}`).join(", ")}` : "",
  ].filter(Boolean);
  return `on plane ${plane.name}${got.length ? `: ${got.join(", ")}` : ""}`;
}

function reachNote(e: Endpoint, view: ProxyView, nv: NetworkView): string | undefined {
  const r = reach(e, nv);
  if (r.kind === "direct") return undefined;
  if (r.kind === "unreachable") return `left out of the endpoints: ${r.reason}`;
  return `on network ${r.network}, not the proxy's (${view.network ?? "none"}): reached through ${r.gateways.map((g) => `${g.address}:${g.port}`).join(", ")}`;
}

function outboundReason(proxy: ProxyIdentity, ips: string[], e: Endpoint, view: ProxyView, options: GenerationOptions): string {
  if (e.addressType !== "ip") return `${e.addressType === "hostname" ? `${e.address} is a DNS name` : e.addressType === "unix" ? `${e.address} is a unix socket` : "it has no address"}: never one of the node's IPs`;
  const address = e.address;
  if (options.legacySingleIp) {
    const unseen = proxy.instanceIps.includes(address) ? ` (INSTANCE_IPS lists it, but legacy mode ignores INSTANCE_IPS)` : "";
    return proxy.nodeIdIp
      ? `legacy single-IP mode: only node.id's IP ${proxy.nodeIdIp} counts and ${address} is not it${unseen}`
      : `legacy single-IP mode: node.id carries no IP, so no instance is local${unseen}`;
  }
  if (ips.length === 0) return `the proxy reported no node IPs (no IP in node.id, no INSTANCE_IPS)`;
  if (ips.includes(address)) return `${address} is a node IP, but the endpoint is on network ${endpointNetwork(e, options.meshNetworks)} and the proxy on ${view.network}: another machine`;
  return `${address} is not one of the ${ips.length} node IPs (${ips.join(", ")})`;
}
