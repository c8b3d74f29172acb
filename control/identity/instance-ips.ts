// node.metadata.INSTANCE_IPS: every IP of the node. Istio sends a comma-separated string; we also take
// `;` or whitespace as separators and a list value. Bad entries are reported, never fatal.
import { parseIp } from "./ip.ts";

export interface InstanceIps {
  /** Canonical, deduplicated, in the order given. */
  ips: string[];
  /** Entries that are not IP addresses, with the reason. */
  invalid: { entry: string; reason: string }[];
}

export function parseInstanceIps(value: unknown): InstanceIps {
  const out: InstanceIps = { ips: [], invalid: [] };
  const seen = new Set<string>();
  const add = (entry: string) => {
    const r = parseIp(entry);
    if (!r.ok) out.invalid.push({ entry, reason: r.reason });
    else if (!seen.has(r.ip)) {
      seen.add(r.ip);
      out.ips.push(r.ip);
    }
  };
  const visit = (v: unknown) => {
    if (v === undefined || v === null) return;
    if (typeof v === "string") {
      for (const entry of v.split(/[\s,;]+/)) if (entry !== "") add(entry);
    } else if (Array.isArray(v)) {
      for (const item of v) visit(item);
    } else {
      out.invalid.push({ entry: JSON.stringify(v) ?? String(v), reason: "INSTANCE_IPS must be a string or a list of strings" });
    }
  };
  visit(value);
  return out;
}
