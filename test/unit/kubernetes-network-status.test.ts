// Multus's network-status annotation read as untrusted text: what Multus writes is read back exactly
// (IPs canonical), anything else is a warning naming the pod and what was left out, and no input
// throws (fast-check over arbitrary strings and JSON). podIps joins it with status.podIPs.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import type { V1Pod } from "@kubernetes/client-node";
import {
  isNetwork, NETWORK_STATUS_ANNOTATION, NETWORK_STATUS_LIMITS, parseNetworkStatus, podNetworkStatus, type NetworkAttachment,
} from "../../control/registry/sources/kubernetes/network-status.ts";
import { podIps } from "../../control/registry/sources/kubernetes/pod-ips.ts";

const PREFIX = `pod default/a-1: annotation ${NETWORK_STATUS_ANNOTATION}`;

/** The seed's pod: eth0 on the cluster network, net1 on default/data-net. */
const SEED_STATUS = JSON.stringify([
  { name: "kindnet", interface: "eth0", ips: ["192.168.10.63"], mac: "0a:58:c0:a8:0a:3f", default: true, dns: {} },
  { name: "default/data-net", interface: "net1", ips: ["10.75.8.101"], mac: "62:1e:9a:7c:00:01", dns: {} },
]);

const pod = (annotation?: unknown, podIPs: string[] = ["192.168.10.63"]): V1Pod => ({
  metadata: { name: "a-1", namespace: "default", ...(annotation !== undefined ? { annotations: { [NETWORK_STATUS_ANNOTATION]: annotation as string } } : {}) },
  status: { podIP: podIPs[0], podIPs: podIPs.map((ip) => ({ ip })) },
});

test("the seed's pod: both networks, their interfaces and IPs", () => {
  const s = parseNetworkStatus(SEED_STATUS, "default/a-1");
  assert.equal(s.warnings, []);
  assert.equal(s.networks, [
    { name: "kindnet", interface: "eth0", ips: ["192.168.10.63"], mac: "0a:58:c0:a8:0a:3f", default: true },
    { name: "default/data-net", interface: "net1", ips: ["10.75.8.101"], mac: "62:1e:9a:7c:00:01", default: false },
  ]);
});

test("IPs are canonical and unique; IPv4-mapped IPv6 is the IPv4 address", () => {
  const s = parseNetworkStatus(JSON.stringify([{ name: "ns/v6", ips: ["2001:DB8:0:0::1", "2001:db8::1", "::ffff:10.0.0.1", "10.0.0.1"] }]), "default/a-1");
  assert.equal(s.warnings, []);
  assert.equal(s.networks[0]!.ips, ["2001:db8::1", "10.0.0.1"]);
});

test("no annotation, or an empty one: no networks, nothing to say", () => {
  assert.equal(podNetworkStatus(pod()), { networks: [], warnings: [] });
  assert.equal(podNetworkStatus(pod("")), { networks: [], warnings: [] });
});

test("a bad annotation as a whole: one warning naming the pod, no networks", () => {
  const cases: [string, string][] = [
    ["{not json", "is not JSON"],
    ['{"name":"x"}', "must be a JSON list of networks, got a map"],
    ['"x"', 'must be a JSON list of networks, got "x"'],
    [JSON.stringify(Array.from({ length: 65 }, (_, i) => ({ name: `n${i}` }))), "lists 65 networks, over the limit of 64"],
    [" ".repeat(NETWORK_STATUS_LIMITS.maxBytes + 1), `is ${NETWORK_STATUS_LIMITS.maxBytes + 1} characters, over the limit of 65536 bytes`],
    [`["${"é".repeat(40_000)}"]`, "bytes, over the limit of 65536"],
  ];
  for (const [text, expected] of cases) {
    const s = parseNetworkStatus(text, "default/a-1");
    assert.equal(s.networks, [], text.slice(0, 40));
    assert.is(s.warnings.length, 1, text.slice(0, 40));
    assert.ok(s.warnings[0]!.startsWith(`${PREFIX}: `) && s.warnings[0]!.includes(expected) && s.warnings[0]!.endsWith("; ignored"), s.warnings[0]);
  }
  const notString = podNetworkStatus(pod(42));
  assert.equal(notString.warnings, [`${PREFIX}: must be a string, got number; ignored`]);
});

