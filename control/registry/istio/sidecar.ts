// An Istio Sidecar's spec, validated as Istio validates it (pkg/config/validation: ValidateSidecar),
// reduced to what scopes a proxy's outbound configuration: which proxies it applies to
// (workloadSelector), which services they are sent (egress hosts, by port), and where destinations no
// service claims go (outboundTrafficPolicy). What Istio accepts but multiplane does not serve (ingress
// listeners, bind addresses, capture modes) is a warning naming the field.
import { isIP } from "node:net";
import { isDns1123Label, isPartialWildcard, isTlsProtocol, parseProtocol, unixAddressProblem, wildcardDomainProblem, type KnownProtocol } from "./syntax.ts";
import type { EgressHost, Sidecar, SidecarEgress } from "../model.ts";
import { pathName, Reader, type Obj, type Path } from "./reader.ts";
import { readLabels } from "./workload.ts";
import type { Head } from "./service-entry.ts";

const SPEC_FIELDS = ["workloadSelector", "ingress", "egress", "outboundTrafficPolicy", "inboundConnectionPool"] as const;
const EGRESS_FIELDS = ["port", "bind", "captureMode", "hosts"] as const;
const PORT_FIELDS = ["number", "protocol", "name", "targetPort"] as const;
const POLICY_FIELDS = ["mode", "egressProxy"] as const;
const INGRESS_FIELDS = ["port", "bind", "captureMode", "defaultEndpoint", "tls", "connectionPool"] as const;
/** Loopback or any-address hosts, as Istio allows them in an ingress listener's defaultEndpoint. */
const DEFAULT_ENDPOINT_HOSTS = ["", "127.0.0.1", "0.0.0.0", "::1", "::"];
const CAPTURE_MODES = ["DEFAULT", "IPTABLES", "NONE"];

export function readSidecar(r: Reader, spec: Obj, at: Path, head: Head): Sidecar | undefined {
  r.known(spec, at, SPEC_FIELDS);
  const workloadSelector = readSelector(r, spec.workloadSelector, [...at, "workloadSelector"]);
  if (spec.egress == null && spec.ingress == null && spec.outboundTrafficPolicy == null && spec.inboundConnectionPool == null) {
    return r.fail(at, "sidecar: empty configuration provided");
  }
  // Inbound listeners come from the registry's instances on the node (as Istio's do without ingress):
  // validated as Istio does, then not served.
  if (spec.ingress != null) {
    readIngress(r, spec.ingress, [...at, "ingress"]);
    r.warn([...at, "ingress"], `${pathName([...at, "ingress"])} is ignored: multiplane builds inbound listeners from the registry's instances on the node`);
  }
  if (spec.inboundConnectionPool != null) r.warn([...at, "inboundConnectionPool"], `${pathName([...at, "inboundConnectionPool"])} is ignored: multiplane's inbound clusters have no connection pool settings`);
  const egress = readEgress(r, spec.egress, [...at, "egress"]);
  const outboundTrafficPolicy = readPolicy(r, spec.outboundTrafficPolicy, [...at, "outboundTrafficPolicy"]);
  return {
    kind: "Sidecar", ...head, ...(workloadSelector ? { workloadSelector } : {}), egress,
    ...(outboundTrafficPolicy ? { outboundTrafficPolicy } : {}),
  };
}

/** Istio's WorkloadSelector: `labels`; without any it selects nothing in particular, so it applies to the whole namespace (Istio warns). */
function readSelector(r: Reader, v: unknown, at: Path): Record<string, string> | undefined {
  const o = r.obj(v, at, false);
  if (!o) return undefined;
  r.known(o, at, ["labels"]);
  const labels = readLabels(r, o.labels, [...at, "labels"]);
  if (Object.keys(labels).length > 0) return labels;
  r.warn(at, "sidecar: workloadSelector has no labels, will be applied to all services in namespace");
  return undefined;
}

