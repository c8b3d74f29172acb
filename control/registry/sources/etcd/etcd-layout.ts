// Where registry documents live in etcd: `etcd://HOST:PORT[,HOST:PORT...]/PREFIX` names the cluster and
// the prefix; each ServiceEntry, WorkloadEntry or Sidecar is one key, PREFIX/<kind>/<namespace>/<name>, whose
// value is the same YAML or JSON a registry file holds. Pure: no I/O.
import { ETCD_VALUE_LIMITS } from "../../text-limits.ts";
import type { RegistryError, Resource } from "../../model.ts";
import { parseRegistryText } from "../../istio/parse.ts";

export interface EtcdLocation {
  /** host:port of each member to try, in the order given. */
  hosts: string[];
  /** Without a trailing slash; keys are `${prefix}/...`. */
  prefix: string;
}

export const ETCD_SCHEME = "etcd://";
export const KINDS = ["ServiceEntry", "WorkloadEntry", "Sidecar"] as const;
export type Kind = (typeof KINDS)[number];

export const isEtcdUrl = (s: string) => s.startsWith(ETCD_SCHEME);

/** Parses `etcd://h1:2379,h2:2379/prefix`; throws with the reason. */
export function parseEtcdUrl(url: string): EtcdLocation {
  const bad = (why: string) => new Error(`${JSON.stringify(url)}: ${why} (expected etcd://HOST:PORT[,HOST:PORT...]/PREFIX)`);
  if (!isEtcdUrl(url)) throw bad(`not an ${ETCD_SCHEME} URL`);
  const rest = url.slice(ETCD_SCHEME.length);
  const slash = rest.indexOf("/");
  if (slash < 0) throw bad("no /PREFIX");
  const hosts = rest.slice(0, slash).split(",");
  for (const h of hosts) {
    const m = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(h);
    if (!m || !(Number(m[1]) > 0 && Number(m[1]) < 65536)) throw bad(`${JSON.stringify(h)} is not HOST:PORT`);
  }
  const prefix = rest.slice(slash + 1).replace(/\/+$/, "");
  if (prefix === "") throw bad("the prefix is empty");
  if (/[\s]/.test(prefix)) throw bad("the prefix contains whitespace");
  return { hosts, prefix };
}

export const etcdUrl = (loc: EtcdLocation) => `${ETCD_SCHEME}${loc.hosts.join(",")}/${loc.prefix}`;

export const resourceEtcdKey = (prefix: string, r: { kind: string; namespace: string; name: string }) => `${prefix}/${r.kind}/${r.namespace}/${r.name}`;

/** The first key after every key that starts with `p` (etcd's range_end for a prefix). */
export function prefixEnd(p: Buffer): Buffer {
  const end = Buffer.from(p);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** The keys under `prefix/`: [key, range_end). */
export function prefixRange(prefix: string): { key: Buffer; range_end: Buffer } {
  const key = Buffer.from(`${prefix}/`);
  return { key, range_end: prefixEnd(key) };
}

export interface ParsedValue {
  resource?: Resource;
  errors: RegistryError[];
  warnings: RegistryError[];
}

/**
 * One stored value, validated like a file named after its key: exactly one document, of the kind,
 * namespace and name its key says. Errors read `KEY:line:column: reason`.
 */
export function parseEtcdValue(prefix: string, key: string, value: string): ParsedValue {
  const rel = key.slice(prefix.length + 1).split("/");
  if (rel.length !== 3 || !(KINDS as readonly string[]).includes(rel[0]!) || rel.some((s) => s === "")) {
    return { errors: [], warnings: [{ file: key, line: 0, reason: `not ${prefix}/<${KINDS.join("|")}>/<namespace>/<name>; ignored` }] };
  }
  const [kind, namespace, name] = rel as [Kind, string, string];
  const parsed = parseRegistryText(value, key, ETCD_VALUE_LIMITS);
  const warnings = parsed.warnings;
  if (parsed.errors.length > 0) return { errors: parsed.errors, warnings };
  if (parsed.resources.length !== 1) {
    return { errors: [{ file: key, line: 1, reason: `expected exactly one ${kind}, got ${parsed.resources.length} ServiceEntry/WorkloadEntry documents` }], warnings };
  }
  const r = parsed.resources[0]!;
  if (r.kind !== kind || r.namespace !== namespace || r.name !== name) {
    return { errors: [{ file: key, line: r.origin.line, reason: `${r.kind} ${r.namespace}/${r.name} does not match its key (${kind} ${namespace}/${name})` }], warnings };
  }
  return { resource: r, errors: [], warnings };
}
