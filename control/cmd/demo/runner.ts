// Runs one matrix row end to end, in one of two environments:
//
// netns (root): the seed for real. Namespace `node` with 192.168.10.63 and 10.75.8.101, Istio 1.0 iptables
//   capture (envoy/capture.ts), `multiplane serve` and Envoy (uid/gid 1337, ulimit -n 512, one worker)
//   inside it, Service A on 127.0.0.1:9080 registered at 10.75.8.101:9080 (a TCP or an HTTP port, by row),
//   and one HTTP request from namespace `client` (10.75.8.50), Host service-a.default.svc.cluster.local.
// loopback (rootless): the same on 127.0.0.x. Node IPs 127.0.0.2 (node.id's, standing in for 192.168.10.63)
//   and 127.0.0.1 (standing in for 10.75.8.101: the address the kernel also uses as the source when the host
//   connects to itself, as 10.75.8.101 is on the node). Capture is a bound listener on Service A's registered
//   address that hands connections to Envoy's virtual listener with a PROXY header (loopback-capture.ts);
//   the control plane's virtual listener takes the original destination from that header. Client 127.0.0.50.
//
// The control plane and the bootstrap are the real CLI (dist/multiplane.js) run as processes. Every process,
// rule and namespace is removed after the row, also when it fails.
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { installCapture, iptablesRunner, readCaptureCounters, type CaptureCounters } from "../../../envoy/capture.ts";
import { PROJECT_ROOT } from "../../../envoy/paths.ts";
import { resolveEnvoy } from "../../../envoy/resolve.ts";
import { AGENT_SOURCE, NsAgent, type HttpResult } from "./agent.ts";
import { startLoopbackCapture } from "./loopback-capture.ts";
import { CleanupRegistry } from "./cleanup.ts";
import { createSeedTopology, netnsUnavailableReason, openFds, SEED, spawnProcess, type SpawnedProcess } from "./netns.ts";
import { countersFrom, parseAdminStats, type PortProtocol, type ScenarioResult, type ScenarioSpec } from "./scenario.ts";
import { freePort, sleep, waitFor } from "./wait.ts";

export type Environment = "netns" | "loopback";

const CLI_PATH = join(PROJECT_ROOT, "dist", "multiplane.js");
/** `multiplane serve` flag that leaves the loop guard out of the generated listeners. */
const SERVE_NO_GUARD_FLAG = "--no-loop-guard";
/** `multiplane serve` flags for the loopback environment: the virtual listener's address and its PROXY-protocol hand-off. */
const serveLoopbackFlags = (virtualPort: number) => ["--virtual-listener", `127.0.0.1:${virtualPort}`, "--virtual-handoff", "proxy_protocol"];

export const ENVOY_UID = 1337;
/** setpriv's arguments that run a command as `uid`/`gid` with no supplementary groups, as a sidecar Envoy runs beside the capture. */
export const setprivAs = (uid = ENVOY_UID, gid = uid): string[] => [`--reuid=${uid}`, `--regid=${gid}`, "--clear-groups"];
export const ENVOY_FD_LIMIT = 512;
export const SERVICE_A_BODY = "hello from service-a\n";
export const SERVICE_A_HOST = "service-a.default.svc.cluster.local";
const LOOPBACK = { nodeIdIp: "127.0.0.2", serviceIp: "127.0.0.1", clientIp: "127.0.0.50" } as const;

export interface RunOptions {
  /** Progress lines. */
  log?: (line: string) => void;
  /** How long the client waits for an answer (default 3 s). */
  requestTimeoutMs?: number;
  /** The multiplane bundle to run for `serve` and `bootstrap` (default dist/multiplane.js). */
  cliPath?: string;
}

/** The environment `multiplane demo` picks: namespaces when this process can build them, else loopback. */
export function defaultEnvironment(): Environment {
  return netnsUnavailableReason() === undefined ? "netns" : "loopback";
}

export function registryYaml(serviceIp: string, port: number, localPort?: number, protocol: PortProtocol = "TCP"): string {
  // localPort: on loopback the capture holds <serviceIp>:<port>, so the process listens elsewhere
  // (multiplane's local-ports annotation; Istio's targetPort would also move what clients send to).
  const name = protocol.toLowerCase();
  return `# The seed: Service A registered at the node's second IP, ${serviceIp}, port ${port} (${protocol}).
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: service-a
  namespace: default${localPort ? `\n  annotations:\n    multiplane.dev/local-ports: "${name}=${localPort}"` : ""}
spec:
  hosts:
    - ${SERVICE_A_HOST}
  ports:
    - number: ${port}
      name: ${name}
      protocol: ${protocol}
  resolution: STATIC
  location: MESH_INTERNAL
  endpoints:
    - address: ${serviceIp}
`;
}

