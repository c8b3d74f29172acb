// Split-horizon endpoints, as Istio 1.1+ builds them for sidecars: an endpoint on the proxy's own
// network (or on none) is reached directly; an endpoint on another network that has gateways is
// reached through them; without gateways anywhere there is one flat network.
import { cidrContains, parseCidr } from "../identity/ip.ts";
import type { Endpoint } from "../registry/model.ts";
import type { MeshNetwork } from "./options.ts";

export type Gateway = MeshNetwork["gateways"][number] & { network: string };

export type Reach =
  | { kind: "direct" }
  | { kind: "gateway"; network: string; gateways: Gateway[] }
  /** Not reachable from this proxy: it has no address of its own and no gateway leads to it. */
  | { kind: "unreachable"; reason: string };

/** The endpoint's network: its own `network`, else the meshNetworks network whose fromCidr holds its IP. */
export function endpointNetwork(e: Endpoint, networks: readonly MeshNetwork[]): string | undefined {
  if (e.network) return e.network;
  if (e.addressType !== "ip" || networks.length === 0) return undefined;
  for (const n of networks) if (n.fromCidrs.some((c) => inCidr(e.address, c))) return n.name;
  return undefined;
}

/** A proxy's network and the meshNetworks, with what every endpoint's reach needs computed once. */
export interface NetworkView {
  network: string | undefined;
  networks: readonly MeshNetwork[];
  /** Some network has gateways: endpoints are split by network (else one flat network). */
  multi: boolean;
  /** Weights are scaled by the lcm of every network's gateway count, so an endpoint's weight splits evenly among its gateways (Istio does the same). */
  scale: number;
  gateways: ReadonlyMap<string, Gateway[]>;
}

export function networkView(network: string | undefined, networks: readonly MeshNetwork[]): NetworkView {
  let scale = 1;
  const gateways = new Map<string, Gateway[]>();
  for (const n of networks) {
    gateways.set(n.name, n.gateways.map((g) => ({ ...g, network: n.name })));
    if (n.gateways.length > 0) scale = lcm(scale, n.gateways.length);
  }
  return { network, networks, multi: networks.some((n) => n.gateways.length > 0), scale, gateways };
}

/** The common answer, shared: reach() runs for every endpoint of every service in each version. */
const DIRECT: Reach = Object.freeze({ kind: "direct" });

/**
 * What of a proxy's network matters to its endpoints: only whether it is one of the networks that have
 * gateways (or none at all). Proxies naming any other network get the same endpoints, so an arbitrary
 * NETWORK value cannot make the control plane build one more configuration per value.
 */
export function endpointNetworkKey(network: string | undefined, networks: readonly MeshNetwork[]): string {
  if (!networks.some((n) => n.gateways.length > 0)) return "";
  if (network === undefined) return "-";
  return networks.some((n) => n.name === network && n.gateways.length > 0) ? `=${network}` : "*";
}

export function reach(e: Endpoint, view: NetworkView): Reach {
  if (!view.multi) return e.addressType === "none" ? { kind: "unreachable", reason: `it has no address and network ${e.network ?? "(none)"} has no gateway in --mesh-networks` } : DIRECT;
  const network = endpointNetwork(e, view.networks);
  const gateways = network === undefined ? [] : view.gateways.get(network) ?? [];
  // Istio: an endpoint on a named network goes through its gateways when the proxy names no network.
  const forceGateway = view.network === undefined && network !== undefined && gateways.length > 0;
  const direct = !forceGateway && (network === undefined || view.network === undefined || network === view.network || gateways.length === 0);
  if (direct) {
    if (e.addressType === "none") {
      return { kind: "unreachable", reason: network === undefined || gateways.length === 0
        ? `it has no address and network ${network ?? "(none)"} has no gateway in --mesh-networks`
        : `it has no address and is on network ${network}, the proxy's own, so no gateway applies` };
    }
    return DIRECT;
  }
  return { kind: "gateway", network: network!, gateways };
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const lcm = (a: number, b: number) => (a / gcd(a, b)) * b;

function inCidr(ip: string, cidr: string): boolean {
  const c = parseCidr(cidr);
  return c.ok && cidrContains(c.cidr, ip);
}
