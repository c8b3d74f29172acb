// The registry source for Kubernetes: what the watch (kubernetes-watch.ts) keeps current, turned into
// registry resources (registry.ts) after every burst of changes, and the pods' addresses for the
// proxies' node IPs (pod-ips.ts). It takes no writes: the cluster is changed with its own API.
//
// Faults: until every kind has been listed once the source has no registry to give; its first update
// is then an error naming what is missing (the API server unreachable, RBAC refusing a verb), so the
// control plane serves nothing yet and /readyz says why (as for a registry file that does not load).
// Once listed, an outage or a refusal keeps the last objects serving (unavailable() says why), and a
// custom resource whose definition is not installed is simply empty.
import { capList } from "../../../common/clip.ts";
import type { LearnedIp } from "../../../identity/proxy.ts";
import { resourceKey, type RegistryError, type Resource } from "../../model.ts";
import type { RegistrySource, SourceUpdate } from "../../source.ts";
import { loadKubeConfig } from "./client.ts";
import { KIND_NAMES, type KindName } from "./kinds.ts";
import { KubernetesWatch, type KubernetesState, type KubernetesWatchOptions } from "./kubernetes-watch.ts";
import type { NetworkStatusCache } from "./network-status.ts";
import { podIps } from "./pod-ips.ts";
import { kubernetesResources } from "./registry.ts";
import { clusterDomainProblem } from "./service.ts";

export interface KubernetesSourceOptions {
  /** A kubeconfig file; else KUBECONFIG, else the pod's service account (client.ts). */
  kubeconfig?: string;
  /** Watch only these namespaces (default every namespace). */
  namespaces?: string[];
  /** What Service hosts end in (NAME.NS.svc.<clusterDomain>); default cluster.local. */
  clusterDomain?: string;
  /** How long start() waits for every kind's first listing before it reports what is missing (default 10 s). */
  firstListMs?: number;
  /** The watch's timings, for tests. */
  watch?: Partial<Pick<KubernetesWatchOptions, "pageSize" | "absentRecheckMs" | "forbiddenRetryMs" | "backoff" | "coalesce" | "requestTimeoutMs" | "watchTimeoutSeconds">>;
  log?: (line: string) => void;
}

/** One pod's addresses, for node IPs (what pipeline/pod-ips.ts reads). */
export interface PodAddresses {
  namespace: string;
  name: string;
  /** spec.serviceAccountName ("default" when unset, as Kubernetes fills it in). */
  serviceAccount: string;
  ips: readonly LearnedIp[];
}

const ORIGIN = "kubernetes";

export class KubernetesSource implements RegistrySource {
  readonly name = "kubernetes";
  private watch?: KubernetesWatch;
  private onUpdate?: (update: SourceUpdate) => void;
  private readonly podListeners = new Set<(pods: PodAddresses[]) => void>();
  private latest?: KubernetesState;
  /** The last update's resources by key, with their JSON: what did not change is handed on as the same object. */
  private previous = new Map<string, { json: string; resource: Resource }>();
  private lastPods: PodAddresses[] = [];
  /** Pods' network-status annotations, parsed once per version of each pod. */
  private readonly parsed: NetworkStatusCache = new WeakMap();

  constructor(private readonly opts: KubernetesSourceOptions = {}) {
    const domainProblem = opts.clusterDomain !== undefined ? clusterDomainProblem(opts.clusterDomain) : undefined;
    if (domainProblem) throw new Error(`cluster domain: ${domainProblem}`);
  }

  async start(onUpdate: (update: SourceUpdate) => void): Promise<void> {
    const choice = await loadKubeConfig(this.opts.kubeconfig !== undefined ? { kubeconfig: this.opts.kubeconfig } : {});
    this.opts.log?.(`kubernetes: watching ${choice.server} as ${choice.user} (${choice.source})${this.opts.namespaces?.length ? `, namespaces ${this.opts.namespaces.join(",")}` : ""}`);
    this.onUpdate = onUpdate;
    this.watch = new KubernetesWatch({
      kubeConfig: choice.kubeConfig,
      ...(this.opts.namespaces ? { namespaces: this.opts.namespaces } : {}),
      ...this.opts.watch,
      ...(this.opts.log ? { log: this.opts.log } : {}),
      onChange: (state) => this.changed(state),
    });
    this.watch.start();
    await this.watch.whenSynced(this.opts.firstListMs ?? 10_000);
    // Synced or not, the first update goes out now: the registry, or why there is none yet.
    this.changed(this.watch.state(), true);
  }

