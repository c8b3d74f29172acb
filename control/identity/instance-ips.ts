// node.metadata.INSTANCE_IPS: every IP of the node. Istio sends a comma-separated string; we also take
// `;` or whitespace as separators and a list value. Bad entries are reported, never fatal; how many
// entries a node may list is bounded (countInstanceIps), and reports echo at most a short prefix of an entry.
import { quote } from "../common/clip.ts";
import { parseIp } from "./ip.ts";

export interface InstanceIps {
  /** Canonical, deduplicated, in the order given. */
  ips: string[];
  /** Entries that are not IP addresses, with the reason. */
  invalid: { entry: string; reason: string }[];
}

export interface IdentityLimits {
  /** Entries INSTANCE_IPS may list (valid or not); a node with more is refused. */
  maxInstanceIps: number;
}

export const DEFAULT_IDENTITY_LIMITS: Readonly<IdentityLimits> = Object.freeze({ maxInstanceIps: 256 });

const SEPARATORS = /[\s,;]+/;
/** No address is longer (an IPv6 address with an IPv4 tail, in brackets, is 47 characters). */
const MAX_ADDRESS_CHARS = 64;
/** How much of a bad entry a report echoes. */
const ECHO_CHARS = 64;

const echo = (s: string) => quote(s, ECHO_CHARS);

/** The entries INSTANCE_IPS lists, without parsing them: what the maxInstanceIps limit counts. */
export function countInstanceIps(value: unknown): number {
  const count = (v: unknown): number => (typeof v === "string" ? v.split(SEPARATORS).filter((e) => e !== "").length : 1);
  return Array.isArray(value) ? value.reduce<number>((n, item) => n + count(item), 0) : value === undefined || value === null ? 0 : count(value);
}

/** A refusal message when INSTANCE_IPS lists more entries than the limit, else undefined. */
export function checkInstanceIps(value: unknown, limits: IdentityLimits): string | undefined {
  const n = countInstanceIps(value);
  return n > limits.maxInstanceIps ? `node.metadata.INSTANCE_IPS lists ${n} entries, over the limit of ${limits.maxInstanceIps}` : undefined;
}

export function parseInstanceIps(value: unknown): InstanceIps {
  const out: InstanceIps = { ips: [], invalid: [] };
  const seen = new Set<string>();
  const add = (entry: string) => {
    const r = entry.length > MAX_ADDRESS_CHARS ? { ok: false as const, reason: `${echo(entry)} is not an IPv4 or IPv6 address` } : parseIp(entry);
    if (!r.ok) out.invalid.push({ entry: entry.slice(0, ECHO_CHARS), reason: r.reason });
    else if (!seen.has(r.ip)) {
      seen.add(r.ip);
      out.ips.push(r.ip);
    }
  };
  // One level of list only: a list item that is not a string is reported, not descended into.
  const visit = (v: unknown, inList: boolean) => {
    if (v === undefined || v === null) return;
    if (typeof v === "string") {
      for (const entry of v.split(SEPARATORS)) if (entry !== "") add(entry);
    } else if (Array.isArray(v) && !inList) {
      for (const item of v) visit(item, true);
    } else {
      const text = JSON.stringify(v) ?? String(v);
      out.invalid.push({ entry: text.slice(0, ECHO_CHARS), reason: `${echo(text)}: INSTANCE_IPS must be a string or a list of strings` });
    }
  };
  visit(value, false);
  return out;
}
