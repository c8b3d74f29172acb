// The node's own addresses, as Envoy's bootstrap reports them in INSTANCE_IPS.
import { networkInterfaces } from "node:os";
import { nodeAddresses, type InterfaceAddress } from "../control/identity/node-address.ts";

/**
 * Non-loopback, non-link-local IPv4 and IPv6 addresses of every interface that is up (node:os lists no
 * other), canonical, deduplicated and sorted: the rule the node agent's live watch applies too.
 */
export function interfaceIps(interfaces = networkInterfaces()): string[] {
  const entries: InterfaceAddress[] = [];
  for (const [ifname, addrs] of Object.entries(interfaces)) {
    for (const a of addrs ?? []) entries.push({ ifname, address: a.address, loopback: a.internal });
  }
  return nodeAddresses(entries);
}
