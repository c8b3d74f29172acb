// The registry after parsing and validation: Istio ServiceEntry and WorkloadEntry, reduced to what
// generation needs, plus where each came from so errors and decisions can point at it.
import type { KnownProtocol } from "./istio/syntax.ts";

/** Where a resource was defined: a file and line, or "http-api" for entries PUT over HTTP. */
export interface Origin {
  file: string;
  line: number;
}

export interface RegistryError extends Origin {
  column?: number;
  reason: string;
}

/** Istio's protocol names (Istio's spelling); "" = not given, which Istio detects by sniffing. */
export type Protocol = KnownProtocol | "";

/** Istio's resolution modes; a ServiceEntry without one is NONE (the enum's zero value). */
export type Resolution = "NONE" | "STATIC" | "DNS" | "DNS_ROUND_ROBIN" | "DYNAMIC_DNS";

/** Istio's locations; a ServiceEntry without one is MESH_EXTERNAL (the enum's zero value). */
export type Location = "MESH_EXTERNAL" | "MESH_INTERNAL";

export interface ServicePort {
  /** The port clients dial: the outbound listener's port. */
  number: number;
  name: string;
  protocol: Protocol;
  /** The port endpoints receive this service port on when they name none of their own (Istio's targetPort). */
  targetPort?: number;
}

/** What an endpoint's address is: an IP, a DNS name (DNS resolutions), a unix socket, or nothing (reached through its network's gateway). */
export type AddressType = "ip" | "hostname" | "unix" | "none";

export interface Endpoint {
  /** An IP in canonical form, a DNS name, a unix socket ("unix:///path" or "unix://@name"), or "" when only `network` is given. */
  address: string;
  addressType: AddressType;
  /** Port name -> the port this endpoint receives that service port on. */
  ports: Record<string, number>;
  labels: Record<string, string>;
  network?: string;
  /** "region/zone/subzone". */
  locality?: string;
  /** Load-balancing weight (Istio: 0 or unset = 1). */
  weight?: number;
  /** "namespace/name" of the WorkloadEntry this endpoint came from, when selected by workloadSelector. */
  workloadEntry?: string;
}

/** What a ServiceEntry and each Service built from it both carry. */
interface ServiceSpec {
  namespace: string;
  /** VIPs or CIDRs (spec.addresses): the destinations that select this service on its ports. */
  addresses: string[];
  ports: ServicePort[];
  endpoints: Endpoint[];
  /** Set when the endpoints are selected from WorkloadEntries (then none selected means none, even for DNS). */
  workloadSelector?: Record<string, string>;
  resolution: Resolution;
  location: Location;
  /** multiplane's own (annotation LOCAL_PORTS_ANNOTATION): port name -> where the process behind the sidecar listens on 127.0.0.1, when not the port its instance receives. */
  localPorts?: Record<string, number>;
  origin: Origin;
}

export interface ServiceEntry extends ServiceSpec {
  kind: "ServiceEntry";
  name: string;
  hosts: string[];
  /** As written; empty = exported to every namespace. */
  exportTo: string[];
}

/** An endpoint of its own, which ServiceEntries select by labels. */
export interface WorkloadEntry extends Omit<Endpoint, "workloadEntry"> {
  kind: "WorkloadEntry";
  namespace: string;
  name: string;
  /** spec.labels merged with metadata.labels (metadata wins), as Istio selects on them. */
  labels: Record<string, string>;
  origin: Origin;
}

/** One egress host of a Sidecar: `namespace/host` as Istio reads it. */
export interface EgressHost {
  /** "*" (any), "." (the proxy's own), or a namespace. */
  namespace: string;
  /** "*", a wildcard "*.example.com", or an FQDN; lowercase, no trailing dot. */
  host: string;
  /** `~namespace/host`: services matching it are left out even when another host imports them. */
  excluded?: true;
}

export interface SidecarEgress {
  /** Only this port of the services it imports; undefined: every port (the catch-all listener); 0: a unix socket listener, which imports nothing multiplane serves. */
  port?: number;
  hosts: EgressHost[];
}

/** Istio's Sidecar, reduced to what scopes the proxies it applies to. */
export interface Sidecar {
  kind: "Sidecar";
  namespace: string;
  name: string;
  /** undefined: every proxy of its namespace (in the root namespace: of namespaces without their own). */
  workloadSelector?: Record<string, string>;
  /** Empty: Istio's default, every service on every port ("*\/*"). */
  egress: SidecarEgress[];
  /** Where destinations no imported service claims go; undefined: the mesh's default (ALLOW_ANY). */
  outboundTrafficPolicy?: "REGISTRY_ONLY" | "ALLOW_ANY";
  origin: Origin;
}

export type Resource = ServiceEntry | WorkloadEntry | Sidecar;

/** One host of one ServiceEntry with its endpoints resolved (WorkloadEntries included): what generation reads. */
export interface Service extends ServiceSpec {
  /** "namespace/name" of the ServiceEntry. */
  entry: string;
  host: string;
  /** Namespaces that see this service, "." resolved; ["*"] = all, [] = none ("~"). */
  exportTo: string[];
}

export interface Registry {
  /** Sorted by host, then entry: generation output is deterministic. */
  services: Service[];
  resources: Resource[];
  /** Sorted by namespace, then those with a workloadSelector before the namespace's default, then name: the first that applies wins. */
  sidecars: Sidecar[];
  /** Remarks about how documents combine (a selector that selects nothing, a WorkloadEntry a resolution cannot use). */
  warnings: RegistryError[];
}

/** One network of Istio's meshNetworks: which endpoints belong to it and how other networks reach them. */
export interface MeshNetwork {
  name: string;
  /** Endpoints without a `network` whose IP falls in one of these CIDRs are on this network (Istio's fromCidr). */
  fromCidrs: string[];
  /** The network's gateways (IP and port), in the order given; endpoints of this network are reached through them from other networks. */
  gateways: { address: string; port: number; locality?: string }[];
}

export const EMPTY_REGISTRY: Registry = Object.freeze({ services: [], resources: [], sidecars: [], warnings: [] }) as Registry;

export function resourceKey(r: { kind: string; namespace: string; name: string }): string {
  return `${r.kind}/${r.namespace}/${r.name}`;
}

export function formatError(e: RegistryError): string {
  return `${e.file}:${e.line}${e.column ? `:${e.column}` : ""}: ${e.reason}`;
}
