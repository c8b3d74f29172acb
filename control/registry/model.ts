// The registry after parsing and validation: Istio ServiceEntry and WorkloadEntry, reduced to what
// generation needs, plus where each came from so errors and decisions can point at it.

/** Where a resource was defined: a file and line, or "http-api" for entries PUT over HTTP. */
export interface Origin {
  file: string;
  line: number;
}

export interface RegistryError extends Origin {
  column?: number;
  reason: string;
}

export type Protocol = "HTTP" | "HTTPS" | "HTTP2" | "GRPC" | "TCP" | "TLS" | "MONGO";

export interface ServicePort {
  /** The port clients dial: the outbound listener's port, and the inbound listener's. */
  number: number;
  name: string;
  protocol: Protocol;
  /** The port the workload's process listens on (on 127.0.0.1 behind its sidecar); default `number`. */
  targetPort?: number;
}

export interface Endpoint {
  address: string;
  /** Port name -> the port this endpoint receives that service port on (default: the service port). */
  ports: Record<string, number>;
  labels: Record<string, string>;
  network?: string;
  /** "namespace/name" of the WorkloadEntry this endpoint came from, when selected by workloadSelector. */
  workloadEntry?: string;
}

export interface ServiceEntry {
  kind: "ServiceEntry";
  namespace: string;
  name: string;
  hosts: string[];
  /** VIPs or CIDRs (spec.addresses); with the endpoint IPs they tell services on one port apart. */
  addresses: string[];
  ports: ServicePort[];
  endpoints: Endpoint[];
  workloadSelector?: Record<string, string>;
  resolution: "STATIC";
  location: "MESH_INTERNAL" | "MESH_EXTERNAL";
  origin: Origin;
}

export interface WorkloadEntry {
  kind: "WorkloadEntry";
  namespace: string;
  name: string;
  address: string;
  ports: Record<string, number>;
  labels: Record<string, string>;
  network?: string;
  origin: Origin;
}

export type Resource = ServiceEntry | WorkloadEntry;

/** One host of one ServiceEntry with its endpoints resolved (WorkloadEntries included): what generation reads. */
export interface Service {
  /** "namespace/name" of the ServiceEntry. */
  entry: string;
  host: string;
  addresses: string[];
  ports: ServicePort[];
  endpoints: Endpoint[];
  location: ServiceEntry["location"];
  origin: Origin;
}

export interface Registry {
  /** Sorted by host, then entry: generation output is deterministic. */
  services: Service[];
  resources: Resource[];
}

export const EMPTY_REGISTRY: Registry = Object.freeze({ services: [], resources: [] }) as Registry;

export function resourceKey(r: { kind: string; namespace: string; name: string }): string {
  return `${r.kind}/${r.namespace}/${r.name}`;
}

export function formatError(e: RegistryError): string {
  return `${e.file}:${e.line}${e.column ? `:${e.column}` : ""}: ${e.reason}`;
}
