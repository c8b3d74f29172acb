// ServiceEntries written over the HTTP API (PUT/DELETE), held in memory. Each write is staged: the
// store applies it only if the whole registry still builds, so a refused write changes nothing.
import { moreLine } from "../cap-list.ts";
import { formatError, resourceKey, type ServiceEntry } from "./model.ts";
import { BODY_LIMITS } from "./limits.ts";
import { parseRegistryText } from "./parse.ts";
import type { RegistryProblem, RegistrySource, RegistryWrite, SourceUpdate, StagedWrite, WritableSource } from "./source.ts";

/** The origin ("file") of entries written over the API, as errors and /registry/serviceentries show it. */
export const API_ORIGIN = "http-api";
const BODY = "request body";

export class ApiSource implements RegistrySource, WritableSource {
  readonly name = "http-api";
  readonly writes = this;
  private entries = new Map<string, ServiceEntry>();

  /** Reports the (empty) start state; later changes are writes, which the store applies itself. */
  async start(onUpdate: (update: SourceUpdate) => void): Promise<void> {
    onUpdate({ resources: [...this.entries.values()], errors: [], warnings: [] });
  }

  stop(): void {}

  stage(write: RegistryWrite): StagedWrite | RegistryProblem {
    const key = resourceKey(write);
    const next = new Map(this.entries);
    if (write.op === "delete") {
      if (!next.delete(key)) return { kind: "not-found", errors: [`no ${write.kind} ${write.namespace}/${write.name} was added over HTTP`] };
    } else {
      const parsed = parseEntry(write);
      if ("problem" in parsed) return parsed.problem;
      next.set(key, { ...parsed.entry, origin: { file: API_ORIGIN, line: 1 } });
    }
    return {
      resources: [...next.values()],
      commit: () => {
        this.entries = next;
      },
    };
  }
}

function parseEntry(write: Extract<RegistryWrite, { op: "put" }>): { entry: ServiceEntry } | { problem: RegistryProblem } {
  const invalid = (errors: string[]) => ({ problem: { kind: "invalid" as const, errors } });
  const parsed = parseRegistryText(write.body, BODY, BODY_LIMITS);
  if (parsed.errors.length > 0) return invalid([...parsed.errors.map(formatError), ...(parsed.moreErrors > 0 ? [moreLine(parsed.moreErrors)] : [])]);
  const entries = parsed.resources.filter((r): r is ServiceEntry => r.kind === "ServiceEntry");
  if (entries.length !== 1 || parsed.resources.length !== 1) {
    const skipped = parsed.warnings.length ? ` (${parsed.warnings.map((w) => w.reason).join("; ")})` : "";
    return invalid([`${BODY}:1: expected exactly one ServiceEntry, got ${parsed.resources.length} ServiceEntry/WorkloadEntry documents${skipped}`]);
  }
  const entry = entries[0]!;
  if (entry.namespace !== write.namespace || entry.name !== write.name) {
    return invalid([`${BODY}:${entry.origin.line}: metadata ${entry.namespace}/${entry.name} does not match the path ${write.namespace}/${write.name}`]);
  }
  return { entry };
}
