// Istio's syntax rules for the strings inside ServiceEntry and WorkloadEntry (the same checks
// `istioctl validate` and Istio's admission webhook make), each returning the reason a value is
// refused, or undefined when Istio accepts it.
import { isIP } from "node:net";

const DNS1123_LABEL = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
/** A wildcard first label: "*", or a label with a leading "*" or "*-". */
const WILDCARD_LABEL = /^(\*|(\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;
const QUALIFIED_NAME = "(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_KEY = new RegExp(`^((?:[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)(?:\\.[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)*/)?(${QUALIFIED_NAME})$`);
const LABEL_VALUE = new RegExp(`^(${QUALIFIED_NAME})?$`);

export const isDns1123Label = (s: string) => s.length <= 63 && DNS1123_LABEL.test(s);

/** `whole` names the full domain in messages when `domain` is its tail. */
function dns1123Labels(domain: string, whole = domain): string | undefined {
  const parts = domain.split(".");
  const tld = parts[parts.length - 1]!;
  if (/^[0-9]+$/.test(tld)) return `domain name ${JSON.stringify(whole)} invalid (top level domain ${JSON.stringify(tld)} cannot be all-numeric)`;
  for (let i = 0; i < parts.length; i++) {
    if (i === parts.length - 1 && parts[i] === "") return undefined; // a trailing dot: "istio.io."
    if (!isDns1123Label(parts[i]!)) return `domain name ${JSON.stringify(whole)} invalid (label ${JSON.stringify(parts[i])} invalid)`;
  }
  return undefined;
}

function preconditions(name: string): string | undefined {
  if (name.length > 255) return `domain name ${JSON.stringify(name)} too long (max 255)`;
  if (name.length === 0) return "empty domain name not allowed";
  return undefined;
}

/** A fully qualified domain name without wildcards (DNS endpoints, hosts that DNS resolves). */
export function fqdnProblem(name: string): string | undefined {
  return preconditions(name) ?? dns1123Labels(name);
}

/** A host: a domain name whose first label may be a wildcard. An IP address is not a host. */
export function wildcardDomainProblem(name: string): string | undefined {
  const pre = preconditions(name);
  if (pre) return pre;
  const dot = name.indexOf(".");
  const first = dot < 0 ? name : name.slice(0, dot);
  if (!(first.length <= 63 && WILDCARD_LABEL.test(first))) return `domain name ${JSON.stringify(name)} invalid (label ${JSON.stringify(first)} invalid)`;
  return dot < 0 ? undefined : dns1123Labels(name.slice(dot + 1), name);
}

/** "*x" or "a*": Istio accepts them with a warning; only "*." prefixes are proper wildcards. */
export const isPartialWildcard = (host: string) => host.includes("*") && host.length !== 1 && !host.startsWith("*.");

export const isWildcardHost = (host: string) => host.startsWith("*");

/** A Kubernetes label key: an optional DNS-subdomain prefix and "/", then a name of at most 63 characters. */
export function labelKeyProblem(key: string): string | undefined {
  const m = LABEL_KEY.exec(key);
  if (!m) return `invalid label key ${JSON.stringify(key)}`;
  if (m[1] && m[1].length - 1 > 253) return `invalid label key ${JSON.stringify(key)} (DNS prefix is too long)`;
  if (m[2]!.length > 63) return `invalid label key ${JSON.stringify(key)} (name is too long)`;
  return undefined;
}

export function labelValueProblem(value: string): string | undefined {
  return LABEL_VALUE.test(value) && value.length <= 63 ? undefined : `invalid label value ${JSON.stringify(value)}`;
}

/** An address is an IP in Istio's sense (Go's netip: no zone here, which a listener cannot hold anyway). */
export const isIpLiteral = (s: string) => isIP(s) !== 0;

/**
 * Istio's port protocols, in Istio's spelling; matched ignoring case. "" means "detect" (Istio sniffs
 * the protocol). Anything else is refused.
 */
export const PROTOCOLS = ["TCP", "UDP", "GRPC", "GRPC-Web", "HTTP", "HTTP_PROXY", "HTTP2", "HTTPS", "TLS", "Mongo", "Redis", "MySQL"] as const;
export type KnownProtocol = (typeof PROTOCOLS)[number];

export function parseProtocol(text: string): KnownProtocol | "" | undefined {
  if (text === "") return "";
  const lower = text.toLowerCase();
  return PROTOCOLS.find((p) => p.toLowerCase() === lower);
}

/** HTTP, HTTP2, HTTP_PROXY, GRPC, GRPC-Web: Istio routes them by Host/authority. */
export const isHttpProtocol = (p: string) => ["HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-Web"].includes(p);
/** HTTPS and TLS: Istio routes them by SNI. */
export const isTlsProtocol = (p: string) => p === "HTTPS" || p === "TLS";

/** A unix:// address: an absolute path that is not a directory, or an abstract socket ("@name"). */
export function unixAddressProblem(path: string): string | undefined {
  if (path === "") return "unix address must not be empty";
  if (path.startsWith("@")) return undefined;
  if (!path.startsWith("/") || path.endsWith("/")) return `${path} is not an absolute path to a file`;
  return undefined;
}

/**
 * exportTo of a ServiceEntry in `namespace`: ".", "*", "~" or namespace names; no duplicates (". and
 * the own namespace count as one), "*" and "~" alone.
 */
export function exportToProblems(namespace: string, exportTo: string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const e of exportTo) {
    const key = e === "." ? namespace : e;
    if (seen.has(key)) {
      out.push(key !== e ? `duplicate entries in exportTo: . and current namespace ${namespace}` : `duplicate entries in exportTo for entry ${e}`);
      continue;
    }
    if (key !== "*" && key !== "~" && !isDns1123Label(key)) out.push(`exportTo ${JSON.stringify(e)}: only ., *, ~ or a valid DNS 1123 label is allowed`);
    else seen.add(key);
  }
  if (seen.has("*") && exportTo.length > 1) out.push("cannot have both public (*) and non-public exportTo values for a resource");
  if (seen.has("~") && exportTo.length > 1) out.push("cannot export service entry to no one (~) and someone");
  return out;
}
