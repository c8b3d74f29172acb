// The planes file: what it accepts (the README's example, JSON too), every bad input refused with its
// file:line:column, which plane an address is on (fast-check against a plain bit comparison), and
// `serve --planes`: an invalid file stops the start; a reload that does not parse keeps the last good
// planes serving, a good one reshapes every proxy's clusters.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cidrContains, parseCidr } from "../../control/identity/ip.ts";
import { parsePlanes } from "../../control/planes/parse.ts";
import { formatError } from "../../control/registry/model.ts";
import { PlanesFileError } from "../../control/serve/planes-file.ts";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { adsClient, node } from "../support/ads-client.ts";
import { waitFor } from "../support/net.ts";

const EXAMPLE = join(PROJECT_ROOT, "examples", "planes.yaml");
const problems = (text: string) => parsePlanes(text, "p.yaml").errors.map(formatError);

test("the README's example: two planes, the data plane's settings as written", () => {
  const r = parsePlanes(readFileSync(EXAMPLE, "utf8"), EXAMPLE);
  assert.equal(r.errors, []);
  assert.equal(r.planes!.list, [
    { name: "data", cidrs: ["10.75.8.0/24", "172.20.0.0/16"], bindSource: true, isolated: true, dscp: 46, connectTimeoutMs: 250, circuitBreakers: { maxConnections: 10000 } },
    { name: "management", cidrs: ["192.168.10.0/24"], bindSource: false, isolated: false },
  ]);
  const readme = readFileSync(join(PROJECT_ROOT, "README.md"), "utf8");
  assert.ok(readme.includes(readFileSync(EXAMPLE, "utf8").trimEnd()), "README quotes examples/planes.yaml as it is");
});

test("JSON is YAML: the same planes; every threshold and duration form", () => {
  const r = parsePlanes(JSON.stringify({ planes: [{ name: "media", cidrs: ["2001:DB8::/32", "10.0.0.0/8"], dscp: 0, connectTimeout: "1m30.5s",
    maxConnections: 1, maxPendingRequests: 2, maxRequests: 3, maxRetries: 4, maxConnectionPools: 4294967295 }] }), "p.json");
  assert.equal(r.errors, []);
  assert.equal(r.planes!.list[0], { name: "media", cidrs: ["2001:db8::/32", "10.0.0.0/8"], bindSource: false, isolated: false, dscp: 0, connectTimeoutMs: 90_500,
    circuitBreakers: { maxConnections: 1, maxPendingRequests: 2, maxRequests: 3, maxRetries: 4, maxConnectionPools: 4294967295 } });
});

test("overlapping ranges are refused where the later one is written, across planes and within one, IPv4 and IPv6", () => {
  assert.equal(problems("planes:\n- name: a\n  cidrs: [10.0.0.0/8]\n- name: b\n  cidrs: [10.1.0.0/16]\n"),
    ["p.yaml:5:11: 10.1.0.0/16 (plane b) overlaps 10.0.0.0/8 (plane a): an address must be on one plane"]);
  assert.equal(problems("planes:\n- name: a\n  cidrs: [\"fd00::/64\", \"fd00::/64\"]\n"),
    ["p.yaml:3:24: fd00::/64 (plane a) overlaps fd00::/64 (plane a): an address must be on one plane"]);
  assert.equal(problems("planes:\n- name: a\n  cidrs: [10.0.0.0/9, 10.128.0.0/9, \"::/0\"]\n"), [], "adjacent ranges and another family do not overlap");
});

