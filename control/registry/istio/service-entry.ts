// A ServiceEntry's spec, validated as Istio validates it (its admission webhook and CRD schema), with
// Istio's defaults (resolution NONE, location MESH_EXTERNAL). What multiplane accepts but cannot serve
// as written is a warning naming the field.
import { parseCidr } from "../../identity/ip.ts";
import {
  exportToProblems, isHttpProtocol, isPartialWildcard, isTlsProtocol, isWildcardHost, fqdnProblem, isDns1123Label,
  parseProtocol, wildcardDomainProblem,
} from "./syntax.ts";
import type { Endpoint, Location, Origin, Resolution, ServiceEntry, ServicePort } from "../model.ts";
import { pathName, Reader, type Obj, type Path } from "./reader.ts";
import { readWorkload } from "./workload.ts";

const SPEC_FIELDS = ["hosts", "addresses", "ports", "location", "resolution", "endpoints", "workloadSelector", "exportTo", "subjectAltNames"] as const;
const PORT_FIELDS = ["number", "protocol", "name", "targetPort"] as const;
const RESOLUTIONS: Resolution[] = ["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"];
const LOCATIONS: Location[] = ["MESH_EXTERNAL", "MESH_INTERNAL"];
/** The protocols Envoy's dynamic forward proxy serves (Istio's rule for DYNAMIC_DNS). */
const DYNAMIC_DNS_PROTOCOLS = ["HTTP", "TLS", "GRPC", "HTTP2"];

export type Head = { namespace: string; name: string; origin: Origin };

