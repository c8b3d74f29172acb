// Resources from every source -> one Registry: WorkloadEntries joined to the ServiceEntries that select
// them (as Istio selects them), and the checks that span documents (duplicate names; one host:port
// defined twice).
import type { Endpoint, Registry, RegistryError, Resource, Service, ServiceEntry, Sidecar, WorkloadEntry } from "./model.ts";
import { resourceKey } from "./model.ts";
import { sameList } from "../common/same-list.ts";

/** On failure, `offenders` are the documents the errors name (the later of two that clash): leaving them out builds. */
export type BuildResult = { ok: true; registry: Registry } | { ok: false; errors: RegistryError[]; offenders: Resource[] };

/**
 * What builds derive from each document, kept by the caller between builds: its resource key, the
 * host:port pairs of a ServiceEntry, and the services built from it (and the WorkloadEntries it
 * selected). A document and selection seen before give back the very Service objects of the previous
 * build, so what is derived from them downstream (generation memoises per Service) is computed for
 * changed services only, and a build walks the other documents without building strings for them.
 */
export class BuildMemo {
  private readonly byEntry = new WeakMap<ServiceEntry, { selected: readonly WorkloadEntry[] | undefined; services: Service[] }>();
  private readonly keys = new WeakMap<Resource, string>();
  private readonly hostPortKeys = new WeakMap<ServiceEntry, readonly HostPort[]>();

  get(se: ServiceEntry, selected: readonly WorkloadEntry[] | undefined, build: () => Service[]): Service[] {
    const before = this.byEntry.get(se);
    if (before && sameList(before.selected, selected)) return before.services;
    const services = build();
    this.byEntry.set(se, { selected, services });
    return services;
  }

  keyOf(r: Resource): string {
    let k = this.keys.get(r);
    if (k === undefined) this.keys.set(r, (k = resourceKey(r)));
    return k;
  }

  hostPorts(se: ServiceEntry): readonly HostPort[] {
    let hp = this.hostPortKeys.get(se);
    if (!hp) this.hostPortKeys.set(se, (hp = se.hosts.flatMap((host) => se.ports.map((p) => ({ host, port: p.number, key: `${se.namespace}/${host}:${p.number}` })))));
    return hp;
  }
}

interface HostPort {
  host: string;
  port: number;
  key: string;
}


export function buildRegistry(resources: Resource[], memo: BuildMemo = new BuildMemo()): BuildResult {
  const errors: RegistryError[] = [];
  const offenders = new Set<Resource>();
  const byKey = new Map<string, Resource>();
  for (const r of resources) {
    const key = memo.keyOf(r);
    const prev = byKey.get(key);
    if (prev) {
      errors.push({ ...r.origin, reason: `${r.kind} ${r.namespace}/${r.name} is already defined at ${prev.origin.file}:${prev.origin.line}` });
      offenders.add(r);
    } else byKey.set(key, r);
  }
  const entries = [...byKey.values()].filter((r): r is ServiceEntry => r.kind === "ServiceEntry");
  const workloads = [...byKey.values()].filter((r): r is WorkloadEntry => r.kind === "WorkloadEntry");
  const sidecars = sortSidecars([...byKey.values()].filter((r): r is Sidecar => r.kind === "Sidecar"));
  // Istio applies the oldest of two namespace-wide Sidecars; files have no age, so the second is refused.
  sidecars.forEach((sc, i) => {
    const prev = sidecars[i - 1];
    if (!sc.workloadSelector && prev && !prev.workloadSelector && prev.namespace === sc.namespace) {
      errors.push({ ...sc.origin, reason: `Sidecar ${sc.namespace}/${sc.name}: namespace ${sc.namespace} already has a Sidecar without workloadSelector (${prev.namespace}/${prev.name} at ${prev.origin.file}:${prev.origin.line}); one applies to the whole namespace` });
      offenders.add(sc);
    }
  });

  // Cluster names are `outbound|<port>||<host>`: within a namespace a host:port pair may be defined
  // once only (Istio merges such entries; multiplane refuses rather than guess). Across namespaces
  // they are different services, and each proxy uses one of them (see generation/scope.ts).
  const hostPorts = new Map<string, ServiceEntry>();
  const warnings: RegistryError[] = [];
  const elsewhere = new Set<string>();
  // The first entry (by namespace) defining each host, to say where else a host is defined.
  const firstByHost = new Map<string, ServiceEntry>();
  for (const se of entries) {
    for (const host of se.hosts) {
      const prev = firstByHost.get(host);
      if (!prev || se.namespace < prev.namespace) firstByHost.set(host, se);
    }
  }
  for (const se of entries) {
    const keys = memo.hostPorts(se);
    let clashes = false;
    for (const { host, port, key } of keys) {
      const prev = hostPorts.get(key);
      if (!prev) continue;
      clashes = true;
      errors.push({ ...se.origin, reason: `host ${host} port ${port} is already defined by ServiceEntry ${prev.namespace}/${prev.name} at ${prev.origin.file}:${prev.origin.line}` });
    }
    if (clashes) offenders.add(se);
    else for (const k of keys) hostPorts.set(k.key, se);
    for (const host of se.hosts) {
      const other = firstByHost.get(host)!;
      if (other.namespace !== se.namespace && !elsewhere.has(`${se.namespace}/${host}`)) {
        elsewhere.add(`${se.namespace}/${host}`);
        warnings.push({ ...se.origin, reason: `host ${host} is also defined in namespace ${other.namespace} (ServiceEntry ${other.namespace}/${other.name}): a proxy that sees both uses the one of its own namespace, else ${other.namespace}'s` });
      }
    }
  }
  if (errors.length > 0) return { ok: false, errors, offenders: [...offenders] };

  // Selectors only look inside their namespace; grouped once, in name order, rather than scanned per ServiceEntry.
  const workloadsByNamespace = new Map<string, WorkloadEntry[]>();
  for (const w of workloads.sort((a, b) => cmp(a.name, b.name))) {
    const list = workloadsByNamespace.get(w.namespace);
    if (list) list.push(w);
    else workloadsByNamespace.set(w.namespace, [w]);
  }
  const services: Service[] = [];
  for (const se of entries) {
    const selected = se.workloadSelector ? selectedWorkloads(se, workloadsByNamespace.get(se.namespace) ?? []) : undefined;
    // Loops, not push(...list): one ServiceEntry may select 100,000+ WorkloadEntries it cannot use, and
    // spreading that many warnings overflows the stack.
    if (selected) for (const w of selectionWarnings(se, selected)) warnings.push(w);
    const built = memo.get(se, selected, () => {
      const endpoints = selected ? workloadEndpoints(se, selected) : se.endpoints;
      const exportTo = se.exportTo.length === 0 ? ["*"] : se.exportTo.includes("~") ? [] : se.exportTo.map((e) => (e === "." ? se.namespace : e));
      return se.hosts.map((host): Service => ({
        entry: `${se.namespace}/${se.name}`, namespace: se.namespace, host, addresses: se.addresses, ports: se.ports, endpoints,
        ...(se.workloadSelector ? { workloadSelector: se.workloadSelector } : {}), resolution: se.resolution, location: se.location,
        exportTo: [...new Set(exportTo)], ...(se.localPorts ? { localPorts: se.localPorts } : {}), origin: se.origin,
      }));
    });
    for (const service of built) services.push(service);
  }
  services.sort((a, b) => cmp(a.host, b.host) || cmp(a.entry, b.entry));
  const sorted = [...byKey.keys()].sort(cmp).map((k) => byKey.get(k)!);
  return { ok: true, registry: { services, resources: sorted, sidecars, warnings } };
}

