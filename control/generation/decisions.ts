// For each service instance (service port x endpoint): inbound or outbound, and why, in words an
// operator can check against the node's interfaces. Served by GET /debug/decisions.
import type { ProxyIdentity } from "../identity/proxy.ts";
import type { SharedConfig } from "./generate.ts";
import { inboundInstances } from "./inbound.ts";
import { outboundClusterName, outboundListenerName } from "./names.ts";
import { nodeIpsOf } from "./node-ips.ts";
import type { GenerationOptions } from "./options.ts";

export interface Decision {
  /** "namespace/name" of the ServiceEntry. */
  entry: string;
  host: string;
  port: number;
  portName: string;
  address: string;
  /** The port this instance receives the service port on. */
  endpointPort: number;
  direction: "inbound" | "outbound";
  reason: string;
  listener?: string;
  cluster: string;
  /** Why the listener above is missing or goes elsewhere, when it does. */
  note?: string;
}

/** `shared` is the shared config generation built (or would build) for the registry: the same plan, so the same answers. */
export function decide(proxy: ProxyIdentity, shared: SharedConfig, options: GenerationOptions): Decision[] {
  const registry = shared.registry;
  const nodeIps = nodeIpsOf(proxy, options.legacySingleIp);
  const vport = options.virtualListener.port;
  const inbound = new Map<string, ReturnType<typeof inboundInstances>[number]>();
  for (const inst of inboundInstances(shared.query, new Set(nodeIps.ips), vport)) {
    inbound.set(`${inst.service.entry}|${inst.service.host}|${inst.port.name}|${inst.address}|${inst.listenerPort}`, inst);
  }
  const owners = new Map(shared.plan.ports.map((p) => [p.port, p.owner]));
  const out: Decision[] = [];
  for (const s of registry.services) {
    for (const p of s.ports) {
      for (const e of s.endpoints) {
        const base = { entry: s.entry, host: s.host, port: p.number, portName: p.name, address: e.address, endpointPort: e.ports[p.name] ?? p.number };
        const inst = inbound.get(`${s.entry}|${s.host}|${p.name}|${e.address}|${base.endpointPort}`);
        if (inst) {
          out.push({
            ...base, direction: "inbound", reason: `${e.address} is ${nodeIps.describe(e.address)}`,
            ...(inst.conflict ? { note: inst.conflict } : { listener: inst.listener }), cluster: inst.cluster,
          });
          continue;
        }
        const cluster = outboundClusterName(p.number, s.host);
        const owner = owners.get(p.number)?.get(e.address);
        const note = p.number === vport
          ? `port ${p.number} is the virtual listener's; no outbound listener`
          : owner !== cluster ? `destination ${e.address}:${p.number} is matched to ${owner} first` : undefined;
        out.push({
          ...base, direction: "outbound", reason: outboundReason(proxy, nodeIps.ips, e.address, options.legacySingleIp),
          ...(p.number === vport ? {} : { listener: outboundListenerName(p.number) }), cluster, ...(note ? { note } : {}),
        });
      }
    }
  }
  return out;
}

function outboundReason(proxy: ProxyIdentity, ips: string[], address: string, legacy: boolean): string {
  if (legacy) {
    const unseen = proxy.instanceIps.includes(address) ? ` (INSTANCE_IPS lists it, but legacy mode ignores INSTANCE_IPS)` : "";
    return proxy.nodeIdIp
      ? `legacy single-IP mode: only node.id's IP ${proxy.nodeIdIp} counts and ${address} is not it${unseen}`
      : `legacy single-IP mode: node.id carries no IP, so no instance is local${unseen}`;
  }
  if (ips.length === 0) return `the proxy reported no node IPs (no IP in node.id, no INSTANCE_IPS)`;
  return `${address} is not one of the ${ips.length} node IPs (${ips.join(", ")})`;
}
