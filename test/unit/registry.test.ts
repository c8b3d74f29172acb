import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildRegistry } from "../../control/registry/build.ts";
import { loadRegistry } from "../../control/registry/sources/files/load.ts";
import { BODY_LIMITS, FILE_LIMITS, MAX_KEPT_ERRORS } from "../../control/registry/text-limits.ts";
import { formatError, type ServiceEntry } from "../../control/registry/model.ts";
import { parseRegistryText } from "../../control/registry/istio/parse.ts";
import { validateDocument } from "../../control/registry/istio/validate.ts";
import { badHostsText } from "../support/registry.ts";
import { PROJECT_ROOT } from "../../envoy/paths.ts";

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
  const r = parseRegistryText(`apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n---\n${SE("a", "  hosts: [a.example]\n  ports: [{number: 1, name: p, protocol: TCP}]")}`, "f.yaml");
  assert.equal(r.errors, []);
  assert.equal(r.warnings.map(formatError), ["f.yaml:2:1: kind VirtualService is not ServiceEntry, WorkloadEntry or Sidecar; skipped"]);
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

test("nesting deeper than the limit is refused while reading, at file:line:col, naming the limit", () => {
  const limit = FILE_LIMITS.maxDepth;
  const shapes: Record<string, (d: number) => string> = {
    "JSON arrays": (d) => "[".repeat(d) + "]".repeat(d),
    "JSON objects": (d) => '{"a":'.repeat(d) + "1" + "}".repeat(d),
    "YAML block maps": (d) => Array.from({ length: d }, (_, i) => `${" ".repeat(i)}k:`).join("\n") + " v\n",
    "YAML compact sequences": (d) => "- ".repeat(d) + "x\n",
    "YAML block sequences": (d) => Array.from({ length: d }, (_, i) => `${" ".repeat(2 * i)}-`).join("\n") + " x\n",
  };
  for (const [shape, text] of Object.entries(shapes)) {
    const nestingErrors = (d: number) => errorsOf(text(d)).filter((e) => e.includes("nested"));
    assert.equal(nestingErrors(limit), [], `${shape}: ${limit} levels are fine`);
    for (const d of [limit + 1, 2_000]) {
      const errors = nestingErrors(d);
      assert.is(errors.length, 1, `${shape} ${d}`);
      assert.match(errors[0]!, new RegExp(`^f\\.yaml:\\d+:\\d+: nested deeper than ${limit} levels: the limit per registry file; not read further$`), shape);
    }
  }
  assert.equal(errorsOf("[".repeat(500_000)), [`f.yaml:1:${limit + 2}: nested deeper than ${limit} levels: the limit per registry file; not read further`], "500,000 unclosed");
});

test("documents and values beyond the limits are refused while reading, naming the limit", () => {
  const body = (text: string) => parseRegistryText(text, "request body", BODY_LIMITS).errors.map(formatError);
  const docs = "kind: X\n---\n".repeat(BODY_LIMITS.maxDocuments + 1);
  assert.equal(body(docs), [`request body:${2 * BODY_LIMITS.maxDocuments}:4: more than ${BODY_LIMITS.maxDocuments} documents: the limit per request body; not read further`]);
  assert.equal(parseRegistryText("kind: X\n---\n".repeat(BODY_LIMITS.maxDocuments - 1), "b", BODY_LIMITS).warnings.length, BODY_LIMITS.maxDocuments - 1);
  const values = (n: number) => `[${"1,".repeat(n - 1)}1]`;
  assert.equal(body(values(BODY_LIMITS.maxNodes + 1)), [`request body:1:${2 * BODY_LIMITS.maxNodes}: more than ${BODY_LIMITS.maxNodes} values (scalars, collections, aliases): the limit per request body; not read further`]);
  assert.not.match(body(values(BODY_LIMITS.maxNodes - 1)).join(), /more than/);
  assert.match(body(`[${'"a",'.repeat(BODY_LIMITS.maxNodes)}"a"]`).join(), `more than ${BODY_LIMITS.maxNodes} values`, "quoted scalars count");
  // Per document in a file: the yaml package holds one document's whole tree at a time.
  const perDocument = FILE_LIMITS.maxDocumentNodes;
  assert.equal(errorsOf(`${values(perDocument - 1)}\n---\n${values(perDocument - 1)}\n`), ["f.yaml:1:1: expected a Kubernetes-style object (apiVersion, kind, metadata, spec), got a list", "f.yaml:3:1: expected a Kubernetes-style object (apiVersion, kind, metadata, spec), got a list"]);
  assert.equal(errorsOf(values(perDocument + 1)), [`f.yaml:1:${2 * perDocument}: more than ${perDocument} values (scalars, collections, aliases) in one document: the limit per document; split it into documents (---) or files`]);
});

