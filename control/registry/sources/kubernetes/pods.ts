// What the translations ask of pods and nodes: a pod by namespace and name, whether a pod should
// receive traffic, and where it runs (Istio's locality).
import type { V1Node, V1Pod } from "@kubernetes/client-node";

/** Pods by "namespace/name" and nodes by name, built once per translation. */
export interface Cluster {
  pods: ReadonlyMap<string, V1Pod>;
  nodes: ReadonlyMap<string, V1Node>;
}

export function clusterIndex(pods: readonly V1Pod[], nodes: readonly V1Node[] = []): Cluster {
  const podMap = new Map<string, V1Pod>();
  for (const p of pods) if (p?.metadata?.name) podMap.set(`${p.metadata.namespace || "default"}/${p.metadata.name}`, p);
  const nodeMap = new Map<string, V1Node>();
  for (const n of nodes) if (n?.metadata?.name) nodeMap.set(n.metadata.name, n);
  return { pods: podMap, nodes: nodeMap };
}

/**
 * A pod that should receive new connections, as the EndpointSlice controller judges it: not being
 * deleted, not finished (Succeeded, Failed), and Ready unless the Service publishes not-ready
 * addresses. A Ready condition that is absent (a partial object) counts as ready, as an EndpointSlice's
 * unset `ready` does.
 */
export function podServes(pod: V1Pod, publishNotReady: boolean): { ok: true } | { ok: false; reason: string } {
  if (pod.metadata?.deletionTimestamp) return { ok: false, reason: "is terminating" };
  const phase = pod.status?.phase;
  if (phase === "Succeeded" || phase === "Failed") return { ok: false, reason: `has finished (phase ${phase})` };
  const ready = pod.status?.conditions?.find((c) => c?.type === "Ready");
  if (!publishNotReady && ready && ready.status !== "True") return { ok: false, reason: "is not ready" };
  return { ok: true };
}

const REGION_LABELS = ["topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region"];
const ZONE_LABELS = ["topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone"];
const SUBZONE_LABEL = "topology.istio.io/subzone";
/** Istio's pod label that overrides the node's locality: "region.zone.subzone". */
const LOCALITY_LABEL = "istio-locality";

/**
 * Istio's locality of an endpoint: the pod's istio-locality label, else its node's region, zone and
 * subzone labels, with `zone` (an EndpointSlice endpoint's own) standing in for the node's zone.
 * "region/zone[/subzone]"; undefined when nothing is known.
 */
export function endpointLocality(pod: V1Pod | undefined, node: V1Node | undefined, zone?: string): string | undefined {
  const own = pod?.metadata?.labels?.[LOCALITY_LABEL];
  if (own) return own.replace(/\./g, "/");
  const labels = node?.metadata?.labels ?? {};
  const first = (keys: readonly string[]) => keys.map((k) => labels[k]).find((v) => typeof v === "string" && v !== "") ?? "";
  const region = first(REGION_LABELS);
  const z = zone || first(ZONE_LABELS);
  const subzone = labels[SUBZONE_LABEL] ?? "";
  if (!region && !z && !subzone) return undefined;
  return `${region}/${z}${subzone ? `/${subzone}` : ""}`;
}
