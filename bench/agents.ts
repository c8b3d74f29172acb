// The node agents' row of bench/control.ts: N proxies connected (bench/mesh-clients.ts, as the meshes
// have them) on nodes of N / agents proxies each, one node agent per node (bench/agent-clients.ts: the
// Reporter `multiplane agent` runs, each on its own connection). Every agent first reports its node's
// current set (the union of its proxies' own IPs: each proxy then has the node's set, and the inbound
// listeners of its node's other proxies' service instances, checked); then, per round, every agent at
// once reports one IP more, an address on which the registry already has a service instance
// (ServiceEntry agent-svc-k, endpoint 10.(254 - round).0.k, port AGENT_PORT). Every proxy of the node
// is timed from the reports until it has ACKed an LDS response carrying the new inbound listener
// `10.(254 - round).0.k_AGENT_PORT`; the control plane's CPU (this process) for the change, the agents'
// and the clients'. AGENTS_SERVER_PROF=DIR writes a CPU profile of the control plane per change
// (AGENT_CLIENT_PROF / MESH_CLIENT_PROF=DIR: --cpu-prof of the agents' / the clients' process).
import { spawn, type ChildProcess } from "node:child_process";
import { Session } from "node:inspector/promises";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { serve } from "../control/serve/serve.ts";
import { LOOP_GUARD_WASM } from "../envoy/paths.ts";
import { endpointIp, routeNames, serviceEntryYaml, servicePort } from "./mesh.ts";

/** The port of the agents' new service instances: TCP, none of the mesh's 500 (10000-10499). */
export const AGENT_PORT = 19000;
/** Node k's new IP of round r: no proxy has it before its agent reports it. */
export const agentIp = (k: number, round: number) => `10.${254 - round}.${(k >> 8) & 255}.${k & 255}`;

function agentServiceYaml(k: number, rounds: number): string {
  const endpoints = Array.from({ length: rounds }, (_, r) => `{address: ${agentIp(k, r)}}`).join(", ");
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: agent-svc-${k}, namespace: bench}
spec:
  hosts: [agent-svc-${k}.bench.svc.cluster.local]
  ports: [{number: ${AGENT_PORT}, name: tcp, protocol: TCP}]
  resolution: STATIC
  location: MESH_INTERNAL
  endpoints: [${endpoints}]
