// Real etcd for tests: a cluster of N members on free loopback ports, data in a temporary directory,
// members that can be stopped, killed and started again on the same data, and everything removed at
// the end (also when the test process exits early). etcd comes from Debian's etcd-server package
// (.ci/run installs it); ETCD_BIN overrides.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitFor } from "./net.ts";

const ETCD = process.env.ETCD_BIN ?? "etcd";

/** Why etcd cannot run here, or undefined when it can. */
export function etcdUnavailableReason(): string | undefined {
  try {
    execFileSync(ETCD, ["--version"], { stdio: "ignore" });
    return undefined;
  } catch {
    return `${ETCD} is not installed (Debian: apt-get install etcd-server etcd-client; .ci/run does it; or set ETCD_BIN)`;
  }
}

export interface EtcdMember {
  name: string;
  /** host:port for clients. */
  endpoint: string;
  running(): boolean;
  start(): Promise<void>;
  /** SIGTERM (clean) or SIGKILL; resolves when the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** Every member's host:port. */
  endpoints: string[];
  /** etcd://every-member/prefix */
  url(prefix: string): string;
  stopAll(signal?: NodeJS.Signals): Promise<void>;
  /** Starts every stopped member and waits until the cluster has a leader. */
  startAll(): Promise<void>;
  /** Stops everything and removes the data. */
  close(): Promise<void>;
}

const everyProcess = new Set<ChildProcess>();
process.on("exit", () => { for (const p of everyProcess) p.kill("SIGKILL"); });
// Interrupted (Ctrl-C, a timeout's SIGTERM): exit through the handler above, so no member outlives us.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));

export async function startEtcdCluster(size = 1): Promise<EtcdCluster> {
  const dir = mkdtempSync(join(tmpdir(), "mp-etcd-"));
  const ports = [];
  for (let i = 0; i < size; i++) ports.push({ client: await freePort(), peer: await freePort() });
  const initial = ports.map((p, i) => `m${i}=http://127.0.0.1:${p.peer}`).join(",");
  const token = `mp-${process.pid}-${Date.now()}`;
  const members: EtcdMember[] = ports.map((p, i) => {
    let child: ChildProcess | undefined;
    let log = "";
    const name = `m${i}`;
    const member: EtcdMember = {
      name,
      endpoint: `127.0.0.1:${p.client}`,
      running: () => child !== undefined && child.exitCode === null && child.signalCode === null,
      async start() {
        if (member.running()) return;
        log = "";
        child = spawn(ETCD, [
          "--name", name, "--data-dir", join(dir, name),
          "--listen-client-urls", `http://127.0.0.1:${p.client}`, "--advertise-client-urls", `http://127.0.0.1:${p.client}`,
          "--listen-peer-urls", `http://127.0.0.1:${p.peer}`, "--initial-advertise-peer-urls", `http://127.0.0.1:${p.peer}`,
          "--initial-cluster", initial, "--initial-cluster-state", "new", "--initial-cluster-token", token,
          // Loopback: short timeouts make leader elections after a member stops take well under a second.
          "--heartbeat-interval", "50", "--election-timeout", "500",
          "--logger", "zap", "--log-level", "error",
        ], { stdio: ["ignore", "pipe", "pipe"] });
        everyProcess.add(child);
        const c = child;
        c.stdout!.on("data", (d) => { log += d; });
        c.stderr!.on("data", (d) => { log += d; });
        c.on("exit", () => everyProcess.delete(c));
      },
      async stop(signal = "SIGTERM") {
        const c = child;
        if (!c || !member.running()) return;
        const gone = new Promise<void>((r) => c.once("exit", () => r()));
        c.kill(signal);
        const timeout = setTimeout(() => c.kill("SIGKILL"), 5000);
        await gone;
        clearTimeout(timeout);
      },
    };
    Object.defineProperty(member, "log", { get: () => log });
    return member;
  });
  const healthy = async () => {
    for (const m of members) {
      if (!m.running()) throw new Error(`etcd member ${m.name} exited:\n${(m as unknown as { log: string }).log.slice(-2000)}`);
      const r = await fetch(`http://${m.endpoint}/health`).then((x) => x.json()).catch(() => undefined) as { health?: string } | undefined;
      if (r?.health !== "true") return false;
    }
    return true;
  };
  const cluster: EtcdCluster = {
    members,
    endpoints: members.map((m) => m.endpoint),
    url: (prefix) => `etcd://${members.map((m) => m.endpoint).join(",")}/${prefix}`,
    async stopAll(signal) {
      await Promise.all(members.map((m) => m.stop(signal)));
    },
    async startAll() {
      await Promise.all(members.map((m) => m.start()));
      if (!(await waitFor(healthy, 20000, 100).catch((err: Error) => { throw new Error(`etcd cluster did not start: ${err.message}`); }))) {
        const logs = members.map((m) => `${m.name}: ${(m as unknown as { log: string }).log.slice(-2000)}`).join("\n");
        throw new Error(`etcd cluster did not become healthy:\n${logs}`);
      }
    },
    async close() {
      await cluster.stopAll("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await cluster.startAll();
  } catch (err) {
    await cluster.close();
    throw err;
  }
  return cluster;
}
