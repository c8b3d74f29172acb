// How Kubernetes objects are named in multiplane's errors, warnings and origins. Objects come from
// the API server (or a test) and may be partial: a missing name or namespace reads as "?" rather than
// failing here; the translations that need them refuse the object themselves.
import type { V1ObjectMeta } from "@kubernetes/client-node";
import type { Origin, RegistryError } from "../../model.ts";

/** "namespace/name", with "?" for what the object lacks. */
export function objectName(meta: V1ObjectMeta | undefined): string {
  return `${meta?.namespace || "?"}/${meta?.name || "?"}`;
}

/**
 * Where a resource translated from the API came from: `kubernetes: Service default/a`. There is no
 * file or line; formatError writes line 0 as it does for errors about a whole file.
 */
export function kubernetesOrigin(kind: string, meta: V1ObjectMeta | undefined): Origin {
  return { file: `kubernetes: ${kind} ${objectName(meta)}`, line: 0 };
}

/** A label selector's (matchLabels) test: every pair of the selector is among the labels. */
export function selects(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>> | undefined): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels?.[k] !== v) return false;
  return true;
}

/** One object translated: its resource, or the errors that refused it, with what it is warned about. */
export interface Translation<T> {
  /** Absent when the object is refused (`errors` say why) or not served (a warning says so, e.g. an ExternalName Service). */
  resource?: T;
  errors: RegistryError[];
  warnings: RegistryError[];
}