function readEgress(r: Reader, v: unknown, at: Path): SidecarEgress[] {
  const list = r.list(v, at, false, 256) ?? [];
  const out: SidecarEgress[] = [];
  const ports = new Set<number>();
  const sockets = new Set<unknown>();
  let catchAll = false;
  list.forEach((e, i) => {
    const ea = [...at, i];
    const o = r.obj(e, ea, true);
    if (!o) return;
    r.known(o, ea, EGRESS_FIELDS);
    let port: number | undefined;
    if (o.port == null) {
      if (catchAll) return void r.fail(ea, "sidecar: egress can have only one listener with empty port");
      if (i !== list.length - 1) r.fail(ea, "sidecar: the egress listener with empty port should be the last listener in the list");
      catchAll = true;
    } else {
      port = readPort(r, o.port, [...ea, "port"], { bind: o.bind })?.number;
      if (port === 0) {
        if (sockets.has(o.bind)) r.fail([...ea, "bind"], "sidecar: unix domain socket values for listeners must be unique");
        sockets.add(o.bind);
      } else if (port !== undefined && ports.has(port)) r.fail([...ea, "port"], "sidecar: ports on IP bound listeners must be unique");
      if (port !== undefined) ports.add(port);
    }
    const bind = r.str(o.bind, [...ea, "bind"], false, 256);
    if (bind) r.warn([...ea, "bind"], `${pathName([...ea, "bind"])} is ignored: multiplane's outbound listeners take connections the virtual listener hands over, on any address`);
    const capture = r.str(o.captureMode, [...ea, "captureMode"], false);
    if (capture !== undefined && capture !== "" && !CAPTURE_MODES.includes(capture)) r.fail([...ea, "captureMode"], `${pathName([...ea, "captureMode"])} ${capture} is not one of ${CAPTURE_MODES.join(", ")}`);
    else if (capture && capture !== "DEFAULT") r.warn([...ea, "captureMode"], `${pathName([...ea, "captureMode"])} ${capture} is ignored: traffic capture is set up by \`multiplane capture\`, not per listener`);
    const hosts = readHosts(r, o.hosts, [...ea, "hosts"]);
    // Kept as port 0, which no service port matches: its hosts are imported for the socket only, which multiplane does not serve.
    if (port === 0) r.warn(ea, `${pathName(ea)}: unix domain socket egress listeners are not served by multiplane; its hosts are not imported`);
    out.push({ ...(port !== undefined ? { port } : {}), hosts });
  });
  return out;
}

/** Istio's rules for ingress listeners (validated, not served): a port each, unique; a loopback or any-address defaultEndpoint; TLS only on TLS ports, not Istio's own modes. */
function readIngress(r: Reader, v: unknown, at: Path): void {
  const ports = new Set<number>();
  (r.list(v, at, false, 256) ?? []).forEach((item, i) => {
    const ia = [...at, i];
    const o = r.obj(item, ia, true);
    if (!o) return;
    r.known(o, ia, INGRESS_FIELDS);
    if (o.port == null) return void r.fail(ia, "sidecar: port is required for ingress listeners");
    const port = readPort(r, o.port, [...ia, "port"]);
    if (!port) return;
    const { number, protocol: known } = port;
    if (number !== undefined && ports.has(number)) r.fail([...ia, "port", "number"], "sidecar: ports on IP bound listeners must be unique");
    if (number !== undefined) ports.add(number);
    const bind = r.str(o.bind, [...ia, "bind"], false, 256);
    if (bind && isIP(bind) === 0) r.fail([...ia, "bind"], `${pathName([...ia, "bind"])}: ${JSON.stringify(bind)} is not an IP address`);
    const endpoint = r.str(o.defaultEndpoint, [...ia, "defaultEndpoint"], false, 256);
    if (endpoint) defaultEndpointProblem(endpoint, (why) => r.fail([...ia, "defaultEndpoint"], why));
    const tls = r.obj(o.tls, [...ia, "tls"], false);
    if (tls) {
      if (Array.isArray(tls.subjectAltNames) && tls.subjectAltNames.length > 0) r.fail([...ia, "tls", "subjectAltNames"], "sidecar: subjectAltNames is not supported in ingress tls");
      if (tls.httpsRedirect === true) r.fail([...ia, "tls", "httpsRedirect"], "sidecar: httpsRedirect is not supported");
      if (tls.credentialName) r.fail([...ia, "tls", "credentialName"], "sidecar: credentialName is not currently supported");
      if (tls.mode === "ISTIO_MUTUAL" || tls.mode === "AUTO_PASSTHROUGH") r.fail([...ia, "tls", "mode"], `configuration is invalid: cannot set mode to ${tls.mode} in sidecar ingress tls`);
      if (known !== undefined && !isTlsProtocol(known)) r.fail([...ia, "tls"], "server cannot have TLS settings for non HTTPS/TLS ports");
    }
  });
}

/** `127.0.0.1:PORT`, `0.0.0.0:PORT`, `[::1]:PORT`, `[::]:PORT`, `:PORT` or `unix://PATH`. */
function defaultEndpointProblem(endpoint: string, fail: (why: string) => void): void {
  if (endpoint.startsWith("unix://")) {
    const problem = unixAddressProblem(endpoint.slice("unix://".length));
    if (problem) fail(`defaultEndpoint ${JSON.stringify(endpoint)}: ${problem}`);
    return;
  }
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(endpoint);
  if (!m) return fail(`defaultEndpoint ${JSON.stringify(endpoint)} is not HOST:PORT`);
  const host = m[1] ?? m[2] ?? "";
  if (!DEFAULT_ENDPOINT_HOSTS.includes(host)) fail("sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,[::1]:port,[::]:port,unix://filepath or unset");
  const port = /^\d+$/.test(m[3]!) ? Number(m[3]) : NaN;
  if (Number.isNaN(port)) fail(`sidecar: defaultEndpoint port (${m[3]}) is not a number`);
  else if (port < 1 || port > 65535) fail(`sidecar: defaultEndpoint port ${port} is not a port number 1..65535`);
}

/**
 * A listener's port (Istio's SidecarPort), ingress or egress alike; on an `egress` listener number 0 is
 * a unix socket listener (with a unix:// bind), as Istio allows there. `protocol` undefined: refused.
 */
