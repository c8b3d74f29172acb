// `ip -json addr show` (iproute2) → the interface addresses control/identity/node-address.ts judges.
// Pure. Tolerant: a field that is missing or of another type leaves its default (iproute2 versions and
// interface kinds differ in what they print), and an entry without an address is skipped; only output
// that is not a JSON array of interfaces is an error, since then nothing can be trusted.
import type { InterfaceAddress } from "../identity/node-address.ts";

/** How much of unparseable output an error quotes. */
const QUOTE_CHARS = 120;

/**
 * The addresses in `text`, in iproute2's order. Per interface: its name (`ifname`; `if<ifindex>` if
 * absent), loopback from the LOOPBACK flag, up from UP without NO-CARRIER (what node:os's IFF_UP and
 * IFF_RUNNING test). Per address: `local`, and tentative when IPv6 duplicate address detection is
 * running (`tentative`) or failed (`dadfailed`): the kernel neither accepts traffic for such an address
 * nor lets a socket bind it. Once detection passes the kernel reports the address again (a new
 * RTM_NEWADDR, which `ip monitor` prints), so a watcher counts it then, usually 1 to 2 s after it was added.
 */
export function parseIpAddrJson(text: string): InterfaceAddress[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    const head = text.trim().slice(0, QUOTE_CHARS);
    throw new Error(`ip -json addr show: the output is not JSON (${(err as Error).message}): ${head === "" ? "empty output" : JSON.stringify(head)}`);
  }
  if (!Array.isArray(doc)) throw new Error(`ip -json addr show: expected a JSON array of interfaces, got ${doc === null ? "null" : typeof doc}`);
  const out: InterfaceAddress[] = [];
  for (const link of doc) {
    if (!isObject(link)) continue;
    const ifname = typeof link.ifname === "string" ? link.ifname : `if${String(link.ifindex ?? "?")}`;
    const flags = Array.isArray(link.flags) ? link.flags.filter((f): f is string => typeof f === "string") : undefined;
    const linkFacts: Partial<InterfaceAddress> = {};
    if (flags?.includes("LOOPBACK")) linkFacts.loopback = true;
    if (flags && (!flags.includes("UP") || flags.includes("NO-CARRIER"))) linkFacts.up = false;
    for (const a of Array.isArray(link.addr_info) ? link.addr_info : []) {
      if (!isObject(a) || typeof a.local !== "string") continue;
      if (a.family !== undefined && a.family !== "inet" && a.family !== "inet6") continue;
      const entry: InterfaceAddress = { ifname, address: a.local, ...linkFacts };
      if (a.tentative === true || a.dadfailed === true) entry.tentative = true;
      out.push(entry);
    }
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
