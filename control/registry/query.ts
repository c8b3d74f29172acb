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
 * A registry version's instances indexed by endpoint address: asking which instances live on a
 * proxy costs its node IPs' entries, not a walk over the mesh. Built once per version, then read only.
 */
export class RegistryQuery {
  private readonly byAddress: ReadonlyMap<string, readonly { service: Service; endpoint: Endpoint; order: number }[]>;

  constructor(readonly registry: Registry) {
    this.byAddress = this.index();
  }

  /**
   * Instances on the given node IPs, in registry order (service, endpoint, port). `isLocal` can narrow
   * what counts (an endpoint on another network with the same IP is another machine). UDP ports carry
   * nothing through a sidecar and are left out.
   */
  instancesOn(nodeIps: ReadonlySet<string>, isLocal: (e: Endpoint) => boolean = () => true): LocalInstance[] {
    const found: { service: Service; endpoint: Endpoint; order: number }[] = [];
    for (const ip of nodeIps) for (const e of this.byAddress.get(ip) ?? []) if (isLocal(e.endpoint)) found.push(e);
    found.sort((a, b) => a.order - b.order);
    const out: LocalInstance[] = [];
    for (const { service, endpoint } of found) {
      for (const port of service.ports) {
        if (port.protocol !== "UDP") out.push({ service, port, endpoint, endpointPort: endpointPort(endpoint, port) });
      }
    }
    return out;
  }

  private index() {
    const index = new Map<string, { service: Service; endpoint: Endpoint; order: number }[]>();
    let order = 0;
    for (const service of this.registry.services) {
      for (const endpoint of service.endpoints) {
        if (endpoint.addressType !== "ip") continue; // DNS names and unix sockets are never a node IP
        let list = index.get(endpoint.address);
        if (!list) index.set(endpoint.address, (list = []));
        list.push({ service, endpoint, order: order++ });
      }
    }
    return index;
  }
}
