// The loop guard's parsers and learned-address table, tested as the real AssemblyScript code:
// wasm/harness/parsers.ts (which imports wasm/assembly/{ip,config,hops,clip,learned_table}.ts)
// is compiled with asserts on into a temp dir and called from Node through WebAssembly. Node's URL parser and net.BlockList are the
// oracles for random addresses and networks (fast-check).
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import net from "node:net";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT } from "../../envoy/paths.ts";

interface Harness {
  memory: WebAssembly.Memory;
  input(): number; output(): number;
  parseAddress(len: number): number; parseCidr(len: number): number;
  word(i: number): number; port(): number; bits(): number; format(): number;
  contains(cidrLen: number, addrLen: number): number;
  config(len: number): number;
  hasHop(listLen: number, idLen: number): number;
  clip(len: number, max: number): number;
  tableIn(): number; tableOut(): number;
  tableIndexOf(len: number, hi: bigint, lo: bigint): number;
  tableCountLive(len: number, now: bigint): number;
  tableWorthRefreshing(i: number, now: bigint, ttl: bigint): number;
  tableRewrite(len: number, now: bigint, touch: number, hi: bigint, lo: bigint, ttl: bigint): number;
}

let h: Harness;
const enc = new TextEncoder();
const dec = new TextDecoder();

