// `multiplane validate`: registry files and directories (and standard input) checked as `serve` would
// load them, without serving: every parse and validation problem, then the problems of the documents together.
import { buildRegistry } from "../../registry/build.ts";
import { parseRegistryText } from "../../registry/istio/parse.ts";
import { loadRegistry } from "../../registry/sources/files/load.ts";
import type { RegistryError } from "../../registry/model.ts";

export interface Problem extends RegistryError {
  severity: "error" | "warning";
}

export interface CheckResult {
  files: string[];
  resources: number;
  problems: Problem[];
}

/** How standard input (the path "-") is named in problems. */
export const STDIN_NAME = "<stdin>";

/** `stdin`: the text of standard input, when one of the paths is "-". */
export async function checkPaths(paths: string[], stdin?: () => Promise<string>): Promise<CheckResult> {
  const files: string[] = [];
  const resources = [];
  const problems: Problem[] = [];
  for (const path of paths) {
    const r = path === "-" && stdin ? { files: [STDIN_NAME], ...parseRegistryText(await stdin(), STDIN_NAME) } : await loadRegistry(path);
    for (const f of r.files) files.push(f);
    for (const x of r.resources) resources.push(x);
    for (const e of r.errors) problems.push({ ...e, severity: "error" });
    for (const w of r.warnings) problems.push({ ...w, severity: "warning" });
  }
  const built = buildRegistry(resources);
  if (!built.ok) for (const e of built.errors) problems.push({ ...e, severity: "error" });
  else for (const w of built.registry.warnings) problems.push({ ...w, severity: "warning" });
  // Problems follow the order the user named the paths in (then line and column), not the file names'
  // collation, so the output reads the same on every machine.
  const rank = new Map(files.map((f, i) => [f, i]));
  const at = (file: string) => rank.get(file) ?? files.length;
  problems.sort((a, b) => at(a.file) - at(b.file) || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) || a.line - b.line || (a.column ?? 0) - (b.column ?? 0));
  return { files, resources: resources.length, problems };
}
