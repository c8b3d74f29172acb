// A Kubernetes Service as the ServiceEntry Istio's model makes of it: host NAME.NS.svc.<cluster
// domain>, its cluster IPs as addresses, its ports with Istio's protocol rules, resolution STATIC
// (endpoints are known IPs), MESH_INTERNAL, exported where its networking.istio.io/exportTo annotation
// says (everywhere without one). Endpoints come from its EndpointSlices, or, for a Service on a
// secondary network, from its pods' addresses on that network.
import type { V1EndpointSlice, V1Pod, V1Service } from "@kubernetes/client-node";
import { quote } from "../../../common/clip.ts";
import { isUnspecified, parseIp } from "../../../identity/ip.ts";
import type { Endpoint, RegistryError, ServiceEntry } from "../../model.ts";
import { exportToProblems, fqdnProblem } from "../../istio/syntax.ts";
import { sliceEndpoints } from "./endpoint-slices.ts";
import type { NetworkStatus } from "./network-status.ts";
import { kubernetesOrigin, objectName, type Translation } from "./objects.ts";
import type { Cluster } from "./pods.ts";
import { networkEndpoints, serviceNetwork } from "./service-network.ts";
import { servicePorts } from "./service-ports.ts";

export const DEFAULT_CLUSTER_DOMAIN = "cluster.local";
/** Istio reads it on Services as on its own resources: a comma-separated exportTo. */
export const EXPORT_TO_ANNOTATION = "networking.istio.io/exportTo";

/** Why a cluster domain cannot end a Service's host, if it cannot. */
export function clusterDomainProblem(domain: string): string | undefined {
  const problem = fqdnProblem(domain);
  return problem ? `cluster domain ${JSON.stringify(domain)}: ${problem}` : undefined;
}

/**
 * The ServiceEntry's name: the Service's, marked so that it cannot clash with an Istio ServiceEntry
 * of the same namespace and name (Istio keeps the two kinds apart; multiplane has one kind, and a
 * colon is not allowed in an Istio resource's name).
 */
export const serviceEntryName = (serviceName: string) => `svc:${serviceName}`;

export interface ServiceInputs {
  /** The Service's EndpointSlices (label kubernetes.io/service-name, same namespace). */
  slices: readonly V1EndpointSlice[];
  /** Pods of the Service's namespace (a Service on a secondary network selects among them). */
  pods: readonly V1Pod[];
  /** Each pod's network-status, parsed once per translation by the caller (who reports its warnings once). */
  statusOf: (pod: V1Pod) => NetworkStatus;
  cluster: Cluster;
  clusterDomain: string;
}

export function serviceEntryFromService(service: V1Service, inputs: ServiceInputs): Translation<ServiceEntry> {
  const origin = kubernetesOrigin("Service", service.metadata);
  const errors: RegistryError[] = [];
  const warnings: RegistryError[] = [];
  const error = (reason: string) => errors.push({ ...origin, reason });
  const warn = (reason: string) => warnings.push({ ...origin, reason });
  const name = service.metadata?.name;
  const namespace = service.metadata?.namespace;
  if (!name || !namespace) {
    error(`Service ${objectName(service.metadata)}: metadata.name and metadata.namespace are required`);
    return { errors, warnings };
  }
  if (service.spec?.type === "ExternalName") {
    warn(`Service ${namespace}/${name} is of type ExternalName (a DNS alias), which multiplane does not serve; left out`);
    return { errors, warnings };
  }

  const host = `${name}.${namespace}.svc.${inputs.clusterDomain}`;
  // The API server allows no name that breaks a host; a hand-made object might.
  const hostProblem = fqdnProblem(host);
  if (hostProblem) error(`Service ${namespace}/${name}: host ${hostProblem}`);
  const exportTo = exportToAnnotation(service, namespace);
  if (!exportTo.ok) error(exportTo.reason);
  const network = serviceNetwork(service);
  // A network named wrongly must not fall back to the EndpointSlices: they are the cluster network's addresses.
  if (!network.ok) error(network.reason);
  if (errors.length > 0) return { errors, warnings };

  const addresses: string[] = [];
  const ips = service.spec?.clusterIPs?.length ? service.spec.clusterIPs : service.spec?.clusterIP ? [service.spec.clusterIP] : [];
  for (const raw of ips) {
    // "None": a headless Service. No VIP; clients dial the endpoints' IPs, which select it instead (STATIC).
    if (raw === "None" || raw === "") continue;
    const ip = typeof raw === "string" ? parseIp(raw) : undefined;
    if (!ip?.ok || isUnspecified(ip.ip)) warn(`spec.clusterIPs: ${typeof raw === "string" ? quote(raw, 80) : String(raw)} is not an IP address; left out`);
    else if (!addresses.includes(ip.ip)) addresses.push(ip.ip);
  }

  const ports = servicePorts(service);
  for (const w of ports.warnings) warn(w);
  if (ports.ports.length === 0) warn("no TCP port: the service gets no listener and no cluster");

  let endpoints: Endpoint[];
  if (network.ok && network.ref) {
    const found = networkEndpoints(service, network.ref, ports.ports, inputs.pods, inputs.statusOf, inputs.cluster);
    for (const w of found.warnings) warn(w);
    endpoints = found.endpoints;
  } else {
    const found = sliceEndpoints(service, ports.ports, inputs.slices, inputs.cluster);
    for (const w of found.warnings) warn(w);
    endpoints = found.endpoints;
  }

  return {
    resource: {
      kind: "ServiceEntry", namespace, name: serviceEntryName(name),
      hosts: [host],
      addresses, ports: ports.ports.map((p) => p.port), endpoints,
      resolution: "STATIC", location: "MESH_INTERNAL",
      exportTo: exportTo.ok ? exportTo.exportTo : [],
      origin,
    },
    errors, warnings,
  };
}

/**
 * networking.istio.io/exportTo as Istio reads it on a Service: comma-separated, each item trimmed, a
 * set (repeats are one). Items Istio would never match (not ".", "*", "~" or a namespace name) are
 * an error rather than ignored: without them the Service would be exported more widely than asked.
 */
function exportToAnnotation(service: V1Service, namespace: string): { ok: true; exportTo: string[] } | { ok: false; reason: string } {
  const value: unknown = service.metadata?.annotations?.[EXPORT_TO_ANNOTATION];
  if (value === undefined || value === null || value === "") return { ok: true, exportTo: [] };
  if (typeof value !== "string") return { ok: false, reason: `annotation ${EXPORT_TO_ANNOTATION} must be a string` };
  const exportTo: string[] = [];
  const seen = new Set<string>();
  for (const item of value.split(",").map((x) => x.trim())) {
    const key = item === "." ? namespace : item;
    if (item === "" || seen.has(key)) continue;
    seen.add(key);
    exportTo.push(item);
  }
  const problems = exportToProblems(namespace, exportTo);
  return problems.length > 0 ? { ok: false, reason: `annotation ${EXPORT_TO_ANNOTATION}: ${problems.join("; ")}` } : { ok: true, exportTo };
}
