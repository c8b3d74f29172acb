// Inbound listeners and clusters for the service instances that live on this node (asked of the
// registry): each gets a listener on <ip>:<port it receives> delivering to the local process on
// 127.0.0.1 at that port, as Istio's sidecars do.
import type { Endpoint, Service, ServicePort } from "../registry/model.ts";
import type { RegistryQuery } from "../registry/query.ts";
import { inboundClusterName, inboundListenerName } from "./names.ts";

export interface InboundListener {
  listener: string;
  port: number;
  /** Set when another instance already owns <address>:<port> or the port is the virtual listener's. */
  conflict?: string;
  /** The same listener and cluster again (the endpoint is listed twice): generated once. */
  repeat?: boolean;
}

export interface InboundInstance {
  service: Service;
  port: ServicePort;
  address: string;
  /** The port traffic for this instance arrives on (Istio's endpoint port): endpoint.ports[name], else targetPort, else the service port. */
  listenerPort: number;
  /** The local process's port on 127.0.0.1: the same port (Istio), unless the entry's local-ports annotation names another. */
  localPort: number;
  listener: string;
  cluster: string;
  conflict?: string;
  repeat?: boolean;
  /**
   * With a targetPort and no port of the endpoint's own, also <ip>:<service port>, for clients that
   * dial the registered address directly (multiplane's layout before targetPort; yields to any
   * instance that receives that port for real).
   */
  servicePort?: InboundListener;
}

export function inboundInstances(query: RegistryQuery, nodeIps: ReadonlySet<string>, virtualPort: number, isLocal?: (e: Endpoint) => boolean): InboundInstance[] {
  const out: InboundInstance[] = [];
  const owner = new Map<string, { cluster: string; entry: string }>(); // by listener name
  const claim = (l: { listener: string; conflict?: string; repeat?: boolean }, port: number, cluster: string, entry: string, what: string) => {
    const prev = owner.get(l.listener);
    if (port === virtualPort) l.conflict = `port ${port} is the virtual listener's; no inbound listener`;
    else if (prev && prev.cluster !== cluster) l.conflict = `${l.listener} already delivers to ${prev.cluster} (${prev.entry}); no inbound listener ${what}`;
    else if (prev) l.repeat = true;
    else owner.set(l.listener, { cluster, entry });
  };
  const viaTargetPort: InboundInstance[] = [];
  for (const { service, port, endpoint, endpointPort } of query.instancesOn(nodeIps, isLocal)) {
    const own = endpoint.ports[port.name];
    const cluster = inboundClusterName(own ?? port.number, port.name, service.host);
    const inst: InboundInstance = {
      service, port, address: endpoint.address, listenerPort: endpointPort, localPort: service.localPorts?.[port.name] ?? endpointPort,
      listener: inboundListenerName(endpoint.address, endpointPort), cluster,
    };
    claim(inst, endpointPort, cluster, service.entry, "for this instance");
    out.push(inst);
    if (own === undefined && endpointPort !== port.number) viaTargetPort.push(inst);
  }
  // Then the service-port listeners, so they never take a port some instance receives for real.
  for (const inst of viaTargetPort) {
    const l: InboundListener = { listener: inboundListenerName(inst.address, inst.port.number), port: inst.port.number };
    claim(l, l.port, inst.cluster, inst.service.entry, "on the service port for this instance");
    inst.servicePort = l;
  }
  return out;
}