test.before(() => {
  const dir = mkdtempSync(join(tmpdir(), "multiplane-harness-"));
  try {
    const out = join(dir, "parsers.wasm");
    execFileSync(process.execPath, [join(PROJECT_ROOT, "node_modules", "assemblyscript", "bin", "asc"),
      join(PROJECT_ROOT, "wasm", "harness", "parsers.ts"), "--binaryFile", out, "--optimizeLevel", "1", "--debug"],
      { cwd: PROJECT_ROOT, stdio: ["ignore", "ignore", "inherit"] });
    const mod = new WebAssembly.Module(readFileSync(out));
    const inst = new WebAssembly.Instance(mod, {
      env: { abort: (_m: number, _f: number, line: number, col: number) => { throw new Error(`wasm abort at ${line}:${col}`); } },
    });
    h = inst.exports as unknown as Harness;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Writes strings one after another into the harness input; returns their byte lengths. */
function put(...parts: string[]): number[] {
  const lens: number[] = [];
  let off = 0;
  for (const p of parts) {
    const b = enc.encode(p);
    new Uint8Array(h.memory.buffer, h.input() + off, b.length).set(b);
    off += b.length;
    lens.push(b.length);
  }
  return lens;
}
const out = (n: number) => dec.decode(new Uint8Array(h.memory.buffer, h.output(), Math.abs(n)));
const words = () => [0, 1, 2, 3].map((i) => h.word(i) >>> 0);

function addr(text: string): { words: number[]; port: number; text: string } | null {
  if (!h.parseAddress(put(text)[0]!)) return null;
  return { words: words(), port: h.port(), text: out(h.format()) };
}
function cidr(text: string): { words: number[]; bits: number } | null {
  if (!h.parseCidr(put(text)[0]!)) return null;
  return { words: words(), bits: h.bits() };
}
function contains(network: string, address: string): number {
  const [a, b] = put(network, address);
  return h.contains(a!, b!);
}
function config(text: string): { ok: boolean; text: string } {
  const n = h.config(put(text)[0]!);
  return { ok: n >= 0, text: out(n) };
}

/** Reference: the 32-bit words of an IPv6 text, via Node's URL parser (WHATWG). */
function refWords(v6: string): number[] {
  const host = new URL(`http://[${v6}]/`).hostname.slice(1, -1);
  const [head, tail] = host.includes("::") ? host.split("::") : [host, undefined];
  const hs = head ? head.split(":") : [];
  const ts = tail ? tail.split(":") : [];
  const groups = [...hs, ...Array(8 - hs.length - ts.length).fill("0"), ...ts].map((g) => parseInt(g, 16));
  return [0, 1, 2, 3].map((i) => ((groups[2 * i]! << 16) | groups[2 * i + 1]!) >>> 0);
}

test("IPv4 with and without port, stored IPv4-mapped", () => {
  assert.equal(addr("127.0.0.2:15001"), { words: [0, 0, 0xffff, 0x7f000002], port: 15001, text: "127.0.0.2" });
  assert.equal(addr("10.75.8.101"), { words: [0, 0, 0xffff, 0x0a4b0865], port: -1, text: "10.75.8.101" });
  assert.equal(addr("0.0.0.0:0")?.words, [0, 0, 0xffff, 0]);
  assert.equal(addr("255.255.255.255:65535")?.port, 65535);
});

test("IPv6: brackets, ports, compression, embedded and mapped IPv4, zones", () => {
  assert.equal(addr("[fd00::1]:80"), { words: [0xfd000000, 0, 0, 1], port: 80, text: "fd00::1" });
  assert.equal(addr("[::1]:443")?.text, "::1");
  assert.equal(addr("::")?.words, [0, 0, 0, 0]);
  assert.equal(addr("fd00::1")?.port, -1);
  assert.equal(addr("[2001:db8::]")?.text, "2001:db8::");
  // IPv4-mapped IPv6 is the same address as the IPv4 it maps.
  assert.equal(addr("[::ffff:10.75.8.101]:8080")?.words, addr("10.75.8.101")?.words);
  assert.equal(addr("::ffff:a4b:865")?.text, "10.75.8.101");
  assert.equal(addr("64:ff9b::192.0.2.33")?.words, [0x0064ff9b, 0, 0, 0xc0000221]);
  assert.equal(addr("[fe80::1%eth0]:80")?.words, [0xfe800000, 0, 0, 1]);
  assert.equal(addr("1:2:3:4:5:6:7:8")?.text, "1:2:3:4:5:6:7:8");
  assert.equal(addr("1:0:0:2:0:0:0:3")?.text, "1:0:0:2::3"); // longest zero run, RFC 5952
  assert.equal(addr("1:0:0:2:0:0:3:4")?.text, "1::2:0:0:3:4"); // the first of equal runs
  assert.equal(addr("1:0:2:3:4:5:6:7")?.text, "1:0:2:3:4:5:6:7"); // a single zero group stays
  assert.equal(addr("FD00:0:0:0:0:0:0:A")?.text, "fd00::a");
});

test("bad input is rejected, never misread", () => {
  const bad = [
    "", ":", "::::", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.-4", "01.2.3.4", "1..2.3", "1.2.3.4:",
    "1.2.3.4:65536", "1.2.3.4:8x", "1.2.3.4:123456", "a.b.c.d", "1.2.3.4 ", " 1.2.3.4", "[1.2.3.4]x",
    "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "g::1", "[fd00::1", "fd00::1]:80", "[fd00::1]80",
    "1:2:3:4:5:6:7::8", ":1::", "1::2:", "::ffff:1.2.3", "::1.2.3.4.5", "fe80::1%", "localhost:80", "1.2.3.4%eth0",
  ];
  for (const b of bad) assert.is(addr(b), null, `accepted ${JSON.stringify(b)}`);
});

test("random IPv6 addresses round-trip against Node's URL parser", () => {
  fc.assert(fc.property(fc.ipV6(), fc.integer({ min: 0, max: 65535 }), (ip, port) => {
    const expected = refWords(ip);
    const plain = addr(ip);
    const bracketed = addr(`[${ip}]:${port}`);
    assert.ok(plain, `rejected ${ip}`);
    assert.equal(plain!.words, expected, ip);
    assert.equal(bracketed?.words, expected);
    assert.is(bracketed?.port, port);
    // Our text form is RFC 5952's, like the WHATWG serializer (which writes mapped IPv4 in hex).
    const whatwg = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
    if (/^::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}$/.test(whatwg)) assert.equal(addr(plain!.text)?.words, expected);
    else assert.is(plain!.text, whatwg);
  }), { numRuns: 500 });
});

test("random IPv4 addresses round-trip", () => {
  fc.assert(fc.property(fc.ipV4(), (ip) => {
    const parts = ip.split(".").map(Number);
    const n = ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
    assert.equal(addr(ip), { words: [0, 0, 0xffff, n], port: -1, text: ip });
  }), { numRuns: 300 });
});

test("CIDR parsing: IPv4 prefixes count from the mapped /96, host bits cleared", () => {
  assert.equal(cidr("10.0.0.0/8"), { words: [0, 0, 0xffff, 0x0a000000], bits: 104 });
  assert.equal(cidr("10.1.2.3/8")?.words, [0, 0, 0xffff, 0x0a000000]);
  assert.equal(cidr("127.0.0.1"), { words: [0, 0, 0xffff, 0x7f000001], bits: 128 });
  assert.equal(cidr("fd00::/8"), { words: [0xfd000000, 0, 0, 0], bits: 8 });
  assert.equal(cidr("::/0")?.bits, 0);
  for (const b of ["10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/x", "/8", "10.0.0.0/8/8", "10.0.0.0/-1", "10.0.0.0/0008"]) {
    assert.is(cidr(b), null, `accepted ${b}`);
  }
});

test("CIDR matching agrees with net.BlockList (IPv4, IPv6, IPv4-mapped, /0 and full prefixes)", () => {
  assert.is(contains("10.0.0.0/8", "10.75.8.101:80"), 1);
  assert.is(contains("10.0.0.0/8", "[::ffff:10.75.8.101]:80"), 1);
  assert.is(contains("10.0.0.0/8", "11.0.0.1"), 0);
  assert.is(contains("0.0.0.0/0", "[fd00::1]:80"), 0); // IPv4 /0 covers IPv4 only
  assert.is(contains("::/0", "1.2.3.4"), 1);
  assert.is(contains("bogus", "1.2.3.4"), -1);
  assert.is(contains("10.0.0.0/8", "bogus"), -2);
  fc.assert(fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), fc.ipV4(), (netIp, bits, ip) => {
    const bl = new net.BlockList();
    bl.addSubnet(netIp, bits, "ipv4");
    assert.is(contains(`${netIp}/${bits}`, ip), bl.check(ip, "ipv4") ? 1 : 0, `${netIp}/${bits} ${ip}`);
  }), { numRuns: 400 });
  fc.assert(fc.property(fc.ipV6(), fc.integer({ min: 0, max: 128 }), fc.ipV6(), fc.boolean(), (netIp, bits, ip, near) => {
    // Half the runs test an address sharing a prefix with the network, so matches occur.
    const probe = near ? netIp.replace(/[0-9a-f]+$/i, (g) => (parseInt(g, 16) ^ 1).toString(16)) : ip;
    const bl = new net.BlockList();
    bl.addSubnet(netIp, bits, "ipv6");
    assert.is(contains(`${netIp}/${bits}`, probe), bl.check(probe, "ipv6") ? 1 : 0, `${netIp}/${bits} ${probe}`);
  }), { numRuns: 400 });
});

