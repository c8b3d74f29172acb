// fast-check generators of registry text a careless or hostile user might produce: garbage, YAML token
// soup, deep nesting of every kind, huge repetitive texts, and ServiceEntries valid or broken at a
// random place.
import fc from "fast-check";

/** Pieces of YAML and JSON syntax, so random sequences hit the parser's corners rather than plain scalars. */
const TOKENS = [
  "- ", "? ", ": ", ":", "---\n", "...\n", "\n", "  ", "\t", "[", "]", "{", "}", ",", "\"", "'", "\\", "|", ">", "|-\n", "#", "&a ", "*a", "!!str ",
  "!tag ", "%YAML 1.2\n", "kind: ServiceEntry\n", "apiVersion: networking.istio.io/v1\n", "metadata:\n", "  name: x\n", "spec:\n", "hosts: [a.example]\n",
  "ports: [{number: 80, name: http}]\n", "endpoints:\n", "  - address: 10.0.0.9\n", "null", "~", "0x1F", "1e999", "-.inf", "\u0000", "\uFEFF", "é", "\uD800",
];

const tokenSoup = fc.array(fc.constantFrom(...TOKENS), { maxLength: 400 }).map((t) => t.join(""));

const garbage = fc.oneof(fc.string({ unit: "binary", maxLength: 3_000 }), fc.string({ unit: "grapheme", maxLength: 3_000 }), fc.json());

/** Nesting far past the limit (and just around it), in every shape YAML and JSON allow. */
const nested = fc.record({
  depth: fc.oneof(fc.integer({ min: 60, max: 70 }), fc.integer({ min: 1, max: 300_000 })),
  shape: fc.constantFrom("flow-seq", "flow-map", "json-map", "compact-seq", "explicit-key", "block-map", "block-seq", "unclosed"),
}).map(({ depth, shape }) => {
  const indented = Math.min(depth, 2_000); // indentation grows quadratically with depth
  switch (shape) {
    case "flow-seq": return "[".repeat(depth) + "]".repeat(depth);
    case "flow-map": return "{a: ".repeat(depth) + "1" + "}".repeat(depth);
    case "json-map": return '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
    case "compact-seq": return "- ".repeat(depth) + "x\n";
    case "explicit-key": return "? ".repeat(depth) + "x\n";
    case "block-map": return Array.from({ length: indented }, (_, i) => `${" ".repeat(i)}k:`).join("\n") + " v\n";
    case "block-seq": return Array.from({ length: indented }, (_, i) => `${" ".repeat(2 * i)}-`).join("\n") + " x\n";
    default: return "[{".repeat(depth);
  }
});

/** Repetitive texts up to about 1.2 MB: many documents, values, keys, errors or aliases. */
const huge = fc.record({
  unit: fc.constantFrom("a: 1\n", "---\n", "\"\"", "[1,", "kind: X\n---\n", "# c\n", "- *x\n", "k: &x [1]\n", "\n", "x".repeat(64)),
  bytes: fc.integer({ min: 10_000, max: 1_200_000 }),
}).map(({ unit, bytes }) => unit.repeat(Math.ceil(bytes / unit.length)));

const ips = fc.constantFrom("10.0.0.1", "10.0.0.2", "10.9.9.9", "fd00::1", "300.1.1.1", "", "unix:///x", "0.0.0.0");

/** A ServiceEntry named `name`, valid or with one field replaced by any JSON value. */
export function serviceEntry(name: string): fc.Arbitrary<string> {
  const base = fc.record({ host: fc.constantFrom(`${name}.example`, "good.example", "UPPER.example", "*.wild"), ip: ips, port: fc.integer({ min: -1, max: 70_000 }) })
    .map(({ host, ip, port }) => ({
      apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name, namespace: "default" },
      spec: { hosts: [host], ports: [{ number: port, name: "http" }], resolution: "STATIC", endpoints: [{ address: ip }] },
    }) as Record<string, any>);
  const mutation = fc.record({
    path: fc.array(fc.constantFrom<string | number>("spec", "metadata", "hosts", "ports", "endpoints", "labels", "address", "number", "name", "kind", 0, 1), { maxLength: 4 }),
    value: fc.jsonValue({ maxDepth: 4 }),
  });
  return fc.tuple(base, fc.option(mutation, { nil: undefined }), fc.boolean()).map(([doc, m, asJson]) => {
    if (m) setPath(doc, m.path, m.value);
    const json = JSON.stringify(doc);
    return asJson ? json : `# as YAML flow\n${json}\n`;
  });
}

function setPath(doc: Record<string, any>, path: (string | number)[], value: unknown): void {
  let at: any = doc;
  for (const seg of path.slice(0, -1)) {
    if (typeof at[seg] !== "object" || at[seg] === null) at[seg] = {};
    at = at[seg];
  }
  if (path.length === 0) return;
  at[path.at(-1)!] = value;
}

/** Any registry text: garbage, token soup, nesting, huge, or a ServiceEntry named `name`. */
export function registryText(name: string): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: garbage, weight: 2 }, { arbitrary: tokenSoup, weight: 3 }, { arbitrary: nested, weight: 2 },
    { arbitrary: huge, weight: 1 }, { arbitrary: serviceEntry(name), weight: 3 },
  );
}
