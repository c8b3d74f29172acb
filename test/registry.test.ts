import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildRegistry } from "../control/registry/build.ts";
import { loadRegistry } from "../control/registry/load.ts";
import { formatError, type ServiceEntry } from "../control/registry/model.ts";
import { parseRegistryText } from "../control/registry/parse.ts";
import { PROJECT_ROOT } from "../envoy/paths.ts";

const SE = (name: string, spec: string, ns = "default") => `apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata:
  name: ${name}
  namespace: ${ns}
spec:
${spec}`;

function errorsOf(text: string): string[] {
  return parseRegistryText(text, "f.yaml").errors.map(formatError);
}

test("the seed example: four resources, WorkloadEntry joined to service-b", async () => {
  const r = await loadRegistry(join(PROJECT_ROOT, "examples", "registry", "seed.yaml"));
  assert.equal(r.errors, []);
  assert.is(r.resources.length, 4);
  const built = buildRegistry(r.resources);
  assert.ok(built.ok);
  const byHost = new Map(built.registry.services.map((s) => [s.host, s]));
  assert.equal(byHost.get("service-a.default.svc.cluster.local")!.endpoints.map((e) => e.address), ["10.75.8.101"]);
  assert.equal(byHost.get("mgmt.default.svc.cluster.local")!.ports, [{ number: 9080, name: "http-mgmt", protocol: "HTTP", targetPort: 19080 }]);
  const b = byHost.get("service-b.default.svc.cluster.local")!;
  assert.equal(b.endpoints, [{ address: "10.75.8.102", addressType: "ip", ports: {}, labels: { app: "service-b" }, network: "data-plane", workloadEntry: "default/service-b-1" }]);
});

test("JSON, several documents, kind: List, normalised hosts and IPs; Istio's defaults: resolution NONE, location MESH_EXTERNAL, protocol detected", () => {
  const json = JSON.stringify({ apiVersion: "networking.istio.io/v1", kind: "List", items: [
    { apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: "x" }, spec: { hosts: ["X.Example.COM"], ports: [{ number: 80, name: "http" }], resolution: "STATIC", endpoints: [{ address: "FD00:0::5" }] } },
    { apiVersion: "networking.istio.io/v1alpha3", kind: "WorkloadEntry", metadata: { name: "w", namespace: "ns" }, spec: { address: "10.0.0.1", labels: { app: "w" } } },
    { apiVersion: "networking.istio.io/v1beta1", kind: "ServiceEntry", metadata: { name: "d" }, spec: { hosts: ["d.example"], ports: [{ number: 80, name: "http", protocol: "http" }] } },
  ] });
  const r = parseRegistryText(json, "f.json");
  assert.equal(r.errors, []);
  const se = r.resources[0] as ServiceEntry;
  assert.equal(se.hosts, ["x.example.com"]);
  assert.equal(se.endpoints[0]!.address, "fd00::5");
  assert.is(se.ports[0]!.protocol, "");
  assert.is(se.namespace, "default");
  assert.is(r.resources[1]!.namespace, "ns");
  const d = r.resources[2] as ServiceEntry;
  assert.equal([d.resolution, d.location, d.ports[0]!.protocol, d.exportTo], ["NONE", "MESH_EXTERNAL", "HTTP", []]);
  const multi = parseRegistryText(`${SE("a", "  hosts: [a.example]\n  ports: [{number: 1, name: p}]")}\n---\n---\n${SE("b", "  hosts: [b.example]\n  ports: [{number: 2, name: p}]")}\n`, "m.yaml");
  assert.equal(multi.errors, []);
  assert.equal(multi.resources.map((x) => x.name), ["a", "b"]);
  assert.is(multi.resources[1]!.origin.line, 11);
});

test("validation errors name file, line and reason (Istio's rules)", () => {
  const text = SE("svc", `  hosts:
    - svc.example
    - "10.0.0.1"
  ports:
    - number: 70000
      name: http
    - number: 80
      name: "bad_name"
      protocol: QUIC
  resolution: STATIC
  endpoints:
    - address: svc-1.example
      ports:
        grpc: 9000
    - address: 0.0.0.0
      labels:
        version: 1
        "bad key": x`);
  assert.equal(errorsOf(text), [
    "f.yaml:9:7: host \"10.0.0.1\" is invalid: domain name \"10.0.0.1\" invalid (top level domain \"1\" cannot be all-numeric)",
    "f.yaml:11:7: spec.ports[0].number must be a port number 1..65535, got 70000",
    "f.yaml:14:7: invalid port name: \"bad_name\" (a DNS-1123 label: letters, digits and '-', at most 63)",
    "f.yaml:15:7: unsupported protocol: QUIC",
    "f.yaml:18:7: spec.endpoints[0].address: \"svc-1.example\" is not an IPv4 or IPv6 address (resolution STATIC needs IP addresses; a DNS name needs resolution DNS or DNS_ROUND_ROBIN)",
    "f.yaml:20:9: endpoint port grpc is not defined by the service entry",
    "f.yaml:21:7: spec.endpoints[1].address: 0.0.0.0 is the unspecified address, not a host",
    "f.yaml:23:9: spec.endpoints[1].labels.version must be a string, got 1",
    "f.yaml:24:9: spec.endpoints[1].labels.bad key: invalid label key \"bad key\"",
  ]);
});