/** Where a row runs: addresses, ports, and how to start things on the node and on the client. */
interface Site {
  environment: Environment;
  nodeIdIp: string;
  serviceIp: string;
  clientIp: string;
  /** Sent as the client's source address (loopback: 127.0.0.50; netns: the kernel picks 10.75.8.50). */
  clientBind?: string;
  ports: { admin: number; xds: number; http: number; service: number; target?: number };
  instanceIpsFlag(mode: ScenarioSpec["instanceIps"]): string;
  spawnNode(file: string, args: string[], label: string): SpawnedProcess;
  spawnClient(file: string, args: string[], label: string): SpawnedProcess;
  execNode(file: string, args: string[]): string;
  serveExtraFlags(): string[];
  /** The command that starts Envoy with its FD limit (and, in netns, as uid/gid 1337). */
  envoyCommand(argv: string[]): [string, string[]];
  /** Loopback only: starts the capture listener, once Envoy is configured. */
  startCapture?(): Promise<void>;
  /** Connections the capture redirected to Envoy so far. */
  captureCounters(): Promise<CaptureCounters | undefined>;
  namespaces: string[];
  close(): Promise<void>;
}

function exitText(p: SpawnedProcess): string | undefined {
  const e = p.exitInfo();
  if (!e) return undefined;
  return e.signal ? e.signal : `exit ${e.code}`;
}

const ulimitWrapper = (limit: number, argv: string[]): [string, string[]] => ["sh", ["-c", 'ulimit -n "$0" && exec "$@"', String(limit), ...argv]];

async function netnsSite(cleanup: CleanupRegistry): Promise<Site> {
  const topo = createSeedTopology(cleanup);
  try {
    const ports = { admin: 15000, xds: 15010, http: 15014, service: 9080 };
    // Capture, Istio 1.0 style, Envoy's uid/gid excluded, admin/xDS/debug ports left alone.
    const excluded = [ports.admin, ports.xds, ports.http];
    await installCapture(
      { proxyUids: [ENVOY_UID], proxyGids: [ENVOY_UID], excludeInboundPorts: excluded, excludeOutboundPorts: excluded },
      iptablesRunner({ netns: topo.ns.node }),
    );
    return {
      environment: "netns",
      nodeIdIp: SEED.nodeIp1, serviceIp: SEED.nodeIp2, clientIp: SEED.clientIp,
      ports,
      instanceIpsFlag: (mode) => mode,
      spawnNode: (file, args, label) => topo.spawn(topo.ns.node, file, args, { label }),
      spawnClient: (file, args, label) => topo.spawn(topo.ns.client, file, args, { label }),
      execNode: (file, args) => topo.exec(topo.ns.node, file, args),
      serveExtraFlags: () => [],
      envoyCommand: (argv) => ulimitWrapper(ENVOY_FD_LIMIT, ["setpriv", ...setprivAs(), ...argv]),
      captureCounters: () => readCaptureCounters(iptablesRunner({ netns: topo.ns.node })),
      namespaces: Object.values(topo.ns),
      close: () => topo.destroy(),
    };
  } catch (err) {
    await topo.destroy();
    throw err;
  }
}