test("unknown keys, DSCP out of 0..63, bad durations, names and ranges: each refused on its line", () => {
  assert.equal(problems("plane: []\n"), ["p.yaml:1:1: plane: unknown field (known: planes)", "p.yaml:1:1: planes is required"]);
  assert.equal(problems("planes:\n- name: a\n  cidrs: [10.0.0.0/8]\n  bindsource: true\n"),
    ["p.yaml:4:3: planes[0].bindsource: unknown field (known: name, cidrs, dscp, bindSource, isolated, connectTimeout, maxConnections, maxPendingRequests, maxRequests, maxRetries, maxConnectionPools)"]);
  for (const [dscp, got] of [["64", "64"], ["-1", "-1"], ["4.5", "4.5"], ['"46"', '"46"'], ["true", "true"]]) {
    assert.equal(problems(`planes:\n- name: a\n  cidrs: [10.0.0.0/8]\n  dscp: ${dscp}\n`), [`p.yaml:4:3: planes[0].dscp must be an integer 0..63, got ${got}`]);
  }
  for (const bad of ["250", "5", "1.5ms", "0s", "25h", "-1s", "1d", "ms"]) {
    const p = problems(`planes:\n- name: a\n  cidrs: [10.0.0.0/8]\n  connectTimeout: ${bad}\n`);
    assert.is(p.length, 1, `${bad}: ${p}`);
    assert.match(p[0]!, /^p\.yaml:4:3: planes\[0\]\.connectTimeout must be/);
  }
  assert.equal(problems("planes:\n- name: Data_1\n  cidrs: [10.0.0.0/8]\n- name: x\n  cidrs: [10.0.0.1/8, 300.0.0.0/8]\n- name: x\n  cidrs: []\n  maxConnections: -2\n  isolated: yes\n"), [
    'p.yaml:2:3: planes[0].name "Data_1" must be a DNS label (lowercase letters, digits and \'-\')',
    "p.yaml:5:11: planes[1].cidrs[0]: 10.0.0.1/8 has host bits set (the range is 10.0.0.0/8)",
    'p.yaml:5:23: planes[1].cidrs[1]: 300.0.0.0/8 is not a CIDR range ("300.0.0.0" is not an IPv4 or IPv6 address)',
    "p.yaml:6:3: plane x is defined twice (planes[1] and planes[2])",
    "p.yaml:7:3: planes[2].cidrs must list at least one range",
    'p.yaml:9:3: planes[2].isolated must be true or false, got "yes"',
    "p.yaml:8:3: planes[2].maxConnections must be an integer 0..4294967295, got -2",
  ]);
  assert.match(problems("planes: [\n")[0]!, /^p\.yaml:\d+:\d+: /, "a syntax error has a place too");
});

test("an address's plane is the first plane whose range holds it (property: a plain bit comparison agrees)", () => {
  const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join("."));
  fc.assert(fc.property(fc.array(fc.tuple(v4, fc.integer({ min: 0, max: 32 })), { minLength: 1, maxLength: 6 }), fc.array(v4, { maxLength: 20 }), (ranges, ips) => {
    // Canonical, non-overlapping ranges: keep each range only if it overlaps none kept before.
    const kept: string[] = [];
    for (const [ip, len] of ranges) {
      const c = parseCidr(`${ip}/${len}`);
      if (!c.ok) continue;
      const net = `${maskV4(ip, len)}/${len}`;
      if (kept.some((k) => overlaps(k, net))) continue;
      kept.push(net);
    }
    const text = `planes:\n${kept.map((k, i) => `- name: p${i}\n  cidrs: [${k}]\n`).join("")}`;
    const planes = parsePlanes(text, "p.yaml").planes!;
    for (const ip of [...ips, ...kept.map((k) => k.split("/")[0]!)]) {
      const want = kept.findIndex((k) => { const c = parseCidr(k); return c.ok && cidrContains(c.cidr, ip); });
      assert.is(planes.planeOf(ip)?.name, want < 0 ? undefined : `p${want}`, `${ip} in ${kept}`);
    }
  }), { numRuns: 300 });
  const six = parsePlanes("planes:\n- name: a\n  cidrs: [\"2001:db8:0:1::/64\"]\n", "p").planes!;
  assert.is(six.planeOf("2001:db8:0:1:ffff::9")?.name, "a");
  assert.is(six.planeOf("2001:db8:0:2::9"), undefined);
  assert.is(six.planeOf("10.0.0.1"), undefined);
});

