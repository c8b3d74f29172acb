// IP addresses in one canonical spelling, so "10.75.8.101" from node.id, INSTANCE_IPS and the
// registry compare equal, and "2001:DB8:0:0::1" equals "2001:db8::1" (RFC 5952 form).
import { isIPv4, isIPv6 } from "node:net";

export type IpFamily = 4 | 6;

export type IpParse = { ok: true; ip: string; family: IpFamily } | { ok: false; reason: string };

/** Parses one IP address (IPv6 may be bracketed); IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes the IPv4 address. */
export function parseIp(input: string): IpParse {
  let text = input.trim();
  if (text.startsWith("[") && text.endsWith("]")) text = text.slice(1, -1);
  if (text === "") return { ok: false, reason: "empty address" };
  if (isIPv4(text)) return { ok: true, ip: text, family: 4 };
  if (text.includes("%")) return { ok: false, reason: `${JSON.stringify(input)} has a zone index, which a listener address cannot hold` };
  if (!isIPv6(text)) return { ok: false, reason: `${JSON.stringify(input)} is not an IPv4 or IPv6 address` };
  const groups = ipv6Groups(text);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    const [hi, lo] = [groups[6]!, groups[7]!];
    return { ok: true, ip: `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, family: 4 };
  }
  return { ok: true, ip: formatIpv6(groups), family: 6 };
}

/** The canonical spelling, or undefined if `input` is not an IP address. */
export function normaliseIp(input: string): string | undefined {
  const r = parseIp(input);
  return r.ok ? r.ip : undefined;
}

/**
 * A total order for listing IPs: IPv4 before IPv6, each by numeric value (so 10.0.0.9 < 10.0.0.10);
 * what is not an IP sorts last, by its text. Any spelling: "2001:DB8::1" and "2001:db8::1" are equal.
 */
export function compareIps(a: string, b: string): number {
  const ka = ipSortKey(a);
  const kb = ipSortKey(b);
  if (!ka || !kb) return ka ? -1 : kb ? 1 : a < b ? -1 : a > b ? 1 : 0;
  if (ka.length !== kb.length) return ka.length - kb.length; // 4 bytes (IPv4) before 8 groups (IPv6)
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! - kb[i]!;
  return 0;
}

/** IPv4 as its 4 bytes, IPv6 as its 8 groups, or undefined for what is not an IP. */
function ipSortKey(input: string): number[] | undefined {
  const r = parseIp(input);
  return r.ok ? ipWords(r.ip, r.family) : undefined;
}

/** A canonical address as numbers: 4 bytes (IPv4) or 8 16-bit groups (IPv6). */
const ipWords = (ip: string, family: IpFamily): number[] => (family === 4 ? ip.split(".").map(Number) : ipv6Groups(ip));

/** 0.0.0.0 and ::, which name "any address" and never a host. */
export function isUnspecified(ip: string): boolean {
  return ip === "0.0.0.0" || ip === "::";
}

export interface Cidr {
  address: string;
  prefixLen: number;
  family: IpFamily;
}

export type CidrParse = { ok: true; cidr: Cidr } | { ok: false; reason: string };

/** "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128). */
export function parseCidr(input: string): CidrParse {
  const slash = input.indexOf("/");
  const ip = parseIp(slash < 0 ? input : input.slice(0, slash));
  if (!ip.ok) return ip;
  const max = ip.family === 4 ? 32 : 128;
  if (slash < 0) return { ok: true, cidr: { address: ip.ip, prefixLen: max, family: ip.family } };
  const lenText = input.slice(slash + 1).trim();
  const len = /^\d{1,3}$/.test(lenText) ? Number(lenText) : NaN;
  if (!(len >= 0 && len <= max)) return { ok: false, reason: `${JSON.stringify(input)}: prefix length must be 0..${max}` };
  return { ok: true, cidr: { address: ip.ip, prefixLen: len, family: ip.family } };
}

/** A canonical address (parseIp's) as one number: 32 bits for IPv4, 128 for IPv6. */
export function ipValue(ip: string, family: IpFamily): bigint {
  const width = family === 4 ? 8n : 16n;
  return ipWords(ip, family).reduce((n, w) => (n << width) | BigInt(w), 0n);
}

/** Whether `ip` (any spelling) lies inside `cidr`. */
export function cidrContains(cidr: Cidr, ip: string): boolean {
  const a = parseIp(ip);
  if (!a.ok || a.family !== cidr.family) return false;
  const width = cidr.family === 4 ? 8 : 16;
  const bits = (x: string, family: IpFamily) => ipWords(x, family).map((w) => w.toString(2).padStart(width, "0")).join("");
  return bits(a.ip, a.family).slice(0, cidr.prefixLen) === bits(cidr.address, cidr.family).slice(0, cidr.prefixLen);
}

function ipv6Groups(text: string): number[] {
  // An embedded IPv4 tail (::1.2.3.4) becomes two hex groups first.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes("::") ? text.split("::") as [string, string] : [text, undefined];
  const parse = (s: string) => (s === "" ? [] : s.split(":").map((g) => parseInt(g, 16)));
  const left = parse(head);
  if (tail === undefined) return left;
  const right = parse(tail);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/** RFC 5952: lowercase, no leading zeros, the longest run (>= 2) of zero groups as "::", the first on ties. */
function formatIpv6(groups: number[]): string {
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}
