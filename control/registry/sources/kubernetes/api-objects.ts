// The objects the watch keeps, typed as the API server sends them in JSON. The client library's
// types describe the same objects, except that they say Date where JSON has an RFC 3339 string;
// Wire<> turns those back into strings, so the types tell the truth about what is stored.
import type { V1EndpointSlice, V1ObjectMeta, V1Pod, V1Service } from "@kubernetes/client-node";

export type Wire<T> = T extends Date ? string
  : T extends readonly (infer U)[] ? Wire<U>[]
  : T extends object ? { [K in keyof T]: Wire<T[K]> }
  : T;

export type ObjectMeta = Wire<V1ObjectMeta>;

/** Any object the server lists or watches; the server always sets metadata (name, namespace, resourceVersion). */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

export type Service = Wire<V1Service> & KubeObject;
export type EndpointSlice = Wire<V1EndpointSlice> & KubeObject;
/** Trimmed to what the registry reads (see ./kinds.ts). */
export type Pod = Wire<V1Pod> & KubeObject;
/** An Istio ServiceEntry, WorkloadEntry or Sidecar: its spec is the same in every served version. */
export interface IstioObject extends KubeObject {
  spec?: Record<string, unknown>;
}
export type ServiceEntry = IstioObject;
export type WorkloadEntry = IstioObject;
export type Sidecar = IstioObject;

/** "namespace/name": how every map of the watch is keyed. */
export const objectKey = (o: KubeObject): string => `${o.metadata.namespace ?? ""}/${o.metadata.name ?? ""}`;

/** Written by `kubectl apply`: a second copy of the whole object, as JSON text. */
const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

/**
 * Drops what no reader needs and that can outweigh the rest: managedFields (server-side apply's
 * bookkeeping) and kubectl's last-applied copy; apiVersion and kind too, which lists leave out of
 * their items anyway (the map says the kind). Changes `o` in place: it was just parsed.
 */
export function trimCommon<T extends KubeObject>(o: T): T {
  delete o.apiVersion;
  delete o.kind;
  delete o.metadata.managedFields;
  if (o.metadata.annotations && LAST_APPLIED in o.metadata.annotations) {
    delete o.metadata.annotations[LAST_APPLIED];
  }
  return o;
}