test("configuration: the control plane's keys, defaults, and every key", () => {
  assert.equal(config(""), { ok: true, text: "mode=enforce node_ips=[] cidrs=[] allow_ports=[] all_listeners=false learned_ttl_seconds=600" });
  assert.equal(config('{"node_ips": ["192.168.10.63", "10.75.8.101"], "mode": "enforce"}').text,
    "mode=enforce node_ips=[192.168.10.63,10.75.8.101] cidrs=[] allow_ports=[] all_listeners=false learned_ttl_seconds=600");
  assert.equal(config('{"node_ips":["::FFFF:10.0.0.1","FD00::1"],"cidrs":["10.0.0.0/8","fd00::/64"],"mode":"observe","allow_ports":[15021,80],"all_listeners":true,"learned_ttl_seconds":30}'),
    { ok: true, text: "mode=observe node_ips=[10.0.0.1,fd00::1] cidrs=[10.0.0.0/8,fd00::/64] allow_ports=[15021,80] all_listeners=true learned_ttl_seconds=30" });
  for (const [ttl, shown] of [["1", "1"], ["2147483647", "2147483647"], ["1e3", "1000"], ["60.0", "60"]] as const) {
    assert.equal(config(`{"learned_ttl_seconds": ${ttl}}`), { ok: true, text: `mode=enforce node_ips=[] cidrs=[] allow_ports=[] all_listeners=false learned_ttl_seconds=${shown}` });
  }
  assert.equal(config(' \n{ "mode" : "observe" , "node_ips" : [ ] }\t').text.startsWith("mode=observe"), true);
  assert.equal(config('{"node_ips":["10.0.0\\u002e1"]}').text.includes("node_ips=[10.0.0.1]"), true);
});

