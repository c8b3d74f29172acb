// Validation of one Kubernetes-style document into a ServiceEntry or WorkloadEntry. Errors carry the
// path of the offending field; the parser turns paths into file:line.
import { parseCidr, parseIp, isUnspecified } from "../identity/ip.ts";
import type { Endpoint, Origin, Protocol, Resource, ServiceEntry, ServicePort, WorkloadEntry } from "./model.ts";

export type Path = (string | number)[];

export interface Issue {
  path: Path;
  reason: string;
}

export type Validation =
  | { kind: "resource"; resource: Resource }
  | { kind: "skipped"; warning: Issue }
  | { kind: "invalid"; errors: Issue[] };

export const API_VERSIONS = ["networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"];
const PROTOCOLS: Protocol[] = ["HTTP", "HTTPS", "HTTP2", "GRPC", "TCP", "TLS", "MONGO"];
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;
// Port names end up inside cluster names such as inbound|9080|http|host, so no "|" and no spaces.
const PORT_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$/;

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const describe = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "a list" : typeof v === "object" ? "a map" : JSON.stringify(v));

/** Collects issues while reading fields; each read names the path it reads. */
class Reader {
  readonly issues: Issue[] = [];
  fail(path: Path, reason: string): undefined {
    this.issues.push({ path, reason });
    return undefined;
  }
  obj(v: unknown, path: Path, required: boolean): Obj | undefined {
    if (v === undefined || v === null) return required ? this.fail(path, `${name(path)} is required`) : undefined;
    return isObj(v) ? v : this.fail(path, `${name(path)} must be a map, got ${describe(v)}`);
  }
  list(v: unknown, path: Path, required: boolean): unknown[] | undefined {
    if (v === undefined || v === null) return required ? this.fail(path, `${name(path)} is required`) : undefined;
    return Array.isArray(v) ? v : this.fail(path, `${name(path)} must be a list, got ${describe(v)}`);
  }
  str(v: unknown, path: Path, required: boolean): string | undefined {
    if (v === undefined || v === null) return required ? this.fail(path, `${name(path)} is required`) : undefined;
    return typeof v === "string" ? v : this.fail(path, `${name(path)} must be a string, got ${describe(v)}`);
  }
  port(v: unknown, path: Path, required: boolean): number | undefined {
    if (v === undefined || v === null) return required ? this.fail(path, `${name(path)} is required`) : undefined;
    return typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= 65535
      ? v : this.fail(path, `${name(path)} must be a port number 1..65535, got ${describe(v)}`);
  }
  stringMap(v: unknown, path: Path): Record<string, string> {
    const m = this.obj(v, path, false);
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(m ?? {})) {
      const s = this.str(val, [...path, k], true);
      if (s !== undefined) out[k] = s;
    }
    return out;
  }
  portMap(v: unknown, path: Path): Record<string, number> {
    const m = this.obj(v, path, false);
    const out: Record<string, number> = {};
    for (const [k, val] of Object.entries(m ?? {})) {
      const p = this.port(val, [...path, k], true);
      if (p !== undefined) out[k] = p;
    }
    return out;
  }
  /** An endpoint or workload address: an IP, since resolution is STATIC. */
  address(v: unknown, path: Path): string | undefined {
    const s = this.str(v, path, true);
    if (s === undefined) return undefined;
    if (s.startsWith("unix://")) return this.fail(path, `${name(path)}: unix domain socket endpoints are not supported`);
    const ip = parseIp(s);
    if (!ip.ok) return this.fail(path, `${name(path)}: ${ip.reason} (resolution STATIC needs IP addresses)`);
    if (isUnspecified(ip.ip)) return this.fail(path, `${name(path)}: ${s} is the unspecified address, not a host`);
    return ip.ip;
  }
}

function name(path: Path): string {
  return path.reduce<string>((acc, p) => (typeof p === "number" ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), "");
}

