// This node's IPs, live: the node agent's view of what its Envoy should report as node IPs.
//
// iproute2 6.1's `ip monitor` prints no JSON, so its lines are only a trigger: after each burst the whole
// set is read again with `ip -json addr show` and judged by control/identity/node-address.ts (the rule
// `bootstrap --instance-ips auto` uses too). The monitor also follows links, since an interface going
// down or losing its carrier takes its addresses out of the set without any address event.
//
// Order matters at the start: the monitor is started and subscribed before the first read, so a change
// made at any moment after that read is seen. A periodic full read is the safety net for anything the
// monitor still missed (a netlink buffer overrun, the gap while a dead monitor is restarted).
import { sameList } from "../common/same-list.ts";
import { nodeAddresses } from "../identity/node-address.ts";
import { ChangeBatcher } from "./change-batcher.ts";
import { runIp, spawnMonitor, type IpTarget, type MonitorProcess } from "./ip-command.ts";
import { parseIpAddrJson } from "./ip-output.ts";
import { waitForSubscription } from "./monitor-ready.ts";

export interface AddressWatchOptions {
  /** Interfaces whose addresses never count (exact names, as `ip link` shows them). */
  excludeInterfaces?: readonly string[];
  /** Run iproute2 as `ip -n NAME ...`: the addresses of that named network namespace. */
  netns?: string;
  /** Quiet time that ends a burst of changes before the re-read (default 50 ms). */
  batchMs?: number;
  /** The longest a burst delays its re-read, from its first change (default 150 ms). */
  maxBatchMs?: number;
  /** A full read this often even without changes (default 30000 ms; 0: never). */
  resyncMs?: number;
  /** What went wrong but was survived (a failed re-read, a dead monitor); called once per event. */
  onProblem?: (message: string) => void;
  /** The iproute2 binary (default "ip"). */
  ipCommand?: string;
  /** How long the start waits for the monitor to subscribe before reading anyway (default 1000 ms). */
  monitorReadyMs?: number;
}

export interface AddressWatch {
  /** The node IPs now: canonical, deduplicated, sorted (IPv4 first); frozen. */
  current(): readonly string[];
  /** Ends the monitor, any read in flight and every timer; resolves once no `ip` process is left. */
  stop(): Promise<void>;
}

const DEFAULTS = { batchMs: 50, maxBatchMs: 150, resyncMs: 30_000, monitorReadyMs: 1000 } as const;
/** A dead monitor is restarted after this, doubling per death up to MAX, back to this after it ran STABLE. */
const RESTART_MS = 100;
const RESTART_MAX_MS = 5000;
const RESTART_STABLE_MS = 10_000;
/** One `ip -json addr show` longer than this is hung. */
const READ_TIMEOUT_MS = 10_000;
/** Links too: a link's state decides whether its addresses count (see node-address.ts). */
const MONITORED = ["address", "link"] as const;

/**
 * Resolves after the first full read with the watch (the initial set from current(), never passed to
 * onChange); rejects with the reason if that read fails or `ip` is missing. Afterwards onChange gets each
 * new set, only when it differs from the last one reported.
 */
export async function watchAddresses(options: AddressWatchOptions, onChange: (ips: readonly string[]) => void): Promise<AddressWatch> {
  const watcher = new AddressWatcher(options, onChange);
  try {
    await watcher.start();
  } catch (err) {
    await watcher.stop();
    throw err;
  }
  return { current: () => watcher.current(), stop: () => watcher.stop() };
}

class AddressWatcher {
  private readonly target: IpTarget;
  private readonly exclude: readonly string[];
  private readonly timing: { batchMs: number; maxBatchMs: number; resyncMs: number; monitorReadyMs: number };
  private readonly problem: (message: string) => void;
  private readonly batcher: ChangeBatcher;
  private readonly reads = new AbortController();
  private readonly killOnExit = () => this.monitor?.killNow();
  private ips: readonly string[] = Object.freeze([]);
  /** The first read is done: changes go to the batcher (before, they only mark `missed`). */
  private ready = false;
  private missed = false;
  private stopped = false;
  private stopping?: Promise<void>;
  private monitor?: MonitorProcess;
  private restartTimer?: NodeJS.Timeout;
  private resyncTimer?: NodeJS.Timeout;
  private restartMs = RESTART_MS;

