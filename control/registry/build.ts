// Resources from every source -> one Registry: WorkloadEntries joined to the ServiceEntries that select
// them, and the checks that span documents (duplicate names; one host:port defined twice).
import type { Endpoint, Registry, RegistryError, Resource, Service, ServiceEntry, WorkloadEntry } from "./model.ts";
import { resourceKey } from "./model.ts";

export type BuildResult = { ok: true; registry: Registry } | { ok: false; errors: RegistryError[] };

export function buildRegistry(resources: Resource[]): BuildResult {
  const errors: RegistryError[] = [];
  const byKey = new Map<string, Resource>();
  for (const r of resources) {
    const prev = byKey.get(resourceKey(r));
    if (prev) errors.push({ ...r.origin, reason: `${r.kind} ${r.namespace}/${r.name} is already defined at ${prev.origin.file}:${prev.origin.line}` });
    else byKey.set(resourceKey(r), r);
  }
  const entries = [...byKey.values()].filter((r): r is ServiceEntry => r.kind === "ServiceEntry");
  const workloads = [...byKey.values()].filter((r): r is WorkloadEntry => r.kind === "WorkloadEntry");

  // Cluster names are `outbound|<port>||<host>`: a host:port pair may be defined once only.
  const hostPorts = new Map<string, ServiceEntry>();
  for (const se of entries) {
    for (const host of se.hosts) {
      for (const p of se.ports) {
        const k = `${host}:${p.number}`;
        const prev = hostPorts.get(k);
        if (prev) errors.push({ ...se.origin, reason: `host ${host} port ${p.number} is already defined by ServiceEntry ${prev.namespace}/${prev.name} at ${prev.origin.file}:${prev.origin.line}` });
        else hostPorts.set(k, se);
      }
    }
  }
  if (errors.length > 0) return { ok: false, errors };

  // Selectors only look inside their namespace; grouped once, in name order, rather than scanned per ServiceEntry.
  const workloadsByNamespace = new Map<string, WorkloadEntry[]>();
  for (const w of workloads.sort((a, b) => cmp(a.name, b.name))) {
    const list = workloadsByNamespace.get(w.namespace);
    if (list) list.push(w);
    else workloadsByNamespace.set(w.namespace, [w]);
  }
  const services: Service[] = [];
  for (const se of entries) {
    const endpoints = se.workloadSelector ? selectWorkloads(se, workloadsByNamespace.get(se.namespace) ?? []) : se.endpoints;
    for (const host of se.hosts) {
      services.push({
        entry: `${se.namespace}/${se.name}`, host, addresses: se.addresses, ports: se.ports, endpoints,
        location: se.location, origin: se.origin,
      });
    }
  }
  services.sort((a, b) => cmp(a.host, b.host) || cmp(a.entry, b.entry));
  const sorted = [...byKey.values()].sort((a, b) => cmp(resourceKey(a), resourceKey(b)));
  return { ok: true, registry: { services, resources: sorted } };
}

/** `workloads`: the ServiceEntry's namespace's, in name order. */
function selectWorkloads(se: ServiceEntry, workloads: readonly WorkloadEntry[]): Endpoint[] {
  const selector = Object.entries(se.workloadSelector ?? {});
  return workloads
    .filter((w) => selector.every(([k, v]) => w.labels[k] === v))
    .map((w) => ({
      address: w.address, ports: w.ports, labels: w.labels,
      ...(w.network ? { network: w.network } : {}), workloadEntry: `${w.namespace}/${w.name}`,
    }));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
