// Which version of a custom resource the server serves. Istio's CustomResourceDefinitions have served
// v1alpha3, v1beta1 and v1 over the years; a cluster may have any subset installed, or none.
import { KubeApiError } from "./errors.ts";
import type { KubeHttp } from "./kube-http.ts";

interface ApiGroup {
  versions?: { version?: string }[];
}

interface ApiResourceList {
  resources?: { name?: string }[];
}

/**
 * The first of `versions` (most preferred first) at which the server serves `plural` in `group`, or
 * undefined when it serves none of them (the group or the resource is not installed). Other errors
 * (the server unreachable, 403) reject.
 */
export async function servedVersion(http: KubeHttp, group: string, plural: string, versions: readonly string[], signal?: AbortSignal): Promise<string | undefined> {
  const served = await notFoundAsUndefined(http.getJson<ApiGroup>(`/apis/${group}`, {}, signal));
  if (!served) return undefined;
  const have = new Set((served.versions ?? []).map((v) => v.version));
  for (const version of versions) {
    if (!have.has(version)) continue;
    // A group may serve a version without this resource in it (another of the group's kinds is installed).
    const list = await notFoundAsUndefined(http.getJson<ApiResourceList>(`/apis/${group}/${version}`, {}, signal));
    if (list?.resources?.some((r) => r.name === plural)) return version;
  }
  return undefined;
}

async function notFoundAsUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof KubeApiError && err.code === 404) return undefined;
    throw err;
  }
}
