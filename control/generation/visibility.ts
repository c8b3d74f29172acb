// Which services a proxy's namespace uses: those exported to it ("*": to all; a proxy of unknown
// namespace sees only services exported to all), and of a host defined in several namespaces one
// only, its own namespace's if it sees that one, else the first in registry order (Istio prefers the
// proxy's namespace too).
import type { Registry, Service } from "../registry/model.ts";

export function visibleTo(service: Service, namespace: string | undefined): boolean {
  return service.exportTo.includes("*") || (namespace !== undefined && service.exportTo.includes(namespace));
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

/** The services a proxy of `namespace` uses, in registry order. */
export function servicesFor(registry: Registry, namespace: string | undefined): readonly Service[] {
  if (allPublic(registry)) return registry.services;
  const visible = registry.services.filter((s) => visibleTo(s, namespace));
  const out: Service[] = [];
  // Services are sorted by host, so one host's entries are adjacent.
  for (let i = 0; i < visible.length;) {
    let j = i;
    while (j < visible.length && visible[j]!.host === visible[i]!.host) j++;
    const same = visible.slice(i, j);
    const namespaces = new Set(same.map((s) => s.namespace));
    const chosen = namespaces.size <= 1 ? undefined : same.find((s) => s.namespace === namespace)?.namespace ?? same[0]!.namespace;
    // A loop, not push(...same): one host may have any number of entries.
    for (const s of same) if (chosen === undefined || s.namespace === chosen) out.push(s);
    i = j;
  }
  return out;
}

/**
 * A key that is equal for two namespaces exactly when they use the same services, so proxies of
 * namespaces that see the same registry share one outbound configuration ("" when they use it all).
 */
export function visibilityKey(registry: Registry, namespace: string | undefined): string {
  if (allPublic(registry)) return "";
  const used = new Set(servicesFor(registry, namespace));
  let key = "";
  registry.services.forEach((s, i) => {
    if (!used.has(s)) key += `${i},`;
  });
  return key;
}
