// The Kubernetes objects the registry is built from, kept current: Services, EndpointSlices, Pods,
// and Istio's ServiceEntries, WorkloadEntries and Sidecars, each by one reflector (./reflector.ts) per
// namespace watched. It only watches: turning these objects into registry resources is done elsewhere.
//
//   const watch = new KubernetesWatch({ kubeConfig: (await loadKubeConfig({ kubeconfig })).kubeConfig, onChange: (s) => ... });
//   watch.start();
//   await watch.whenSynced(30_000);   // every kind listed once (or found absent)
//   const { services, pods, status } = watch.state();
//
// How it behaves on faults (per kind; status[kind] says which applies):
// - API server unreachable, restarting, answering 5xx or too slowly: every map keeps its last
//   contents (nothing is withdrawn because the server is away); status.unavailable says what failed;
//   requests are retried with back-off from 200 ms doubling to 30 s (jittered), and once the server
//   answers, the watch resumes where it stopped, or lists again if the server lost that history.
// - History gone (410: etcd compacted past our version, or a restarted server's cache starts
//   later): the kind is listed again and its map replaced in one change; objects deleted meanwhile
//   disappear then; there is never an empty map in between.
// - RBAC refuses (403): status.forbidden = "forbidden: cannot <list|watch> <resource> <scope>:
//   <the server's message>"; the map keeps what it had (empty if it never listed, synced false);
//   retried every 30 s, so granting the role is picked up without a restart.
// - Istio's CustomResourceDefinitions not installed (or removed): status.absent, the map empty,
//   synced true (there are none); checked again every 30 s, so installing Istio later is picked up.
// - Credentials refused (401, an expired token): status.unavailable "unauthorized: ...", retried every
//   30 s (a service account token file is read again for each request, so a rotated one is used).
// onChange is called once for a burst of changes of any kind (15 ms after the last, at most 100 ms
// after the first), with the whole state; status changes are changes too.
//
// Namespaces: with a list, each kind has one reflector per namespace. A field selector cannot name
// several namespaces (metadata.namespace takes = and != only), and a deployment limited to some
// namespaces usually has a Role in each rather than a ClusterRole: per-namespace watches need only
// those. A kind's status then joins its namespaces' (synced when all are; faults listed together).
//
// Memory: objects are stored as parsed, without managedFields and kubectl's last-applied copy; pods
// keep only what the registry reads (./kinds.ts). Maps handed out by state() never change: a
// reflector copies its map (references only) before the next write after a state() call.
import type { KubeConfig } from "@kubernetes/client-node";
import type { BackoffTiming } from "./backoff.ts";
import { Coalescer, type CoalesceTiming } from "../../../common/coalescer.ts";
import { servedVersion } from "./discovery.ts";
import { KIND_NAMES, KINDS, type KindName, type KindObjects, type KindSpec } from "./kinds.ts";
import { KubeHttp } from "./kube-http.ts";
import { DEFAULT_COALESCE, Reflector, type ReflectorStats, type ReflectorStatus } from "./reflector.ts";
import type { ResourceRef } from "./resource.ts";

export type KindStatus = ReflectorStatus;

export type KubernetesState = {
  readonly [N in KindName]: ReadonlyMap<string, KindObjects[N]>;
} & {
  readonly status: { readonly [N in KindName]: Readonly<KindStatus> };
};

