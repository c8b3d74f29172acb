// Multus's pod annotation k8s.v1.cni.cncf.io/network-status: the networks a pod is attached to, the
// interface each is on and its IPs, as a JSON list of {name, interface?, ips?, mac?, default?, dns?}.
// Multus writes it, but anyone who may edit the pod can write anything there, so it is read as
// untrusted text: bounded before it is parsed, checked field by field, and never thrown on. What is
// wrong becomes a warning naming the pod and what was left out; the rest is still used.
import type { V1Pod } from "@kubernetes/client-node";
import { clip, quote } from "../../../common/clip.ts";
import { isUnspecified, parseIp } from "../../../identity/ip.ts";
import { objectName } from "./objects.ts";

export const NETWORK_STATUS_ANNOTATION = "k8s.v1.cni.cncf.io/network-status";

/**
 * Far above what a pod carries (a few networks, one IP per family each), low enough that a hostile
 * annotation costs little: the text is refused before parsing, a list over a limit is refused whole.
 */
export const NETWORK_STATUS_LIMITS = Object.freeze({
  maxBytes: 64 * 1024,
  maxNetworks: 64,
  maxIpsPerNetwork: 16,
  /** A namespace (63) + "/" + a NetworkAttachmentDefinition name (a DNS subdomain, 253) fits; so does any CNI network name seen. */
  maxNameLength: 253,
  /** Linux allows 15; other platforms' names are longer, and nothing here depends on it. */
  maxInterfaceLength: 64,
  maxMacLength: 64,
});

/** One entry: a network the pod is attached to on one interface. */
export interface NetworkAttachment {
  /** "NS/NAME" for a NetworkAttachmentDefinition; a bare name for the cluster's default network (as its CNI configuration names it) or what older Multus wrote. */
  name: string;
  interface?: string;
  /** Canonical (identity/ip.ts), without duplicates, in the order written. */
  ips: string[];
  mac?: string;
  /** The pod's cluster-wide default network: the one status.podIPs are on. */
  default: boolean;
}

export interface NetworkStatus {
  networks: NetworkAttachment[];
  /** `pod NS/NAME: annotation k8s.v1.cni.cncf.io/network-status: ...`; at most one per entry, plus one for the whole annotation. */
  warnings: string[];
}

/** A CNI network name: letters, digits, '_', '.', '-' (the CNI specification's rule), optionally behind a namespace and '/'. */
const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*(\/[A-Za-z0-9][A-Za-z0-9_.-]*)?$/;
/** An interface name as `ip link` shows one: printable, no '/' or whitespace. */
const INTERFACE_NAME = /^[^\s/\x00-\x1f\x7f]+$/;
/** How much of a bad value a warning quotes. */
const QUOTE_CHARS = 80;

/** The pod's network-status, or no networks when it has none (a pod without Multus, or not yet started). */
export function podNetworkStatus(pod: V1Pod, parsed?: NetworkStatusCache): NetworkStatus {
  const known = parsed?.get(pod);
  if (known) return known;
  const status = readPodNetworkStatus(pod);
  parsed?.set(pod, status);
  return status;
}

/**
 * Pods' parsed annotations by pod object, kept by whoever translates a cluster again and again (the
 * Kubernetes source): the watch keeps an unchanged pod as the same object, and every update reads each
 * pod's annotation twice (its Services' endpoints, its node IPs); with it, once per version of the pod.
 */
export type NetworkStatusCache = WeakMap<V1Pod, NetworkStatus>;

function readPodNetworkStatus(pod: V1Pod): NetworkStatus {
  const value: unknown = pod.metadata?.annotations?.[NETWORK_STATUS_ANNOTATION];
  if (value === undefined || value === null) return { networks: [], warnings: [] };
  const prefix = `pod ${objectName(pod.metadata)}: annotation ${NETWORK_STATUS_ANNOTATION}`;
  if (typeof value !== "string") return { networks: [], warnings: [`${prefix}: must be a string, got ${typeof value}; ignored`] };
  return parseNetworkStatus(value, objectName(pod.metadata));
}

/** The annotation's text, for the pod named `pod` ("NS/NAME", for warnings). Never throws. */
export function parseNetworkStatus(text: string, pod: string): NetworkStatus {
  const prefix = `pod ${pod}: annotation ${NETWORK_STATUS_ANNOTATION}`;
  const refuse = (reason: string): NetworkStatus => ({ networks: [], warnings: [`${prefix}: ${reason}; ignored`] });
  const limits = NETWORK_STATUS_LIMITS;
  // Characters first (each is at least one UTF-8 byte), so a huge text is refused without being measured.
  if (text.length > limits.maxBytes) return refuse(`is ${text.length} characters, over the limit of ${limits.maxBytes} bytes`);
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > limits.maxBytes) return refuse(`is ${bytes} bytes, over the limit of ${limits.maxBytes}`);
  if (text.trim() === "") return { networks: [], warnings: [] };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return refuse(`is not JSON (${clip((err as Error).message, 200)})`);
  }
  if (!Array.isArray(doc)) return refuse(`must be a JSON list of networks, got ${describe(doc)}`);
  if (doc.length > limits.maxNetworks) return refuse(`lists ${doc.length} networks, over the limit of ${limits.maxNetworks}`);
  const networks: NetworkAttachment[] = [];
  const warnings: string[] = [];
  doc.forEach((entry, i) => {
    const read = readEntry(entry);
    if (read.ok) networks.push(read.network);
    else warnings.push(`${prefix}: [${i}]${read.field ? `.${read.field}` : ""}: ${read.reason}; ${read.name ? `network ${read.name}` : "this entry"} left out`);
  });
  return { networks, warnings };
}

