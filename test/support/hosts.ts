// Hosts on networks, for real (root only): one network namespace per host, one per network holding a
// bridge (the switch), a veth from each host interface to its network's bridge. Only the addresses
// given here are configured, all inside namespaces made here; nothing touches the caller's namespace.
//
//   <id>-sw    bridges, one per network
//   <id>-<h>   one per host, an interface per network it is on
//
// Names carry this process's pid, so a later run sweeps what a killed run left. destroy() and, through
// the CleanupRegistry, process exit or a signal remove the processes started in the namespaces and the
// namespaces themselves (which takes veths, bridges and iptables rules with them).
import { randomBytes } from "node:crypto";
import type { CleanupRegistry } from "../../control/cmd/demo/cleanup.ts";
import { deleteNamespaceSync, run, spawnProcess, sweepStaleNamespaces, type SpawnedProcess } from "../../control/cmd/demo/netns.ts";

export interface HostSpec {
  /** Short role name, e.g. "cp", "n1" (at most 4 characters). */
  name: string;
  /** network name -> this host's address on it, with prefix (e.g. "192.168.10.11/24"). */
  interfaces: Record<string, string>;
}

export interface Hosts {
  id: string;
  /** Host name -> namespace. */
  ns: Record<string, string>;
  /** Host name -> network -> interface name inside the host. */
  ifaces: Record<string, Record<string, string>>;
  namespaces(): string[];
  exec(host: string, cmd: string, args: string[], opts?: { timeoutMs?: number }): string;
  spawn(host: string, cmd: string, args: string[], opts?: { label?: string; env?: NodeJS.ProcessEnv }): SpawnedProcess;
  destroy(): Promise<void>;
}

const NS_RE = /^mh(\d+)-[0-9a-f]{4}-\w+$/;

/** Namespaces of this builder left by a run whose process is gone. */
export const sweepStaleHosts = (): string[] => sweepStaleNamespaces(NS_RE);

export function createHosts(cleanup: CleanupRegistry, specs: HostSpec[]): Hosts {
  sweepStaleHosts();
  const id = `mh${process.pid}-${randomBytes(2).toString("hex")}`;
  const sw = `${id}-sw`;
  const ns: Record<string, string> = Object.fromEntries(specs.map((h) => [h.name, `${id}-${h.name}`]));
  const networks = [...new Set(specs.flatMap((h) => Object.keys(h.interfaces)))];
  // Interface names: at most 15 characters, unique per run (veths are created before they move).
  const tag = `${process.pid.toString(36)}${id.slice(-4)}`.slice(-8);
  const ifaces: Record<string, Record<string, string>> = {};
  const processes = new Set<SpawnedProcess>();
  let destroyed = false;
  const destroySync = () => {
    if (destroyed) return;
    destroyed = true;
    unregister();
    for (const p of processes) {
      try { p.child.kill("SIGKILL"); } catch { /* gone */ }
    }
    for (const n of [...Object.values(ns), sw]) deleteNamespaceSync(n);
  };
  const unregister = cleanup.add(destroySync);
  const exec = (n: string, cmd: string, args: string[], timeoutMs?: number) => run("ip", ["netns", "exec", n, cmd, ...args], timeoutMs === undefined ? {} : { timeoutMs });

  try {
    for (const n of [sw, ...Object.values(ns)]) {
      run("ip", ["netns", "add", n]);
      exec(n, "ip", ["link", "set", "lo", "up"]);
    }
    networks.forEach((net, i) => {
      exec(sw, "ip", ["link", "add", `br${i}`, "type", "bridge"]);
      exec(sw, "ip", ["link", "set", `br${i}`, "up"]);
    });
    specs.forEach((h, hi) => {
      ifaces[h.name] = {};
      for (const [net, cidr] of Object.entries(h.interfaces)) {
        const ni = networks.indexOf(net);
        const inside = `${h.name}${net.slice(0, 4)}`.slice(0, 15);
        const outside = `p${tag}${hi}${ni}`.slice(0, 15);
        run("ip", ["link", "add", "name", `t${tag}${hi}${ni}`, "netns", ns[h.name]!, "type", "veth", "peer", "name", outside, "netns", sw]);
        exec(ns[h.name]!, "ip", ["link", "set", `t${tag}${hi}${ni}`, "name", inside]);
        exec(ns[h.name]!, "ip", ["addr", "add", cidr, "dev", inside]);
        exec(ns[h.name]!, "ip", ["link", "set", inside, "up"]);
        exec(sw, "ip", ["link", "set", outside, "master", `br${ni}`]);
        exec(sw, "ip", ["link", "set", outside, "up"]);
        ifaces[h.name]![net] = inside;
      }
    });
  } catch (err) {
    destroySync();
    throw err;
  }

  return {
    id, ns, ifaces,
    namespaces: () => [sw, ...Object.values(ns)],
    exec: (host, cmd, args, opts) => exec(ns[host]!, cmd, args, opts?.timeoutMs),
    spawn(host, cmd, args, opts = {}) {
      if (destroyed) throw new Error("hosts already destroyed");
      const p = spawnProcess(cleanup, "ip", ["netns", "exec", ns[host]!, cmd, ...args], { ...opts, label: opts.label ?? cmd });
      processes.add(p);
      p.child.on("exit", () => processes.delete(p));
      return p;
    },
    async destroy() {
      await Promise.all([...processes].map((p) => p.stop(2000)));
      destroySync();
    },
  };
}