test("a bad entry: left out with a warning that names its place and network; the others stand", () => {
  const cases: [unknown, string][] = [
    [5, "[1]: must be a map, got 5; this entry left out"],
    [{ ips: ["10.0.0.1"] }, "[1].name: is required; this entry left out"],
    [{ name: 7 }, "[1].name: must be a string, got 7; this entry left out"],
    [{ name: "a b" }, '[1].name: "a b" is not a network name'],
    [{ name: "a/b/c" }, '[1].name: "a/b/c" is not a network name'],
    [{ name: "x".repeat(254) }, "[1].name: is 254 characters, over the limit of 253"],
    [{ name: "ns/n", ips: "10.0.0.1" }, '[1].ips: must be a list of IP addresses, got "10.0.0.1"; network ns/n left out'],
    [{ name: "ns/n", ips: [1] }, "[1].ips[0]: must be a string, got 1; network ns/n left out"],
    [{ name: "ns/n", ips: ["10.0.0.300"] }, '[1].ips[0]: "10.0.0.300" is not an IPv4 or IPv6 address; network ns/n left out'],
    [{ name: "ns/n", ips: ["10.0.0.1/24"] }, '[1].ips[0]: "10.0.0.1/24" is not an IPv4 or IPv6 address'],
    [{ name: "ns/n", ips: ["fe80::1%eth0"] }, "has a zone index"],
    [{ name: "ns/n", ips: [" 10.0.0.1"] }, "is not a bare IPv4 or IPv6 address"],
    [{ name: "ns/n", ips: ["0.0.0.0"] }, "[1].ips[0]: 0.0.0.0 is the unspecified address, not a host"],
    [{ name: "ns/n", ips: Array.from({ length: 17 }, (_, i) => `10.0.0.${i + 1}`) }, "[1].ips: lists 17 addresses, over the limit of 16"],
    [{ name: "ns/n", interface: ["net1"] }, "[1].interface: must be a string, got a list"],
    [{ name: "ns/n", interface: "net 1" }, '[1].interface: "net 1" is not an interface name'],
    [{ name: "ns/n", default: "yes" }, '[1].default: must be true or false, got "yes"'],
    [{ name: "ns/n", dns: [] }, "[1].dns: must be a map, got a list"],
    [{ name: "ns/n", mac: "m".repeat(65) }, "[1].mac: is 65 characters, over the limit of 64"],
  ];
  for (const [bad, expected] of cases) {
    const s = parseNetworkStatus(JSON.stringify([{ name: "kindnet", ips: ["192.168.10.63"], default: true }, bad]), "default/a-1");
    assert.equal(s.networks.map((n) => n.name), ["kindnet"], JSON.stringify(bad).slice(0, 60));
    assert.is(s.warnings.length, 1);
    assert.ok(s.warnings[0]!.startsWith(`${PREFIX}: `) && s.warnings[0]!.includes(expected), `${s.warnings[0]}\n  expected: ${expected}`);
  }
});

test("fields Multus may add later are ignored; null means unset", () => {
  const s = parseNetworkStatus(JSON.stringify([{ name: "ns/n", ips: null, interface: null, "device-info": { type: "pci" }, gateway: ["10.0.0.254"] }]), "default/a-1");
  assert.equal(s.warnings, []);
  assert.equal(s.networks, [{ name: "ns/n", ips: [], default: false }]);
});

test("deep nesting within the size limit neither throws nor overflows", () => {
  const deep = "[".repeat(30_000) + "]".repeat(30_000);
  const s = parseNetworkStatus(deep, "default/a-1");
  assert.equal(s.networks, []);
  assert.is(s.warnings.length, 1);
});

test("a bare network name is the pod's own namespace's", () => {
  const ref = { namespace: "default", name: "data-net" };
  assert.ok(isNetwork("default/data-net", ref, "other"));
  assert.ok(isNetwork("data-net", ref, "default"));
  assert.not.ok(isNetwork("data-net", ref, "other"));
  assert.not.ok(isNetwork("other/data-net", ref, "default"));
  assert.not.ok(isNetwork("default/data", ref, "default"));
});