test("configuration: numbers are read exactly, in every JSON notation (fast-check, JSON.parse as the oracle)", () => {
  // A number the way JSON may write it: plain, with a fraction, with an exponent, or both.
  const written = fc.tuple(fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n }), fc.integer({ min: 0, max: 4 }), fc.integer({ min: -6, max: 6 }), fc.constantFrom("e", "E", "e+", "E+"), fc.boolean())
    .map(([digits, fractionDigits, exponent, e, withExponent]) => {
      const sign = digits < 0n ? "-" : "";
      const abs = (digits < 0n ? -digits : digits).toString().padStart(fractionDigits + 1, "0");
      const mantissa = fractionDigits > 0 ? `${abs.slice(0, -fractionDigits)}.${abs.slice(-fractionDigits)}` : abs;
      return `${sign}${mantissa}${withExponent ? (exponent < 0 ? `${e[0]}${exponent}` : `${e}${exponent}`) : ""}`;
    });
  fc.assert(fc.property(written, (text) => {
    const value = JSON.parse(text) as number;
    const valid = Number.isInteger(value) && value >= 1 && value <= 2147483647;
    const r = config(`{"learned_ttl_seconds": ${text}}`);
    assert.is(r.ok, valid, `${text} (${value}): ${r.text}`);
    if (valid) assert.ok(r.text.endsWith(` learned_ttl_seconds=${value}`), `${text}: ${r.text}`);
    else assert.match(r.text, new RegExp(` got ${text.replace(/[.+]/g, "\\$&")}$`));
    const port = config(`{"allow_ports": [${text}]}`);
    assert.is(port.ok, Number.isInteger(value) && value >= 1 && value <= 65535, `allow_ports ${text}`);
  }), { numRuns: 2000 });
});

