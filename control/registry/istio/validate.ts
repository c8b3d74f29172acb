// Validation of one Kubernetes-style document into a ServiceEntry, WorkloadEntry or Sidecar, by Istio's rules.
// Errors and warnings carry the path of the field; the parser turns paths into file:line.
import type { Origin, Resource, WorkloadEntry } from "../model.ts";
import { describe, pathName, Reader, type Issue, type Obj, type Path } from "./reader.ts";
import { readServiceEntry, type Head } from "./service-entry.ts";
import { readSidecar } from "./sidecar.ts";
import { LOCAL_PORTS_ANNOTATION, readLocalPorts } from "./local-ports.ts";
import { readLabels, readWorkload } from "./workload.ts";

export type { Issue, Path } from "./reader.ts";

export type Validation =
  | { kind: "resource"; resource: Resource; warnings: Issue[] }
  | { kind: "skipped"; warning: Issue }
  | { kind: "invalid"; errors: Issue[]; warnings: Issue[] };

export const API_VERSIONS = ["networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"];
const TOP_FIELDS = ["apiVersion", "kind", "metadata", "spec", "status"];
/** ObjectMeta as Kubernetes writes it; only name, namespace, labels and annotations mean anything here. */
const META_FIELDS = ["name", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation", "creationTimestamp",
  "deletionTimestamp", "deletionGracePeriodSeconds", "generateName", "selfLink", "managedFields", "ownerReferences", "finalizers"];
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

/** Validates one document (already plain JSON). `at` is the path of the document inside its file (for List items). */
export function validateDocument(doc: unknown, origin: Origin, at: Path = []): Validation {
  const r = new Reader();
  const top = r.obj(doc, at, true);
  if (!top) return { kind: "invalid", errors: [{ path: at, reason: `expected a Kubernetes-style object (apiVersion, kind, metadata, spec), got ${describe(doc)}` }], warnings: [] };
  const kind = r.str(top.kind, [...at, "kind"], true);
  if (kind === undefined) return { kind: "invalid", errors: r.issues, warnings: [] };
  if (kind !== "ServiceEntry" && kind !== "WorkloadEntry" && kind !== "Sidecar") {
    return { kind: "skipped", warning: { path: [...at, "kind"], reason: `kind ${kind} is not ServiceEntry, WorkloadEntry or Sidecar; skipped` } };
  }
  r.known(top, at, TOP_FIELDS);
  const apiVersion = r.str(top.apiVersion, [...at, "apiVersion"], true);
  if (apiVersion !== undefined && !API_VERSIONS.includes(apiVersion)) {
    r.fail([...at, "apiVersion"], `apiVersion ${apiVersion} is not one of ${API_VERSIONS.join(", ")}`);
  }
  const meta = readMetadata(r, top.metadata, [...at, "metadata"]);
  const spec = r.obj(top.spec, [...at, "spec"], true);
  const head: Head = { namespace: meta.namespace, name: meta.name ?? "", origin };
  const se = spec && kind === "ServiceEntry" ? readServiceEntry(r, spec, [...at, "spec"], head) : undefined;
  const localPorts = meta.annotations[LOCAL_PORTS_ANNOTATION];
  const annotation = [...at, "metadata", "annotations", LOCAL_PORTS_ANNOTATION];
  if (localPorts !== undefined && kind !== "ServiceEntry") r.warn(annotation, `annotation ${LOCAL_PORTS_ANNOTATION} belongs on the ServiceEntry; ignored here`);
  if (se && localPorts !== undefined) se.localPorts = readLocalPorts(r, localPorts, annotation, se.ports);
  const resource = spec && (kind === "ServiceEntry" ? se : kind === "Sidecar" ? readSidecar(r, spec, [...at, "spec"], head) : workloadEntry(r, spec, [...at, "spec"], head, meta.labels));
  if (r.issues.length > 0 || !resource) return { kind: "invalid", errors: r.issues, warnings: r.warnings };
  return { kind: "resource", resource, warnings: r.warnings };
}

function readMetadata(r: Reader, v: unknown, at: Path): { name?: string; namespace: string; labels: Record<string, string>; annotations: Record<string, string> } {
  const meta = r.obj(v, at, true);
  if (!meta) return { namespace: "default", labels: {}, annotations: {} };
  r.known(meta, at, META_FIELDS);
  const name = r.str(meta.name, [...at, "name"], true);
  if (name !== undefined && !DNS_SUBDOMAIN.test(name)) r.fail([...at, "name"], `metadata.name ${JSON.stringify(name)} must be a lowercase DNS-1123 name`);
  const namespace = r.str(meta.namespace, [...at, "namespace"], false) || "default";
  if (!DNS_LABEL.test(namespace)) r.fail([...at, "namespace"], `metadata.namespace ${JSON.stringify(namespace)} must be a lowercase DNS-1123 label`);
  const labels = readLabels(r, meta.labels, [...at, "labels"]);
  const annotations = r.stringMap(meta.annotations, [...at, "annotations"]);
  for (const key of Object.keys(annotations)) {
    if (/(^|\.)istio\.io\//.test(key)) r.warn([...at, "annotations", key], `annotation ${key} is not supported by multiplane; ignored`);
  }
  return { ...(name !== undefined ? { name } : {}), namespace, labels, annotations };
}

function workloadEntry(r: Reader, spec: Obj, at: Path, head: Head, metaLabels: Record<string, string>): WorkloadEntry | undefined {
  const w = readWorkload(r, spec, at, "workload-entry");
  if (!w) return undefined;
  // Istio selects WorkloadEntries on spec.labels merged with metadata.labels, metadata winning.
  for (const k of Object.keys(metaLabels)) {
    if (k in w.labels && w.labels[k] !== metaLabels[k]) r.warn([...at, "labels", k], `${pathName([...at, "labels", k])} is overridden by metadata.labels.${k} (${JSON.stringify(metaLabels[k])}), as Istio merges them`);
  }
  return { kind: "WorkloadEntry", ...head, ...w, labels: { ...w.labels, ...metaLabels } };
}
