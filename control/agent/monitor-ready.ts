// When has `ip monitor` subscribed? A change made after the watcher's first read but before the monitor
// listens would go unseen until the next periodic read, so the first read waits for the subscription:
// the process holds a NETLINK_ROUTE socket that has joined multicast groups (Linux /proc: the socket
// inodes of /proc/PID/fd against /proc/PID/net/netlink, which is the table of the process's own network
// namespace, so `ip -n NAME` is seen where it listens). Only `ip` itself is looked at: a wrapper script
// in its place is never seen subscribed, and the wait ends at its timeout.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** true: subscribed; false: not yet; undefined: cannot tell (no /proc, or the process is gone). */
export function netlinkSubscribed(pid: number): boolean | undefined {
  const inodes = new Set<string>();
  let table: string;
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        // closed while listed
      }
    }
    table = readFileSync(`/proc/${pid}/net/netlink`, "utf8");
  } catch {
    return undefined;
  }
  // Columns: sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode; Eth 0 is NETLINK_ROUTE, Groups in hex.
  for (const line of table.split("\n").slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length >= 10 && cols[1] === "0" && inodes.has(cols[9]!) && parseInt(cols[3]!, 16) !== 0) return true;
  }
  return false;
}

export type MonitorReadiness = "subscribed" | "gone" | "timeout" | "unknown";

/** Polls until the process has subscribed, is gone (`gone` settled), `timeoutMs` passed, or /proc cannot tell. */
export async function waitForSubscription(pid: number | undefined, gone: Promise<unknown>, timeoutMs: number, pollMs = 5): Promise<MonitorReadiness> {
  if (pid === undefined) return "gone";
  let over = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  void gone.then(() => {
    over = true;
    clearTimeout(timer);
    wake?.();
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (over) return "gone";
    const subscribed = netlinkSubscribed(pid);
    if (subscribed === true) return "subscribed";
    if (subscribed === undefined) return over ? "gone" : "unknown";
    if (Date.now() >= deadline) return "timeout";
    await new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, pollMs);
    });
  }
}
