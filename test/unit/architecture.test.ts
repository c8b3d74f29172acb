// Rules of the codebase that a reviewer would otherwise have to remember: no module-level mutable
// state in control/ (state and caches live in instances, so two control planes in one process share
// nothing), and a repository that stands alone (no path or name of anything outside it).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { PROJECT_ROOT } from "../../envoy/paths.ts";

const sources = (dir: string): string[] =>
  readdirSync(join(PROJECT_ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => join(e.parentPath, e.name));

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
