// Which Host (or :authority) values select a service on an outbound HTTP port: Istio's virtual host
// domains. The host and host:port; the short names a client in the proxy's DNS domain may use (Istio's
// "alternate virtual hosts": for a proxy in default.svc.cluster.local, reviews.default.svc.cluster.local
// is also reviews, reviews.default, reviews.default.svc, reviews.default.svc.cluster, each with :port);
// and the service's VIPs (addresses that are IPs), with and without :port.
import { isIP } from "node:net";
import type { Service } from "../registry/model.ts";

/**
 * The DNS labels `host` and `domain` end with in common (Istio's shared DNS domain), e.g.
 * "svc.cluster.local" for reviews.default.svc.cluster.local and team.svc.cluster.local; "" for none.
 */
export function sharedDnsSuffix(host: string, domain: string | undefined): string {
  if (!domain) return "";
  const h = host.split(".");
  const d = domain.split(".");
  let n = 0;
  while (n < h.length && n < d.length && h[h.length - 1 - n] === d[d.length - 1 - n]) n++;
  return h.slice(h.length - n).join(".");
}

/**
 * Istio's alternate names of `host` for a proxy in DNS domain `domain` (without ports): the part of
 * the host before the shared suffix, then that part with each shorter prefix of the suffix. None for
 * wildcard hosts, which short names cannot stand for.
 */
export function alternateNames(host: string, domain: string | undefined): string[] {
  const shared = sharedDnsSuffix(host, domain);
  // None when the host is (a suffix of) the domain itself: nothing would be left to name it.
  if (shared === "" || shared.length >= host.length || host.startsWith("*")) return [];
  const unique = host.slice(0, host.length - shared.length - 1);
  const names = [unique];
  for (let i = shared.length - 1; i > 0; i--) if (shared[i] === ".") names.push(`${unique}.${shared.slice(0, i)}`);
  return names;
}

/** A name or IP as a Host header writes it, with and without the port. */
function withPort(name: string, port: number): string[] {
  const host = isIP(name) === 6 ? `[${name}]` : name;
  return [host, `${host}:${port}`];
}

/**
 * The service's domains on `port`: `own` (its host), which no other service's short name or VIP may
 * take, and `other` (short names and VIPs), which go to the first service that claims them.
 */
export function serviceDomains(service: Service, port: number, proxyDomain: string | undefined): { own: string[]; other: string[] } {
  const vips = service.addresses.filter((a) => !a.includes("/")); // a CIDR names no Host
  return {
    own: withPort(service.host, port),
    other: [...alternateNames(service.host, proxyDomain), ...vips].flatMap((n) => withPort(n, port)),
  };
}

/**
 * What of a proxy's DNS domain its routes depend on: the longest suffix it shares with any of
 * `hosts`. Alternate names depend on the domain only through it, so proxies whose domains share the
 * same suffix with these hosts (e.g. every namespace that defines none of them) get the same routes.
 */
export function routeDomainKey(hosts: Iterable<string>, proxyDomain: string | undefined): string {
  let longest = "";
  for (const h of hosts) {
    const s = sharedDnsSuffix(h, proxyDomain);
    if (s.length > longest.length) longest = s;
  }
  return longest;
}
