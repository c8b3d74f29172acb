// What a Kubernetes cluster holds, as multiplane's resources: every Service (with its EndpointSlices,
// or its pods' addresses on a secondary network) as a ServiceEntry, and Istio's own ServiceEntries and
// WorkloadEntries validated as registry files are. Pure: the watch that keeps `state` current lives
// elsewhere. The same state gives the same answer, in the same order, whatever order it was listed in.
import type { V1EndpointSlice, V1Node, V1Pod, V1Service } from "@kubernetes/client-node";
import { clip } from "../../../common/clip.ts";
import { MAX_ERROR_CHARS, MAX_KEPT_ERRORS } from "../../text-limits.ts";
import { resourceKey, type RegistryError, type Resource } from "../../model.ts";
import type { ParseResult } from "../../istio/parse.ts";
import { SERVICE_NAME_LABEL } from "./endpoint-slices.ts";
import { istioResource, type IstioKind } from "./istio-objects.ts";
import { podNetworkStatus, type NetworkStatus, type NetworkStatusCache } from "./network-status.ts";
import { kubernetesOrigin, type Translation } from "./objects.ts";
import { clusterIndex } from "./pods.ts";
import { clusterDomainProblem, DEFAULT_CLUSTER_DOMAIN, serviceEntryFromService } from "./service.ts";

export interface KubernetesState {
  services: readonly V1Service[];
  /** discovery.k8s.io/v1; each belongs to the Service its kubernetes.io/service-name label names, in its namespace. */
  endpointSlices: readonly V1EndpointSlice[];
  pods: readonly V1Pod[];
  /** For endpoints' locality (region, zone and subzone labels); without them only an EndpointSlice's zone is known. */
  nodes?: readonly V1Node[];
  /** networking.istio.io objects, as the API returns them (any of v1, v1beta1, v1alpha3). */
  serviceEntries?: readonly unknown[];
  workloadEntries?: readonly unknown[];
  sidecars?: readonly unknown[];
}

export interface KubernetesOptions {
  /** What Service hosts end in: NAME.NS.svc.<clusterDomain>. Default cluster.local. */
  clusterDomain?: string;
  /** Pods' annotations parsed by an earlier call, by pod object. */
  parsed?: NetworkStatusCache;
}

/**
 * What parsing registry files gives (errors and warnings capped, `invalidDocuments` the objects
 * refused), so the source reports it as the files do. `resources` never holds an object that has errors: each error's origin
 * names its object (`kubernetes: ServiceEntry ns/name`), so a caller that skips invalid objects can
 * use `resources` as they are, and one that refuses the whole update sees every reason.
 */
export type KubernetesResources = ParseResult;

export function kubernetesResources(state: KubernetesState, opts: KubernetesOptions = {}): KubernetesResources {
  const clusterDomain = (opts.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN).replace(/\.$/, "").toLowerCase();
  const domainProblem = clusterDomainProblem(clusterDomain);
  // A setting, not cluster state: the caller checks it when it starts (clusterDomainProblem).
  if (domainProblem) throw new Error(domainProblem);

  const resources: Resource[] = [];
  const errors: RegistryError[] = [];
  const warnings: RegistryError[] = [];
  let invalidDocuments = 0;
  const take = (t: Translation<Resource>) => {
    if (t.errors.length > 0) invalidDocuments++;
    else if (t.resource) resources.push(t.resource);
    for (const e of t.errors) errors.push(e);
    for (const w of t.warnings) warnings.push(w);
  };

  const cluster = clusterIndex(state.pods, state.nodes);
  const podsByNamespace = groupBy(state.pods, (p) => p?.metadata?.namespace || "default");
  const slicesByService = groupBy(state.endpointSlices, (s) => `${s?.metadata?.namespace || "default"}/${s?.metadata?.labels?.[SERVICE_NAME_LABEL] ?? ""}`);
  // A pod's annotation is read once, and what is wrong with it said once, however many Services select it.
  const statuses = new Map<V1Pod, NetworkStatus>();
  const statusOf = (pod: V1Pod): NetworkStatus => {
    let status = statuses.get(pod);
    if (!status) {
      status = podNetworkStatus(pod, opts.parsed);
      statuses.set(pod, status);
      for (const reason of status.warnings) warnings.push({ ...kubernetesOrigin("Pod", pod.metadata), reason });
    }
    return status;
  };

  for (const service of sortByName(state.services)) {
    const key = `${service.metadata?.namespace || "default"}/${service.metadata?.name ?? ""}`;
    take(serviceEntryFromService(service, {
      slices: slicesByService.get(key) ?? [], pods: podsByNamespace.get(service.metadata?.namespace || "default") ?? [],
      statusOf, cluster, clusterDomain,
    }));
  }
  const istio: [IstioKind, readonly unknown[] | undefined][] = [["ServiceEntry", state.serviceEntries], ["WorkloadEntry", state.workloadEntries], ["Sidecar", state.sidecars]];
  for (const [kind, objects] of istio) {
    for (const object of sortByName((objects ?? []) as { metadata?: { namespace?: string; name?: string } }[])) take(istioResource(object, kind));
  }

  resources.sort((a, b) => cmp(resourceKey(a), resourceKey(b)));
  return {
    resources, errors: kept(errors), warnings: kept(warnings),
    moreErrors: Math.max(0, errors.length - MAX_KEPT_ERRORS), moreWarnings: Math.max(0, warnings.length - MAX_KEPT_ERRORS),
    invalidDocuments,
  };
}

/** In order of the object each names (a stable sort: one object's remarks keep their order), the first MAX_KEPT_ERRORS, clipped. */
function kept(list: RegistryError[]): RegistryError[] {
  return list.sort((a, b) => cmp(a.file, b.file)).slice(0, MAX_KEPT_ERRORS).map((e) => ({ ...e, reason: clip(e.reason, MAX_ERROR_CHARS) }));
}

function sortByName<T extends { metadata?: { namespace?: string; name?: string } }>(list: readonly T[]): T[] {
  const key = (x: T) => `${x?.metadata?.namespace ?? ""}/${x?.metadata?.name ?? ""}`;
  return [...list].sort((a, b) => cmp(key(a), key(b)));
}

function groupBy<T>(list: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const x of list) {
    const k = key(x);
    const group = out.get(k);
    if (group) group.push(x);
    else out.set(k, [x]);
  }
  return out;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