type EntryRead = { ok: true; network: NetworkAttachment } | { ok: false; field: string; reason: string; name?: string };

function readEntry(entry: unknown): EntryRead {
  const limits = NETWORK_STATUS_LIMITS;
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return { ok: false, field: "", reason: `must be a map, got ${describe(entry)}` };
  const e = entry as Record<string, unknown>;
  const name = readString(e.name, true, limits.maxNameLength);
  if (!name.ok) return { ok: false, field: "name", reason: name.reason };
  if (!NETWORK_NAME.test(name.value!)) return { ok: false, field: "name", reason: `${quote(name.value!, QUOTE_CHARS)} is not a network name (NAME or NAMESPACE/NAME: letters, digits, '_', '.', '-')` };
  // From here on a warning can say which network was left out.
  const fail = (field: string, reason: string): EntryRead => ({ ok: false, field, reason, name: name.value! });

  const iface = readString(e.interface, false, limits.maxInterfaceLength);
  if (!iface.ok) return fail("interface", iface.reason);
  if (iface.value !== undefined && iface.value !== "" && !INTERFACE_NAME.test(iface.value)) return fail("interface", `${quote(iface.value, QUOTE_CHARS)} is not an interface name`);

  const mac = readString(e.mac, false, limits.maxMacLength);
  if (!mac.ok) return fail("mac", mac.reason);

  if (e.default !== undefined && e.default !== null && typeof e.default !== "boolean") return fail("default", `must be true or false, got ${describe(e.default)}`);
  // dns and device-info are Multus's too; nothing here reads them, but a wrong type says the entry was not written by Multus.
  for (const field of ["dns", "device-info"]) {
    const v = e[field];
    if (v !== undefined && v !== null && (typeof v !== "object" || Array.isArray(v))) return fail(field, `must be a map, got ${describe(v)}`);
  }

  const ips: string[] = [];
  if (e.ips !== undefined && e.ips !== null) {
    if (!Array.isArray(e.ips)) return fail("ips", `must be a list of IP addresses, got ${describe(e.ips)}`);
    if (e.ips.length > limits.maxIpsPerNetwork) return fail("ips", `lists ${e.ips.length} addresses, over the limit of ${limits.maxIpsPerNetwork}`);
    for (let j = 0; j < e.ips.length; j++) {
      const raw: unknown = e.ips[j];
      if (typeof raw !== "string") return fail(`ips[${j}]`, `must be a string, got ${describe(raw)}`);
      // Multus writes bare addresses: brackets, spaces, a prefix length or a zone index mean something else wrote it.
      if (raw.length > 64 || raw.startsWith("[") || raw !== raw.trim()) return fail(`ips[${j}]`, `${quote(raw, QUOTE_CHARS)} is not a bare IPv4 or IPv6 address`);
      const ip = parseIp(raw);
      if (!ip.ok) return fail(`ips[${j}]`, ip.reason);
      if (isUnspecified(ip.ip)) return fail(`ips[${j}]`, `${raw} is the unspecified address, not a host`);
      if (!ips.includes(ip.ip)) ips.push(ip.ip);
    }
  }
  return {
    ok: true,
    network: {
      name: name.value!,
      ...(iface.value ? { interface: iface.value } : {}),
      ips,
      ...(mac.value ? { mac: mac.value } : {}),
      default: e.default === true,
    },
  };
}

type StringRead = { ok: true; value: string | undefined } | { ok: false; reason: string };

function readString(v: unknown, required: boolean, maxLength: number): StringRead {
  if (v === undefined || v === null) return required ? { ok: false, reason: "is required" } : { ok: true, value: undefined };
  if (typeof v !== "string") return { ok: false, reason: `must be a string, got ${describe(v)}` };
  if (required && v === "") return { ok: false, reason: "must not be empty" };
  if (v.length > maxLength) return { ok: false, reason: `is ${v.length} characters, over the limit of ${maxLength}` };
  return { ok: true, value: v };
}

/** A value as a warning names it: its type, or a short quote of a scalar. */
function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a map";
  if (typeof v === "string") return quote(v, QUOTE_CHARS);
  return String(v);
}

/**
 * Whether an entry's name is the network `ref` ("NS/NAME") for a pod in `podNamespace`. Multus writes
 * "NS/NAME" for attachments; a bare NAME (older Multus, or a hand-written annotation) is taken to mean
 * the pod's own namespace, as a bare name in the pod's k8s.v1.cni.cncf.io/networks request does.
 */
export function isNetwork(entryName: string, ref: { namespace: string; name: string }, podNamespace: string): boolean {
  const slash = entryName.indexOf("/");
  if (slash < 0) return entryName === ref.name && podNamespace === ref.namespace;
  return entryName.slice(0, slash) === ref.namespace && entryName.slice(slash + 1) === ref.name;
}
