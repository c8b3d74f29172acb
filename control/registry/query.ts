// Questions asked of a registry version. "Which service instances live on this proxy" is asked here
// once, as Istio's pilot asks its registry, so generation and /debug/decisions can never disagree.
import type { Endpoint, Registry, Service, ServicePort } from "./model.ts";

/** One service port of one endpoint whose address is a node IP. */
export interface LocalInstance {
  service: Service;
  port: ServicePort;
  endpoint: Endpoint;
  /** The port this instance receives the service port on (Istio): endpoint.ports[name], else targetPort, else the service port. */
  endpointPort: number;
}

/** Istio's instance port: the endpoint's own port for this service port, else the port's targetPort, else its number. */
export function endpointPort(e: Endpoint, port: ServicePort): number {
  return e.ports[port.name] ?? port.targetPort ?? port.number;
}

interface Found {
  service: Service;
  endpoint: Endpoint;
  /** The endpoint's place in its service's list (registry order is service rank, then this). */
  at: number;
}

/** Only IP endpoints can be on a node IP (not DNS names, unix sockets or address-less endpoints). */
const isIp = (e: Endpoint) => e.addressType === "ip";

/**
 * A registry version's services indexed by their endpoints' addresses: asking which instances live on
 * a proxy costs its node IPs' services, not a walk over the mesh (and the index holds no object per
 * endpoint). Built once per version, then read only; from the previous version's index when given,
 * touching only the services that changed (registry builds keep unchanged services' objects).
 */
export class RegistryQuery {
  /** Lists by address, shared by the versions built from one full index. */
  private readonly base: ReadonlyMap<string, readonly Service[]>;
  /** This version's lists where they differ from `base`'s (an empty list: none left). */
  private readonly changed: ReadonlyMap<string, readonly Service[]>;
  /** Each service's place in the registry, filled on first need (the query is frozen with the config that holds it). */
  private readonly rank = new Map<Service, number>();
  /** Services by namespace, in registry order, filled on first need. */
  private readonly byNamespace = new Map<string, Service[]>();

  /**
   * When this index was updated from the previous version's: that version's registry, and the IPs of
   * the endpoints of every service that came or left since. Nothing on other IPs has changed instances.
   */
  readonly since?: { registry: Registry; touched: ReadonlySet<string> };

  constructor(readonly registry: Registry, previous?: RegistryQuery) {
    const touched = new Set<string>();
    const updated = previous && this.update(previous, touched);
    this.base = updated ? previous.base : this.index();
    this.changed = updated ?? new Map();
    if (updated) this.since = { registry: previous.registry, touched };
  }

  /**
   * Instances on the given node IPs, in registry order (service, endpoint, port). `isLocal` can narrow
   * what counts (an endpoint on another network with the same IP is another machine). UDP ports carry
   * nothing through a sidecar and are left out.
   */
  instancesOn(nodeIps: ReadonlySet<string>, isLocal: (e: Endpoint) => boolean = () => true): LocalInstance[] {
    const found: Found[] = [];
    for (const ip of nodeIps) {
      for (const service of this.at(ip)) {
        service.endpoints.forEach((endpoint, at) => {
          if (isIp(endpoint) && endpoint.address === ip && isLocal(endpoint)) found.push({ service, endpoint, at });
        });
      }
    }
    if (found.length > 1) found.sort((a, b) => this.rankOf(a.service) - this.rankOf(b.service) || a.at - b.at);
    const out: LocalInstance[] = [];
    for (const { service, endpoint } of found) {
      for (const port of service.ports) {
        if (port.protocol !== "UDP") out.push({ service, port, endpoint, endpointPort: endpointPort(endpoint, port) });
      }
    }
    return out;
  }

  /** A service's place in registry.services. */
  rankOf(service: Service): number {
    const rank = this.rank;
    if (rank.size === 0) this.registry.services.forEach((s, i) => rank.set(s, i));
    return rank.get(service)!;
  }

  /** The services of one namespace, in registry order. */
  inNamespace(namespace: string): readonly Service[] {
    const index = this.byNamespace;
    if (index.size === 0) {
      for (const s of this.registry.services) {
        const list = index.get(s.namespace);
        if (list) list.push(s);
        else index.set(s.namespace, [s]);
      }
    }
    return index.get(namespace) ?? [];
  }

  private at(ip: string): readonly Service[] {
    return this.changed.get(ip) ?? this.base.get(ip) ?? [];
  }

  private index(): Map<string, readonly Service[]> {
    const index = new Map<string, Service[]>();
    for (const service of this.registry.services) add(index, service);
    return index;
  }

  /**
   * The previous version's differences from the shared full index, with the services that left taken
   * out and those that came added: O(changed). None (build a full index) once they outgrow an eighth of it.
   */
  private update(previous: RegistryQuery, touched: Set<string>): Map<string, readonly Service[]> | undefined {
    if (mostlyNew(previous.registry.services, this.registry.services)) return undefined;
    const before = new Set(previous.registry.services);
    const came = this.registry.services.filter((s) => !before.has(s));
    if (tooMany(came.length, this.registry.services.length)) return undefined;
    const now = new Set(this.registry.services);
    const left = new Set(previous.registry.services.filter((s) => !now.has(s)));
    if (tooMany(came.length + left.size, this.registry.services.length)) return undefined;
    // Lists are shared with the previous versions: replaced, never changed in place.
    const changed = new Map(previous.changed);
    for (const service of left) {
      for (const e of service.endpoints) {
        if (!isIp(e)) continue;
        touched.add(e.address);
        changed.set(e.address, previous.at(e.address).filter((s) => !left.has(s)));
      }
    }
    for (const service of came) {
      for (const e of service.endpoints) {
        if (!isIp(e)) continue;
        touched.add(e.address);
        const list = changed.get(e.address) ?? previous.base.get(e.address) ?? [];
        if (list.at(-1) !== service) changed.set(e.address, [...list, service]);
      }
    }
    return tooMany(changed.size, previous.base.size) ? undefined : changed;
  }
}

/** Adds `service` under each of its endpoints' IPs, once per IP. */
function add(index: Map<string, Service[]>, service: Service): void {
  for (const e of service.endpoints) {
    if (!isIp(e)) continue;
    const list = index.get(e.address);
    if (!list) index.set(e.address, [service]);
    else if (list.at(-1) !== service) list.push(service);
  }
}

/** Same length and most places hold another service (a registry rebuilt from scratch): no need to look closer. */
function mostlyNew(before: readonly Service[], now: readonly Service[]): boolean {
  if (before.length !== now.length) return false;
  let differ = 0;
  for (let i = 0; i < now.length; i++) if (before[i] !== now[i] && tooMany(++differ, now.length)) return true;
  return false;
}

/** Differences worth a full index instead: more than an eighth of the whole (and more than a few). */
const tooMany = (changed: number, whole: number) => changed > 64 && changed > whole / 8;