test("errors and warnings are kept capped per text, the rest counted; reasons quoting huge values are clipped", () => {
  const r = parseRegistryText(badHostsText(130_000), "f.json");
  assert.is(r.errors.length, MAX_KEPT_ERRORS);
  // One per bad host, and per document of 5,000 hosts the list's limit (Istio's 256 items).
  assert.is(r.moreErrors, 130_000 + 130_000 / 5_000 - MAX_KEPT_ERRORS);
  assert.match(r.errors[2]!.reason, /^host "hhhh.*… \[\d+ more characters\]$/); // after the limit and BAD_0
  assert.ok(r.errors[2]!.reason.length < 1100);
  const w = parseRegistryText(JSON.stringify({ kind: "List", items: Array.from({ length: 1_000 }, () => ({ kind: "X" })) }), "w.json");
  assert.equal([w.warnings.length, w.moreWarnings], [MAX_KEPT_ERRORS, 1_000 - MAX_KEPT_ERRORS]);
});

test("validation is linear: 60,000 distinct hosts and ports, and a repeat found among them", () => {
  const n = 60_000;
  const spec = {
    hosts: [...Array.from({ length: n }, (_, i) => `h${i}.example`), "h7.example"],
    // HTTP: several hosts on plain TCP ports are refused (Istio), which is not what this checks.
    ports: Array.from({ length: n }, (_, i) => ({ number: i + 1, name: `p${i}`, protocol: "HTTP" })),
    resolution: "STATIC",
    endpoints: [{ address: "10.0.0.1", ports: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`p${i}`, 80])) }],
  };
  const t0 = performance.now();
  // Validation alone: a parsed document this large is past the per-document limit.
  const v = validateDocument({ apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: "a" }, spec }, { file: "f.json", line: 1 });
  const ms = performance.now() - t0;
  assert.equal(v.kind === "invalid" && v.errors.map((e) => e.reason), ["spec.hosts may list at most 256 items, got 60001", "spec.ports may list at most 256 items, got 60000"]);
  assert.equal(v.kind === "invalid" && v.warnings.map((w) => w.reason), ["host h7.example is listed twice; served once"]);
  // Quadratic checks took about 20 s here; linear ones well under a second.
  assert.ok(ms < 8_000, `${ms.toFixed(0)} ms`);
});

test("collection keys print nothing to stderr, however many documents have them", async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on("warning", onWarning);
  try {
    const r = parseRegistryText("? [a]\n: 1\n---\n".repeat(1_000), "f.yaml");
    assert.is(r.errors.length, MAX_KEPT_ERRORS, "each document is refused for what it lacks");
    await new Promise((resolve) => setImmediate(resolve)); // process warnings are emitted on the next tick
    assert.equal(warnings, []);
  } finally {
    process.off("warning", onWarning);
  }
});

test("the loopback example parses", () => {
  const file = join(PROJECT_ROOT, "examples", "registry", "loopback.yaml");
  const r = parseRegistryText(readFileSync(file, "utf8"), file);
  assert.equal(r.errors, []);
  assert.ok(buildRegistry(r.resources).ok);
});

test.run();