test("never throws, on any string or JSON value; every warning names the pod", () => {
  const check = (text: string) => {
    const s = parseNetworkStatus(text, "ns/p");
    assert.ok(Array.isArray(s.networks) && Array.isArray(s.warnings));
    for (const w of s.warnings) assert.ok(w.startsWith(`pod ns/p: annotation ${NETWORK_STATUS_ANNOTATION}: `), w);
    assert.ok(s.warnings.length <= s.networks.length + NETWORK_STATUS_LIMITS.maxNetworks + 1);
  };
  fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 300 }), check), { numRuns: 500 });
  fc.assert(fc.property(fc.jsonValue({ maxDepth: 5 }), (v) => check(JSON.stringify(v) ?? "")), { numRuns: 500 });
  const entry = fc.dictionary(fc.constantFrom("name", "interface", "ips", "mac", "default", "dns", "device-info", "x"), fc.jsonValue({ maxDepth: 2 }));
  fc.assert(fc.property(fc.array(entry, { maxLength: 8 }), (v) => check(JSON.stringify(v))), { numRuns: 500 });
});

const ipv4 = fc.ipV4();
/** RFC 5952 spelling, by the URL parser (an oracle independent of identity/ip.ts). */
const urlSpelling = (ip: string) => new URL(`http://[${ip}]`).hostname.slice(1, -1);
/** IPv4-mapped addresses are read as IPv4; the other IPv6 addresses keep their family. */
const ipv6 = fc.ipV6().filter((ip) => !urlSpelling(ip).startsWith("::ffff:"));
const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
const attachment: fc.Arbitrary<NetworkAttachment> = fc.record({
  name: fc.oneof(label, fc.tuple(label, label).map(([ns, n]) => `${ns}/${n}`)),
  interface: fc.option(fc.stringMatching(/^[a-z][a-z0-9]{0,14}$/), { nil: undefined }),
  // The unspecified addresses in any spelling ("::", "0::", "0:0::0") are refused by design.
  ips: fc.uniqueArray(fc.oneof(ipv4, ipv6).filter((ip) => ip !== "0.0.0.0" && (!ip.includes(":") || urlSpelling(ip) !== "::")), { maxLength: NETWORK_STATUS_LIMITS.maxIpsPerNetwork }),
  mac: fc.option(fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 6, maxLength: 6 }).map((b) => b.map((x) => x.toString(16).padStart(2, "0")).join(":")), { nil: undefined }),
  default: fc.boolean(),
}, { requiredKeys: ["name", "ips", "default"] });

test("what Multus writes is read back as written (IPs in canonical form)", () => {
  fc.assert(fc.property(fc.array(attachment, { maxLength: NETWORK_STATUS_LIMITS.maxNetworks }), (networks) => {
    const s = parseNetworkStatus(JSON.stringify(networks), "ns/p");
    assert.equal(s.warnings, []);
    const canonical = networks.map((n) => ({
      name: n.name, ...(n.interface ? { interface: n.interface } : {}),
      ips: [...new Set(n.ips.map((ip) => (ip.includes(":") ? urlSpelling(ip) : ip)))],
      ...(n.mac ? { mac: n.mac } : {}), default: n.default,
    }));
    assert.equal(s.networks, canonical);
  }), { numRuns: 300 });
});

test("podIps: status.podIPs and every network-status IP, canonical, once each, with where each was read", () => {
  const r = podIps(pod(SEED_STATUS));
  assert.equal(r.ips, ["192.168.10.63", "10.75.8.101"]);
  assert.equal(r.sources, [
    { ip: "192.168.10.63", from: "status.podIPs" },
    { ip: "192.168.10.63", from: "network-status:kindnet/eth0" },
    { ip: "10.75.8.101", from: "network-status:default/data-net/net1" },
  ]);
  assert.equal(r.warnings, []);

  const dual = podIps(pod(JSON.stringify([{ name: "ns/v6", ips: ["FD00::0:1"] }]), ["10.0.0.1", "fd00::1"]));
  assert.equal(dual.ips, ["10.0.0.1", "fd00::1"]);
  assert.equal(dual.sources.map((s) => s.from), ["status.podIPs", "status.podIPs", "network-status:ns/v6"]);

  const bad = podIps(pod("[oops", ["not-an-ip", "10.0.0.2"]));
  assert.equal(bad.ips, ["10.0.0.2"]);
  assert.equal(bad.warnings.length, 2);
  assert.ok(bad.warnings[0]!.startsWith('pod default/a-1: status.podIPs[0]: "not-an-ip"'), bad.warnings[0]);
  assert.ok(bad.warnings[1]!.startsWith(`${PREFIX}: is not JSON`), bad.warnings[1]);

  assert.equal(podIps({ metadata: { name: "p", namespace: "ns" } }), { ips: [], sources: [], warnings: [] });
});

test.run();