/** Validates one document (already plain JSON). `at` is the path of the document inside its file (for List items). */
export function validateDocument(doc: unknown, origin: Origin, at: Path = []): Validation {
  const r = new Reader();
  const top = r.obj(doc, at, true);
  if (!top) return { kind: "invalid", errors: [{ path: at, reason: `expected a Kubernetes-style object (apiVersion, kind, metadata, spec), got ${describe(doc)}` }] };
  const kind = r.str(top.kind, [...at, "kind"], true);
  if (kind === undefined) return { kind: "invalid", errors: r.issues };
  if (kind !== "ServiceEntry" && kind !== "WorkloadEntry") {
    return { kind: "skipped", warning: { path: [...at, "kind"], reason: `kind ${kind} is not ServiceEntry or WorkloadEntry; skipped` } };
  }
  const apiVersion = r.str(top.apiVersion, [...at, "apiVersion"], true);
  if (apiVersion !== undefined && !API_VERSIONS.includes(apiVersion)) {
    r.fail([...at, "apiVersion"], `apiVersion ${apiVersion} is not one of ${API_VERSIONS.join(", ")}`);
  }
  const meta = r.obj(top.metadata, [...at, "metadata"], true);
  const resName = meta && r.str(meta.name, [...at, "metadata", "name"], true);
  if (resName !== undefined && !HOSTNAME.test(resName)) r.fail([...at, "metadata", "name"], `metadata.name ${JSON.stringify(resName)} must be a lowercase DNS-1123 name`);
  const namespace = (meta && r.str(meta.namespace, [...at, "metadata", "namespace"], false)) ?? "default";
  if (!DNS_LABEL.test(namespace)) r.fail([...at, "metadata", "namespace"], `metadata.namespace ${JSON.stringify(namespace)} must be a lowercase DNS-1123 label`);
  const spec = r.obj(top.spec, [...at, "spec"], true);
  const head = { namespace, name: resName ?? "", origin };
  const resource = spec && (kind === "ServiceEntry"
    ? serviceEntry(r, spec, [...at, "spec"], head)
    : workloadEntry(r, spec, [...at, "spec"], head));
  if (r.issues.length > 0 || !resource) return { kind: "invalid", errors: r.issues };
  return { kind: "resource", resource };
}

type Head = { namespace: string; name: string; origin: Origin };

