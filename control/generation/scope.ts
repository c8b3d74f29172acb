// Which services a proxy is sent, and where destinations none of them claims go, as Istio's pilot
// decides it: services exported to the proxy's namespace (exportTo), narrowed by the Sidecar that
// applies to the proxy (its egress hosts, per port), one definition per host (the proxy's own
// namespace's if it imports that one, else the first in registry order), and the Sidecar's
// outboundTrafficPolicy. Without a Sidecar a proxy is sent every service its namespace sees.
import type { EgressHost, Registry, Service, Sidecar, SidecarEgress } from "../registry/model.ts";
import type { RegistryQuery } from "../registry/query.ts";
import type { ProxyView } from "./proxy-view.ts";

export interface Scope {
  /** In registry order. */
  readonly services: readonly Service[];
  /** Services imported on some of their ports only (egress listeners with a port), with those ports. */
  readonly ports: ReadonlyMap<Service, ReadonlySet<number>>;
  /** REGISTRY_ONLY: destinations no service claims are dropped (BlackHoleCluster), not passed through. */
  readonly registryOnly: boolean;
  /** The Sidecar that applies to the proxy, if any. */
  readonly sidecar?: Sidecar;
}

/** Istio's default without egress listeners: every host of every namespace, on every port. */
const IMPORT_ALL: readonly SidecarEgress[] = Object.freeze([Object.freeze({ hosts: [Object.freeze({ namespace: "*", host: "*" })] })]);
const NO_PORTS: ReadonlyMap<Service, ReadonlySet<number>> = new Map();

export function visibleTo(service: Service, namespace: string | undefined): boolean {
  return service.exportTo.includes("*") || (namespace !== undefined && service.exportTo.includes(namespace));
}

/**
 * Istio's precedence: the first Sidecar of the proxy's namespace whose workloadSelector its labels
 * match (those with selectors come first, see registry/build.ts), else that namespace's Sidecar
 * without selector, else the root namespace's Sidecar without selector (the mesh's default).
 */
export function sidecarFor(registry: Registry, view: Pick<ProxyView, "namespace" | "labels">, rootNamespace: string): Sidecar | undefined {
  const sidecars = registry.sidecars;
  if (sidecars.length === 0) return undefined;
  let meshDefault: Sidecar | undefined;
  for (const sc of sidecars) {
    if (sc.namespace === view.namespace && (!sc.workloadSelector || selects(sc.workloadSelector, view.labels))) return sc;
    if (sc.namespace === rootNamespace && !sc.workloadSelector) meshDefault = sc;
  }
  return meshDefault;
}

function selects(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>> | undefined): boolean {
  for (const k in selector) if (labels?.[k] !== selector[k]) return false;
  return true;
}

/**
 * The proxy's scope; `sidecar` as sidecarFor gives it. `query` is the registry version's index: a Sidecar
 * that names its namespaces (the usual "./*", "istio-system/*") costs the services of those namespaces,
 * not a walk over the mesh.
 */
export function scopeOf(query: RegistryQuery, view: Pick<ProxyView, "namespace">, sidecar: Sidecar | undefined): Scope {
  const registry = query.registry;
  const namespace = view.namespace;
  const registryOnly = sidecar?.outboundTrafficPolicy === "REGISTRY_ONLY";
  if (!sidecar && allPublic(registry)) return { services: registry.services, ports: NO_PORTS, registryOnly };
  const egress = sidecar && sidecar.egress.length > 0 ? sidecar.egress : IMPORT_ALL;
  const imported: Service[] = [];
  const ports = new Map<Service, Set<number>>();
  for (const s of candidates(query, egress, namespace)) {
    if (!visibleTo(s, namespace)) continue;
    let all = false;
    let some: Set<number> | undefined;
    for (const listener of egress) {
      if (!importsHost(listener.hosts, s, namespace)) continue;
      if (listener.port === undefined) all = true;
      else if (s.ports.some((p) => p.number === listener.port)) (some ??= new Set()).add(listener.port);
    }
    if (!all && !some) continue;
    imported.push(s);
    if (!all) ports.set(s, some!);
  }
  const services = oneDefinitionPerHost(imported, namespace);
  return { services: services.length === registry.services.length ? registry.services : services, ports, registryOnly, ...(sidecar ? { sidecar } : {}) };
}