  constructor(options: AddressWatchOptions, private readonly onChange: (ips: readonly string[]) => void) {
    this.target = { ipCommand: options.ipCommand ?? "ip", ...(options.netns !== undefined ? { netns: options.netns } : {}) };
    this.exclude = [...(options.excludeInterfaces ?? [])];
    this.timing = {
      batchMs: millis("batchMs", options.batchMs, DEFAULTS.batchMs),
      maxBatchMs: millis("maxBatchMs", options.maxBatchMs, DEFAULTS.maxBatchMs),
      resyncMs: millis("resyncMs", options.resyncMs, DEFAULTS.resyncMs),
      monitorReadyMs: millis("monitorReadyMs", options.monitorReadyMs, DEFAULTS.monitorReadyMs),
    };
    const onProblem = options.onProblem;
    this.problem = (message) => {
      if (this.stopped || !onProblem) return;
      try {
        onProblem(message);
      } catch {
        // a reporter that throws has nobody to report to
      }
    };
    this.batcher = new ChangeBatcher(() => this.refresh(), this.timing);
  }

  current(): readonly string[] {
    return this.ips;
  }

  async start(): Promise<void> {
    process.on("exit", this.killOnExit); // a child `ip monitor` must not outlive this process
    await this.startMonitor();
    this.ips = await this.read();
    if (this.stopped) return;
    this.ready = true;
    // Changes seen while the first read ran may postdate what it read.
    if (this.missed) this.batcher.notice();
    if (this.timing.resyncMs > 0) this.resyncTimer = setInterval(() => this.batcher.notice(), this.timing.resyncMs);
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutDown();
    return this.stopping;
  }

  private async shutDown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resyncTimer);
    clearTimeout(this.restartTimer);
    this.reads.abort();
    const monitor = this.monitor;
    this.monitor = undefined;
    await Promise.all([this.batcher.stop(), monitor?.stop()]);
    process.off("exit", this.killOnExit);
  }

  private async read(): Promise<readonly string[]> {
    const text = await runIp(this.target, ["-json", "addr", "show"], { timeoutMs: READ_TIMEOUT_MS, signal: this.reads.signal });
    return Object.freeze(nodeAddresses(parseIpAddrJson(text), this.exclude));
  }

  /** The batcher's run: read again, report a different set; on failure keep the last good one. */
  private async refresh(): Promise<void> {
    if (this.stopped) return;
    let ips: readonly string[];
    try {
      ips = await this.read();
    } catch (err) {
      this.problem(`reading this node's addresses failed, keeping the last good set (${this.ips.length} IPs): ${(err as Error).message}`);
      return;
    }
    if (this.stopped || sameList(ips, this.ips)) return;
    this.ips = ips;
    try {
      this.onChange(ips);
    } catch (err) {
      this.problem(`the address change handler threw: ${(err as Error).message}`);
    }
  }

  private noticed(): void {
    if (this.stopped) return;
    if (this.ready) this.batcher.notice();
    else this.missed = true;
  }

  /** Starts `ip monitor` and waits (bounded) until it listens; a death later schedules a restart. */
  private async startMonitor(): Promise<void> {
    const monitor = spawnMonitor(this.target, MONITORED, () => this.noticed());
    this.monitor = monitor;
    const startedAt = Date.now();
    void monitor.exited.then((exit) => {
      if (this.stopped || this.monitor !== monitor) return;
      this.monitor = undefined;
      if (Date.now() - startedAt >= RESTART_STABLE_MS) this.restartMs = RESTART_MS;
      const delay = this.restartMs;
      this.restartMs = Math.min(this.restartMs * 2, RESTART_MAX_MS);
      this.problem(`ip monitor ${exit.reason}; restarting it in ${delay} ms`);
      this.restartTimer = setTimeout(() => void this.restartMonitor(), delay);
    });
    await waitForSubscription(monitor.pid, monitor.exited, this.timing.monitorReadyMs);
  }

  private async restartMonitor(): Promise<void> {
    this.restartTimer = undefined;
    if (this.stopped) return;
    await this.startMonitor();
    this.noticed(); // whatever changed while no monitor ran
  }
}

function millis(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`watchAddresses: ${name} must be a number of milliseconds >= 0, got ${value}`);
  return value;
}