export function readServiceEntry(r: Reader, spec: Obj, at: Path, head: Head): ServiceEntry | undefined {
  r.known(spec, at, SPEC_FIELDS);
  const resolution = readEnum(r, spec.resolution, [...at, "resolution"], RESOLUTIONS, "NONE");
  const location = readEnum(r, spec.location, [...at, "location"], LOCATIONS, "MESH_EXTERNAL");
  const hosts = readHosts(r, spec, at, resolution);
  const addresses = readAddresses(r, spec, at, resolution);
  const ports = readPorts(r, spec, at, resolution, hosts, addresses);
  const servicePorts = new Set(ports.map((p) => p.name));

  const endpointList = r.list(spec.endpoints, [...at, "endpoints"], false, 4096);
  const endpoints: Endpoint[] = [];
  if (endpointList && endpointList.length > 0 && (resolution === "NONE" || resolution === "DYNAMIC_DNS")) {
    r.fail([...at, "endpoints"], resolution === "NONE"
      ? "no endpoints should be provided for resolution type NONE (connections go to the address the client dialled)"
      : "endpoints cannot be set for resolution type DYNAMIC_DNS: the destination is resolved from the SNI or Host of each connection");
  } else if (resolution === "DNS_ROUND_ROBIN" && (endpointList?.length ?? 0) > 1) {
    r.fail([...at, "endpoints"], "there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN");
  }
  endpointList?.forEach((e, i) => {
    const ea = [...at, "endpoints", i];
    const o = r.obj(e, ea, true);
    if (!o || resolution === "NONE" || resolution === "DYNAMIC_DNS") return;
    const ep = readWorkload(r, o, ea, resolution === "STATIC" ? "static" : "dns", servicePorts);
    if (!ep) return;
    if (ep.addressType === "unix" && ports.length !== 1) r.fail([...ea, "address"], `exactly 1 service port required for unix endpoints, spec.ports has ${ports.length}`);
    if (Object.keys(ep.labels).length > 0) r.warn([...ea, "labels"], `${pathName([...ea, "labels"])} select nothing here: they matter for DestinationRule subsets, which multiplane does not serve`);
    endpoints.push(ep);
  });
  if (resolution === "DNS" || resolution === "DNS_ROUND_ROBIN") {
    if ((endpointList?.length ?? 0) === 0 && spec.workloadSelector === undefined) {
      hosts.forEach((h, i) => {
        const problem = fqdnProblem(h);
        if (problem) r.fail([...at, "hosts", i], `hosts must be FQDN or contain only prefix wildcards if no endpoints are provided for resolution mode ${resolution}: ${problem}`);
      });
    }
  }

  // Without addresses or IP endpoints a DNS service matches every destination on its ports: at L4
  // nothing else tells it apart (HTTP ports are routed by Host, TLS ports by SNI, as in Istio).
  if ((resolution === "DNS" || resolution === "DNS_ROUND_ROBIN") && addresses.length === 0 && !endpoints.some((e) => e.addressType === "ip")) {
    ports.forEach((p, i) => {
      if (isHttpProtocol(p.protocol) || isTlsProtocol(p.protocol) || p.protocol === "UDP") return;
      r.warn([...at, "ports", i], `port ${p.number} (${p.protocol || "protocol unset"}) without spec.addresses: every connection on port ${p.number} that no other service claims goes to ${hosts.length > 1 ? `the first host, ${hosts[0]}` : "this service"} (multiplane matches destinations by IP at L4; only HTTP ports are routed by Host, TLS ports by SNI)`);
    });
  }

  if (addresses.length === 0 && endpoints.length > 0 && endpoints.every((e) => e.addressType === "unix")) {
    r.warn([...at, "endpoints"], "every endpoint is a unix socket and spec.addresses is empty: no destination IP selects this service, so captured connections never reach it (give it addresses the application dials)");
  }

  let workloadSelector: Record<string, string> | undefined;
  const sel = r.obj(spec.workloadSelector, [...at, "workloadSelector"], false);
  if (sel) {
    const sa = [...at, "workloadSelector"];
    r.known(sel, sa, ["labels"]);
    workloadSelector = r.stringMap(sel.labels, [...sa, "labels"]);
    for (const [k, v] of Object.entries(workloadSelector)) {
      if (k === "") r.fail([...sa, "labels"], `empty key is not supported in selector: "${k}=${v}"`);
      if (k.includes("*") || v.includes("*")) r.fail([...sa, "labels", k], `wildcard is not supported in selector: "${k}=${v}"`);
      if (v.length > 63) r.fail([...sa, "labels", k], `selector value for ${k} may be at most 63 characters`);
    }
    if (Object.keys(workloadSelector).length === 0) r.warn(sa, "workload selector specified without labels: it selects every WorkloadEntry in the namespace");
    if (spec.endpoints !== undefined && spec.endpoints !== null) r.fail(sa, "only one of WorkloadSelector or Endpoints is allowed in Service Entry");
    if (resolution === "NONE") r.warn(sa, "workloadSelector should not be set when resolution mode is NONE: connections go to the address the client dialled; the selected workloads only get inbound listeners on their own proxies");
    if (resolution === "DYNAMIC_DNS") r.warn(sa, "workloadSelector is ignored with resolution DYNAMIC_DNS: the destination is resolved from each connection's SNI");
  }

  const exportTo: string[] = [];
  r.list(spec.exportTo, [...at, "exportTo"], false)?.forEach((e, i) => {
    const s = r.str(e, [...at, "exportTo", i], true);
    if (s !== undefined) exportTo.push(s);
  });
  for (const problem of exportToProblems(head.namespace, exportTo)) r.fail([...at, "exportTo"], problem);

  const sans = r.list(spec.subjectAltNames, [...at, "subjectAltNames"], false);
  sans?.forEach((s, i) => r.str(s, [...at, "subjectAltNames", i], true));
  if (sans && sans.length > 0) r.warn([...at, "subjectAltNames"], "spec.subjectAltNames is ignored: it verifies certificates of TLS the proxy originates, and multiplane's sidecars originate none (TLS passes through end to end)");

  if (resolution === "DYNAMIC_DNS") {
    if (addresses.length > 0) r.fail([...at, "addresses"], "addresses cannot be set for resolution type DYNAMIC_DNS: the destination is resolved from each connection's SNI");
    ports.forEach((p, i) => {
      if (!DYNAMIC_DNS_PROTOCOLS.includes(p.protocol)) r.fail([...at, "ports", i, "protocol"], `only HTTP, TLS, GRPC, and HTTP2 protocols are supported for resolution type DYNAMIC_DNS, got ${JSON.stringify(p.protocol)}`);
      else if (p.protocol !== "TLS") r.fail([...at, "ports", i, "protocol"], `resolution DYNAMIC_DNS on a ${p.protocol} port needs Envoy's dynamic forward proxy HTTP filter, which multiplane does not configure; it serves DYNAMIC_DNS on TLS ports only (by SNI)`);
    });
  }

  return {
    kind: "ServiceEntry", ...head, hosts, addresses, ports, endpoints,
    ...(workloadSelector ? { workloadSelector } : {}),
    resolution, location, exportTo,
  };
}

function readEnum<T extends string>(r: Reader, v: unknown, at: Path, values: readonly T[], fallback: T): T {
  const s = r.str(v, at, false);
  if (s === undefined || s === "") return fallback;
  const hit = values.find((x) => x === s);
  if (!hit) r.fail(at, `${pathName(at)} ${s} is not one of ${values.join(", ")}`);
  return hit ?? fallback;
}

function readHosts(r: Reader, spec: Obj, at: Path, resolution: Resolution): string[] {
  const hosts: string[] = [];
  const list = r.list(spec.hosts, [...at, "hosts"], true, 256);
  // A set, not includes(): a list over the limit is still read through, and must stay linear.
  const seen = new Set<string>();
  if (list && list.length === 0) r.fail([...at, "hosts"], "service entry must have at least one host");
  list?.forEach((h, i) => {
    const ha = [...at, "hosts", i];
    const s = r.str(h, ha, true);
    if (s === undefined) return;
    if (s === "*") return void r.fail(ha, "invalid host *: a ServiceEntry host cannot be the full wildcard");
    const problem = wildcardDomainProblem(s);
    if (problem) return void r.fail(ha, `host ${JSON.stringify(s)} is invalid: ${problem}`);
    if (resolution !== "DYNAMIC_DNS" && isPartialWildcard(s)) r.warn(ha, `partial wildcard ${JSON.stringify(s)}: only "*." prefixes are wildcards; Istio accepts it with this warning`);
    if (resolution === "DYNAMIC_DNS" && !isWildcardHost(s)) r.fail(ha, "host must be wildcarded for resolution mode DYNAMIC_DNS");
    const host = s.toLowerCase().replace(/\.$/, "");
    if (seen.has(host)) r.warn(ha, `host ${s} is listed twice; served once`);
    else {
      seen.add(host);
      hosts.push(host);
    }
  });
  return hosts;
}