test("structural errors: missing fields, wrong types, apiVersion, unknown fields, exclusive fields", () => {
  assert.equal(errorsOf("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: x\n"), ["f.yaml:1:1: spec is required"]);
  assert.equal(errorsOf("apiVersion: v1\nkind: ServiceEntry\nmetadata: {name: x}\nspec:\n  hosts: a.example\n  ports: []\n"), [
    "f.yaml:1:1: apiVersion v1 is not one of networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3",
    "f.yaml:5:3: spec.hosts must be a list, got \"a.example\"",
  ]);
  assert.equal(errorsOf(SE("Bad_Name", "  hosts: [a.example]\n  ports: [{number: 1, name: p}, {number: 1, name: p}]\n  endpoints: []\n  workloadSelector: {labels: {app: a}}\n  resolution: STATIC")), [
    "f.yaml:4:3: metadata.name \"Bad_Name\" must be a lowercase DNS-1123 name",
    "f.yaml:8:34: service entry port 1 already defined",
    "f.yaml:8:45: service entry port name \"p\" already defined",
    "f.yaml:10:3: only one of WorkloadSelector or Endpoints is allowed in Service Entry",
  ]);
  assert.equal(errorsOf(SE("typo", "  hosts: [a.example]\n  resolutoin: DNS\n  ports: [{number: 1, name: p, targetport: 2}]")), [
    "f.yaml:8:3: spec.resolutoin: unknown field (known: hosts, addresses, ports, location, resolution, endpoints, workloadSelector, exportTo, subjectAltNames)",
    "f.yaml:9:32: spec.ports[0].targetport: unknown field (known: number, protocol, name, targetPort)",
  ]);
  assert.equal(errorsOf("- just\n- a list\n"), ["f.yaml:1:1: expected a Kubernetes-style object (apiVersion, kind, metadata, spec), got a list"]);
});

test("YAML syntax errors and duplicate keys are reported at their line", () => {
  const [syntax] = errorsOf("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nspec:\n  hosts: [a.example\n  ports: x\n");
  assert.match(syntax!, /^f\.yaml:\d+:\d+: /);
  const dup = errorsOf("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nkind: WorkloadEntry\n");
  assert.equal(dup.length, 1);
  assert.match(dup[0]!, /^f\.yaml:3:1: Map keys must be unique/);
});

test("unknown kinds are skipped with a warning, not an error", () => {
  const r = parseRegistryText(`apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n---\n${SE("a", "  hosts: [a.example]\n  ports: [{number: 1, name: p}]")}`, "f.yaml");
  assert.equal(r.errors, []);
  assert.equal(r.warnings.map(formatError), ["f.yaml:2:1: kind VirtualService is not ServiceEntry or WorkloadEntry; skipped"]);
  assert.is(r.resources.length, 1);
});

test("documents that conflict across files: duplicate names, host:port pairs within a namespace; across namespaces a warning", () => {
  const a = parseRegistryText(SE("a", "  hosts: [a.example]\n  ports: [{number: 80, name: http}]"), "one.yaml").resources;
  const a2 = parseRegistryText(SE("a", "  hosts: [other.example]\n  ports: [{number: 80, name: http}]"), "two.yaml").resources;
  const b = parseRegistryText(SE("b", "  hosts: [a.example]\n  ports: [{number: 80, name: web}]"), "three.yaml").resources;
  const c = parseRegistryText(SE("c", "  hosts: [a.example]\n  ports: [{number: 80, name: web}]", "other"), "four.yaml").resources;
  const dup = buildRegistry([...a, ...a2]);
  assert.equal(!dup.ok && dup.errors.map(formatError), ["two.yaml:1: ServiceEntry default/a is already defined at one.yaml:1"]);
  assert.equal(!dup.ok && dup.offenders, a2, "the later document is the one to leave out");
  const clash = buildRegistry([...a, ...b]);
  assert.equal(!clash.ok && clash.errors.map(formatError), ["three.yaml:1: host a.example port 80 is already defined by ServiceEntry default/a at one.yaml:1"]);
  const across = buildRegistry([...a, ...c]);
  assert.ok(across.ok);
  assert.equal(across.ok && across.registry.warnings.map(formatError), ["four.yaml:1: host a.example is also defined in namespace default (ServiceEntry default/a): a proxy that sees both uses the one of its own namespace, else default's"]);
});

test("a directory: yaml, yml and json files in name order; others ignored; a missing path is an error", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mp-reg-"));
  try {
    writeFileSync(join(dir, "b.yml"), SE("b", "  hosts: [b.example]\n  ports: [{number: 2, name: p}]"));
    writeFileSync(join(dir, "a.json"), JSON.stringify({ apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: "a" }, spec: { hosts: ["a.example"], ports: [{ number: 1, name: "p" }] } }));
    writeFileSync(join(dir, ".b.yml.swp"), "garbage: [");
    writeFileSync(join(dir, "notes.txt"), "garbage: [");
    const r = await loadRegistry(dir);
    assert.equal(r.errors, []);
    assert.equal(r.resources.map((x) => x.name), ["a", "b"]);
    const missing = await loadRegistry(join(dir, "nope"));
    assert.equal(missing.errors.map(formatError), [`${join(dir, "nope")}:0: no such file or directory`]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the loopback example parses", () => {
  const file = join(PROJECT_ROOT, "examples", "registry", "loopback.yaml");
  const r = parseRegistryText(readFileSync(file, "utf8"), file);
  assert.equal(r.errors, []);
  assert.ok(buildRegistry(r.resources).ok);
});

test.run();