test("configuration: bad input gives one clear message naming the problem", () => {
  const cases: [string, RegExp][] = [
    ["{not json", /^invalid JSON: expected a string key at offset 1$/],
    ['{"mode":"enforce"', /^invalid JSON: expected ',' or '}' at offset 17$/],
    ['{"mode":"enforce"} x', /^invalid JSON: trailing characters/],
    ["[]", /must be a JSON object, got an array/],
    ['{"mode":"block"}', /^mode must be "enforce" or "observe", got "block"$/],
    ['{"mode":1}', /^mode must be a string, got a number$/],
    ['{"node_ips":"10.0.0.1"}', /^node_ips must be an array of strings, got a string$/],
    ['{"node_ips":["10.0.0.1", 7]}', /^node_ips\[1\] must be a string, got a number$/],
    ['{"node_ips":["banana"]}', /^node_ips\[0\]: "banana" is not an IP address$/],
    ['{"node_ips":["10.0.0.0/8"]}', /not an IP address/],
    ['{"node_ips":["127.0.0.300"]}', /not an IP address/],
    ['{"cidrs":["10.0.0.0/40"]}', /^cidrs\[0\]: "10.0.0.0\/40" is not a CIDR/],
    ['{"allow_ports":["80"]}', /^allow_ports\[0\] must be a port number 1..65535$/],
    ['{"allow_ports":[0]}', /must be a port number/],
    ['{"allow_ports":[80.5]}', /must be a port number/],
    ['{"allow_ports":80}', /^allow_ports must be an array/],
    ['{"all_listeners":"yes"}', /^all_listeners must be true or false, got a string$/],
    ['{"node_ip":["10.0.0.1"]}', /^unknown key "node_ip" \(known: node_ips, cidrs, mode, allow_ports, all_listeners, learned_ttl_seconds\)$/],
    ['{"learned_ttl_seconds":0}', /^learned_ttl_seconds must be a whole number of seconds from 1 to 2147483647, got 0$/],
    ['{"learned_ttl_seconds":-5}', /got -5$/],
    ['{"learned_ttl_seconds":1.5}', /got 1\.5$/],
    ['{"learned_ttl_seconds":2147483648}', /got 2147483648$/],
    ['{"learned_ttl_seconds":1e400}', /got 1e400$/],
    ['{"learned_ttl_seconds":"600"}', /^learned_ttl_seconds must be a whole number of seconds from 1 to 2147483647, got a string$/],
    ['{"learned_ttl_seconds":null}', /got null$/],
    ['{"learned_ttl_seconds":[600]}', /got an array$/],
    ['{"mode":"\\x"}', /invalid escape/],
    ['{"mode":"observe\n"}', /control character/],
  ];
  for (const [text, expected] of cases) {
    const r = config(text);
    assert.is(r.ok, false, `accepted ${text}`);
    assert.match(r.text, expected, `${text} -> ${r.text}`);
  }
});

test("clip: at most N UTF-8 bytes, whole characters only, then how many bytes were left out", () => {
  const clip = (text: string, max: number) => out(h.clip(put(text)[0]!, max));
  assert.is(clip("short", 200), "short");
  assert.is(clip("x".repeat(200), 200), "x".repeat(200));
  assert.is(clip("x".repeat(201), 200), `${"x".repeat(200)}…(1 more bytes)`);
  assert.is(clip("x".repeat(5000), 200), `${"x".repeat(200)}…(4800 more bytes)`);
  // 2-, 3- and 4-byte characters are never cut in half: "é" is 2 bytes, "€" 3, "😀" 4 (a surrogate pair).
  assert.is(clip("aé".repeat(10), 3), "aé…(27 more bytes)");
  assert.is(clip("aé".repeat(10), 5), "aéa…(26 more bytes)");
  assert.is(clip("€€€", 5), "€…(6 more bytes)");
  assert.is(clip("😀😀", 7), "😀…(4 more bytes)");
  assert.is(clip("😀😀", 3), "…(8 more bytes)");
  fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 300 }), fc.integer({ min: 0, max: 300 }), (text, max) => {
    const total = enc.encode(text).length;
    const r = clip(text, max);
    if (total <= max) return assert.is(r, text);
    const m = /…\((\d+) more bytes\)$/.exec(r);
    assert.ok(m, r);
    const kept = r.slice(0, m!.index);
    assert.ok(text.startsWith(kept));
    assert.ok(enc.encode(kept).length <= max);
    assert.is(enc.encode(kept).length + Number(m![1]), total);
  }), { numRuns: 300 });
});

