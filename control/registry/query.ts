// Questions asked of a registry version. "Which service instances live on this proxy" is asked here
// once, as Istio's pilot asks its registry, so generation and /debug/decisions can never disagree.
import type { Endpoint, Registry, Service, ServicePort } from "./model.ts";

/** One service port of one endpoint whose address is a node IP. */
export interface LocalInstance {
  service: Service;
  port: ServicePort;
  endpoint: Endpoint;
  /** The port this instance receives the service port on: endpoint.ports[name], else the service port. */
  endpointPort: number;
}

/** Instances on the given node IPs, in registry order (service, endpoint, port). */
export function instancesOn(registry: Registry, nodeIps: ReadonlySet<string>): LocalInstance[] {
  const out: LocalInstance[] = [];
  if (nodeIps.size === 0) return out;
  for (const service of registry.services) {
    for (const endpoint of service.endpoints) {
      if (!nodeIps.has(endpoint.address)) continue;
      for (const port of service.ports) out.push({ service, port, endpoint, endpointPort: endpoint.ports[port.name] ?? port.number });
    }
  }
  return out;
}
