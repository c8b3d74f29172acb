// Registry text of JSON documents is read with JSON.parse (json-documents.ts) when every document
// validates cleanly; anything else takes the YAML path. Whichever path reads a text, the result must be
// the same: resources (with the lines they remember), errors, warnings and limits. The YAML path is the
// oracle here (fast-check).
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { parseRegistryText } from "../../control/registry/istio/parse.ts";
import { readJsonDocuments } from "../../control/registry/istio/json-documents.ts";
import { FILE_LIMITS, type TextLimits } from "../../control/registry/text-limits.ts";

const name = fc.stringMatching(/^[a-z]([a-z0-9-]{0,8}[a-z0-9])?$/);
const ip = fc.tuple(fc.integer({ min: 1, max: 223 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 254 })).map((p) => p.join("."));
const serviceEntry = fc.record({ name, ns: name, ips: fc.array(ip, { minLength: 1, maxLength: 3 }), port: fc.integer({ min: 1, max: 65535 }), protocol: fc.constantFrom("HTTP", "TCP", "GRPC") })
  .map((s) => ({
    apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: s.name, namespace: s.ns },
    spec: { hosts: [`${s.name}.example`], ports: [{ number: s.port, name: "p", protocol: s.protocol }], resolution: "STATIC", endpoints: s.ips.map((address) => ({ address })) },
  }));
const workloadEntry = fc.record({ name, ns: name, ip, app: name })
  .map((w) => ({ apiVersion: "networking.istio.io/v1", kind: "WorkloadEntry", metadata: { name: w.name, namespace: w.ns }, spec: { address: w.ip, labels: { app: w.app } } }));
const resource = fc.oneof(serviceEntry, workloadEntry);

/** Resources as JSON text the ways people and tools write it: documents or Lists, compact or indented, `---` between, LF or CRLF. */
const jsonText = fc.record({
  groups: fc.array(fc.record({ list: fc.boolean(), items: fc.array(resource, { minLength: 1, maxLength: 4 }) }), { minLength: 1, maxLength: 4 }),
  indent: fc.constantFrom(0, 2, 4),
  crlf: fc.boolean(),
  leading: fc.constantFrom("", "\n", "---\n", "  \n"),
  trailing: fc.constantFrom("", "\n", "\n---\n"),
}).map(({ groups, indent, crlf, leading, trailing }) => {
  const docs = groups.flatMap((g): unknown[] => (g.list ? [{ apiVersion: "v1", kind: "List", items: g.items }] : g.items));
  const text = leading + docs.map((d) => JSON.stringify(d, null, indent)).join("\n---\n") + trailing;
  return crlf ? text.replace(/\n/g, "\r\n") : text;
});

const bothPaths = (text: string, limits: TextLimits = FILE_LIMITS) =>
  [parseRegistryText(text, "r.json", limits, true), parseRegistryText(text, "r.json", limits, false)] as const;

test("JSON documents and Lists, in any layout: read by JSON.parse, with the same resources and lines as the YAML path", () => {
  fc.assert(fc.property(jsonText, (text) => {
    assert.ok(readJsonDocuments(text, FILE_LIMITS) !== null, `the fast path takes ${JSON.stringify(text.slice(0, 200))}`);
    const [fast, yaml] = bothPaths(text);
    assert.equal(fast, yaml);
    assert.ok(fast.resources.length > 0 && fast.errors.length === 0);
  }), { numRuns: 300 });
});

/** What a careless edit does to JSON: a comment, a trailing comma, a duplicate or escaped key, an unknown field, a cut. */
const edits = [
  (t: string) => `# exported\n${t}`,
  (t: string) => t.replace(/}(\s*)$/, ",}$1"),
  (t: string) => t.replace('"kind"', '"kind": "X", "kind"'),
  (t: string) => t.replace('"metadata"', '"met\\u0061data"'),
  (t: string) => t.replace('"spec"', '"colour": "red", "spec"'),
  (t: string) => t.slice(0, Math.floor(t.length / 2)),
  (t: string) => t.replace('"address"', '"address": 7, "x"'),
  (t: string) => t.replace("\n---\n", "\n--- \n...\n"),
  (t: string) => t.replace('"kind": "ServiceEntry"', '"kind": "Gateway"').replace('"kind":"ServiceEntry"', '"kind":"Gateway"'),
  (t: string) => `${t}\n{"kind": "List", "items": [1, 2]}`,
];

test("a careless edit of JSON: whichever path reads it, the same resources, errors and warnings (with their lines and columns)", () => {
  fc.assert(fc.property(jsonText, fc.integer({ min: 0, max: edits.length - 1 }), (text, e) => {
    const edited = edits[e]!(text);
    const [fast, yaml] = bothPaths(edited);
    assert.equal(fast, yaml, JSON.stringify(edited.slice(0, 300)));
  }), { numRuns: 300 });
});

test("a text cut after a carriage return (CRLF lines): the YAML path's error, either way (found by the property above)", () => {
  const doc = '{"apiVersion":"networking.istio.io/v1","kind":"WorkloadEntry","metadata":{"name":"a","namespace":"a"},"spec":{"address":"1.0.0.1"}}';
  const [fast, yaml] = bothPaths(`${doc}\r`);
  assert.equal(fast, yaml);
  assert.match(yaml.errors[0]?.reason ?? "", "Unexpected scalar");
  assert.equal(...bothPaths(`${doc}\r\n---\r\n${doc.replace('"a"}', '"b"}')}\r\n`));
});

test("value limits: a text just under a limit is read by either path alike, just over it refused with the YAML path's message", () => {
  fc.assert(fc.property(jsonText, fc.integer({ min: 10, max: 120 }), (text, maxDocumentNodes) => {
    const limits: TextLimits = { ...FILE_LIMITS, scope: "per test", maxDocumentNodes, maxNodes: maxDocumentNodes * 3 };
    const [fast, yaml] = bothPaths(text, limits);
    assert.equal(fast, yaml, `${maxDocumentNodes}: ${JSON.stringify(text.slice(0, 200))}`);
  }), { numRuns: 300 });
});

test.run();
