// Which of a host's interface addresses are its node IPs: the one rule shared by `bootstrap
// --instance-ips auto` (envoy/interface-ips.ts, from node:os) and the node agent's live watch
// (control/agent/, from iproute2), so both report the same set for the same host.
import { compareIps, isUnspecified, parseIp } from "./ip.ts";

/** One address on one interface, as either source lists it. */
export interface InterfaceAddress {
  /** The interface's name (iproute2's ifname; node:os's key). */
  ifname: string;
  address: string;
  /** The interface is the loopback device (IFF_LOOPBACK; node:os's `internal`). */
  loopback?: boolean;
  /**
   * false: the interface is down or has no carrier, so nothing reaches the address (the kernel drops its
   * local route). node:os lists only interfaces that are up and running, so it never says false.
   */
  up?: boolean;
  /**
   * An IPv6 address still in duplicate address detection, or that failed it: the kernel accepts no
   * traffic for it and a bind() to it fails. node:os cannot tell; iproute2 can.
   */
  tentative?: boolean;
}

export type NodeAddress = { ok: true; ip: string } | { ok: false; reason: string };

/** The canonical IP if `entry` counts as a node IP, else why not. */
export function nodeAddress(entry: InterfaceAddress, excludeInterfaces: ReadonlySet<string> = new Set()): NodeAddress {
  if (excludeInterfaces.has(entry.ifname)) return { ok: false, reason: `interface ${entry.ifname} is excluded` };
  if (entry.loopback) return { ok: false, reason: `interface ${entry.ifname} is a loopback interface` };
  if (entry.up === false) return { ok: false, reason: `interface ${entry.ifname} is down or has no carrier` };
  const parsed = parseIp(entry.address);
  if (!parsed.ok) return { ok: false, reason: parsed.reason };
  const ip = parsed.ip;
  if (entry.tentative) return { ok: false, reason: `${ip} is tentative (duplicate address detection not passed)` };
  if (isUnspecified(ip)) return { ok: false, reason: `${ip} is the unspecified address` };
  if (parsed.family === 4) {
    if (ip.startsWith("127.")) return { ok: false, reason: `${ip} is a loopback address (127.0.0.0/8)` };
    if (ip.startsWith("169.254.")) return { ok: false, reason: `${ip} is link-local (169.254.0.0/16)` };
  } else {
    if (ip === "::1") return { ok: false, reason: `${ip} is the loopback address` };
    // Canonical IPv6 spells its first group in hex, unless it is 0 ("::..."): fe80::/10 is that group's top 10 bits.
    const first = ip.startsWith("::") ? 0 : parseInt(ip.slice(0, ip.indexOf(":")), 16);
    if ((first & 0xffc0) === 0xfe80) return { ok: false, reason: `${ip} is link-local (fe80::/10)` };
  }
  return { ok: true, ip };
}

/** The node IPs among `entries`: canonical, deduplicated, sorted (IPv4 first, then numerically). */
export function nodeAddresses(entries: Iterable<InterfaceAddress>, excludeInterfaces: readonly string[] = []): string[] {
  const excluded = new Set(excludeInterfaces);
  const ips = new Set<string>();
  for (const entry of entries) {
    const r = nodeAddress(entry, excluded);
    if (r.ok) ips.add(r.ip);
  }
  return [...ips].sort(compareIps);
}