/** By namespace; within one, those with a workloadSelector first (more specific), then by name. */
function sortSidecars(sidecars: Sidecar[]): Sidecar[] {
  return sidecars.sort((a, b) => cmp(a.namespace, b.namespace) || Number(!a.workloadSelector) - Number(!b.workloadSelector) || cmp(a.name, b.name));
}

/** Istio's selection: WorkloadEntries in the ServiceEntry's namespace (`workloads`, in name order) whose (merged) labels include the selector. */
function selectedWorkloads(se: ServiceEntry, workloads: readonly WorkloadEntry[]): WorkloadEntry[] {
  const selector = Object.entries(se.workloadSelector ?? {});
  return workloads.filter((w) => selector.every(([k, v]) => w.labels[k] === v));
}

/** Why a selected WorkloadEntry is not used, if it is not: a DNS name is usable only by DNS resolutions, and a DNS cluster needs an address to resolve. */
function unusable(se: ServiceEntry, w: WorkloadEntry, usedBefore: WorkloadEntry | undefined): string | undefined {
  const dns = se.resolution === "DNS" || se.resolution === "DNS_ROUND_ROBIN";
  const we = `WorkloadEntry ${w.namespace}/${w.name}`;
  if (w.addressType === "hostname" && !dns) return `${we} (address ${w.address}) is not used by ServiceEntry ${se.namespace}/${se.name}: a DNS name needs resolution DNS or DNS_ROUND_ROBIN (Istio leaves it out too)`;
  if (dns && (w.addressType === "unix" || w.addressType === "none")) return `${we} is not used by ServiceEntry ${se.namespace}/${se.name}: resolution ${se.resolution} needs an IP or DNS name to resolve, and it has ${w.addressType === "unix" ? "a unix socket" : "no address"}`;
  if (se.resolution === "DNS_ROUND_ROBIN" && usedBefore) return `${we} is not used by ServiceEntry ${se.namespace}/${se.name}: resolution DNS_ROUND_ROBIN takes one endpoint, and ${usedBefore.namespace}/${usedBefore.name} was selected first`;
  return undefined;
}

/** The selected WorkloadEntries a ServiceEntry uses, in selection order. */
function used(se: ServiceEntry, selected: readonly WorkloadEntry[]): { used: WorkloadEntry[]; problems: { w: WorkloadEntry; reason: string }[] } {
  const out: WorkloadEntry[] = [];
  const problems: { w: WorkloadEntry; reason: string }[] = [];
  for (const w of selected) {
    const reason = unusable(se, w, out[0]);
    if (reason) problems.push({ w, reason });
    else out.push(w);
  }
  return { used: out, problems };
}

function selectionWarnings(se: ServiceEntry, selected: readonly WorkloadEntry[]): RegistryError[] {
  const warnings = used(se, selected).problems.map(({ w, reason }) => ({ ...w.origin, reason }));
  if (selected.length === 0) {
    const selector = Object.entries(se.workloadSelector ?? {});
    warnings.push({ ...se.origin, reason: `ServiceEntry ${se.namespace}/${se.name}: workloadSelector ${selector.map(([k, v]) => `${k}=${v}`).join(",") || "{}"} selects no WorkloadEntry in namespace ${se.namespace} (yet)` });
  }
  return warnings;
}

function workloadEndpoints(se: ServiceEntry, selected: readonly WorkloadEntry[]): Endpoint[] {
  return used(se, selected).used.map((w): Endpoint => ({
    address: w.address, addressType: w.addressType, ports: w.ports, labels: w.labels,
    ...(w.network ? { network: w.network } : {}), ...(w.locality ? { locality: w.locality } : {}), ...(w.weight ? { weight: w.weight } : {}),
    workloadEntry: `${w.namespace}/${w.name}`,
  }));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
