import { test } from "uvu";
import * as assert from "uvu/assert";
import { normaliseIp, parseCidr } from "../../control/identity/ip.ts";
import { parseInstanceIps } from "../../control/identity/instance-ips.ts";
import { parseNodeId } from "../../control/identity/node-id.ts";
import { proxyIdentity } from "../../control/identity/proxy.ts";

test("IPv4 and IPv6 addresses get one canonical spelling", () => {
  assert.is(normaliseIp(" 10.75.8.101 "), "10.75.8.101");
  assert.is(normaliseIp("2001:DB8:0:0:0:0:0:1"), "2001:db8::1");
  assert.is(normaliseIp("[2001:db8::1]"), "2001:db8::1");
  assert.is(normaliseIp("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1"); // first longest run
  assert.is(normaliseIp("fd00:0:0:1::"), "fd00:0:0:1::");
  assert.is(normaliseIp("::ffff:192.168.10.63"), "192.168.10.63"); // IPv4-mapped
  assert.is(normaliseIp("::1"), "::1");
  assert.is(normaliseIp("64:ff9b::10.0.0.1"), "64:ff9b::a00:1");
  assert.is(normaliseIp("1:2:3:4:5:6:7:8"), "1:2:3:4:5:6:7:8");
  assert.is(normaliseIp("1:0:3:4:5:6:7:8"), "1:0:3:4:5:6:7:8"); // a single zero group is not "::"
  for (const bad of ["", "10.75.8", "10.75.8.256", "010.1.1.1", "fe80::1%eth0", "host.example", "1::2::3", "10.0.0.1/24"]) {
    assert.is(normaliseIp(bad), undefined, bad);
  }
});

test("CIDRs: address plus prefix length, bare addresses are host routes", () => {
  assert.equal(parseCidr("10.0.0.0/8"), { ok: true, cidr: { address: "10.0.0.0", prefixLen: 8, family: 4 } });
  assert.equal(parseCidr("2001:DB8::/32"), { ok: true, cidr: { address: "2001:db8::", prefixLen: 32, family: 6 } });
  assert.equal(parseCidr("10.0.0.1"), { ok: true, cidr: { address: "10.0.0.1", prefixLen: 32, family: 4 } });
  assert.not.ok(parseCidr("10.0.0.0/33").ok);
  assert.not.ok(parseCidr("10.0.0.0/").ok);
});

test("node.id in Istio's form yields its IP, name and namespace; anything else is opaque", () => {
  assert.equal(parseNodeId("sidecar~192.168.10.63~a-1.default~default.svc.cluster.local"),
    { form: "istio", type: "sidecar", ip: "192.168.10.63", name: "a-1", namespace: "default", domain: "default.svc.cluster.local" });
  const v6 = parseNodeId("sidecar~FD00::63~a-1.prod~prod.svc.cluster.local");
  assert.is(v6.form === "istio" && v6.ip, "fd00::63");
  const bad = parseNodeId("sidecar~not-an-ip~a-1.default~default.svc.cluster.local");
  assert.is(bad.form === "istio" && bad.invalidIp, "not-an-ip");
  assert.is(bad.form === "istio" && bad.ip, undefined);
  for (const opaque of ["my-envoy", "", "sidecar~1.2.3.4~x", "gateway~1.2.3.4~a.b~c", "sidecar~1.2.3.4~a.b~c~d"]) {
    assert.equal(parseNodeId(opaque), { form: "opaque" }, opaque);
  }
});

test("INSTANCE_IPS: commas, semicolons, whitespace and lists; duplicates removed; garbage reported, not fatal", () => {
  assert.equal(parseInstanceIps("192.168.10.63,10.75.8.101"), { ips: ["192.168.10.63", "10.75.8.101"], invalid: [] });
  assert.equal(parseInstanceIps(" 192.168.10.63 ;10.75.8.101\n\tfd00::1 , "), { ips: ["192.168.10.63", "10.75.8.101", "fd00::1"], invalid: [] });
  assert.equal(parseInstanceIps(["10.0.0.1", "10.0.0.2,10.0.0.3"]).ips, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
  assert.equal(parseInstanceIps("10.0.0.1,10.0.0.1,FD00:0::1,fd00::1,::ffff:10.0.0.1").ips, ["10.0.0.1", "fd00::1"]);
  const garbage = parseInstanceIps("10.0.0.1,banana,300.1.1.1,,fe80::1%eth0");
  assert.equal(garbage.ips, ["10.0.0.1"]);
  assert.equal(garbage.invalid.map((i) => i.entry), ["banana", "300.1.1.1", "fe80::1%eth0"]);
  assert.equal(parseInstanceIps(undefined), { ips: [], invalid: [] });
  assert.equal(parseInstanceIps(42).invalid.length, 1);
  assert.equal(parseInstanceIps(["10.0.0.1", { x: 1 }]).ips, ["10.0.0.1"]);
});

test("a proxy's node IPs are node.id's IP then INSTANCE_IPS (a string or a list)", () => {
  const fromStruct = proxyIdentity({
    id: "sidecar~192.168.10.63~a-1.default~default.svc.cluster.local",
    metadata: { INSTANCE_IPS: "10.75.8.101,192.168.10.63" },
  });
  assert.equal(fromStruct.nodeIps, ["192.168.10.63", "10.75.8.101"]);
  assert.is(fromStruct.nodeIdIp, "192.168.10.63");
  assert.equal(fromStruct.problems, []);
  const fromList = proxyIdentity({ id: "x", metadata: { INSTANCE_IPS: ["fd00::1", "bogus"] } });
  assert.equal(fromList.nodeIps, ["fd00::1"]);
  assert.is(fromList.problems.length, 1);
  assert.match(fromList.problems[0]!, /bogus/);
  const plain = proxyIdentity({ id: "sidecar~nope~a.b~b.svc.cluster.local", metadata: { INSTANCE_IPS: "10.0.0.9" } });
  assert.equal(plain.nodeIps, ["10.0.0.9"]);
  assert.is(plain.problems.length, 1);
  assert.equal(proxyIdentity({}).nodeIps, []);
});

test("MULTIPLANE_XDS_SECRETS: the SDS files of the xDS secrets; anything else is reported and ignored, never fatal", () => {
  const id = "sidecar~192.168.10.63~a-1.default~default.svc.cluster.local";
  const with_ = (v: unknown) => proxyIdentity({ id, metadata: { MULTIPLANE_XDS_SECRETS: v } });
  const ok = with_({ ca: "/etc/mp/envoy.xds-ca.json", cert: "/etc/mp/envoy.xds-cert.json" });
  assert.equal(ok.xdsSecrets, { ca: "/etc/mp/envoy.xds-ca.json", cert: "/etc/mp/envoy.xds-cert.json" });
  assert.equal(ok.problems, []);
  assert.equal(with_({ ca: "/etc/mp/envoy.xds-ca.json" }).xdsSecrets, { ca: "/etc/mp/envoy.xds-ca.json" }, "TLS without a client certificate");
  assert.is(proxyIdentity({ id, metadata: {} }).xdsSecrets, undefined, "absent: an older bootstrap, static secrets");
  assert.equal(proxyIdentity({ id, metadata: {} }).problems, []);
  const cases: [unknown, string][] = [
    ["/etc/mp/ca.json", "expected { ca: PATH, cert: PATH } (cert optional), got \"/etc/mp/ca.json\""],
    [["/a"], "expected { ca: PATH, cert: PATH }"],
    [null, "expected { ca: PATH, cert: PATH }"],
    [{}, "ca must be a string (an absolute path), got \"undefined\""],
    [{ ca: 7 }, "ca must be a string (an absolute path), got \"7\""],
    [{ ca: "etc/ca.json" }, "ca \"etc/ca.json\" is not an absolute path"],
    [{ ca: "/a", cert: "" }, "cert \"\" is not an absolute path"],
    [{ ca: "/a", cert: { x: 1 } }, "cert must be a string (an absolute path), got \"{\\\"x\\\":1}\""],
    [{ ca: "/a\nb" }, "ca \"/a\\nb\" contains a control character"],
    [{ ca: `/${"x".repeat(5000)}` }, "ca is 5001 bytes, over the limit of 4096"],
  ];
  for (const [value, reason] of cases) {
    const p = with_(value);
    assert.is(p.xdsSecrets, undefined, JSON.stringify(value)?.slice(0, 50));
    assert.is(p.problems.length, 1, JSON.stringify(p.problems));
    assert.ok(p.problems[0]!.startsWith(`node "${id}" MULTIPLANE_XDS_SECRETS: ${reason}`), p.problems[0]);
    assert.ok(p.problems[0]!.endsWith("; ignored (the loop guard module's cluster names the bootstrap's static secrets)"), p.problems[0]);
    assert.ok(p.problems[0]!.length < 600, "echoes are clipped");
  }
  const extra = with_({ ca: "/a", cert: "/b", key: "/c" });
  assert.equal(extra.xdsSecrets, { ca: "/a", cert: "/b" });
  assert.equal(extra.problems, [`node "${id}" MULTIPLANE_XDS_SECRETS: unknown key "key" ignored`]);
});

test.run();
