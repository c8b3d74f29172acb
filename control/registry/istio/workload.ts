// A workload: a ServiceEntry endpoint or a WorkloadEntry's spec (Istio uses one message for both),
// validated as Istio validates it for where it appears.
import { isUnspecified, parseIp } from "../../identity/ip.ts";
import { fqdnProblem, isDns1123Label, isIpLiteral, labelKeyProblem, labelValueProblem, unixAddressProblem } from "./syntax.ts";
import type { AddressType, Endpoint } from "../model.ts";
import { pathName, Reader, type Obj, type Path } from "./reader.ts";

export const WORKLOAD_FIELDS = ["address", "ports", "labels", "network", "locality", "weight", "serviceAccount"] as const;

/**
 * Where the workload appears: "static" (a STATIC ServiceEntry's endpoint: IPs and unix sockets), "dns"
 * (a DNS or DNS_ROUND_ROBIN endpoint: IPs and DNS names), "workload-entry" (any of them; the
 * ServiceEntry that selects it decides whether it can use it).
 */
export type WorkloadContext = "static" | "dns" | "workload-entry";

/** The workload's fields; undefined when its address cannot be used at all. */
export function readWorkload(r: Reader, o: Obj, at: Path, context: WorkloadContext, servicePorts?: ReadonlySet<string>): Omit<Endpoint, "workloadEntry"> | undefined {
  r.known(o, at, WORKLOAD_FIELDS);
  const network = r.str(o.network, [...at, "network"], false, 2048) || undefined;
  const address = readAddress(r, o.address, [...at, "address"], context, network);

  const ports: Record<string, number> = {};
  const portMap = r.obj(o.ports, [...at, "ports"], false);
  if (portMap && Object.keys(portMap).length > 128) r.fail([...at, "ports"], `${pathName([...at, "ports"])} may hold at most 128 ports`);
  for (const [name, value] of Object.entries(portMap ?? {})) {
    const pa = [...at, "ports", name];
    if (!(name.length < 63 && isDns1123Label(name))) r.fail(pa, `invalid port name: ${JSON.stringify(name)} (a DNS-1123 label: letters, digits and '-')`);
    else if (servicePorts && !servicePorts.has(name)) r.fail(pa, `endpoint port ${name} is not defined by the service entry`);
    const port = r.port(value, pa, true);
    if (port !== undefined) ports[name] = port;
  }
  if (address?.type === "unix" && portMap && Object.keys(portMap).length > 0) r.fail([...at, "ports"], `unix endpoint ${address.value} must not include ports`);

  const labels = readLabels(r, o.labels, [...at, "labels"]);
  const locality = r.str(o.locality, [...at, "locality"], false, 2048) || undefined;
  const weight = r.uint32(o.weight, [...at, "weight"]) || undefined;
  const sa = r.str(o.serviceAccount, [...at, "serviceAccount"], false, 253);
  if (sa) r.warn([...at, "serviceAccount"], `${pathName([...at, "serviceAccount"])} is ignored: it names the workload's mTLS identity, and multiplane's sidecars originate no mTLS`);
  if (!address) return undefined;
  return {
    address: address.value, addressType: address.type, ports, labels,
    ...(network ? { network } : {}), ...(locality ? { locality } : {}), ...(weight ? { weight } : {}),
  };
}

/** Kubernetes label syntax, as Istio checks it on endpoints and WorkloadEntries. */
export function readLabels(r: Reader, v: unknown, at: Path): Record<string, string> {
  const labels = r.stringMap(v, at);
  for (const [k, val] of Object.entries(labels)) {
    const problem = labelKeyProblem(k) ?? labelValueProblem(val);
    if (problem) r.fail([...at, k], `${pathName([...at, k])}: ${problem}`);
  }
  return labels;
}

function readAddress(r: Reader, v: unknown, at: Path, context: WorkloadContext, network: string | undefined): { value: string; type: AddressType } | undefined {
  const s = r.str(v, at, false, 256) ?? "";
  const name = pathName(at);
  if (s === "") {
    if (context === "dns") return r.fail(at, `${name} is required for resolution DNS and DNS_ROUND_ROBIN (an IP or a DNS name)`);
    if (!network) return r.fail(at, `${name} is required (or a network, to reach the workload through that network's gateway)`);
    r.warn(at, `${name} is unset with network ${JSON.stringify(network)}: reached only through that network's gateway (--mesh-networks)`);
    return { value: "", type: "none" };
  }
  if (s.startsWith("unix://")) {
    if (context === "dns") return r.fail(at, `${name}: ${JSON.stringify(s)}: unix domain socket endpoints need resolution STATIC`);
    const problem = unixAddressProblem(s.slice("unix://".length));
    return problem ? r.fail(at, `${name}: ${problem}`) : { value: s, type: "unix" };
  }
  // Digits and dots, or colons, cannot be a DNS name: say what is wrong with it as an IP.
  if (!isIpLiteral(s) && (/^[\d.]+$/.test(s) || s.includes(":"))) {
    const ip = parseIp(s);
    return r.fail(at, `${name}: ${ip.ok ? `${s} is not a usable address` : ip.reason}${context === "static" ? " (resolution STATIC needs IP addresses)" : ""}`);
  }
  if (isIpLiteral(s)) {
    const ip = parseIp(s);
    if (!ip.ok) return r.fail(at, `${name}: ${ip.reason}`);
    if (isUnspecified(ip.ip)) return r.fail(at, `${name}: ${s} is the unspecified address, not a host`);
    return { value: ip.ip, type: "ip" };
  }
  if (context === "static") return r.fail(at, `${name}: ${JSON.stringify(s)} is not an IPv4 or IPv6 address (resolution STATIC needs IP addresses; a DNS name needs resolution DNS or DNS_ROUND_ROBIN)`);
  const problem = fqdnProblem(s);
  if (problem) return r.fail(at, `${name}: endpoint address ${JSON.stringify(s)} is not a valid FQDN or an IP address (${problem})`);
  return { value: s.toLowerCase().replace(/\.$/, ""), type: "hostname" };
}
