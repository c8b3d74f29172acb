// Which interface addresses are node IPs (control/identity/node-address.ts), the order they are listed in
// (compareIps), the two sources that feed the rule: node:os for `bootstrap --instance-ips auto`
// (envoy/interface-ips.ts) and `ip -json addr show` for the node agent (control/agent/ip-output.ts).
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import type { NetworkInterfaceInfo } from "node:os";
import { compareIps, normaliseIp } from "../../control/identity/ip.ts";
import { nodeAddress, nodeAddresses, type InterfaceAddress } from "../../control/identity/node-address.ts";
import { parseIpAddrJson } from "../../control/agent/ip-output.ts";
import { interfaceIps } from "../../envoy/interface-ips.ts";

const at = (address: string, more: Partial<InterfaceAddress> = {}): InterfaceAddress => ({ ifname: "eth0", address, ...more });
const reason = (entry: InterfaceAddress, exclude: string[] = []) => {
  const r = nodeAddress(entry, new Set(exclude));
  return r.ok ? `ok ${r.ip}` : r.reason;
};

test("compareIps: IPv4 before IPv6, numeric within a family, any spelling, non-IPs last", () => {
  const sorted = ["10.0.0.10", "::1", "2001:db8::1", "10.0.0.9", "192.168.10.63", "not-an-ip", "9.255.255.255", "fd00::", "2001:DB8::", "::ffff:10.0.0.8"].sort(compareIps);
  assert.equal(sorted, ["9.255.255.255", "::ffff:10.0.0.8", "10.0.0.9", "10.0.0.10", "192.168.10.63", "::1", "2001:DB8::", "2001:db8::1", "fd00::", "not-an-ip"]);
  assert.is(compareIps("2001:DB8::1", "2001:db8:0::1"), 0);
  assert.ok(compareIps("b", "a") > 0 && compareIps("a", "b") < 0 && compareIps("a", "a") === 0);
});

test("compareIps is a total order matching the numeric value (property)", () => {
  const v4num = (ip: string) => ip.split(".").reduce((n, b) => n * 256 + Number(b), 0);
  fc.assert(fc.property(fc.ipV4(), fc.ipV4(), (a, b) => {
    assert.is(Math.sign(compareIps(a, b)), Math.sign(v4num(a) - v4num(b)));
  }));
  const v6 = fc.ipV6().map((ip) => normaliseIp(ip)!).filter((ip) => ip.includes(":")); // not IPv4-mapped
  fc.assert(fc.property(fc.ipV4(), v6, (a, b) => assert.ok(compareIps(a, b) < 0 && compareIps(b, a) > 0)));
  fc.assert(fc.property(v6, v6, v6, (a, b, c) => {
    assert.is(Math.sign(compareIps(a, b)), -Math.sign(compareIps(b, a)));
    if (compareIps(a, b) <= 0 && compareIps(b, c) <= 0) assert.ok(compareIps(a, c) <= 0);
  }));
});

