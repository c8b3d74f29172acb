// The node's own addresses, as Envoy's bootstrap reports them in INSTANCE_IPS.
import { networkInterfaces } from "node:os";

/** Non-loopback, non-link-local IPv4 and IPv6 addresses of every interface, deduplicated, in interface order. */
export function interfaceIps(interfaces = networkInterfaces()): string[] {
  const ips = new Set<string>();
  for (const addrs of Object.values(interfaces)) {
    for (const a of addrs ?? []) {
      if (a.internal) continue;
      if (a.family === "IPv6" && /^fe[89ab]/i.test(a.address)) continue; // fe80::/10 link-local
      if (a.family === "IPv4" && a.address.startsWith("169.254.")) continue;
      ips.add(a.address);
    }
  }
  return [...ips];
}
