// Istio's own ServiceEntry, WorkloadEntry and Sidecar objects (networking.istio.io v1, v1beta1, v1alpha3) as
// the API server hands them over: plain JSON objects, validated by the very function that validates a
// document read from a registry file (istio/validate.ts), so a resource is accepted or refused with the
// same reasons wherever it is written. Only the place differs: the object's name instead of file:line.
import { clip } from "../../../common/clip.ts";
import { MAX_ERROR_CHARS } from "../../text-limits.ts";
import type { Resource } from "../../model.ts";
import { validateDocument, type Issue } from "../../istio/validate.ts";
import { isObj } from "../../istio/reader.ts";
import { kubernetesOrigin, type Translation } from "./objects.ts";

export type IstioKind = "ServiceEntry" | "WorkloadEntry" | "Sidecar";

/**
 * One object listed as `kind` (the caller knows which resource it listed). An object without kind
 * or apiVersion (as some list calls hand over their items) gets the listed kind and Istio's v1; what
 * it does say is validated as written.
 */
export function istioResource(object: unknown, kind: IstioKind): Translation<Resource> {
  const meta = isObj(object) && isObj(object.metadata) ? object.metadata : undefined;
  const origin = kubernetesOrigin(isObj(object) && typeof object.kind === "string" ? object.kind : kind, {
    ...(typeof meta?.namespace === "string" ? { namespace: meta.namespace } : {}),
    ...(typeof meta?.name === "string" ? { name: meta.name } : {}),
  });
  const doc = isObj(object) ? { ...(object.kind === undefined ? { kind } : {}), ...(object.apiVersion === undefined ? { apiVersion: "networking.istio.io/v1" } : {}), ...object } : object;
  const v = validateDocument(doc, origin);
  const at = (issue: Issue) => ({ ...origin, reason: clip(issue.reason, MAX_ERROR_CHARS) });
  if (v.kind === "skipped") return { errors: [], warnings: [at(v.warning)] };
  if (v.kind === "invalid") {
    const errors = v.errors.length > 0 ? v.errors.map(at) : [{ ...origin, reason: `${kind} could not be read` }];
    return { errors, warnings: v.warnings.map(at) };
  }
  return { resource: v.resource, errors: [], warnings: v.warnings.map(at) };
}