test("the rule: loopback, link-local, unspecified, excluded, down, tentative and non-IPs are not node IPs", () => {
  assert.is(reason(at("10.75.8.101")), "ok 10.75.8.101");
  assert.is(reason(at("2001:DB8:0::1")), "ok 2001:db8::1");
  assert.is(reason(at("::ffff:192.168.10.63")), "ok 192.168.10.63");
  assert.is(reason(at("fec0::1")), "ok fec0::1"); // site-local: just outside fe80::/10
  assert.is(reason(at("fe8::1")), "ok fe8::1"); // 0fe8::, not fe80::/10
  assert.is(reason(at("169.253.255.255")), "ok 169.253.255.255");
  assert.is(reason(at("128.0.0.1")), "ok 128.0.0.1");

  assert.is(reason(at("10.75.8.101", { loopback: true, ifname: "lo" })), "interface lo is a loopback interface");
  assert.is(reason(at("127.0.0.2")), "127.0.0.2 is a loopback address (127.0.0.0/8)");
  assert.is(reason(at("127.255.255.255")), "127.255.255.255 is a loopback address (127.0.0.0/8)");
  assert.is(reason(at("::ffff:127.0.0.1")), "127.0.0.1 is a loopback address (127.0.0.0/8)");
  assert.is(reason(at("0:0::1")), "::1 is the loopback address");
  assert.is(reason(at("169.254.3.3")), "169.254.3.3 is link-local (169.254.0.0/16)");
  for (const ll of ["fe80::1", "FE80::4cdd:7ff:fe35:b3ce", "febf:ffff::1", "fe81::1"]) assert.match(reason(at(ll)), /is link-local \(fe80::\/10\)$/, ll);
  assert.is(reason(at("0.0.0.0")), "0.0.0.0 is the unspecified address");
  assert.is(reason(at("::")), ":: is the unspecified address");
  assert.is(reason(at("10.0.0.1", { ifname: "mgmt0" }), ["mgmt0"]), "interface mgmt0 is excluded");
  assert.is(reason(at("10.0.0.1", { ifname: "mgmt0" }), ["mgmt"]), "ok 10.0.0.1"); // exact names only
  assert.is(reason(at("10.0.0.1", { up: false })), "interface eth0 is down or has no carrier");
  assert.is(reason(at("10.0.0.1", { up: true })), "ok 10.0.0.1");
  assert.is(reason(at("2001:db8::5", { tentative: true })), "2001:db8::5 is tentative (duplicate address detection not passed)");
  for (const bad of ["", "10.75.8", "fe80::1%eth0", "eth0", "10.0.0.1/24"]) assert.not.ok(nodeAddress(at(bad)).ok, bad);
});

test("nodeAddresses: canonical, deduplicated across interfaces and spellings, sorted", () => {
  assert.equal(nodeAddresses([
    at("fd00::2", { ifname: "eth1" }), at("192.168.10.63"), at("10.75.8.101", { ifname: "eth1" }), at("FD00:0::2"),
    at("::ffff:10.75.8.101"), at("127.0.0.1", { ifname: "lo", loopback: true }), at("fe80::1"), at("10.9.0.1", { ifname: "docker0" }),
  ], ["docker0"]), ["10.75.8.101", "192.168.10.63", "fd00::2"]);
  assert.equal(nodeAddresses([]), []);
});

// Addresses as they come: real ones, in any spelling, plus everything the rule must drop.
const spelled = (ip: string) => fc.constantFrom(ip, ip.toUpperCase(), `::ffff:${ip}`).filter((s) => s === ip || ip.includes(".") || !s.startsWith("::ffff:"));
const anyAddress = fc.oneof(
  fc.ipV4().chain(spelled),
  fc.ipV6().chain(spelled),
  fc.constantFrom("127.0.0.1", "127.3.2.1", "::1", "169.254.0.1", "169.254.255.254", "fe80::1", "febf::ab", "0.0.0.0", "::"),
  fc.string({ maxLength: 12 }),
);
const entry = fc.record({
  ifname: fc.constantFrom("eth0", "eth1", "lo", "mgmt0", "net1"),
  address: anyAddress,
  loopback: fc.option(fc.boolean(), { nil: undefined }),
  up: fc.option(fc.boolean(), { nil: undefined }),
  tentative: fc.option(fc.boolean(), { nil: undefined }),
}, { requiredKeys: ["ifname", "address"] });

test("nodeAddresses (property): canonical, unique, sorted, order-independent, never loopback/link-local/excluded, every accepted address kept", () => {
  fc.assert(fc.property(fc.array(entry, { maxLength: 40 }), fc.subarray(["eth1", "mgmt0"]), (entries, exclude) => {
    const ips = nodeAddresses(entries, exclude);
    for (const ip of ips) {
      assert.is(normaliseIp(ip), ip, "canonical");
      assert.not.ok(/^127\.|^169\.254\.|^fe[89ab][0-9a-f]:/.test(ip) || ip === "::1" || ip === "0.0.0.0" || ip === "::", `not loopback, link-local or unspecified: ${ip}`);
    }
    for (let i = 1; i < ips.length; i++) assert.ok(compareIps(ips[i - 1]!, ips[i]!) < 0, "sorted and unique");
    const accepted = new Set(entries.flatMap((e) => {
      const r = nodeAddress(e, new Set(exclude));
      return r.ok ? [r.ip] : [];
    }));
    assert.equal(new Set(ips), accepted, "exactly the accepted ones");
    for (const e of entries) {
      const ip = normaliseIp(e.address);
      if (ip === undefined || !ips.includes(ip)) continue;
      // An IP that is listed came from at least one entry that is usable and not excluded.
      assert.ok(entries.some((o) => normaliseIp(o.address) === ip && !exclude.includes(o.ifname) && !o.loopback && o.up !== false && !o.tentative));
    }
    assert.equal(nodeAddresses([...entries].reverse(), exclude), ips, "order-independent");
  }), { numRuns: 300 });
});

