// `multiplane validate [--json] [--mesh-networks FILE] [--planes FILE] PATH...`: like `istioctl validate`, checks
// registry files and directories (- for standard input, e.g. `kubectl get ... -o yaml | multiplane
// validate -`) without serving. One `file:line:column: reason` per problem
// (warnings say so), or one JSON object; exit 0 when nothing is an error, 1 otherwise.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { checkPaths, type Problem } from "./check.ts";
import { parseMeshNetworks } from "../../registry/istio/mesh-networks.ts";
import { formatError, type RegistryError } from "../../registry/model.ts";
import { parsePlanes } from "../../planes/parse.ts";
import { MAX_FILE_BYTES } from "../../registry/text-limits.ts";

export class ValidateUsageError extends Error {}

export async function validateCommand(args: string[], out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<number> {
  const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: { json: { type: "boolean" }, "mesh-networks": { type: "string" }, planes: { type: "string" } } });
  if (positionals.length === 0 && !values["mesh-networks"] && !values.planes) throw new ValidateUsageError("validate: name at least one registry file or directory (- reads standard input), --mesh-networks FILE or --planes FILE");
  if (positionals.filter((p) => p === "-").length > 1) throw new ValidateUsageError("validate: standard input (-) can be named once");
  const result = await checkPaths(positionals, readStdin);
  // Counted among the files checked, as the registry's are.
  const beside = (file: string, problems: Problem[] | undefined) => {
    if (problems) result.files.push(file);
    for (const p of problems ?? [{ file, line: 0, reason: "no such file", severity: "error" as const }]) result.problems.push(p);
  };
  if (values["mesh-networks"]) beside(values["mesh-networks"], fileProblems(values["mesh-networks"], (text, file) => { const r = parseMeshNetworks(text, file); return { errors: r.errors, warnings: r.warnings }; }));
  if (values.planes) beside(values.planes, fileProblems(values.planes, (text, file) => ({ errors: parsePlanes(text, file).errors, warnings: [] })));
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

/** The problems of a file `serve` reads beside the registry (--mesh-networks, --planes); undefined when there is no such file. */
function fileProblems(file: string, parse: (text: string, file: string) => { errors: RegistryError[]; warnings: RegistryError[] }): Problem[] | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    return [{ file, line: 0, reason: (err as Error).message, severity: "error" }];
  }
  const r = parse(text, file);
  return [...r.errors.map((e): Problem => ({ ...e, severity: "error" })), ...r.warnings.map((w): Problem => ({ ...w, severity: "warning" }))];
}

/** Standard input, within the size limit of one registry file. */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > MAX_FILE_BYTES) throw new Error(`validate: standard input is larger than ${MAX_FILE_BYTES} bytes, the limit of one registry file`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}
