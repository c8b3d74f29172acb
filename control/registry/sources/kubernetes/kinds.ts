// The six kinds the Kubernetes watch keeps, and what of each object it keeps. Built-in kinds have one
// version (stable for years); Istio's custom resources are served at whichever versions the installed
// CustomResourceDefinition lists, so the first of `versions` that discovery finds served is used.
import { trimCommon, type EndpointSlice, type KubeObject, type Pod, type Service, type ServiceEntry, type Sidecar, type WorkloadEntry } from "./api-objects.ts";

/** The kinds by the name they have in KubernetesState. */
export interface KindObjects {
  services: Service;
  endpointSlices: EndpointSlice;
  pods: Pod;
  serviceEntries: ServiceEntry;
  workloadEntries: WorkloadEntry;
  sidecars: Sidecar;
}

export type KindName = keyof KindObjects;

export interface KindSpec<N extends KindName = KindName> {
  name: N;
  kind: string;
  /** "" for the core group. */
  group: string;
  /** Most preferred first. */
  versions: readonly string[];
  plural: string;
  /** A custom resource: its definition may not be installed, which is not an error ("absent"). */
  custom: boolean;
  /** Keeps what the registry needs of a freshly parsed object (may change it in place). */
  trim(o: KubeObject): KindObjects[N];
}

/**
 * A pod as the registry reads it: identity, labels and annotations (a CNI's network-status), where it
 * runs, its ports and its addresses and readiness. Containers' commands, environment, volumes, probes
 * and resources are most of a pod's size and are dropped; a field a reader needs goes on this list.
 */
function trimPod(o: KubeObject): Pod {
  const pod = trimCommon(o) as Pod;
  const spec = pod.spec;
  if (spec) {
    const ports = (cs: typeof spec.containers | undefined) => cs?.map((c) => ({ name: c.name, ...(c.ports ? { ports: c.ports } : {}), ...(c.restartPolicy ? { restartPolicy: c.restartPolicy } : {}) }));
    pod.spec = {
      containers: ports(spec.containers) ?? [],
      ...(spec.initContainers ? { initContainers: ports(spec.initContainers) } : {}),
      ...pick(spec, ["nodeName", "serviceAccountName", "hostNetwork", "hostname", "subdomain"]),
    };
  }
  const status = pod.status;
  if (status) pod.status = pick(status, ["phase", "conditions", "podIP", "podIPs", "hostIP", "hostIPs"]);
  return pod;
}

function pick<T extends object, K extends keyof T>(o: T, keys: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

const ISTIO_VERSIONS = Object.freeze(["v1", "v1beta1", "v1alpha3"]);

export const KINDS: { readonly [N in KindName]: Readonly<KindSpec<N>> } = Object.freeze({
  services: { name: "services", kind: "Service", group: "", versions: ["v1"], plural: "services", custom: false, trim: (o: KubeObject) => trimCommon(o) as Service },
  endpointSlices: { name: "endpointSlices", kind: "EndpointSlice", group: "discovery.k8s.io", versions: ["v1"], plural: "endpointslices", custom: false, trim: (o: KubeObject) => trimCommon(o) as EndpointSlice },
  pods: { name: "pods", kind: "Pod", group: "", versions: ["v1"], plural: "pods", custom: false, trim: trimPod },
  serviceEntries: { name: "serviceEntries", kind: "ServiceEntry", group: "networking.istio.io", versions: ISTIO_VERSIONS, plural: "serviceentries", custom: true, trim: (o: KubeObject) => trimCommon(o) as ServiceEntry },
  workloadEntries: { name: "workloadEntries", kind: "WorkloadEntry", group: "networking.istio.io", versions: ISTIO_VERSIONS, plural: "workloadentries", custom: true, trim: (o: KubeObject) => trimCommon(o) as WorkloadEntry },
  sidecars: { name: "sidecars", kind: "Sidecar", group: "networking.istio.io", versions: ISTIO_VERSIONS, plural: "sidecars", custom: true, trim: (o: KubeObject) => trimCommon(o) as Sidecar },
});

export const KIND_NAMES: readonly KindName[] = Object.freeze(Object.keys(KINDS) as KindName[]);
