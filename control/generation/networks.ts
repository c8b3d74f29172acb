// Split-horizon endpoints, as Istio 1.1+ builds them for sidecars: an endpoint on the proxy's own
// network (or on none) is reached directly; an endpoint on another network that has gateways is
// reached through them; without gateways anywhere there is one flat network.
import { parseCidr } from "../identity/ip.ts";
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
  if (e.addressType !== "ip") return undefined;
  for (const n of networks) if (n.fromCidrs.some((c) => inCidr(e.address, c))) return n.name;
  return undefined;
}

export function reach(e: Endpoint, proxyNetwork: string | undefined, networks: readonly MeshNetwork[]): Reach {
  const multiNetwork = networks.some((n) => n.gateways.length > 0);
  const network = endpointNetwork(e, networks);
  const gateways = network === undefined ? [] : gatewaysOf(network, networks);
  // Istio: an endpoint on a named network goes through its gateways when the proxy names no network.
  const forceGateway = multiNetwork && proxyNetwork === undefined && network !== undefined && gateways.length > 0;
  const direct = !multiNetwork || (!forceGateway && (network === undefined || proxyNetwork === undefined || network === proxyNetwork || gateways.length === 0));
  if (direct) {
    if (e.addressType === "none") {
      return { kind: "unreachable", reason: network === undefined || gateways.length === 0
        ? `it has no address and network ${network ?? "(none)"} has no gateway in --mesh-networks`
        : `it has no address and is on network ${network}, the proxy's own, so no gateway applies` };
    }
    return { kind: "direct" };
  }
  return { kind: "gateway", network: network!, gateways };
}

function gatewaysOf(network: string, networks: readonly MeshNetwork[]): Gateway[] {
  return networks.find((n) => n.name === network)?.gateways.map((g) => ({ ...g, network })) ?? [];
}

/** Weights are scaled by the lcm of every network's gateway count, so an endpoint's weight splits evenly among its gateways (Istio does the same). */
export function gatewayScale(networks: readonly MeshNetwork[]): number {
  let l = 1;
  for (const n of networks) if (n.gateways.length > 0) l = lcm(l, n.gateways.length);
  return l;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const lcm = (a: number, b: number) => (a / gcd(a, b)) * b;

function inCidr(ip: string, cidr: string): boolean {
  const c = parseCidr(cidr);
  const a = parseCidr(ip);
  if (!c.ok || !a.ok || c.cidr.family !== a.cidr.family) return false;
  const bits = (x: string, family: 4 | 6) => (family === 4 ? x.split(".").map((o) => Number(o).toString(2).padStart(8, "0")).join("") : v6Bits(x));
  return bits(a.cidr.address, a.cidr.family).slice(0, c.cidr.prefixLen) === bits(c.cidr.address, c.cidr.family).slice(0, c.cidr.prefixLen);
}

function v6Bits(ip: string): string {
  const [head, tail] = ip.includes("::") ? ip.split("::") as [string, string] : [ip, undefined];
  const parse = (s: string) => (s === "" ? [] : s.split(":"));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  const groups = tail === undefined ? left : [...left, ...new Array<string>(8 - left.length - right.length).fill("0"), ...right];
  return groups.map((g) => parseInt(g, 16).toString(2).padStart(16, "0")).join("");
}