function readAddresses(r: Reader, spec: Obj, at: Path, resolution: Resolution): string[] {
  const addresses: string[] = [];
  const seen = new Set<string>();
  r.list(spec.addresses, [...at, "addresses"], false, 256)?.forEach((a, i) => {
    const aa = [...at, "addresses", i];
    const s = r.str(a, aa, true, 64);
    if (s === undefined) return;
    if (s.startsWith("unix://")) return void r.fail(aa, `${s}: unix domain socket addresses are not supported in spec.addresses`);
    const c = parseCidr(s);
    if (!c.ok || (s.split("/").length > 2)) return void r.fail(aa, `${s} is not a valid IP address or CIDR block${c.ok ? "" : ` (${c.reason})`}`);
    const isCidr = s.includes("/");
    if (isCidr && resolution !== "NONE" && resolution !== "STATIC") r.fail(aa, `CIDR addresses are allowed only for NONE/STATIC resolution types, not ${resolution}`);
    const full = c.cidr.prefixLen === (c.cidr.family === 4 ? 32 : 128);
    const text = full ? c.cidr.address : `${c.cidr.address}/${c.cidr.prefixLen}`;
    if (!seen.has(text)) {
      seen.add(text);
      addresses.push(text);
    }
  });
  return addresses;
}

function readPorts(r: Reader, spec: Obj, at: Path, resolution: Resolution, hosts: string[], addresses: string[]): ServicePort[] {
  const ports: ServicePort[] = [];
  // Sets, not some(): a list over the limit is still read through, and must stay linear.
  const numbers = new Set<number>();
  const names = new Set<string>();
  const list = r.list(spec.ports, [...at, "ports"], false, 256);
  list?.forEach((p, i) => {
    const pa = [...at, "ports", i];
    const o = r.obj(p, pa, true);
    if (!o) return;
    r.known(o, pa, PORT_FIELDS);
    const number = r.port(o.number, [...pa, "number"], true);
    const name = r.str(o.name, [...pa, "name"], true, 256);
    if (name !== undefined && !isDns1123Label(name)) r.fail([...pa, "name"], `invalid port name: ${JSON.stringify(name)} (a DNS-1123 label: letters, digits and '-', at most 63)`);
    const protoText = r.str(o.protocol, [...pa, "protocol"], false, 256) ?? "";
    const protocol = parseProtocol(protoText);
    if (protocol === undefined) r.fail([...pa, "protocol"], `unsupported protocol: ${protoText}`);
    if (protoText === "") r.warn([...pa], `port ${number ?? "?"} has no protocol: Istio detects HTTP by sniffing; multiplane proxies the port as TCP (no routing by Host, no HTTP loop guard); set protocol (HTTP, TCP, ...) to say which`);
    if (protocol === "UDP") r.warn([...pa, "protocol"], `port ${number ?? "?"} is UDP: no listener or cluster is built for it (Envoy sidecars proxy TCP; Istio skips UDP ports too)`);
    const targetPort = o.targetPort === 0 ? undefined : r.port(o.targetPort, [...pa, "targetPort"], false);
    if (number !== undefined && numbers.has(number)) r.fail([...pa, "number"], `service entry port ${number} already defined`);
    if (name !== undefined && names.has(name)) r.fail([...pa, "name"], `service entry port name ${JSON.stringify(name)} already defined`);
    if (number !== undefined) numbers.add(number);
    if (name !== undefined) names.add(name);
    if (number !== undefined && name !== undefined) ports.push({ number, name, protocol: protocol ?? "", ...(targetPort ? { targetPort } : {}) });
  });
  if (list && list.length === 0 || list === undefined) r.warn([...at, "ports"], "spec.ports is empty: the service gets no listener and no cluster (as in Istio)");
  // Plain TCP cannot tell hosts apart on one port; Istio refuses it unless NONE ignores the hosts.
  if (resolution !== "NONE" && hosts.length > 1 && ports.some((p) => !isHttpProtocol(p.protocol) && !isTlsProtocol(p.protocol))) {
    r.fail([...at, "hosts"], "multiple hosts provided with non-HTTP, non-TLS ports");
  }
  if ((resolution === "DNS" || resolution === "DNS_ROUND_ROBIN") && addresses.length > 0 && hosts.length > 1 && ports.some((p) => ["TCP", "HTTPS", "TLS", "Mongo", "Redis", "MySQL"].includes(p.protocol))) {
    r.warn([...at, "hosts"], "service entry can not have more than one host specified simultaneously with address and tcp port");
  }
  return ports;
}