test("interfaceIps (bootstrap --instance-ips auto): node:os's interfaces through the same rule", () => {
  const iface = (address: string, family: "IPv4" | "IPv6", internal = false): NetworkInterfaceInfo =>
    (family === "IPv4"
      ? { address, family, internal, netmask: "255.255.255.0", mac: "00:00:00:00:00:00", cidr: `${address}/24` }
      : { address, family, internal, netmask: "ffff:ffff:ffff:ffff::", mac: "00:00:00:00:00:00", cidr: `${address}/64`, scopeid: 0 });
  assert.equal(interfaceIps({
    lo: [iface("127.0.0.1", "IPv4", true), iface("::1", "IPv6", true)],
    eth0: [iface("192.168.10.63", "IPv4"), iface("fe80::fc:ff:fe00:1", "IPv6"), iface("fd00::2", "IPv6")],
    eth1: [iface("10.75.8.101", "IPv4"), iface("169.254.3.3", "IPv4"), iface("192.168.10.63", "IPv4")],
    "eth1:0": [iface("10.75.8.102", "IPv4")],
    empty: undefined,
  }), ["10.75.8.101", "10.75.8.102", "192.168.10.63", "fd00::2"]);
  assert.equal(interfaceIps({}), []);
  for (const ip of interfaceIps()) assert.is(normaliseIp(ip), ip); // this host's, whatever they are
});

// `ip -json addr show` from iproute2 6.1, trimmed (lifetimes, qdisc and the like dropped where they
// do not matter): loopback, a veth with a secondary IPv4 address, a link-local 169.254 address, IPv6
// with and without DAD (one still tentative, one failed), an interface without carrier, one admin down.
const SAMPLE = JSON.stringify([
  { ifindex: 1, ifname: "lo", flags: ["LOOPBACK", "UP", "LOWER_UP"], mtu: 65536, operstate: "UNKNOWN", link_type: "loopback", addr_info: [
    { family: "inet", local: "127.0.0.1", prefixlen: 8, scope: "host", label: "lo", valid_life_time: 4294967295, preferred_life_time: 4294967295 },
    { family: "inet", local: "10.0.0.77", prefixlen: 32, scope: "global", label: "lo" },
    { family: "inet6", local: "::1", prefixlen: 128, scope: "host" },
  ] },
  { ifindex: 3, link: "v1", ifname: "v0", flags: ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], mtu: 1500, operstate: "UP", link_type: "ether", address: "26:b9:50:6c:d6:71", addr_info: [
    { family: "inet", local: "10.75.8.101", prefixlen: 24, scope: "global", label: "v0", valid_life_time: 4294967295, preferred_life_time: 4294967295 },
    { family: "inet", local: "169.254.3.3", prefixlen: 16, scope: "global", label: "v0" },
    { family: "inet", local: "10.75.8.102", prefixlen: 24, scope: "global", secondary: true, label: "v0" },
    { family: "inet", local: "10.75.8.103", prefixlen: 24, scope: "global", secondary: true, label: "v0:1" },
    { family: "inet6", local: "2001:db8::6", prefixlen: 64, scope: "global", nodad: true },
    { family: "inet6", local: "2001:db8::5", prefixlen: 64, scope: "global", tentative: true },
    { family: "inet6", local: "2001:db8::7", prefixlen: 64, scope: "global", dadfailed: true, tentative: true },
    { family: "inet6", local: "2001:0db8::0008", prefixlen: 64, scope: "global", deprecated: true, dynamic: true, valid_life_time: 3000, preferred_life_time: 0 },
    { family: "inet6", local: "fe80::24b9:50ff:fe6c:d671", prefixlen: 64, scope: "link" },
  ] },
  { ifindex: 4, ifname: "eth1", flags: ["NO-CARRIER", "BROADCAST", "MULTICAST", "UP"], operstate: "DOWN", addr_info: [
    { family: "inet", local: "192.168.20.5", prefixlen: 24, scope: "global", label: "eth1" },
  ] },
  { ifindex: 5, ifname: "eth2", flags: ["BROADCAST", "MULTICAST"], operstate: "DOWN", addr_info: [
    { family: "inet", local: "192.168.30.5", prefixlen: 24, scope: "global", label: "eth2" },
  ] },
  { ifindex: 6, ifname: "ifb0", flags: ["BROADCAST", "NOARP"], mtu: 1500, operstate: "DOWN", addr_info: [] },
  { ifindex: 7, ifname: "mgmt0", flags: ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], addr_info: [
    { family: "inet", local: "192.168.10.63", prefixlen: 24, scope: "global", label: "mgmt0" },
  ] },
]);

