// IP addresses as 128-bit values (hi, lo). IPv4 is stored IPv4-mapped (::ffff:a.b.c.d), so
// "10.0.0.1", "::ffff:10.0.0.1" and "[::ffff:a00:1]:80" are the same address and an IPv4 CIDR
// matches the mapped form. Parsers read raw bytes (ptr, len) so the per-connection path
// allocates nothing; results land in the module globals below.

import { decimal } from "./decimal";

/** Result of the last successful parse. */
export let ipHi: u64 = 0;
export let ipLo: u64 = 0;
/** Port of the last parseAddress, -1 when the text had none. */
export let ipPort: i32 = -1;
/** Prefix length (0..128, IPv4 prefixes + 96) of the last parseCidr. */
export let cidrBits: i32 = 0;

const MAPPED: u64 = 0x0000ffff00000000;
const COLON: u32 = 58;
const DOT: u32 = 46;

// @ts-ignore: decorator
@inline function byteAt(p: usize): u32 { return <u32>load<u8>(p); }

function hexValue(c: u32): i32 {
  if (c - 48 < 10) return <i32>(c - 48);
  const l = c | 0x20; // lower case
  if (l - 97 < 6) return <i32>(l - 87);
  return -1;
}

/** Dotted quad, strict: four decimal parts 0..255, no leading zeros. Sets v4. */
let v4: u32 = 0;
function parseV4(p: usize, end: usize): bool {
  let value: u32 = 0, acc: u32 = 0, digits = 0, dots = 0;
  for (; p < end; p++) {
    const c = byteAt(p);
    if (c == DOT) {
      if (digits == 0 || ++dots > 3) return false;
      value = (value << 8) | acc;
      acc = 0; digits = 0;
      continue;
    }
    const d = c - 48;
    if (d > 9) return false;
    if (digits > 0 && acc == 0) return false; // leading zero ("010" is ambiguous)
    acc = acc * 10 + d;
    if (acc > 255) return false;
    digits++;
  }
  if (digits == 0 || dots != 3) return false;
  v4 = (value << 8) | acc;
  return true;
}

const groups = new ArrayBuffer(16); // 8 x u16 scratch for parseV6

/** RFC 4291 text form, with "::" and an optional trailing dotted quad. */
function parseV6(p: usize, end: usize): bool {
  const g = changetype<usize>(groups);
  let n = 0, gap = -1;
  if (p < end && byteAt(p) == COLON) {
    if (p + 1 >= end || byteAt(p + 1) != COLON) return false;
    gap = 0;
    p += 2;
  }
  while (p < end) {
    const start = p;
    let acc = 0, digits = 0;
    while (p < end && digits < 5) {
      const h = hexValue(byteAt(p));
      if (h < 0) break;
      acc = (acc << 4) | h;
      digits++;
      p++;
    }
    if (p < end && byteAt(p) == DOT) { // embedded IPv4 ends the address
      if (n > 6 || !parseV4(start, end)) return false;
      store<u16>(g + (n++ << 1), <u16>(v4 >>> 16));
      store<u16>(g + (n++ << 1), <u16>(v4 & 0xffff));
      p = end;
      break;
    }
    if (digits == 0 || digits > 4 || n >= 8) return false;
    store<u16>(g + (n++ << 1), <u16>acc);
    if (p == end) break;
    if (byteAt(p) != COLON) return false;
    p++;
    if (p < end && byteAt(p) == COLON) {
      if (gap >= 0) return false; // a second "::"
      gap = n;
      p++;
    } else if (p == end) {
      return false; // trailing single ":"
    }
  }
  if (gap < 0 ? n != 8 : n > 7) return false;
  let hi: u64 = 0, lo: u64 = 0;
  const zeros = 8 - n;
  for (let i = 0, src = 0; i < 8; i++) {
    let v: u64 = 0;
    if (gap >= 0 && i >= gap && i < gap + zeros) v = 0;
    else v = <u64>load<u16>(g + (src++ << 1));
    if (i < 4) hi = (hi << 16) | v; else lo = (lo << 16) | v;
  }
  ipHi = hi; ipLo = lo;
  return true;
}

/** A bare IPv4 or IPv6 address (an IPv6 zone "%eth0" is ignored). */
export function parseIp(p: usize, len: i32): bool {
  const end = p + <usize>len;
  let colon = false;
  let zone = end;
  for (let q = p; q < end; q++) {
    const c = byteAt(q);
    if (c == COLON) colon = true;
    else if (c == 37 /* % */ && zone == end) zone = q;
  }
  if (colon) {
    if (zone != end && zone + 1 == end) return false; // empty zone
    return parseV6(p, zone);
  }
  if (zone != end || !parseV4(p, end)) return false;
  ipHi = 0; ipLo = MAPPED | <u64>v4;
  return true;
}