  stop(): void {
    void this.watch?.stop();
    this.onUpdate = undefined;
  }

  /** Why the API server cannot be read right now (the last objects keep serving); undefined when it can. */
  unavailable(): string | undefined {
    const problems = this.latest ? faults(this.latest) : [];
    return problems.length > 0 ? problems.join("; ") : undefined;
  }

  /** Calls `listener` with every pod's addresses now and after each change; returns the function that stops it. */
  onPods(listener: (pods: PodAddresses[]) => void): () => void {
    this.podListeners.add(listener);
    listener(this.lastPods);
    return () => this.podListeners.delete(listener);
  }

  /**
   * Every update translates the whole cluster into new objects; the files and etcd sources hand on an
   * unchanged entry as the very object they gave before, and the store and the config pipeline build
   * only what changed on that (with new objects, one EndpointSlice edited in a 10,000-Service cluster
   * reached 1,000 proxies at p99 1.7 s; with them, 0.63 s). So an entry whose content is the same is the
   * previous object.
   */
  private sameObjectsWhereUnchanged(resources: readonly Resource[]): Resource[] {
    const next = new Map<string, { json: string; resource: Resource }>();
    const out = resources.map((r) => {
      const key = resourceKey(r);
      const json = JSON.stringify(r);
      const before = this.previous.get(key);
      const resource = before && before.json === json ? before.resource : r;
      next.set(key, { json, resource });
      return resource;
    });
    this.previous = next;
    return out;
  }

  private changed(state: KubernetesState, first = false): void {
    this.latest = state;
    const onUpdate = this.onUpdate;
    if (!onUpdate) return;
    const missing = KIND_NAMES.filter((k) => !state.status[k].synced);
    if (missing.length > 0) {
      // Nothing to judge yet; before the first update, say why (afterwards the last good registry serves).
      if (first) onUpdate({ resources: [], errors: missing.map((k) => problem(k, state)), warnings: [] });
      return;
    }
    const update = kubernetesResources({
      services: asApiTypes([...state.services.values()]),
      endpointSlices: asApiTypes([...state.endpointSlices.values()]),
      pods: asApiTypes([...state.pods.values()]),
      serviceEntries: [...state.serviceEntries.values()],
      workloadEntries: [...state.workloadEntries.values()],
      sidecars: [...state.sidecars.values()],
    }, { parsed: this.parsed, ...(this.opts.clusterDomain !== undefined ? { clusterDomain: this.opts.clusterDomain } : {}) });
    onUpdate({ ...update, resources: this.sameObjectsWhereUnchanged(update.resources) });
    this.lastPods = podAddresses(state, this.parsed);
    for (const listener of this.podListeners) listener(this.lastPods);
  }
}

/**
 * The watch keeps objects as the API's JSON (timestamps are strings); the client library's types say
 * Date, as its own deserializer makes them. The translation reads no timestamp but whether a pod has a
 * deletionTimestamp at all, so the JSON stands for them as it is.
 */
const asApiTypes = <T>(objects: object[]) => objects as unknown as T[];
const asApiType = <T>(o: object) => o as unknown as T;

/** Each kind's fault, worded for /readyz and the log. */
function faults(state: KubernetesState): string[] {
  const out: string[] = [];
  for (const k of KIND_NAMES) {
    const s = state.status[k];
    if (s.forbidden) out.push(`${k}: ${s.forbidden}`);
    else if (s.unavailable) out.push(`${k}: ${s.unavailable}`);
  }
  return capList(out);
}

function problem(kind: KindName, state: KubernetesState): RegistryError {
  const s = state.status[kind];
  const why = s.forbidden ?? s.unavailable ?? "not listed yet";
  return { file: ORIGIN, line: 0, reason: `${kind} not listed yet: ${why}` };
}

/** Pods' addresses, with where each was read; what is wrong with a pod's annotation is a registry warning already. */
function podAddresses(state: KubernetesState, parsed: NetworkStatusCache): PodAddresses[] {
  const out: PodAddresses[] = [];
  for (const pod of state.pods.values()) {
    const namespace = pod.metadata?.namespace;
    const name = pod.metadata?.name;
    if (!namespace || !name) continue;
    const { sources } = podIps(asApiType(pod), parsed);
    if (sources.length === 0) continue;
    out.push({
      namespace, name,
      serviceAccount: pod.spec?.serviceAccountName || "default",
      ips: sources.map((s) => ({ ip: s.ip, from: `Kubernetes pod ${namespace}/${name} (${s.from})` })),
    });
  }
  return out;
}