/** The services any host could import, in registry order: those of the namespaces named, or all when one host names any ("*"). */
function candidates(query: RegistryQuery, egress: readonly SidecarEgress[], namespace: string | undefined): readonly Service[] {
  const named = new Set<string>();
  for (const l of egress) {
    for (const h of l.hosts) {
      if (h.excluded) continue;
      if (h.namespace === "*") return query.registry.services;
      const ns = h.namespace === "." ? namespace : h.namespace;
      if (ns !== undefined) named.add(ns);
    }
  }
  const out: Service[] = [];
  for (const ns of named) for (const s of query.inNamespace(ns)) out.push(s);
  return named.size > 1 ? out.sort((a, b) => query.rankOf(a) - query.rankOf(b)) : out;
}

/**
 * A key equal for two scopes exactly when they are the same: the services (by registry position), the
 * ports of those imported on some only, and the policy. "" for every service on every port, passed through.
 */
export function scopeKey(query: RegistryQuery, scope: Scope): string {
  const all = query.registry.services;
  let key = scope.registryOnly ? "R" : "";
  if (scope.services !== all) {
    // The shorter of the two lists: a narrow Sidecar names few services, a wide exportTo excludes few.
    if (scope.services.length * 2 < all.length) {
      key += "+";
      for (const s of scope.services) key += `${query.rankOf(s)},`;
    } else {
      const used = new Set(scope.services);
      key += "-";
      for (let i = 0; i < all.length; i++) if (!used.has(all[i]!)) key += `${i},`;
    }
  }
  for (const [s, p] of scope.ports) key += `|${query.rankOf(s)}:${[...p].join(",")}`;
  return key;
}

/** Whether the Sidecar's egress listeners import `s` (on some port) for a proxy of `namespace`. */
export function sidecarImports(sidecar: Sidecar, s: Service, namespace: string | undefined): boolean {
  const egress = sidecar.egress.length > 0 ? sidecar.egress : IMPORT_ALL;
  return egress.some((l) => importsHost(l.hosts, s, namespace) && (l.port === undefined || s.ports.some((p) => p.number === l.port)));
}

/** Whether one egress listener's hosts import `s` for a proxy of `namespace` ("." is it). */
function importsHost(hosts: readonly EgressHost[], s: Service, namespace: string | undefined): boolean {
  let imported = false;
  for (const h of hosts) {
    const ns = h.namespace === "." ? namespace : h.namespace;
    if ((ns !== "*" && ns !== s.namespace) || !hostSubsetOf(s.host, h.host)) continue;
    if (h.excluded) return false; // `~ns/host` wins over any import in the listener
    imported = true;
  }
  return imported;
}

/** Istio's host.Name.SubsetOf: every name `h` stands for is one `of` stands for. */
export function hostSubsetOf(h: string, of: string): boolean {
  if (of === "*") return true;
  const wild = of.startsWith("*");
  if (h.startsWith("*")) return wild && h.slice(1).endsWith(of.slice(1));
  return wild ? h.endsWith(of.slice(1)) : h === of;
}

/** Every service is exported everywhere and no host is defined twice: every namespace uses them all. */
function allPublic(registry: Registry): boolean {
  const services = registry.services;
  for (let i = 0; i < services.length; i++) {
    const s = services[i]!;
    if (s.exportTo.length !== 1 || s.exportTo[0] !== "*") return false;
    if (i > 0 && services[i - 1]!.host === s.host && services[i - 1]!.namespace !== s.namespace) return false;
  }
  return true;
}

/** Of a host defined in several namespaces, one: the proxy's namespace's, else the first (services are sorted by host, so one host's are adjacent). */
function oneDefinitionPerHost(services: readonly Service[], namespace: string | undefined): Service[] {
  const out: Service[] = [];
  for (let i = 0; i < services.length;) {
    let j = i;
    while (j < services.length && services[j]!.host === services[i]!.host) j++;
    let chosen: string | undefined;
    for (let k = i + 1; k < j; k++) {
      if (services[k]!.namespace === services[i]!.namespace) continue;
      // A loop, not find(): one host may have any number of entries.
      chosen = services[i]!.namespace;
      for (let m = i; m < j; m++) if (services[m]!.namespace === namespace) chosen = namespace;
      break;
    }
    for (let k = i; k < j; k++) if (chosen === undefined || services[k]!.namespace === chosen) out.push(services[k]!);
    i = j;
  }
  return out;
}