test("configuration: a huge value is clipped in the error message and in describe()", () => {
  const huge = "x".repeat(5000);
  const cases: [string, RegExp][] = [
    [`{"mode":"${huge}"}`, /^mode must be "enforce" or "observe", got "x{200}…\(4800 more bytes\)"$/],
    [`{"node_ips":["${huge}"]}`, /^node_ips\[0\]: "x{200}…\(4800 more bytes\)" is not an IP address$/],
    [`{"cidrs":["10.0.0.0/8","${huge}"]}`, /^cidrs\[1\]: "x{200}…\(4800 more bytes\)" is not a CIDR/],
    [`{"${huge}":1}`, /^unknown key "x{200}…\(4800 more bytes\)" \(known: /],
    [`{"learned_ttl_seconds":1${"0".repeat(5000)}}`, /^learned_ttl_seconds must be .*, got 10{199}…\(4801 more bytes\)$/],
  ];
  for (const [text, expected] of cases) {
    const r = config(text);
    assert.is(r.ok, false);
    assert.match(r.text, expected);
    assert.ok(r.text.length < 400, `${r.text.length} characters`);
  }
  // An IPv6 zone is ignored, so a valid CIDR can be long; describe() (logged) clips every list.
  const zoned = `fe80::%${"z".repeat(5000)}/64`;
  const ok = config(JSON.stringify({ cidrs: [zoned], node_ips: Array.from({ length: 300 }, (_, i) => `10.0.${i >> 8}.${i & 255}`) }));
  assert.is(ok.ok, true);
  assert.match(ok.text, /^mode=enforce node_ips=\[10\.0\.0\.0,10\.0\.0\.1,[0-9.,]*…\(\d+ more bytes\)\] cidrs=\[fe80::%z{193}…\(4810 more bytes\)\] allow_ports=\[\] /);
  assert.ok(ok.text.length < 600, `${ok.text.length} characters`);
});

test("configuration parser survives random input (no abort)", () => {
  fc.assert(fc.property(fc.oneof(fc.string(), fc.json(), fc.object().map((o) => JSON.stringify(o))), (text) => {
    const r = config(text.slice(0, 4000));
    assert.type(r.ok, "boolean");
  }), { numRuns: 400 });
});

// The learned-address table: records of (hi, lo, last seen, expires), nanoseconds.
interface Entry { hi: bigint; lo: bigint; seen: bigint; expires: bigint }
const v4 = (last: number) => ({ hi: 0n, lo: 0xffff_7f00_0000n | BigInt(last) }); // 127.0.0.<last>
const S = 1_000_000_000n;

function putTable(entries: Entry[]): number {
  const v = new BigUint64Array(h.memory.buffer, h.tableIn(), entries.length * 4);
  entries.forEach((e, i) => v.set([e.hi, e.lo, e.seen, e.expires], i * 4));
  return entries.length * 32;
}
function readTable(len: number): Entry[] {
  const v = new BigUint64Array(h.memory.buffer, h.tableOut(), len / 8);
  return Array.from({ length: len / 32 }, (_, i) => ({ hi: v[i * 4]!, lo: v[i * 4 + 1]!, seen: v[i * 4 + 2]!, expires: v[i * 4 + 3]! }));
}
/** rewrite(): the table without expired entries, and `touch` (if given) seen at `now`. */
function rewrite(entries: Entry[], now: bigint, touch?: { hi: bigint; lo: bigint }, ttl = 10n * S): Entry[] {
  const len = putTable(entries);
  return readTable(h.tableRewrite(len, now, touch ? 1 : 0, touch?.hi ?? 0n, touch?.lo ?? 0n, ttl));
}

test("learned table: adding, refreshing (never shortening) and expiry", () => {
  const a = v4(1), b = v4(2);
  const t0 = 1_800_000_000n * S; // a plausible wall clock
  // Learned: last seen now, expires now + ttl.
  let table = rewrite([], t0, a);
  assert.equal(table, [{ ...a, seen: t0, expires: t0 + 10n * S }]);
  // A hit 4 s later extends the expiry to hit + ttl.
  table = rewrite(table, t0 + 4n * S, a);
  assert.equal(table, [{ ...a, seen: t0 + 4n * S, expires: t0 + 14n * S }]);
  // A hit from a filter with a shorter TTL never shortens it.
  table = rewrite(table, t0 + 5n * S, a, 2n * S);
  assert.equal(table[0]!.expires, t0 + 14n * S);
  // Another address joins; at its expiry (exclusive) an entry is dropped by any rewrite.
  table = rewrite(table, t0 + 5n * S, b, 1n * S);
  assert.equal(table.map((e) => e.lo), [a.lo, b.lo]);
  let len = putTable(table);
  assert.is(h.tableCountLive(len, t0 + 6n * S - 1n), 2);
  assert.is(h.tableCountLive(len, t0 + 6n * S), 1);
  assert.is(h.tableIndexOf(len, b.hi, b.lo), 1);
  assert.is(h.tableIndexOf(len, 0n, 0xffff_7f00_0009n), -1);
  assert.equal(rewrite(table, t0 + 6n * S).map((e) => e.lo), [a.lo]);
  assert.equal(rewrite(table, t0 + 14n * S), []);
  // An expired address seen again is learned afresh.
  assert.equal(rewrite(table, t0 + 20n * S, b, 1n * S), [{ ...b, seen: t0 + 20n * S, expires: t0 + 21n * S }]);
  // IPv6 and IPv4-mapped entries are told apart by all 128 bits.
  const v6 = { hi: 0xfd00_0000_0000_0000n, lo: a.lo };
  table = rewrite(rewrite([], t0, a), t0, v6);
  len = putTable(table);
  assert.is(table.length, 2);
  assert.is(h.tableIndexOf(len, v6.hi, v6.lo), 1);
});

test("learned table: hits are written back at most once a second (a tenth of the TTL when shorter)", () => {
  const t0 = 1_800_000_000n * S;
  const worth = (expires: bigint, now: bigint, ttl: bigint) => {
    putTable([{ ...v4(1), seen: expires - ttl, expires }]);
    return h.tableWorthRefreshing(0, now, ttl) === 1;
  };
  assert.not.ok(worth(t0 + 600n * S, t0 + S - 1n, 600n * S));
  assert.ok(worth(t0 + 600n * S, t0 + S, 600n * S));
  assert.not.ok(worth(t0 + 2n * S, t0 + S / 5n - 1n, 2n * S)); // ttl 2 s: every 200 ms
  assert.ok(worth(t0 + 2n * S, t0 + S / 5n, 2n * S));
  assert.not.ok(worth(t0 + 600n * S, t0 + 10n * S, 5n * S)); // a shorter TTL never shortens
});

test("learned table: bounded; a full table makes room by dropping the entry expiring first", () => {
  const t0 = 1_800_000_000n * S;
  const full: Entry[] = Array.from({ length: 64 }, (_, i) => ({ ...v4(i + 1), seen: t0, expires: t0 + BigInt(100 - (i === 17 ? 50 : 0) + i) * S }));
  const added = rewrite(full, t0 + S, v4(200));
  assert.is(added.length, 64);
  assert.is(added[17]!.lo, v4(200).lo, "the entry expiring first was replaced");
  assert.equal(added.filter((_, i) => i !== 17), full.filter((_, i) => i !== 17));
  // A refresh of a present address in a full table evicts nothing.
  assert.equal(rewrite(full, t0 + S, v4(5)).map((e) => e.lo), full.map((e) => e.lo));
  // Expired entries leave before anything is evicted.
  const someExpired = full.map((e, i) => (i < 3 ? { ...e, expires: t0 } : e));
  const r = rewrite(someExpired, t0 + S, v4(200));
  assert.is(r.length, 62);
  assert.is(r.at(-1)!.lo, v4(200).lo);
});

test("x-multiplane-hops: whole elements only, spaces ignored", () => {
  const has = (list: string, id: string) => { const [a, b] = put(list, id); return h.hasHop(a!, b!) === 1; };
  assert.ok(has("node-a", "node-a"));
  assert.ok(has("edge-1, node-a ,x", "node-a"));
  assert.ok(has("edge-1,node-a", "node-a"));
  assert.not.ok(has("node-ab,xnode-a", "node-a"));
  assert.not.ok(has("", "node-a"));
  assert.not.ok(has("edge-1", "node-a"));
});

test.run();