export interface KubernetesWatchOptions {
  kubeConfig: KubeConfig;
  /** Watch only these namespaces; every namespace when absent or empty. */
  namespaces?: readonly string[];
  /** The whole state after a burst of changes (objects or status) of any kind. */
  onChange?(state: KubernetesState): void;
  /** Status transitions, one line each (never a credential). */
  log?(line: string): void;
  /** Objects per page when listing (default 500). */
  pageSize?: number;
  /** How often an absent custom resource is looked for again (default 30 s). */
  absentRecheckMs?: number;
  /** How often a request RBAC refused (or credentials the server refused) is tried again (default 30 s). */
  forbiddenRetryMs?: number;
  /** Back-off after faults (default 200 ms doubling to 30 s). */
  backoff?: BackoffTiming;
  /** How changes are gathered into one onChange (default 15 ms quiet, 100 ms at most). */
  coalesce?: CoalesceTiming;
  /** Deadline of each GET, and of a watch's first answer (default 30 s). */
  requestTimeoutMs?: number;
  /** The server ends each watch after this long, randomized up to twice it (default 300 s). */
  watchTimeoutSeconds?: number;
}

type Reflectors = { readonly [N in KindName]: readonly Reflector<KindObjects[N]>[] };

export class KubernetesWatch {
  private readonly http: KubeHttp;
  private readonly coalescer: Coalescer;
  private readonly reflectors: Reflectors;
  /** Per kind, the namespaces' maps last merged and the result, so an unchanged kind is not merged again. */
  private readonly merged = new Map<KindName, { parts: readonly ReadonlyMap<string, unknown>[]; map: ReadonlyMap<string, unknown> }>();

  constructor(private readonly opts: KubernetesWatchOptions) {
    this.http = new KubeHttp(opts.kubeConfig, { requestTimeoutMs: opts.requestTimeoutMs });
    this.coalescer = new Coalescer(() => opts.onChange?.(this.state()), opts.coalesce ?? DEFAULT_COALESCE);
    const namespaces = opts.namespaces?.length ? [...new Set(opts.namespaces)] : [undefined];
    const forKind = <N extends KindName>(spec: KindSpec<N>) => namespaces.map((namespace) => this.reflector(spec, namespace));
    this.reflectors = {
      services: forKind(KINDS.services),
      endpointSlices: forKind(KINDS.endpointSlices),
      pods: forKind(KINDS.pods),
      serviceEntries: forKind(KINDS.serviceEntries),
      workloadEntries: forKind(KINDS.workloadEntries),
      sidecars: forKind(KINDS.sidecars),
    };
  }

  /** The API server's address (for logs: no credentials in it). */
  get server(): string {
    return this.http.server;
  }

  start(): void {
    for (const r of this.all()) r.start();
  }

  /** Ends every watch and retry; onChange is not called after this resolves. */
  async stop(): Promise<void> {
    this.coalescer.stop();
    await Promise.all(this.all().map((r) => r.stop()));
  }

  /** Resolves true once every kind has listed once (or was found absent); false after `timeoutMs`. */
  async whenSynced(timeoutMs: number): Promise<boolean> {
    const results = await Promise.all(this.all().map((r) => r.whenSynced(timeoutMs)));
    return results.every(Boolean);
  }

  /** Every kind's objects (by "namespace/name") and status, as they are now. The maps never change afterwards. */
  state(): KubernetesState {
    const part = <N extends KindName>(name: N) => {
      const snaps = this.reflectors[name].map((r) => r.snapshot());
      return { map: this.merge(name, snaps.map((s) => s.objects)) as ReadonlyMap<string, KindObjects[N]>, status: joinStatus(snaps.map((s) => s.status)) };
    };
    const s = { services: part("services"), endpointSlices: part("endpointSlices"), pods: part("pods"), serviceEntries: part("serviceEntries"), workloadEntries: part("workloadEntries"), sidecars: part("sidecars") };
    return {
      services: s.services.map,
      endpointSlices: s.endpointSlices.map,
      pods: s.pods.map,
      serviceEntries: s.serviceEntries.map,
      workloadEntries: s.workloadEntries.map,
      sidecars: s.sidecars.map,
      status: {
        services: s.services.status,
        endpointSlices: s.endpointSlices.status,
        pods: s.pods.status,
        serviceEntries: s.serviceEntries.status,
        workloadEntries: s.workloadEntries.status,
        sidecars: s.sidecars.status,
      },
    };
  }