`;
}

/** Proxy i's own IPs as mesh-clients.ts reports them: node.id's IP and the first endpoint of service i. */
const proxyIps = (i: number) => [`10.200.${i >> 8}.${i & 255}`, endpointIp(i, 0)];

export interface AgentRound {
  /** Per affected proxy: the agents' reports written -> ACK of the LDS response with the new listener. */
  latenciesMs: number[];
  /** Proxy streams the answers say the reports were applied to, and the proxies checked. */
  affected: number;
  /** Bytes the clients received for the change (until the control plane was quiet again). */
  bytes: number;
  /** Reports written -> the last agent's answer. */
  answersMs: number;
  /** CPU for the change: this process (the control plane), the agents' process, the clients' process; until the last check, and until the control plane is quiet again. */
  cpuMs: { server: number; serverUntilQuiet: number; agents: number; clients: number; clientsUntilQuiet: number };
}

export interface AgentsResult {
  services: number;
  proxies: number;
  agents: number;
  protocol: "sotw" | "delta";
  /** Proxies per node (each agent reports for this many node ids). */
  perNode: number;
  connectMs: number;
  /** The agents' first reports (each proxy's node IPs become its node's): the same measures. */
  first: AgentRound;
  rounds: AgentRound[];
}

/** One JSON line at a time from a child, failing when it exits or stays silent too long. */
function lineReader(child: ChildProcess, what: string) {
  const lines = createInterface({ input: child.stdout! });
  const queue: string[] = [];
  let waiting: { resolve: (l: string) => void; reject: (e: Error) => void } | undefined;
  let exited: Error | undefined;
  lines.on("line", (l) => { const w = waiting; waiting = undefined; if (w) w.resolve(l); else queue.push(l); });
  child.once("exit", (code) => { exited = new Error(`${what} exited (${code})`); waiting?.reject(exited); waiting = undefined; });
  return <T>(timeoutMs = 120_000) => new Promise<T>((resolve, reject) => {
    if (queue.length > 0) return resolve(JSON.parse(queue.shift()!) as T);
    if (exited) return reject(exited);
    const timer = setTimeout(() => { waiting = undefined; reject(new Error(`${what}: no answer in ${timeoutMs / 1000} s`)); }, timeoutMs);
    waiting = {
      resolve: (l) => { clearTimeout(timer); resolve(JSON.parse(l) as T); },
      reject: (e) => { clearTimeout(timer); reject(e); },
    };
  });
}

/** Waits until this process (the control plane) is quiet: under 15 ms of CPU in 100 ms; returns when its quiet began. */
async function quiet(): Promise<NodeJS.CpuUsage> {
  for (let i = 0; i < 600; i++) {
    const before = process.cpuUsage();
    await new Promise((res) => setTimeout(res, 100));
    const used = process.cpuUsage(before);
    if ((used.user + used.system) / 1000 < 15) return before;
  }
  throw new Error("the control plane did not go quiet in 60 s");
}

/** AGENTS_SERVER_PROF=DIR: a CPU profile of this process (the control plane) per change, DIR/agents-<n>.cpuprofile. */
async function startProfile(dir: string | undefined): Promise<((name: string) => Promise<void>) | undefined> {
  if (!dir) return undefined;
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 200 });
  await session.post("Profiler.start");
  return async (name) => {
    const { profile } = await session.post("Profiler.stop");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  };
}

interface ClientsAnswer { latenciesMs: number[]; checked: number; bytes: number; cpuMs: number }
interface AgentsAnswer { t0: string; answered: number; applied: number; refused: number; lastAnswerMs: number; cpuMs: number }

export async function agentsBench(services: number, proxies: number, agents: number, protocol: "sotw" | "delta", rounds = 3): Promise<AgentsResult> {
  const perNode = Math.floor(proxies / agents);
  if (perNode < 1) throw new Error(`${agents} agents need at least as many proxies (${proxies})`);
  if (rounds < 1 || rounds > 40) throw new Error("1 to 40 rounds (each round's IPs are 10.(254 - round).0.k)");
  const dir = mkdtempSync(join(os.tmpdir(), "mp-agents-"));
  for (let i = 0; i < services; i++) writeFileSync(join(dir, `svc-${i}.yaml`), serviceEntryYaml(i));
  for (let k = 0; k < agents; k++) writeFileSync(join(dir, `agent-svc-${k}.yaml`), agentServiceYaml(k, rounds));
  const cp = await serve({ registry: dir, xdsPort: 0, httpPort: false, loopGuard: { wasmPath: LOOP_GUARD_WASM }, log: () => {} });
  const target = `127.0.0.1:${cp.xds.port}`;
  const tsx = (file: string, args: string[], prof: string | undefined) => spawn(process.execPath,
    [...(prof ? ["--cpu-prof", `--cpu-prof-dir=${prof}`] : []), "--import", "tsx", fileURLToPath(new URL(file, import.meta.url)), ...args], { stdio: ["pipe", "pipe", "inherit"] });
  const clients = tsx("./mesh-clients.ts", [target, String(proxies), protocol, routeNames(services).join(",")], process.env.MESH_CLIENT_PROF);
  const agentProcess = tsx("./agent-clients.ts", [target], process.env.AGENT_CLIENT_PROF);
  const fromClients = lineReader(clients, "mesh clients");
  const fromAgents = lineReader(agentProcess, "agent clients");
  try {
    const tConnect = performance.now();
    let { cpuMs: clientsCpu, bytes: clientsBytes } = await fromClients<{ ready: number; bytes: number; cpuMs: number }>();
    const connectMs = performance.now() - tConnect;
    let agentsCpu = (await fromAgents<{ ready: true; cpuMs: number }>()).cpuMs;
    // Node k: proxies perNode*k .. perNode*(k+1)-1; its current set is the union of their own IPs.
    const nodeIds = (k: number) => Array.from({ length: perNode }, (_, j) => {
      const i = perNode * k + j;
      return `sidecar~10.200.${i >> 8}.${i & 255}~bench-${i}.bench~bench.svc.cluster.local`;
    });
    const nodeSet = (k: number) => Array.from({ length: perNode }, (_, j) => proxyIps(perNode * k + j)).flat();
    const nodes = Array.from({ length: agents }, (_, k) => k);

    /** Every agent reports; the named proxies must get their listener. */
    const change = async (name: string, reports: { nodeIds: string[]; ips: string[] }[], listeners: Record<string, string>): Promise<AgentRound> => {
      const expected = Object.keys(listeners).length;
      const profile = await startProfile(process.env.AGENTS_SERVER_PROF);
      const cpu0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      const seen = fromClients<ClientsAnswer>();
      clients.stdin!.write(JSON.stringify({ t0: t0.toString(), listeners }) + "\n");
      const answered = fromAgents<AgentsAnswer>();
      agentProcess.stdin!.write(JSON.stringify({ reports }) + "\n");
      const [a, c] = await Promise.all([answered, seen]);
      const cpu = process.cpuUsage(cpu0);
      // What the change still costs after the last check (e.g. the rest of the pushes), until quiet.
      const quietAt = await quiet();
      await profile?.(`agents-${protocol}-${name}`);
      // Everything the clients received and spent for the change, until the control plane went quiet.
      const probe = fromClients<ClientsAnswer>();
      clients.stdin!.write(JSON.stringify({ t0: "0", listeners: {} }) + "\n");
      const total = await probe;
      if (a.answered !== reports.length || a.refused !== 0) throw new Error(`${a.answered} of ${reports.length} agents answered, ${a.refused} refusals`);
      if (a.applied !== agents * perNode) throw new Error(`the reports were applied to ${a.applied} proxy streams, not ${agents * perNode}`);
      if (c.checked !== expected || c.latenciesMs.length !== expected) throw new Error(`only ${c.checked} of ${expected} proxies got their new inbound listener`);
      // From the agents' first report written (t0 above is before the stdin hop to their process).
      const hop = Number(BigInt(a.t0) - t0) / 1e6;
      const round: AgentRound = {
        latenciesMs: c.latenciesMs.map((x) => x - hop), affected: c.checked, answersMs: a.lastAnswerMs, bytes: total.bytes - clientsBytes,
        cpuMs: { server: (cpu.user + cpu.system) / 1000, serverUntilQuiet: (quietAt.user + quietAt.system - cpu0.user - cpu0.system) / 1000, agents: a.cpuMs - agentsCpu, clients: c.cpuMs - clientsCpu, clientsUntilQuiet: total.cpuMs - clientsCpu },
      };
      agentsCpu = a.cpuMs;
      clientsCpu = total.cpuMs;
      clientsBytes = total.bytes;
      return round;
    };

    // The first reports: proxy i gets the inbound listener of the next proxy's service on its node.
    const firstListeners: Record<string, string> = {};
    for (const k of nodes) for (let j = 0; j < perNode; j++) {
      const s = perNode * k + ((j + 1) % perNode);
      if (perNode > 1 && s < services) firstListeners[perNode * k + j] = `${endpointIp(s, 0)}_${servicePort(s)}`;
    }
    await quiet();
    const first = await change("first", nodes.map((k) => ({ nodeIds: nodeIds(k), ips: nodeSet(k) })), firstListeners);
    const out: AgentRound[] = [];
    for (let r = 0; r < rounds; r++) {
      const listeners: Record<string, string> = {};
      for (const k of nodes) for (let j = 0; j < perNode; j++) listeners[perNode * k + j] = `${agentIp(k, r)}_${AGENT_PORT}`;
      const reports = nodes.map((k) => ({ nodeIds: nodeIds(k), ips: [...nodeSet(k), ...Array.from({ length: r + 1 }, (_, q) => agentIp(k, q))] }));
      out.push(await change(`change-${r + 1}`, reports, listeners));
    }
    return { services, proxies, agents, protocol, perNode, connectMs, first, rounds: out };
  } finally {
    clients.kill();
    agentProcess.kill();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