function parsePort(p: usize, end: usize): bool {
  if (p == end || end - p > 5) return false;
  let port: u32 = 0;
  for (; p < end; p++) {
    const d = byteAt(p) - 48;
    if (d > 9) return false;
    port = port * 10 + d;
  }
  if (port > 65535) return false;
  ipPort = <i32>port;
  return true;
}

/** "1.2.3.4:80", "[fd00::1]:80", "1.2.3.4", "fd00::1" or "[fd00::1]". Sets ipPort (-1: none). */
export function parseAddress(p: usize, len: i32): bool {
  const end = p + <usize>len;
  ipPort = -1;
  if (len > 0 && byteAt(p) == 91 /* [ */) {
    let close = p + 1;
    while (close < end && byteAt(close) != 93 /* ] */) close++;
    if (close == end || !parseIp(p + 1, <i32>(close - p - 1))) return false;
    if (close + 1 == end) return true;
    return byteAt(close + 1) == COLON && parsePort(close + 2, end);
  }
  let colons = 0;
  let last = end;
  for (let q = p; q < end; q++) {
    if (byteAt(q) == COLON) { colons++; last = q; }
  }
  if (colons == 1) {
    return parseIp(p, <i32>(last - p)) && parsePort(last + 1, end);
  }
  return parseIp(p, len);
}

/** "10.0.0.0/8", "fd00::/8", or a bare address (a /32 or /128). Host bits are cleared. */
export function parseCidr(p: usize, len: i32): bool {
  const end = p + <usize>len;
  let slash = end;
  let v6 = false;
  for (let q = p; q < end; q++) {
    const c = byteAt(q);
    if (c == 47 /* / */ && slash == end) slash = q;
    if (c == COLON) v6 = true;
  }
  if (!parseIp(p, <i32>(slash - p))) return false;
  const max = v6 ? 128 : 32;
  let bits = max;
  if (slash != end) {
    let q = slash + 1;
    if (q == end || end - q > 3) return false;
    bits = 0;
    for (; q < end; q++) {
      const d = byteAt(q) - 48;
      if (d > 9) return false;
      bits = bits * 10 + <i32>d;
    }
    if (bits > max) return false;
  }
  cidrBits = v6 ? bits : bits + 96;
  ipHi &= maskHi(cidrBits);
  ipLo &= maskLo(cidrBits);
  return true;
}

// Wasm shifts are modulo 64, so the edges are spelled out.
export function maskHi(bits: i32): u64 {
  if (bits <= 0) return 0;
  if (bits >= 64) return ~(<u64>0);
  return ~(<u64>0) << <u64>(64 - bits);
}
export function maskLo(bits: i32): u64 {
  if (bits <= 64) return 0;
  if (bits >= 128) return ~(<u64>0);
  return ~(<u64>0) << <u64>(128 - bits);
}

/** Whether (hi, lo) is inside the network (netHi, netLo)/bits (network bits already cleared). */
// @ts-ignore: decorator
@inline export function inCidr(hi: u64, lo: u64, netHi: u64, netLo: u64, bits: i32): bool {
  return (hi & maskHi(bits)) == netHi && (lo & maskLo(bits)) == netLo;
}

/** Parses a string (config, metadata) through the byte parsers. */
export function parseIpString(s: string): bool {
  const b = String.UTF8.encode(s);
  return parseIp(changetype<usize>(b), b.byteLength);
}
export function parseCidrString(s: string): bool {
  const b = String.UTF8.encode(s);
  return parseCidr(changetype<usize>(b), b.byteLength);
}

// @ts-ignore: decorator
@inline function group(hi: u64, lo: u64, i: i32): u32 {
  return <u32>(((i < 4 ? hi : lo) >>> (<u64>(48 - 16 * (i & 3)))) & 0xffff);
}

/** Text form for logs: dotted quad for IPv4(-mapped), RFC 5952 for IPv6. */
export function formatIp(hi: u64, lo: u64): string {
  if (hi == 0 && (lo >>> 32) == 0xffff) {
    const a = <u32>lo;
    return decimal(a >>> 24) + "." + decimal((a >>> 16) & 255) + "." + decimal((a >>> 8) & 255) + "." + decimal(a & 255);
  }
  // The first longest run of two or more zero groups becomes "::".
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (group(hi, lo, i) != 0) { i++; continue; }
    let j = i;
    while (j < 8 && group(hi, lo, j) == 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  let out = "";
  for (let i = 0; i < 8; i++) {
    if (i == best) { out += "::"; i += bestLen - 1; continue; }
    if (i > 0 && i != best + bestLen) out += ":";
    const v = group(hi, lo, i);
    for (let shift = 12; shift >= 0; shift -= 4) {
      const d = (v >>> <u32>shift) & 15;
      if (v >>> <u32>shift != 0 || shift == 0) out += String.fromCharCode(<i32>(d < 10 ? 48 + d : 87 + d));
    }
  }
  return out;
}