function maskV4(ip: string, len: number): string {
  const n = ip.split(".").reduce((a, b) => a * 256 + Number(b), 0);
  const size = 2 ** (32 - len);
  const net = Math.floor(n / size) * size;
  return [24, 16, 8, 0].map((s) => Math.floor(net / 2 ** s) % 256).join(".");
}
function overlaps(a: string, b: string): boolean {
  const [x, y] = [parseCidr(a), parseCidr(b)];
  if (!x.ok || !y.ok) return false;
  return cidrContains(x.cidr, y.cidr.address) || cidrContains(y.cidr, x.cidr.address);
}

let dir: string;
let cp: ControlPlane | undefined;
test.after(async () => {
  await cp?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("serve --planes: an invalid file stops the start; a bad reload keeps the last good planes, a good one reshapes the clusters", async () => {
  dir = mkdtempSync(join(tmpdir(), "multiplane-planes-"));
  const registry = join(dir, "registry.yaml");
  const planes = join(dir, "planes.yaml");
  writeFileSync(registry, "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: media, namespace: default}\nspec:\n  hosts: [media.example]\n  ports: [{number: 5060, name: sip, protocol: TCP}]\n  resolution: STATIC\n  endpoints: [{address: 172.20.0.5}]\n");
  writeFileSync(planes, "planes:\n- name: data\n  cidrs: [172.20.0.0/16]\n  dscp: 64\n");
  const err = await serve({ registry, planesFile: planes, xdsPort: 0, httpPort: false, log: () => {} }).then(() => undefined, (e: Error) => e);
  assert.instance(err, PlanesFileError);
  assert.match(err!.message, `--planes: ${planes} is invalid:\n  ${planes}:4:3: planes[0].dscp must be an integer 0..63, got 64`);

  writeFileSync(planes, "planes:\n- name: data\n  cidrs: [172.20.0.0/16]\n  dscp: 46\n");
  const logs: string[] = [];
  cp = await serve({ registry, planesFile: planes, xdsPort: 0, httpPort: false, log: (l) => logs.push(l) });
  const client = adsClient(`127.0.0.1:${cp.xds.port}`);
  const call = client.StreamAggregatedResources();
  call.on("error", () => {});
  call.on("data", () => {});
  const id = "sidecar~10.0.0.9~app.default~default.svc.cluster.local";
  call.write({ node: node(id, "10.0.0.9"), type_url: TYPE_URL.cluster });
  const tos = () => (cp!.view.configDump(id)?.clusters.find((c) => c.name === "outbound|5060||media.example")?.upstream_bind_config?.socket_options?.[0]?.int_value);
  try {
    assert.ok(await waitFor(() => tos() === 184, 5000), `DSCP 46 at the start: ${tos()}`);
    writeFileSync(planes, "planes:\n- name: data\n  cidrs: [172.20.0.0/16]\n  dscp: 99\n");
    assert.ok(await waitFor(() => logs.some((l) => l.includes("is invalid; the last good planes keep serving")), 5000), logs.join("\n"));
    assert.ok(logs.some((l) => l.includes(`${planes}:4:3: planes[0].dscp must be an integer 0..63, got 99`)));
    assert.is(tos(), 184, "the last good planes serve");
    writeFileSync(planes, "planes:\n- name: data\n  cidrs: [172.20.0.0/16]\n  dscp: 10\n");
    assert.ok(await waitFor(() => tos() === 40, 5000), `DSCP 10 after the reload: ${tos()}`);
    assert.ok(logs.some((l) => l.startsWith("planes: data (172.20.0.0/16, DSCP 10)")), logs.join("\n"));
    unlinkSync(planes);
    assert.ok(await waitFor(() => logs.some((l) => l.includes("no such file or directory; the last good planes keep serving")), 5000), logs.join("\n"));
    assert.is(tos(), 40, "a removed file changes nothing");
  } finally {
    call.cancel();
    client.close();
  }
});

test.run();
