// One ServiceEntry written over the HTTP API: a PUT body (or the copy a source stored of one), through
// the registry's parser, validation and the request body's limits. It must hold exactly one
// ServiceEntry, and a PUT's must be the one its path names.
import { moreLine } from "../common/clip.ts";
import { BODY_LIMITS } from "./text-limits.ts";
import { formatError, type RegistryError, type ServiceEntry } from "./model.ts";
import { parseRegistryText } from "./istio/parse.ts";
import type { RegistryProblem, RegistryWrite } from "./source.ts";

/** How a PUT body is named in errors. */
export const BODY = "request body";

/** One ServiceEntry from `text`, with errors at `label:line:column`. */
export function parseOneServiceEntry(text: string, label: string): { entry: ServiceEntry } | { errors: RegistryError[]; moreErrors: number } {
  const parsed = parseRegistryText(text, label, BODY_LIMITS);
  if (parsed.errors.length > 0) return { errors: parsed.errors, moreErrors: parsed.moreErrors };
  const entries = parsed.resources.filter((r): r is ServiceEntry => r.kind === "ServiceEntry");
  if (entries.length !== 1 || parsed.resources.length !== 1) {
    const skipped = parsed.warnings.length ? ` (${parsed.warnings.map((w) => w.reason).join("; ")})` : "";
    return { errors: [{ file: label, line: 1, reason: `expected exactly one ServiceEntry, got ${parsed.resources.length} ServiceEntry/WorkloadEntry documents${skipped}` }], moreErrors: 0 };
  }
  return { entry: entries[0]! };
}

/** A PUT's body as the entry its path names, or why not (errors at `request body:line:column`). */
export function parseWrittenEntry(write: Extract<RegistryWrite, { op: "put" }>): { entry: ServiceEntry } | RegistryProblem {
  const parsed = parseOneServiceEntry(write.body, BODY);
  if ("errors" in parsed) return { kind: "invalid", errors: [...parsed.errors.map(formatError), ...(parsed.moreErrors > 0 ? [moreLine(parsed.moreErrors)] : [])] };
  if (parsed.entry.namespace !== write.namespace || parsed.entry.name !== write.name) {
    return { kind: "invalid", errors: [`${BODY}:${parsed.entry.origin.line}: metadata ${parsed.entry.namespace}/${parsed.entry.name} does not match the path ${write.namespace}/${write.name}`] };
  }
  return parsed;
}
