// Test harness (not shipped): exposes the filter's pure parsers and the learned-address table to
// Node through WebAssembly so test/integration/guard-parse.test.ts exercises the real AssemblyScript code.
// Strings cross as UTF-8 bytes in two buffers: Node writes input(), reads output(). Tables cross
// as records in tableIn() and tableOut().
import { parseAddress as parseAddr, parseCidr as parseNet, ipHi, ipLo, ipPort, cidrBits, inCidr, formatIp } from "../assembly/ip";
import { parseConfig, configError } from "../assembly/config";
import { hasHop as hopListed } from "../assembly/hops";
import { clip as clipText } from "../assembly/clip";
import {
  RECORD, MAX_ENTRIES, indexOf, countLive, worthRefreshing, rewrite as rewriteTable,
} from "../assembly/learned_table";

const IN = new ArrayBuffer(8192);
const OUT = new ArrayBuffer(8192);

export function input(): usize { return changetype<usize>(IN); }
export function output(): usize { return changetype<usize>(OUT); }

function write(s: string): i32 {
  const b = String.UTF8.encode(s);
  const n = min(b.byteLength, OUT.byteLength);
  memory.copy(changetype<usize>(OUT), changetype<usize>(b), n);
  return n;
}

/** 1 when input[0..len) is an address ("ip", "ip:port", "[v6]:port"), else 0. */
export function parseAddress(len: i32): i32 { return parseAddr(changetype<usize>(IN), len) ? 1 : 0; }
/** 1 when input[0..len) is a CIDR or bare IP, else 0. */
export function parseCidr(len: i32): i32 { return parseNet(changetype<usize>(IN), len) ? 1 : 0; }
/** 32-bit word i (0 = most significant) of the last parsed address. */
export function word(i: i32): u32 { return <u32>((i < 2 ? ipHi : ipLo) >>> (i % 2 == 0 ? 32 : 0)); }
export function port(): i32 { return ipPort; }
export function bits(): i32 { return cidrBits; }
/** Writes the text form of the last parsed address to output(); returns its length. */
export function format(): i32 { return write(formatIp(ipHi, ipLo)); }

/** CIDR in input[0..cidrLen), address right after it: 1 inside, 0 outside, -1 bad CIDR, -2 bad address. */
export function contains(cidrLen: i32, addrLen: i32): i32 {
  if (!parseNet(changetype<usize>(IN), cidrLen)) return -1;
  const hi = ipHi, lo = ipLo, n = cidrBits;
  if (!parseAddr(changetype<usize>(IN) + cidrLen, addrLen)) return -2;
  return inCidr(ipHi, ipLo, hi, lo, n) ? 1 : 0;
}

/** Parses input[0..len) as the plugin configuration: +length of describe(), or -length of the error. */
export function config(len: i32): i32 {
  const cfg = parseConfig(String.UTF8.decodeUnsafe(changetype<usize>(IN), len));
  if (configError.length > 0) return -write(configError);
  return write(cfg.describe());
}

/** x-multiplane-hops list in input[0..listLen), node id right after it: 1 listed, else 0. */
export function hasHop(listLen: i32, idLen: i32): i32 {
  const p = changetype<usize>(IN);
  return hopListed(String.UTF8.decodeUnsafe(p, listLen), String.UTF8.decodeUnsafe(p + listLen, idLen)) ? 1 : 0;
}

/** input[0..len) clipped to `max` UTF-8 bytes, written to output(); returns its length. */
export function clip(len: i32, max: i32): i32 {
  return write(clipText(String.UTF8.decodeUnsafe(changetype<usize>(IN), len), max));
}

const TABLE_IN = new ArrayBuffer((MAX_ENTRIES + 1) * RECORD);
const TABLE_OUT = new ArrayBuffer(MAX_ENTRIES * RECORD);
export function tableIn(): usize { return changetype<usize>(TABLE_IN); }
export function tableOut(): usize { return changetype<usize>(TABLE_OUT); }
export function tableIndexOf(len: i32, hi: u64, lo: u64): i32 { return indexOf(changetype<usize>(TABLE_IN), len, hi, lo); }
export function tableCountLive(len: i32, now: u64): i32 { return countLive(changetype<usize>(TABLE_IN), len, now); }
export function tableWorthRefreshing(i: i32, now: u64, ttl: u64): i32 {
  return worthRefreshing(changetype<usize>(TABLE_IN), i, now, ttl) ? 1 : 0;
}
/** rewrite() of the table in tableIn() into tableOut(); returns the new length in bytes. */
export function tableRewrite(len: i32, now: u64, touch: i32, hi: u64, lo: u64, ttl: u64): i32 {
  return rewriteTable(changetype<usize>(TABLE_IN), len, now, changetype<usize>(TABLE_OUT), touch != 0, hi, lo, ttl);
}
