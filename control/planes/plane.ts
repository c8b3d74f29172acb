// Planes (`serve --planes FILE`): the networks of a multi-homed node by address range, and what
// traffic to each gets (source address, DSCP marking, isolation, timeouts and limits). An endpoint's
// plane is the first plane whose ranges hold its IP; a proxy's planes are those of its node IPs.
import { ipValue, normaliseIp, parseIp, type IpFamily } from "../identity/ip.ts";

/** Envoy's circuit-breaker thresholds, per cluster of the plane (Envoy's defaults where unset). */
export interface CircuitBreakers {
  maxConnections?: number;
  maxPendingRequests?: number;
  maxRequests?: number;
  maxRetries?: number;
  maxConnectionPools?: number;
}

export interface Plane {
  name: string;
  /** Canonical "address/len", in file order. */
  cidrs: readonly string[];
  /** 0..63: the DSCP every packet to this plane's endpoints carries. */
  dscp?: number;
  /** Connections to this plane's endpoints leave from the proxy's own node IP on it. */
  bindSource: boolean;
  /** Only proxies with a node IP on this plane are sent its services. */
  isolated: boolean;
  connectTimeoutMs?: number;
  circuitBreakers?: CircuitBreakers;
}

/** Addresses whose plane is remembered (a 10,000-service mesh has about 20,000). */
const MAX_CACHED = 200_000;

interface Range {
  plane: Plane;
  family: IpFamily;
  prefixLen: number;
  /** The range's address as a number (IPv4) or bigint (IPv6), host bits cleared. */
  base: bigint;
}

/** The planes of one file, with the lookups generation asks many times (cached per address). */
export class Planes {
  private readonly ranges: Range[] = [];
  private readonly byIp = new Map<string, Plane | null>();

  constructor(readonly list: readonly Plane[]) {
    for (const plane of list) {
      for (const c of plane.cidrs) {
        const slash = c.indexOf("/");
        const ip = parseIp(c.slice(0, slash));
        if (!ip.ok) continue; // parse.ts keeps only valid ranges
        const prefixLen = Number(c.slice(slash + 1));
        this.ranges.push({ plane, family: ip.family, prefixLen, base: masked(ipValue(ip.ip, ip.family), ip.family, prefixLen) });
      }
    }
  }

  get empty(): boolean {
    return this.list.length === 0;
  }

  /** The plane of an IP (any spelling): the first plane, in file order, whose ranges hold it. */
  planeOf(ip: string): Plane | undefined {
    if (this.ranges.length === 0) return undefined;
    const known = this.byIp.get(ip);
    if (known !== undefined) return known ?? undefined;
    const a = parseIp(ip);
    let found: Plane | null = null;
    if (a.ok) {
      const v = ipValue(a.ip, a.family);
      for (const r of this.ranges) {
        if (r.family === a.family && masked(v, a.family, r.prefixLen) === r.base) { found = r.plane; break; }
      }
    }
    // The registry's addresses and the proxies' node IPs; addresses that come and go over a long run
    // would grow it without end, so past a bound it starts again.
    if (this.byIp.size >= MAX_CACHED) this.byIp.clear();
    this.byIp.set(ip, found);
    return found ?? undefined;
  }

  /** Whether traffic to the plane's endpoints is configured differently from the default. */
  static shapes(plane: Plane): boolean {
    return plane.dscp !== undefined || plane.bindSource || plane.connectTimeoutMs !== undefined || plane.circuitBreakers !== undefined;
  }
}

/** No planes: nothing is remembered (planeOf answers at once), so one instance serves every control plane. */
export const NO_PLANES = new Planes([]);

function masked(v: bigint, family: IpFamily, prefixLen: number): bigint {
  const width = family === 4 ? 32n : 128n;
  const host = width - BigInt(prefixLen);
  return (v >> host) << host;
}

/** A range's network address (host bits cleared), in canonical spelling. */
export function networkAddress(address: string, prefixLen: number, family: IpFamily): string {
  const v = masked(ipValue(address, family), family, prefixLen);
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => Number((v >> s) & 255n)).join(".");
  const groups: string[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((v >> s) & 0xffffn).toString(16));
  return normaliseIp(groups.join(":")) ?? address;
}