function readPort(r: Reader, v: unknown, at: Path, egress?: { bind: unknown }): { number?: number; protocol?: KnownProtocol | "" } | undefined {
  const o = r.obj(v, at, true);
  if (!o) return undefined;
  r.known(o, at, PORT_FIELDS);
  if (o.targetPort != null && o.targetPort !== 0) r.fail([...at, "targetPort"], "targetPort has no impact on Sidecars");
  const name = r.str(o.name, [...at, "name"], false, 256);
  if (name && !isDns1123Label(name)) r.fail([...at, "name"], `invalid port name: ${JSON.stringify(name)} (a DNS-1123 label: letters, digits and '-', at most 63)`);
  const text = r.str(o.protocol, [...at, "protocol"], false, 256) ?? "";
  const protocol = parseProtocol(text);
  if (protocol === undefined) r.fail([...at, "protocol"], `unsupported protocol: ${text}`);
  if (egress && o.number === 0) {
    const bind = egress.bind;
    if (typeof bind !== "string" || !bind.startsWith("unix://")) r.fail([...at, "number"], "sidecar: ports with 0 value must have a unix domain socket bind address");
    return { number: 0, protocol };
  }
  return { number: r.port(o.number, [...at, "number"], true), protocol };
}

/** `namespace/dnsName`: namespace `*`, `.` or a name, `~`-prefixed to exclude; dnsName `*` or a (wildcard) FQDN. */
function readHosts(r: Reader, v: unknown, at: Path): EgressHost[] {
  const list = r.list(v, at, false, 1024) ?? [];
  if (list.length === 0) r.fail(at, "sidecar: egress listener must contain at least one host");
  const out: EgressHost[] = [];
  const seen = new Set<string>();
  list.forEach((h, i) => {
    const ha = [...at, i];
    const s = r.str(h, ha, true, 512);
    if (s === undefined) return;
    const slash = s.indexOf("/");
    if (slash < 0) return void r.fail(ha, `host ${JSON.stringify(s)} must be of form namespace/dnsName`);
    const nsText = s.slice(0, slash);
    const name = s.slice(slash + 1);
    if (nsText === "" || name === "") return void r.fail(ha, `host ${JSON.stringify(s)}: config namespace and dnsName in host entry cannot be empty`);
    const excluded = nsText.startsWith("~");
    const ns = excluded ? nsText.slice(1) || "*" : nsText;
    if (ns !== "*" && ns !== "." && !isDns1123Label(ns)) return void r.fail(ha, `host ${JSON.stringify(s)}: invalid namespace value ${JSON.stringify(nsText)} in sidecar`);
    if (name !== "*" && !name.includes(".")) return void r.fail(ha, `host ${JSON.stringify(s)}: short names (non FQDN) are not allowed`);
    const problem = name === "*" ? undefined : wildcardDomainProblem(name);
    if (problem) return void r.fail(ha, `host ${JSON.stringify(s)}: ${problem}`);
    if (isPartialWildcard(name)) return void r.fail(ha, `host ${JSON.stringify(s)}: partial wildcard ${JSON.stringify(name)} not allowed`);
    const host = name.toLowerCase().replace(/\.$/, "");
    const key = `${excluded ? "~" : ""}${ns}/${host}`;
    if (seen.has(key) || (!excluded && host !== "*" && seen.has(`${ns}/*`))) r.warn(ha, `duplicated egress host: ${s}`);
    seen.add(key);
    out.push({ namespace: ns, host, ...(excluded ? { excluded: true } : {}) });
  });
  if (seen.has("*/*") && out.some((h) => !h.excluded && h.namespace !== "*")) r.warn(at, "`*/*` host select all resources, no other hosts can be added");
  return out;
}

/** Istio's OutboundTrafficPolicy message: mode's zero value is REGISTRY_ONLY (a policy without a mode blocks). */
function readPolicy(r: Reader, v: unknown, at: Path): Sidecar["outboundTrafficPolicy"] {
  const o = r.obj(v, at, false);
  if (!o) return undefined;
  r.known(o, at, POLICY_FIELDS);
  const mode = r.str(o.mode, [...at, "mode"], false) || "REGISTRY_ONLY";
  if (mode === "ALLOW_ANY_DYNAMIC_DNS") return r.fail([...at, "mode"], "sidecar: ALLOW_ANY_DYNAMIC_DNS mode is only supported in MeshConfig, not in Sidecar resource");
  if (mode !== "REGISTRY_ONLY" && mode !== "ALLOW_ANY") return r.fail([...at, "mode"], `${pathName([...at, "mode"])} ${mode} is not one of REGISTRY_ONLY, ALLOW_ANY`);
  if (o.egressProxy != null) {
    if (mode !== "ALLOW_ANY") return r.fail([...at, "egressProxy"], "sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode");
    // Unknown destinations would go somewhere else than the config says: refused, not ignored.
    return r.fail([...at, "egressProxy"], `${pathName([...at, "egressProxy"])} is not supported by multiplane: destinations no service claims pass through to the address the client dialled`);
  }
  return mode;
}
