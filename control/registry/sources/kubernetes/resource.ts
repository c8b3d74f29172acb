// A resource as the API server addresses it (group, version, plural name), its URL paths, and how
// errors and logs name it: "pods (v1) in all namespaces", "serviceentries (networking.istio.io/v1)
// in namespace shop".

export interface ResourceRef {
  /** "" for the core group. */
  group: string;
  version: string;
  plural: string;
}

export const groupVersion = (r: ResourceRef): string => (r.group ? `${r.group}/${r.version}` : r.version);

/** The collection's path: every namespace's objects, or one namespace's. */
export function collectionPath(r: ResourceRef, namespace?: string): string {
  const base = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  return namespace === undefined ? `${base}/${r.plural}` : `${base}/namespaces/${encodeURIComponent(namespace)}/${r.plural}`;
}

export const scopeText = (namespace?: string): string => (namespace === undefined ? "in all namespaces" : `in namespace ${namespace}`);

/** "pods (v1) in all namespaces"; before the version is known, "serviceentries (networking.istio.io) in ...". */
export function describeResource(r: { group: string; plural: string; version?: string }, namespace?: string): string {
  const gv = r.version === undefined ? r.group || "core" : groupVersion(r as ResourceRef);
  return `${r.plural} (${gv}) ${scopeText(namespace)}`;
}
