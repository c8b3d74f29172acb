// Inbound listeners and clusters for the service instances that live on this node (asked of the
// registry): each gets a listener on <ip>:<port> delivering to the local process on 127.0.0.1.
import type { Service, ServicePort } from "../registry/model.ts";
import type { RegistryQuery } from "../registry/query.ts";
import { inboundClusterName, inboundListenerName } from "./names.ts";

export interface InboundInstance {
  service: Service;
  port: ServicePort;
  address: string;
  /** The port traffic for this instance arrives on: endpoint.ports[name], else the service port. */
  listenerPort: number;
  /** The local process's port: targetPort, else listenerPort. */
  localPort: number;
  listener: string;
  cluster: string;
  /** Set when another instance already owns <address>:<listenerPort> or the port is the virtual listener's. */
  conflict?: string;
  /** The same listener and cluster again (the endpoint is listed twice): generated once. */
  repeat?: boolean;
}

export function inboundInstances(query: RegistryQuery, nodeIps: ReadonlySet<string>, virtualPort: number): InboundInstance[] {
  const out: InboundInstance[] = [];
  const owner = new Map<string, InboundInstance>();
  for (const { service, port, endpoint, endpointPort } of query.instancesOn(nodeIps)) {
    const inst: InboundInstance = {
      service, port, address: endpoint.address, listenerPort: endpointPort, localPort: port.targetPort ?? endpointPort,
      listener: inboundListenerName(endpoint.address, endpointPort),
      cluster: inboundClusterName(endpointPort, port.name, service.host),
    };
    const prev = owner.get(inst.listener);
    if (endpointPort === virtualPort) inst.conflict = `port ${endpointPort} is the virtual listener's; no inbound listener`;
    else if (prev && prev.cluster !== inst.cluster) inst.conflict = `${inst.listener} already delivers to ${prev.cluster} (${prev.service.entry}); no inbound listener for this instance`;
    else if (prev) inst.repeat = true;
    else owner.set(inst.listener, inst);
    out.push(inst);
  }
  return out;
}