  /** Counters per kind (summed over namespaces), for tests and debugging. */
  stats(): { [N in KindName]: ReflectorStats } {
    const sum = (name: KindName): ReflectorStats => {
      const all = this.reflectors[name].map((r) => r.stats());
      const total: ReflectorStats = { lists: 0, pages: 0, gone: 0, watches: 0, events: 0, bookmarks: 0 };
      for (const s of all) {
        total.lists += s.lists;
        total.pages += s.pages;
        total.gone += s.gone;
        total.watches += s.watches;
        total.events += s.events;
        total.bookmarks += s.bookmarks;
        if (s.lastList) total.lastList = { objects: (total.lastList?.objects ?? 0) + s.lastList.objects, ms: Math.max(total.lastList?.ms ?? 0, s.lastList.ms) };
      }
      return total;
    };
    return Object.fromEntries(KIND_NAMES.map((n) => [n, sum(n)])) as { [N in KindName]: ReflectorStats };
  }

  /** Holds every watch (the maps stay) until resume(). For tests and maintenance. */
  async pause(): Promise<void> {
    await Promise.all(this.all().map((r) => r.pause()));
  }

  resume(): void {
    for (const r of this.all()) r.resume();
  }

  private all(): Reflector<KubeObjectOf>[] {
    return KIND_NAMES.flatMap((n) => this.reflectors[n] as readonly Reflector<KubeObjectOf>[]);
  }

  private reflector<N extends KindName>(spec: KindSpec<N>, namespace: string | undefined): Reflector<KindObjects[N]> {
    const fixed: ResourceRef = { group: spec.group, version: spec.versions[0]!, plural: spec.plural };
    return new Reflector<KindObjects[N]>({
      http: this.http,
      group: spec.group,
      plural: spec.plural,
      custom: spec.custom,
      resolve: spec.custom
        ? async (signal) => {
          const version = await servedVersion(this.http, spec.group, spec.plural, spec.versions, signal);
          return version === undefined ? undefined : { ...fixed, version };
        }
        : async () => fixed,
      namespace,
      trim: spec.trim,
      coalescer: this.coalescer,
      ...pickDefined(this.opts, ["pageSize", "absentRecheckMs", "forbiddenRetryMs", "backoff", "watchTimeoutSeconds", "log"]),
    });
  }

  /** One namespace: its map as is; several: one map of all, merged again only when one of them changed. */
  private merge(name: KindName, parts: readonly ReadonlyMap<string, unknown>[]): ReadonlyMap<string, unknown> {
    if (parts.length === 1) return parts[0]!;
    const last = this.merged.get(name);
    if (last && last.parts.every((p, i) => p === parts[i])) return last.map;
    const map = new Map<string, unknown>();
    for (const p of parts) for (const [k, v] of p) map.set(k, v);
    this.merged.set(name, { parts, map });
    return map;
  }
}

type KubeObjectOf = KindObjects[KindName];

/** A kind's status over its namespaces: synced when all are, faults joined, absent when all are. */
function joinStatus(all: readonly Readonly<ReflectorStatus>[]): Readonly<KindStatus> {
  if (all.length === 1) return all[0]!;
  const join = (f: (s: ReflectorStatus) => string | undefined) => {
    const texts = [...new Set(all.map(f).filter((t): t is string => t !== undefined))];
    return texts.length ? texts.join("; ") : undefined;
  };
  const unavailable = join((s) => s.unavailable);
  const forbidden = join((s) => s.forbidden);
  const version = all.find((s) => s.version)?.version;
  return Object.freeze({
    synced: all.every((s) => s.synced),
    ...(unavailable ? { unavailable } : {}),
    ...(forbidden ? { forbidden } : {}),
    ...(all.every((s) => s.absent) ? { absent: true } : {}),
    ...(version ? { version } : {}),
  });
}

function pickDefined<T extends object, K extends keyof T>(o: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