async function loopbackSite(cleanup: CleanupRegistry): Promise<Site> {
  const [admin, xds, http, service, target, virtualPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
  const ports = { admin, xds, http, service, target };
  let capture: Awaited<ReturnType<typeof startLoopbackCapture>> | undefined;
  const procs = new Set<SpawnedProcess>();
  const track = (p: SpawnedProcess) => { procs.add(p); return p; };
  return {
    environment: "loopback",
    nodeIdIp: LOOPBACK.nodeIdIp, serviceIp: LOOPBACK.serviceIp, clientIp: LOOPBACK.clientIp, clientBind: LOOPBACK.clientIp,
    ports,
    // "auto" on loopback: the simulated node's two IPs (interfaceIps() skips loopback addresses).
    instanceIpsFlag: (mode) => (mode === "auto" ? `${LOOPBACK.nodeIdIp},${LOOPBACK.serviceIp}` : "none"),
    spawnNode: (file, args, label) => track(spawnProcess(cleanup, file, args, { label })),
    spawnClient: (file, args, label) => track(spawnProcess(cleanup, file, args, { label })),
    execNode: spawnSyncText,
    serveExtraFlags: () => serveLoopbackFlags(virtualPort),
    envoyCommand: (argv) => ulimitWrapper(ENVOY_FD_LIMIT, argv),
    async startCapture() {
      capture = await startLoopbackCapture({
        listen: { host: LOOPBACK.serviceIp, port: service },
        envoy: { host: "127.0.0.1", port: virtualPort },
        clientAddress: LOOPBACK.clientIp,
      });
    },
    captureCounters: async () => capture?.counters(),
    namespaces: [],
    async close() {
      await Promise.all([...procs].map((p) => p.stop(1500)));
      await capture?.close();
    },
  };
}

function spawnSyncText(file: string, args: string[]): string {
  try {
    return execFileSync(file, args, { encoding: "utf8", timeout: 15000, stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${file} ${args.join(" ")}: ${(e.stderr ?? "").trim() || e.message}`);
  }
}

/** Runs one row in a fresh environment. Throws only when the environment could not be set up. */
export async function runScenario(spec: ScenarioSpec, environment: Environment, opts: RunOptions = {}): Promise<ScenarioResult> {
  const log = opts.log ?? (() => {});
  const started = Date.now();
  const cli = opts.cliPath ?? CLI_PATH;
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm install (or npm run build:control)`);
  const envoyBin = resolveEnvoy().path;
  const tag = `[${spec.name}]`;

  const dir = mkdtempSync(join(tmpdir(), "multiplane-demo-"));
  // Everything this row creates is registered here until it is removed the ordinary way, so that an exit or
  // Ctrl-C in between still removes it; the process hooks go away with the row.
  const cleanup = new CleanupRegistry();
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  const unregister = cleanup.add(removeDir);
  let site: Site | undefined;
  const agents: NsAgent[] = [];
  try {
    chmodSync(dir, 0o755); // in netns Envoy runs as uid 1337 and reads its bootstrap from here
    site = environment === "netns" ? await netnsSite(cleanup) : await loopbackSite(cleanup);
    const { ports } = site;
    log(site.environment === "netns"
      ? `${tag} namespaces ${site.namespaces.join(", ")}: node ${SEED.nodeIp1} + ${SEED.nodeIp2}, client ${SEED.clientIp}; iptables capture installed`
      : `${tag} loopback: node IPs ${site.nodeIdIp} + ${site.serviceIp}, client ${site.clientIp}; capture on ${site.serviceIp}:${ports.service}`);

    const nodeAgent = new NsAgent(site.spawnNode(process.execPath, ["-e", AGENT_SOURCE], "node agent"));
    const clientAgent = new NsAgent(site.spawnClient(process.execPath, ["-e", AGENT_SOURCE], "client agent"));
    agents.push(nodeAgent, clientAgent);

    // Service A: a small HTTP server on 127.0.0.1 (on loopback at its local port: the capture holds the service port).
    await nodeAgent.httpServer("127.0.0.1", ports.target ?? ports.service, SERVICE_A_BODY);

    // The control plane, as a process, on 127.0.0.1.
    const registry = join(dir, "registry");
    mkdirSync(registry, { mode: 0o755 });
    writeFileSync(join(registry, "service-a.yaml"), registryYaml(site.serviceIp, ports.service, ports.target, spec.protocol));
    const serveArgs = [cli, "serve", "--registry", registry, "--xds-port", String(ports.xds), "--http-port", String(ports.http),
      ...(spec.controlPlane === "legacy" ? ["--legacy-single-ip"] : []), ...(spec.guard ? [] : [SERVE_NO_GUARD_FLAG]), ...site.serveExtraFlags()];
    const serveLine = `multiplane ${serveArgs.slice(1).join(" ")}`;
    const cp = site.spawnNode(process.execPath, serveArgs, "control plane");
    const cpReady = await waitFor(async () => cp.exited() || (await nodeAgent.request(`http://127.0.0.1:${ports.http}/readyz`, { timeoutMs: 500 })).status === 200, 10000);
    if (!cpReady || cp.exited()) throw new Error(`control plane did not start (${exitText(cp) ?? "no /readyz"}): ${serveLine}\n${cp.output().slice(-3000)}`);
    log(`${tag} control plane: ${serveLine}`);

    // Envoy's bootstrap from the CLI (inside `node`, so `--instance-ips auto` sees the node's interfaces).
    const bootstrapPath = join(dir, "envoy.json");
    const nodeId = `sidecar~${site.nodeIdIp}~service-a-1.default~default.svc.cluster.local`;
    const bootstrapArgs = ["bootstrap", "--xds", `127.0.0.1:${ports.xds}`, "--node-id", nodeId,
      "--instance-ips", site.instanceIpsFlag(spec.instanceIps), "--admin", `127.0.0.1:${ports.admin}`, "--out", bootstrapPath];
    site.execNode(process.execPath, [cli, ...bootstrapArgs]);
    // Observability only: a statsd sink, so counters can still be read when Envoy's admin API can no longer
    // accept a connection (no FDs left: exactly what the seed's loop does).
    addStatsdSink(bootstrapPath, await nodeAgent.statsdListen());
    const instanceIps = JSON.parse(readFileSync(bootstrapPath, "utf8")).node?.metadata?.INSTANCE_IPS ?? "(none)";
    log(`${tag} bootstrap: multiplane ${bootstrapArgs.join(" ")}  -> INSTANCE_IPS=${instanceIps}`);

    // Envoy: ulimit -n 512, one worker (netns: as uid/gid 1337, which the capture's owner rules exclude).
    const [file, args] = site.envoyCommand([envoyBin, "-c", bootstrapPath, "--concurrency", "1", "-l", "warning",
      "--disable-hot-restart", "--use-dynamic-base-id"]);
    const envoy = site.spawnNode(file, args, "envoy");
    const admin = `http://127.0.0.1:${ports.admin}`;
    const wanted = spec.controlPlane === "legacy" ? `0.0.0.0_${ports.service}` : `${site.serviceIp}_${ports.service}`;
    // Configured = the listener this row is about and the virtual one are active (not warming: a listener
    // whose loop guard arrives by ECDS warms until it has it).
    let listeners: string[] = [];
    let warming: string[] = [];
    let guardInConfig = false;
    const configured = await waitFor(async () => {
      if (envoy.exited()) return true;
      const r = await nodeAgent.request(`${admin}/config_dump?resource=dynamic_listeners`, { timeoutMs: 2000 });
      if (r.status !== 200 || !r.body) return false;
      const state = activeListeners(r.body);
      listeners = state.active;
      warming = state.warming;
      guardInConfig = state.guarded;
      return listeners.includes("virtual") && listeners.includes(wanted) && warming.length === 0;
    }, 15000, 100);
    if (!configured || envoy.exited()) {
      throw new Error(`Envoy did not get active listener ${wanted} (active: ${listeners.join(", ") || "none"}; warming: ${warming.join(", ") || "none"}; ${exitText(envoy) ?? "running"})\n` +
        `envoy log:\n${envoy.output().slice(-3000)}\ncontrol plane log:\n${cp.output().slice(-2000)}`);
    }
    await site.startCapture?.();
    log(`${tag} Envoy (ulimit -n ${ENVOY_FD_LIMIT}${site.environment === "netns" ? `, uid ${ENVOY_UID}` : ""}) listeners: ${listeners.join(", ")}; loop guard ${guardInConfig ? "present" : "absent"}`);

    // The request, while watching Envoy's FDs and sampling its connection counter. In the loop Envoy may die
    // (socket(2) fails with EMFILE) before its stats reach the statsd sink, whose flush waits for the worker
    // thread, busy looping; the last sample from admin is then the best record Envoy itself gave.
    const pid = envoy.child.pid;
    const fdsBefore = openFds(pid);
    let fdsMax = fdsBefore ?? 0;
    let sampledCx = 0;
    let sampling = true;
    const fdSampler = setInterval(() => { const n = openFds(pid); if (n !== undefined && n > fdsMax) fdsMax = n; }, 5);
    const cxSampler = (async () => {
      while (sampling) {
        const r = await nodeAgent.request(`${admin}/stats?filter=downstream_cx_total`, { timeoutMs: 300 });
        if (r.status === 200 && r.body) sampledCx = Math.max(sampledCx, countersFrom(parseAdminStats(r.body)).downstreamCxTotal);
        await sleep(r.status === 200 ? 1 : 50);
      }
    })();
    const url = `http://${site.serviceIp}:${ports.service}/`;
    let res: HttpResult;
    try {
      // As a client of Service A would: by its name (on an HTTP port, the route that matches it).
      res = await clientAgent.request(url, { timeoutMs: opts.requestTimeoutMs ?? 3000, headers: { host: `${SERVICE_A_HOST}:${ports.service}` }, ...(site.clientBind ? { localAddress: site.clientBind } : {}) });
      await sleep(500); // let a loop run on a little, and the statsd sink flush
    } finally {
      sampling = false;
      clearInterval(fdSampler);
      await cxSampler;
    }
    log(`${tag} GET ${url} from ${site.clientIp}: ${res.status ?? res.error} after ${res.ms} ms`);

    // Is Envoy alive; its counters; what the capture redirected.
    const ready = envoy.exited() ? undefined : await nodeAgent.request(`${admin}/ready`, { timeoutMs: 1000 });
    const alive = !envoy.exited() && ready?.status === 200;
    let statsSource: ScenarioResult["statsSource"] = "none";
    let stats = new Map<string, number>();
    if (alive) {
      const r = await nodeAgent.request(`${admin}/stats`, { timeoutMs: 3000 });
      if (r.status === 200 && r.body) { stats = parseAdminStats(r.body); statsSource = "admin"; }
    }
    if (statsSource === "none") {
      const sd = await nodeAgent.statsd();
      if (sd.packets > 0) {
        statsSource = "statsd";
        for (const [k, v] of Object.entries(sd.counters)) stats.set(k.replace(/^envoy\./, ""), v);
      }
    }
    const counters = countersFrom(stats);
    if (sampledCx > counters.downstreamCxTotal) {
      counters.downstreamCxTotal = sampledCx;
      statsSource = "admin-sample";
    }
    const fdsAfter = openFds(pid);
    if (fdsAfter !== undefined && fdsAfter > fdsMax) fdsMax = fdsAfter;
    const capture = await site.captureCounters();

    const result: ScenarioResult = {
      name: spec.name, controlPlane: spec.controlPlane, guard: spec.guard, instanceIps: spec.instanceIps, protocol: spec.protocol,
      request: res.status === 200 ? "ok" : "failed",
      status: res.status ?? null,
      ...counters,
      envoyAlive: alive,
      environment: site.environment,
      requestError: res.error,
      requestMs: res.ms,
      body: res.body,
      ...(typeof res.headers?.["x-multiplane-hops"] === "string" ? { hops: res.headers["x-multiplane-hops"] } : {}),
      fdsBefore, fdsMax, fdLimit: ENVOY_FD_LIMIT,
      fdExhausted: /Too many open files/.test(envoy.output()) || fdsMax >= ENVOY_FD_LIMIT - 8,
      envoyExit: exitText(envoy),
      envoyWedged: !envoy.exited() && !alive,
      statsSource,
      capture,
      listeners,
      guardInConfig,
      durationMs: 0,
      pids: [envoy.child.pid, cp.child.pid].filter((p): p is number => p !== undefined),
      namespaces: site.namespaces,
      envoyLogTail: envoy.output().split("\n").filter((l) => !/backtrace\.h|assert\.h:66/.test(l)).slice(-25).join("\n"),
    };
    await Promise.all([envoy.stop(1000), cp.stop(2000)]);
    result.durationMs = Date.now() - started;
    return result;
  } finally {
    await Promise.all(agents.map((a) => a.stop().catch(() => {})));
    try {
      await site?.close();
    } finally {
      removeDir();
      unregister();
      cleanup.close();
    }
  }
}

/**
 * From admin's /config_dump?resource=dynamic_listeners: active and warming listener names, and whether any
 * active listener's chains hold the loop guard (inline wasm with root_id loop_guard or loop_guard_http, or
 * the ECDS reference of that name).
 */
export function activeListeners(dumpJson: string): { active: string[]; warming: string[]; guarded: boolean } {
  const dump = JSON.parse(dumpJson) as { configs?: { name?: string; active_state?: { listener?: unknown }; warming_state?: unknown }[] };
  const active: string[] = [];
  const warming: string[] = [];
  let guarded = false;
  for (const c of dump.configs ?? []) {
    if (c.warming_state && c.name) warming.push(c.name);
    if (!c.active_state || !c.name) continue;
    active.push(c.name);
    if (/"(name|root_id)":"loop_guard(_http)?"/.test(JSON.stringify(c.active_state.listener ?? {}))) guarded = true;
  }
  return { active: active.sort(), warming: warming.sort(), guarded };
}

/** Adds a statsd sink (UDP 127.0.0.1:port, flushed every 20 ms) to a bootstrap file the CLI wrote. */
function addStatsdSink(bootstrapPath: string, port: number): void {
  const b = JSON.parse(readFileSync(bootstrapPath, "utf8"));
  b.stats_sinks = [{
    name: "envoy.stat_sinks.statsd",
    typed_config: { "@type": "type.googleapis.com/envoy.config.metrics.v3.StatsdSink", address: { socket_address: { address: "127.0.0.1", port_value: port, protocol: "UDP" } } },
  }];
  b.stats_flush_interval = "0.020s";
  writeFileSync(bootstrapPath, JSON.stringify(b, null, 2));
  chmodSync(bootstrapPath, 0o644);
}