// Duplicate checks use sets: a 1 MiB body holds 70,000 hosts or ports, and a linear search per item
// made validation quadratic (13 s for 50,000).
function serviceEntry(r: Reader, spec: Obj, at: Path, head: Head): ServiceEntry | undefined {
  const hosts: string[] = [];
  const seenHosts = new Set<string>();
  const hostList = r.list(spec.hosts, [...at, "hosts"], true);
  if (hostList && hostList.length === 0) r.fail([...at, "hosts"], "spec.hosts must name at least one host");
  hostList?.forEach((h, i) => {
    const s = r.str(h, [...at, "hosts", i], true);
    if (s === undefined) return;
    const host = s.toLowerCase();
    if (host.startsWith("*")) r.fail([...at, "hosts", i], `host ${s}: wildcard hosts need DNS or NONE resolution, which multiplane does not support`);
    else if (!HOSTNAME.test(host)) r.fail([...at, "hosts", i], `host ${JSON.stringify(s)} is not a DNS name`);
    else if (seenHosts.has(host)) r.fail([...at, "hosts", i], `host ${s} is listed twice`);
    else {
      seenHosts.add(host);
      hosts.push(host);
    }
  });

  const addresses: string[] = [];
  r.list(spec.addresses, [...at, "addresses"], false)?.forEach((a, i) => {
    const s = r.str(a, [...at, "addresses", i], true);
    if (s === undefined) return;
    const c = parseCidr(s);
    if (!c.ok) r.fail([...at, "addresses", i], `address ${c.reason}`);
    else addresses.push(c.cidr.prefixLen === (c.cidr.family === 4 ? 32 : 128) ? c.cidr.address : `${c.cidr.address}/${c.cidr.prefixLen}`);
  });

  const ports: ServicePort[] = [];
  const portNumbers = new Set<number>();
  const portNames = new Set<string>();
  const portList = r.list(spec.ports, [...at, "ports"], true);
  if (portList && portList.length === 0) r.fail([...at, "ports"], "spec.ports must list at least one port");
  portList?.forEach((p, i) => {
    const pa = [...at, "ports", i];
    const o = r.obj(p, pa, true);
    if (!o) return;
    const number = r.port(o.number, [...pa, "number"], true);
    const pname = r.str(o.name, [...pa, "name"], true);
    if (pname !== undefined && !PORT_NAME.test(pname)) r.fail([...pa, "name"], `port name ${JSON.stringify(pname)} must be letters, digits, '.', '_' or '-' (at most 63)`);
    const protoText = (r.str(o.protocol, [...pa, "protocol"], false) ?? "TCP").toUpperCase();
    let protocol: Protocol | undefined = PROTOCOLS.find((x) => x === protoText);
    if (!protocol) {
      r.fail([...pa, "protocol"], protoText === "UDP"
        ? "protocol UDP is not supported: sidecars here proxy TCP"
        : `protocol ${protoText} is not one of ${PROTOCOLS.join(", ")}`);
      protocol = "TCP";
    }
    const targetPort = r.port(o.targetPort, [...pa, "targetPort"], false);
    if (number !== undefined && portNumbers.has(number)) r.fail([...pa, "number"], `port ${number} is listed twice`);
    if (pname !== undefined && portNames.has(pname)) r.fail([...pa, "name"], `port name ${pname} is listed twice`);
    if (number !== undefined && pname !== undefined) {
      ports.push({ number, name: pname, protocol, ...(targetPort ? { targetPort } : {}) });
      portNumbers.add(number);
      portNames.add(pname);
    }
  });

  const resolution = r.str(spec.resolution, [...at, "resolution"], false) ?? "STATIC";
  if (resolution !== "STATIC") r.fail([...at, "resolution"], `resolution ${resolution} is not supported: only STATIC (endpoints given as IP addresses)`);
  const location = r.str(spec.location, [...at, "location"], false) ?? "MESH_INTERNAL";
  if (location !== "MESH_INTERNAL" && location !== "MESH_EXTERNAL") r.fail([...at, "location"], `location ${location} is not MESH_INTERNAL or MESH_EXTERNAL`);

  const endpoints: Endpoint[] = [];
  r.list(spec.endpoints, [...at, "endpoints"], false)?.forEach((e, i) => {
    const ea = [...at, "endpoints", i];
    const o = r.obj(e, ea, true);
    if (!o) return;
    const address = r.address(o.address, [...ea, "address"]);
    const epPorts = r.portMap(o.ports, [...ea, "ports"]);
    for (const pn of Object.keys(epPorts)) {
      if (portList && !portNames.has(pn)) r.fail([...ea, "ports", pn], `endpoint port ${pn} does not name a port in spec.ports`);
    }
    const labels = r.stringMap(o.labels, [...ea, "labels"]);
    const network = r.str(o.network, [...ea, "network"], false);
    if (address !== undefined) endpoints.push({ address, ports: epPorts, labels, ...(network ? { network } : {}) });
  });

  let workloadSelector: Record<string, string> | undefined;
  const sel = r.obj(spec.workloadSelector, [...at, "workloadSelector"], false);
  if (sel) {
    workloadSelector = r.stringMap(sel.labels, [...at, "workloadSelector", "labels"]);
    if (Object.keys(workloadSelector).length === 0) r.fail([...at, "workloadSelector", "labels"], "workloadSelector.labels must name at least one label");
    if (spec.endpoints !== undefined) r.fail([...at, "workloadSelector"], "spec.endpoints and spec.workloadSelector are mutually exclusive");
  }

  return {
    kind: "ServiceEntry", ...head, hosts, addresses, ports, endpoints,
    ...(workloadSelector ? { workloadSelector } : {}),
    resolution: "STATIC", location: location === "MESH_EXTERNAL" ? "MESH_EXTERNAL" : "MESH_INTERNAL",
  };
}

function workloadEntry(r: Reader, spec: Obj, at: Path, head: Head): WorkloadEntry | undefined {
  const address = r.address(spec.address, [...at, "address"]);
  const ports = r.portMap(spec.ports, [...at, "ports"]);
  const labels = r.stringMap(spec.labels, [...at, "labels"]);
  const network = r.str(spec.network, [...at, "network"], false);
  if (address === undefined) return undefined;
  return { kind: "WorkloadEntry", ...head, address, ports, labels, ...(network ? { network } : {}) };
}
