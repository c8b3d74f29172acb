// The seed's network, for real: network namespaces joined by veth pairs (needs root).
//
//   <id>-lan     192.168.10.1/24  ──veth──  192.168.10.63/24  ┐
//                                                            ├ <id>-node  (the seed's two-interface node)
//   <id>-client  10.75.8.50/24    ──veth──  10.75.8.101/24    ┘
//
// Names are unique per run (they carry this process's pid, so a later run can sweep what a killed run left).
// Everything is torn down by destroy(), and also, through the caller's CleanupRegistry, on process exit and
// on SIGINT/SIGTERM/SIGHUP: processes started in the namespaces, then the namespaces (which takes their
// veths and iptables rules with them).
// Only addresses inside these namespaces and their loopback are ever configured.
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import type { CleanupRegistry } from "./cleanup.ts";

export const SEED = {
  /** The node's first interface: the IP Istio 1.0 put in node.id. */
  nodeIp1: "192.168.10.63",
  /** The node's second interface: Service A's registered IP. */
  nodeIp2: "10.75.8.101",
  lanPeerIp: "192.168.10.1",
  clientIp: "10.75.8.50",
  prefix: 24,
} as const;

export interface SpawnedProcess {
  child: ChildProcess;
  label: string;
  /** stdout+stderr so far (the last 256 KiB). */
  output(): string;
  exited(): boolean;
  exitInfo(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  stop(graceMs?: number): Promise<void>;
}

export interface Topology {
  id: string;
  ns: { node: string; client: string; lan: string };
  /** Interface names inside each namespace (unique per run, too). */
  ifaces: { nodeLan: string; nodeClient: string; lan: string; client: string };
  /** Runs a command in a namespace; throws with its stderr on failure. */
  exec(ns: string, cmd: string, args: string[], opts?: { input?: string; timeoutMs?: number }): string;
  /** Starts a long-running process in a namespace; it is killed by destroy(). */
  spawn(ns: string, cmd: string, args: string[], opts?: { label?: string; env?: NodeJS.ProcessEnv; cwd?: string }): SpawnedProcess;
  destroy(): Promise<void>;
}

const NS_RE = /^mp(\d+)-([0-9a-f]{4})-(node|client|lan)$/;

/** Why this machine cannot build the topology, or undefined when it can (root, ip, iptables, setpriv). */
export function netnsUnavailableReason(): string | undefined {
  if (process.platform !== "linux") return `network namespaces need Linux (this is ${process.platform})`;
  if (typeof process.getuid === "function" && process.getuid() !== 0) return "needs root (ip netns, veth, iptables); run as root, as CI does";
  for (const bin of ["ip", "iptables", "setpriv"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${bin}`], { stdio: "ignore" });
    } catch {
      return `${bin} is not installed (Debian: apt-get install -y ${bin === "ip" ? "iproute2" : bin === "setpriv" ? "util-linux" : bin})`;
    }
  }
  return undefined;
}

/** Runs a command, its stderr in the error when it fails (for the namespace builders: here and the tests'). */
export function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", input: opts.input, timeout: opts.timeoutMs ?? 15000, stdio: ["pipe", "pipe", "pipe"] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(" ")}: ${(e.stderr ?? "").trim() || e.message}`);
  }
}

function listNamespaces(): string[] {
  try {
    return run("ip", ["netns", "list"]).split("\n").map((l) => l.split(/\s+/)[0]!).filter(Boolean);
  } catch {
    return [];
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Kills every process still inside `ns` (only ever called on our own namespaces), then deletes it. */
export function deleteNamespaceSync(ns: string): void {
  try {
    for (const pid of run("ip", ["netns", "pids", ns], { timeoutMs: 5000 }).split(/\s+/).filter(Boolean)) {
      try { process.kill(Number(pid), "SIGKILL"); } catch { /* gone */ }
    }
  } catch { /* namespace already gone */ }
  try { run("ip", ["netns", "del", ns], { timeoutMs: 5000 }); } catch { /* already gone */ }
}

/**
 * Removes namespaces left by earlier runs of a builder whose process no longer exists (a SIGKILLed
 * test). `names`: the builder's namespace names, with the owning pid as the first group.
 */
export function sweepStaleNamespaces(names: RegExp = NS_RE): string[] {
  const removed: string[] = [];
  for (const ns of listNamespaces()) {
    const m = names.exec(ns);
    if (!m || Number(m[1]) === process.pid || pidAlive(Number(m[1]))) continue;
    deleteNamespaceSync(ns);
    removed.push(ns);
  }
  return removed;
}

// ------------------------------------------------------------------ processes

/**
 * Starts a long-running process with piped output, registered with `cleanup` so that it is killed
 * (SIGKILL) if this process exits or is signalled before the child exited or stop() ran.
 */
export function spawnProcess(cleanup: CleanupRegistry, file: string, args: string[], opts: { label?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): SpawnedProcess {
  const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"], env: opts.env, cwd: opts.cwd } satisfies SpawnOptions);
  let out = "";
  const keep = (d: Buffer) => { out += d.toString("utf8"); if (out.length > 262144) out = out.slice(-262144); };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitedP = new Promise<void>((r) => child.on("close", (code, signal) => { exit ??= { code, signal }; r(); }));
  const unregister = cleanup.add(() => { try { child.kill("SIGKILL"); } catch { /* gone */ } });
  child.on("exit", (code, signal) => { exit = { code, signal }; unregister(); });
  child.on("error", (e) => { out += `\n[spawn error] ${e.message}`; exit ??= { code: -1, signal: null }; unregister(); });
  const proc: SpawnedProcess = {
    child, label: opts.label ?? file,
    output: () => out,
    exited: () => exit !== undefined,
    exitInfo: () => exit,
    async stop(graceMs = 3000) {
      if (exit === undefined && child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
        await exitedP;
        clearTimeout(t);
      }
      unregister();
    },
  };
  return proc;
}

// ------------------------------------------------------------------ the topology

/**
 * Builds the seed's topology, registered with `cleanup` until destroy() ran. Throws (after cleaning up
 * what it made) if any step fails.
 */
export function createSeedTopology(cleanup: CleanupRegistry): Topology {
  const reason = netnsUnavailableReason();
  if (reason) throw new Error(`network namespaces unavailable: ${reason}`);
  sweepStaleNamespaces();

  const id = `mp${process.pid}-${randomBytes(2).toString("hex")}`;
  const ns = { node: `${id}-node`, client: `${id}-client`, lan: `${id}-lan` };
  // Interface names: at most 15 characters; unique per run as well.
  const short = `${process.pid.toString(36)}${id.slice(-4)}`.slice(-10);
  const ifaces = { nodeLan: `m${short}a`, nodeClient: `m${short}b`, lan: `m${short}l`, client: `m${short}c` };

  const processes = new Set<SpawnedProcess>();
  let destroyed = false;
  const destroySync = () => {
    if (destroyed) return;
    destroyed = true;
    unregister();
    for (const p of processes) {
      try { p.child.kill("SIGKILL"); } catch { /* gone */ }
    }
    for (const n of [ns.client, ns.lan, ns.node]) deleteNamespaceSync(n);
  };
  const unregister = cleanup.add(destroySync);

  const exec = (n: string, cmd: string, args: string[], opts?: { input?: string; timeoutMs?: number }) => run("ip", ["netns", "exec", n, cmd, ...args], opts);

  try {
    for (const n of [ns.node, ns.client, ns.lan]) {
      run("ip", ["netns", "add", n]);
      exec(n, "ip", ["link", "set", "lo", "up"]);
    }
    // The 192.168.10.0/24 interface carries node.id's IP (the only one Istio 1.0 used); INSTANCE_IPS lists both, sorted.
    run("ip", ["link", "add", "name", ifaces.nodeLan, "netns", ns.node, "type", "veth", "peer", "name", ifaces.lan, "netns", ns.lan]);
    run("ip", ["link", "add", "name", ifaces.nodeClient, "netns", ns.node, "type", "veth", "peer", "name", ifaces.client, "netns", ns.client]);
    const addr = (n: string, dev: string, ip: string) => {
      exec(n, "ip", ["addr", "add", `${ip}/${SEED.prefix}`, "dev", dev]);
      exec(n, "ip", ["link", "set", dev, "up"]);
    };
    addr(ns.node, ifaces.nodeLan, SEED.nodeIp1);
    addr(ns.node, ifaces.nodeClient, SEED.nodeIp2);
    addr(ns.lan, ifaces.lan, SEED.lanPeerIp);
    addr(ns.client, ifaces.client, SEED.clientIp);
  } catch (err) {
    destroySync();
    throw err;
  }

  const topo: Topology = {
    id, ns, ifaces, exec,
    spawn(n, cmd, args, opts = {}) {
      if (destroyed) throw new Error("topology already destroyed");
      const proc = spawnProcess(cleanup, "ip", ["netns", "exec", n, cmd, ...args], { ...opts, label: opts.label ?? cmd });
      processes.add(proc);
      proc.child.on("exit", () => processes.delete(proc));
      return proc;
    },
    async destroy() {
      await Promise.all([...processes].map((p) => p.stop(2000)));
      destroySync();
    },
  };
  return topo;
}

/** Open file descriptors of a process (from /proc), or undefined once it is gone. */
export function openFds(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}
