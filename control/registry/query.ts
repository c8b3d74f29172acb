// Questions asked of a registry version. "Which service instances live on this proxy" is asked here
// once, as Istio's pilot asks its registry, so generation and /debug/decisions can never disagree.
import type { Endpoint, Registry, Service, ServicePort } from "./model.ts";

/** One service port of one endpoint whose address is a node IP. */
export interface LocalInstance {
  service: Service;
  port: ServicePort;
  endpoint: Endpoint;
  /** The port this instance receives the service port on (Istio): endpoint.ports[name], else targetPort, else the service port. */
  endpointPort: number;
}

/** Istio's instance port: the endpoint's own port for this service port, else the port's targetPort, else its number. */
export function endpointPort(e: Endpoint, port: ServicePort): number {
  return e.ports[port.name] ?? port.targetPort ?? port.number;
}

/**
 * Instances on the given node IPs, in registry order (service, endpoint, port). `isLocal` can narrow
 * what counts (an endpoint on another network with the same IP is another machine). UDP ports carry
 * nothing through a sidecar and are left out.
 */
export function instancesOn(registry: Registry, nodeIps: ReadonlySet<string>, isLocal: (e: Endpoint) => boolean = () => true): LocalInstance[] {
  const out: LocalInstance[] = [];
  if (nodeIps.size === 0) return out;
  for (const service of registry.services) {
    for (const endpoint of service.endpoints) {
      if (endpoint.addressType !== "ip" || !nodeIps.has(endpoint.address) || !isLocal(endpoint)) continue;
      for (const port of service.ports) {
        if (port.protocol !== "UDP") out.push({ service, port, endpoint, endpointPort: endpointPort(endpoint, port) });
      }
    }
  }
  return out;
}
