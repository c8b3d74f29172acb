// `multiplane validate [--json] [--mesh-networks FILE] PATH...`: like `istioctl validate`, checks
// registry files and directories without serving. One `file:line:column: reason` per problem
// (warnings say so), or one JSON object; exit 0 when nothing is an error, 1 otherwise.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { checkPaths, type Problem } from "./check.ts";
import { parseMeshNetworks } from "../../registry/istio/mesh-networks.ts";
import { formatError } from "../../registry/model.ts";

export class ValidateUsageError extends Error {}

export async function validateCommand(args: string[], out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<number> {
  const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: { json: { type: "boolean" }, "mesh-networks": { type: "string" } } });
  if (positionals.length === 0 && !values["mesh-networks"]) throw new ValidateUsageError("validate: name at least one registry file or directory");
  const result = await checkPaths(positionals);
  if (values["mesh-networks"]) for (const p of meshNetworkProblems(values["mesh-networks"])) result.problems.push(p);
  const errors = result.problems.filter((p) => p.severity === "error").length;
  const warnings = result.problems.length - errors;
  if (values.json) {
    out(JSON.stringify({ valid: errors === 0, files: result.files, resources: result.resources, errors, warnings, problems: result.problems }, null, 2));
  } else {
    for (const p of result.problems) out(p.severity === "error" ? formatError(p) : formatError({ ...p, reason: `warning: ${p.reason}` }));
    out(`${errors === 0 ? "valid" : "invalid"}: ${result.files.length} file${result.files.length === 1 ? "" : "s"}, ${result.resources} resource${result.resources === 1 ? "" : "s"}, ${errors} error${errors === 1 ? "" : "s"}, ${warnings} warning${warnings === 1 ? "" : "s"}`);
  }
  return errors === 0 ? 0 : 1;
}

function meshNetworkProblems(file: string): Problem[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    return [{ file, line: 0, reason: (err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message, severity: "error" }];
  }
  const r = parseMeshNetworks(text, file);
  return [...r.errors.map((e): Problem => ({ ...e, severity: "error" })), ...r.warnings.map((w): Problem => ({ ...w, severity: "warning" }))];
}
