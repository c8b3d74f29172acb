// Rules of the codebase that a reviewer would otherwise have to remember: imports go one way through
// the layers (the table below, the order docs/ARCHITECTURE.md draws), with no cycles; control/'s root
// holds only the entry; no module-level mutable state in control/ (state and caches live in instances,
// so two control planes in one process share nothing); and a repository that stands alone (no path or
// name of anything outside it).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { PROJECT_ROOT } from "../../envoy/paths.ts";

const sources = (dir: string): string[] =>
  readdirSync(join(PROJECT_ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => join(e.parentPath, e.name));

// Lowest first: a module may import its own layer and the layers above it in this list, never one
// below. Every source file of control/, envoy/ and scripts/ must fall in exactly one layer.
const LAYERS: readonly (readonly [layer: string, paths: readonly string[]])[] = [
  ["common", ["control/common/", "control/log/", "envoy/paths.ts"]],
  ["identity", ["control/identity/"]],
  ["tls", ["control/tls/"]],
  ["authz", ["control/authz/"]],
  ["registry", ["control/registry/"]],
  ["planes", ["control/planes/"]],
  ["generation", ["control/generation/"]],
  ["guard module", ["control/guard-wasm/"]],
  ["xds cache", ["control/xds/cache/"]],
  ["pipeline", ["control/pipeline/"]],
  ["xds server", ["control/xds/server/"]],
  ["http", ["control/http/"]],
  ["serve", ["control/serve/"]],
  ["agent", ["control/agent/"]],
  ["envoy tools", ["envoy/"]],
  ["cmd", ["control/cmd/", "control/main.ts"]],
  ["scripts", ["scripts/"]],
];

const rel = (file: string) => relative(PROJECT_ROOT, file).split("\\").join("/");

/** The layer index of a project file (longest matching path wins), or undefined outside the table. */
function layerOf(file: string): number | undefined {
  let best: { index: number; length: number } | undefined;
  LAYERS.forEach(([, paths], index) => {
    for (const p of paths) if ((p.endsWith("/") ? file.startsWith(p) : file === p) && (!best || p.length > best.length)) best = { index, length: p.length };
  });
  return best?.index;
}

/** Relative imports of a file (static, type-only, re-exports and dynamic), as project paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(PROJECT_ROOT, file), "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^import\s+)["'](\.{1,2}\/[^"']+)["']/gm)) {
    out.push(rel(resolve(dirname(join(PROJECT_ROOT, file)), m[1]!)));
  }
  return out;
}

const layered = () => ["control", "envoy", "scripts"].flatMap(sources).map(rel);

/** Import cycles among `files` (Tarjan's strongly connected components of more than one file, or a file importing itself). */
function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do { w = stack.pop()!; onStack.delete(w); scc.push(w); } while (w !== v);
      if (scc.length > 1 || graph.get(v)!.includes(v)) found.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

test("every module of control/, envoy/ and scripts/ has a layer", () => {
  const unplaced = layered().filter((f) => layerOf(f) === undefined);
  assert.equal(unplaced, [], `files in no layer (add their folder to LAYERS):\n${unplaced.join("\n")}`);
});

test("imports go one way through the layers", () => {
  const against: string[] = [];
  for (const file of layered()) {
    const from = layerOf(file)!;
    for (const target of importsOf(file)) {
      const to = layerOf(target);
      if (to !== undefined && to > from) against.push(`${file} (${LAYERS[from]![0]}) imports ${target} (${LAYERS[to]![0]})`);
    }
  }
  assert.equal(against, [], `imports against the layers:\n${against.join("\n")}`);
});

test("no import cycles", () => {
  const graph = new Map(layered().map((f) => [f, importsOf(f)] as const));
  const found = cycles(graph);
  assert.equal(found, [], `cycles:\n${found.map((c) => c.join(" -> ")).join("\n")}`);
});

test("the layer rules catch what they are meant to catch", () => {
  assert.is(layerOf("control/xds/cache/snapshot.ts"), 8);
  assert.is(layerOf("control/xds/server/sotw.ts"), 10);
  assert.is(layerOf("control/nowhere.ts"), undefined);
  assert.ok(layerOf("control/identity/proxy.ts")! < layerOf("control/xds/server/node.ts")!, "identity sits below the transport");
  assert.equal(cycles(new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]])), [["a", "b", "c"]]);
  assert.equal(cycles(new Map([["a", ["a"]]])), [["a"]]);
  assert.equal(cycles(new Map([["a", ["b"]], ["b", []]])), []);
});

test("control/'s root holds only the entry", () => {
  const loose = readdirSync(join(PROJECT_ROOT, "control"), { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name);
  assert.equal(loose, ["main.ts"]);
});

// At column 0, i.e. module level: a `let`/`var`, or a `const` holding a new mutable collection or
// class instance. Readonly collections (typed ReadonlySet/ReadonlyMap) and frozen constants are fine.
const MUTABLE = [
  /^(export )?(let|var)\s/,
  /^(export )?const\s+\w+\s*=\s*new\s+(Map|Set|WeakMap|WeakSet|Array)\b/,
  /^(export )?const\s+\w+\s*:\s*(Map|Set|WeakMap|WeakSet)<[^=]*=/,
  /^(export )?const\s+\w+\s*=\s*\[\s*\]/,
];

test("control/ has no module-level mutable state", () => {
  const found: string[] = [];
  for (const file of sources("control")) {
    readFileSync(file, "utf8").split("\n").forEach((line, i) => {
      if (MUTABLE.some((re) => re.test(line))) found.push(`${relative(PROJECT_ROOT, file)}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.equal(found, [], `module-level mutable state:\n${found.join("\n")}`);
});

test("the rule above catches what it is meant to catch", () => {
  for (const line of ["let root: Root | undefined;", "const cache = new Map<string, X>();", "export const seen: Set<string> = new Set();", "const pending = [];"]) {
    assert.ok(MUTABLE.some((re) => re.test(line)), line);
  }
  for (const line of ["const PROTOCOLS: ReadonlySet<string> = new Set([\"a\"]);", "  let local = 0;", "const LIMIT = 10;"]) {
    assert.not.ok(MUTABLE.some((re) => re.test(line)), line);
  }
});

test("the repository stands alone: no tracked file names anything outside it", () => {
  // Built from parts, so this file does not match itself.
  const outside = ["SEED" + ".md", "../" + "shared", "ANCHORS" + ".md"];
  const tracked = execFileSync("git", ["ls-files", "-z"], { cwd: PROJECT_ROOT, encoding: "utf8" }).split("\0").filter((f) => f && !f.endsWith("package-lock.json"));
  const found: string[] = [];
  for (const file of tracked) {
    let text: string;
    try {
      text = readFileSync(join(PROJECT_ROOT, file), "utf8");
    } catch {
      continue; // deleted in the work tree
    }
    text.split("\n").forEach((line, i) => {
      for (const name of outside) if (line.includes(name)) found.push(`${file}:${i + 1}: ${name}`);
    });
  }
  assert.equal(found, [], found.join("\n"));
});

test.run();