test("ip -json addr show: every address with its interface, loopback, link state and DAD state", () => {
  const entries = parseIpAddrJson(SAMPLE);
  assert.equal(entries.map((e) => `${e.ifname} ${e.address}${e.loopback ? " loopback" : ""}${e.up === false ? " down" : ""}${e.tentative ? " tentative" : ""}`), [
    "lo 127.0.0.1 loopback", "lo 10.0.0.77 loopback", "lo ::1 loopback",
    "v0 10.75.8.101", "v0 169.254.3.3", "v0 10.75.8.102", "v0 10.75.8.103", "v0 2001:db8::6", "v0 2001:db8::5 tentative", "v0 2001:db8::7 tentative",
    "v0 2001:0db8::0008", "v0 fe80::24b9:50ff:fe6c:d671",
    "eth1 192.168.20.5 down", "eth2 192.168.30.5 down", "mgmt0 192.168.10.63",
  ]);
  // Secondary addresses and IPv4 labels (v0:1) count, under their interface's name; deprecated ones too.
  assert.equal(nodeAddresses(entries), ["10.75.8.101", "10.75.8.102", "10.75.8.103", "192.168.10.63", "2001:db8::6", "2001:db8::8"]);
  assert.equal(nodeAddresses(entries, ["mgmt0", "v0"]), []);
});

test("ip -json addr show: missing or odd fields are tolerated; output that is not a JSON array is a precise error", () => {
  assert.equal(parseIpAddrJson("[]\n"), []);
  assert.equal(parseIpAddrJson(JSON.stringify([
    { ifindex: 9, addr_info: [{ local: "10.1.1.1" }] }, // no name, no flags, no family
    { ifname: "x", addr_info: [{ family: "inet" }, null, "junk", { family: "inet", local: 42 }, { family: "link", local: "aa:bb" }] },
    { ifname: "y" }, // no addr_info
    { ifname: "z", flags: "UP", addr_info: { local: "10.2.2.2" } }, // wrong types
    null, 7, "eth0",
  ])), [{ ifname: "if9", address: "10.1.1.1" }]);
  assert.throws(() => parseIpAddrJson(""), /^ip -json addr show: the output is not JSON \(.*\): empty output$/);
  assert.throws(() => parseIpAddrJson("1: lo: <LOOPBACK,UP> mtu 65536\n    inet 127.0.0.1/8"), /^ip -json addr show: the output is not JSON \(.*\): "1: lo: <LOOPBACK,UP> mtu 65536/);
  assert.throws(() => parseIpAddrJson('[{"ifname":"lo"'), /the output is not JSON/);
  assert.throws(() => parseIpAddrJson('{"ifname":"lo"}'), /expected a JSON array of interfaces, got object/);
  assert.throws(() => parseIpAddrJson("null"), /expected a JSON array of interfaces, got null/);
  fc.assert(fc.property(fc.json(), (text) => {
    try {
      for (const e of parseIpAddrJson(text)) assert.type(e.address, "string");
    } catch (err) {
      assert.match((err as Error).message, /expected a JSON array/);
    }
  }));
});

test.run();
