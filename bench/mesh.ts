// A mesh for bench/control.ts: a registry directory of one ServiceEntry file per service, a control
// plane serving it in a child process of its own (bench/mesh-server.ts), and N proxies in another
// (bench/mesh-clients.ts). One endpoint moves by an
// atomic file edit; every proxy's time until it has received and ACKed the new address is measured.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { SCOPED_MOVED_SERVICE, SCOPED_SIDECAR_YAML, scopedNamespace } from "./scoped-mesh.ts";

/** Service i's k-th endpoint IP; the first one of service i is hosted by proxy i (see mesh-clients.ts). */
export const endpointIp = (i: number, k: number) => `10.${(i >> 8) & 255}.${i & 255}.${k + 1}`;

/** Service i's port: one of 500 (services share ports, as in real meshes). */
export const servicePort = (i: number) => 10000 + (i % 500);
/** A quarter of the services speak HTTP: those on ports divisible by 4, so a port is all HTTP or all TCP. */
export const isHttpService = (i: number) => servicePort(i) % 4 === 0;

/** The route configurations (RDS: one per HTTP port) a registry of `services` services has. */
export function routeNames(services: number): string[] {
  const names = new Set<string>();
  for (let i = 0; i < Math.min(services, 500); i++) if (isHttpService(i)) names.add(String(servicePort(i)));
  return [...names];
}

/** The host of service i (in namespace bench, or in the scoped mesh in scopedNamespace(i)). */
export const serviceHost = (i: number, scoped = false) => `svc-${i}.${scoped ? scopedNamespace(i) : "bench"}.svc.cluster.local`;

/** ServiceEntry i: host svc-i, port servicePort(i), HTTP or TCP, 3 endpoints. */
export function serviceEntryYaml(i: number, firstEndpoint = endpointIp(i, 0), scoped = false): string {
  const protocol = isHttpService(i) ? "HTTP" : "TCP";
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc-${i}, namespace: ${scoped ? scopedNamespace(i) : "bench"}}
spec:
  hosts: [${serviceHost(i, scoped)}]
  ports: [{number: ${servicePort(i)}, name: ${protocol.toLowerCase()}, protocol: ${protocol}}]
  resolution: STATIC
  location: MESH_INTERNAL
  endpoints: [{address: ${firstEndpoint}}, {address: ${endpointIp(i, 1)}}, {address: ${endpointIp(i, 2)}}]
`;
}

/**
 * Planes for the mesh: half the services on each (service i is on "data" when i % 256 < 128: its
 * endpoints 10.X.Y.* with Y < 128), proxies on one or both (proxy i's 10.200.* IP is on "management",
 * its own instance's IP on the plane of service i). "data" is the README's example: DSCP 46, isolated,
 * 250 ms, 10,000 connections, and with "bind" its connections leave from the proxy's data IP.
 */
export type MeshPlanes = "bind" | "nobind";

export function meshPlanesYaml(services: number, planes: MeshPlanes): string {
  const blocks = Math.max(1, Math.ceil(services / 256));
  const ranges = (half: 0 | 128) => Array.from({ length: blocks }, (_, x) => `10.${x}.${half}.0/17`).join(", ");
  return `planes:
- name: data
  cidrs: [${ranges(0)}]
  dscp: 46
  bindSource: ${planes === "bind"}
  isolated: true
  connectTimeout: 250ms
  maxConnections: 10000
- name: management
  cidrs: [10.200.0.0/16, ${ranges(128)}]
`;
}

export interface MeshResult {
  services: number;
  /** Set when the mesh ran scoped by a Sidecar (bench/scoped-mesh.ts). */
  scoped?: boolean;
  /** Set when the mesh ran with planes. */
  planes?: MeshPlanes;
  proxies: number;
  protocol: "sotw" | "delta";
  /** Start of the clients until every proxy has ACKed LDS, CDS, EDS, RDS and ECDS. */
  connectMs: number;
  /** Bytes the clients received to get there. */
  connectBytes: number;
  /** Per proxy: file edit -> ACK of the EDS response carrying the moved endpoint's new address. */
  latenciesMs: number[];
  /** Scoped: then an endpoint of a service of one namespace moves; per proxy that imports it (that namespace's), the same; and the control plane's CPU for it. */
  local?: { latenciesMs: number[]; cpuMs: number };
  /** CPU time while connecting and for the change: the control plane's process and the clients'. */
  cpuMs: { connectServer: number; connectClients: number; changeServer: number; changeClients: number };
  /** Control plane RSS: before the proxies, peak while connecting, peak after the change. */
  rssMb: { idle: number; connected: number; peak: number };
  /** Registry load at start (parse + validate + build) for `services` files. */
  loadMs: number;
  /** File edit -> the new registry version is serving (read, parse, validate, build). */
  applyMs: number;
}

const MB = 2 ** 20;

/** A child process's JSON lines: `next(match)` resolves with the next line that `match` accepts (lines no one waits for are dropped). */
export function jsonLines(child: ChildProcess, what: string, each: (o: any) => void = () => {}) {
  const lines = createInterface({ input: child.stdout! });
  let waiting: { match: (o: any) => boolean; resolve: (o: any) => void; reject: (e: Error) => void }[] = [];
  lines.on("line", (l) => {
    const o = JSON.parse(l);
    each(o);
    const i = waiting.findIndex((w) => w.match(o));
    if (i >= 0) waiting.splice(i, 1)[0]!.resolve(o);
  });
  child.once("exit", (code) => { for (const w of waiting) w.reject(new Error(`${what} exited (${code})`)); waiting = []; });
  return <T>(match: (o: any) => boolean) => new Promise<T>((resolve, reject) => waiting.push({ match, resolve, reject }));
}

type Sample = { cpuMs: number; rssMb: number; peakMb: number };

/**
 * The control plane in its own process (bench/mesh-server.ts), driven by messages: its CPU and RSS, the
 * time each registry version applied, and (MESH_SERVER_PROF=DIR) CPU profiles of the connect and the change.
 */
export class MeshServer {
  private readonly next: <T>(match: (o: any) => boolean) => Promise<T>;
  private readonly applied: bigint[] = [];
  private services = 0;

  constructor(readonly child: ChildProcess) {
    this.next = jsonLines(child, "mesh server", (o) => {
      if (!("applied" in o)) return;
      this.applied.push(BigInt(o.applied));
      this.services = o.services;
    });
  }

  /** `source`: a registry directory (and planes file), or a kubeconfig for the Kubernetes registry. */
  static async start(source: { dir: string; planesFile?: string } | { kubeconfig: string }): Promise<{ server: MeshServer; port: number; loadMs: number }> {
    const args = "kubeconfig" in source ? ["--kubeconfig", source.kubeconfig] : [source.dir, ...(source.planesFile ? [source.planesFile] : [])];
    const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./mesh-server.ts", import.meta.url)), ...args], { stdio: ["pipe", "pipe", "inherit"] });
    const server = new MeshServer(child);
    const { port, loadMs } = await server.next<{ port: number; loadMs: number }>((o) => "port" in o);
    return { server, port, loadMs };
  }

  private send(o: object): void {
    this.child.stdin!.write(JSON.stringify(o) + "\n");
  }

  /** Resolves once a registry version with at least `n` services serves. */
  async servingAtLeast(n: number): Promise<void> {
    while (this.services < n) await this.next((o) => "applied" in o);
  }

  sample(): Promise<Sample> {
    const r = this.next<Sample>((o) => "cpuMs" in o);
    this.send({ cmd: "sample" });
    return r;
  }

  /** The first registry version applied at or after `t0` (monotonic ns), in ms after it. */
  appliedAfter(t0: bigint): number {
    const at = this.applied.find((a) => a >= t0);
    return at === undefined ? NaN : Number(at - t0) / 1e6;
  }

  async profileStart(): Promise<void> {
    if (!process.env.MESH_SERVER_PROF) return;
    const r = this.next((o) => "profiling" in o);
    this.send({ cmd: "profile-start" });
    await r;
  }

  async profileStop(name: string): Promise<void> {
    if (!process.env.MESH_SERVER_PROF) return;
    const r = this.next((o) => "profiled" in o);
    this.send({ cmd: "profile-stop", file: join(process.env.MESH_SERVER_PROF, name) });
    await r;
  }

  async stop(): Promise<void> {
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.kill("SIGTERM");
    await exited;
  }
}

/** What the clients (bench/mesh-clients.ts) answer about a change: per proxy timed, edit -> ACK of the new address. */
interface ChangeAnswer { latenciesMs: number[]; checked: number; cpuMs: number }

/**
 * Moves service `svc`'s first endpoint to `moved` by an atomic file edit (written beside, renamed over,
 * as editors and operators should write) and waits until the clients report every proxy named in
 * `streams` (all without) has ACKed the new address; with the control plane's CPU for it. `profile`:
 * the name of the control plane's CPU profile of the change (MESH_SERVER_PROF), started before the edit
 * since starting the profiler blocks the event loop for a moment.
 */
async function moveEndpoint(
  { dir, server, clients, scoped }: { dir: string; server: MeshServer; clients: { send(m: object): void; next(): Promise<any> }; scoped: boolean },
  svc: number, moved: string, opts: { streams?: number[]; profile?: string } = {},
): Promise<ChangeAnswer & { t0: bigint; before: Sample; after: Sample }> {
  const result = clients.next();
  if (opts.profile) await server.profileStart();
  const before = await server.sample();
  const t0 = process.hrtime.bigint();
  clients.send({ t0: t0.toString(), cluster: `outbound|${servicePort(svc)}||${serviceHost(svc, scoped)}`, address: moved, ...(opts.streams ? { streams: opts.streams } : {}) });
  writeFileSync(join(dir, `.svc-${svc}.yaml.tmp`), serviceEntryYaml(svc, moved, scoped));
  renameSync(join(dir, `.svc-${svc}.yaml.tmp`), join(dir, `svc-${svc}.yaml`));
  const answer = await result as ChangeAnswer;
  const after = await server.sample();
  if (opts.profile) await server.profileStop(opts.profile);
  return { ...answer, t0, before, after };
}

export async function meshBench(services: number, proxies: number, protocol: "sotw" | "delta", planes?: MeshPlanes, scoped = false): Promise<MeshResult> {
  const dir = mkdtempSync(join(os.tmpdir(), "mp-mesh-"));
  if (scoped) writeFileSync(join(dir, "sidecar.yaml"), SCOPED_SIDECAR_YAML);
  // Beside the registry directory, not in it (it would be read as a registry file).
  const planesFile = planes && `${dir}.planes.yaml`;
  if (planesFile) writeFileSync(planesFile, meshPlanesYaml(services, planes!));
  for (let i = 0; i < services; i++) writeFileSync(join(dir, `svc-${i}.yaml`), serviceEntryYaml(i, undefined, scoped));
  const { server, port, loadMs } = await MeshServer.start({ dir, ...(planesFile ? { planesFile } : {}) });
  const idle = await server.sample();
  const child = spawn(process.execPath, [...(process.env.MESH_CLIENT_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.MESH_CLIENT_PROF}`] : []), "--import", "tsx", fileURLToPath(new URL("./mesh-clients.ts", import.meta.url)), `127.0.0.1:${port}`, String(proxies), protocol, routeNames(services).join(","), scoped ? "scoped" : ""], { stdio: ["pipe", "pipe", "inherit"] });
  const clientLines = jsonLines(child, "mesh clients");
  const clients = { next: () => clientLines<any>(() => true), send: (m: object) => child.stdin!.write(JSON.stringify(m) + "\n") };
  const mesh = { dir, server, clients, scoped };
  try {
    const tConnect = performance.now();
    await server.profileStart();
    const { bytes, cpuMs: connectClients } = await clients.next() as { ready: number; bytes: number; cpuMs: number };
    const connectMs = performance.now() - tConnect;
    const connected = await server.sample();
    await server.profileStop("connect.cpuprofile");
    // A service's first endpoint moves. With planes, service 135 (on "management", which every proxy
    // sees) moves within its plane; scoped, one that every proxy imports.
    const svc = planes ? 135 : scoped ? SCOPED_MOVED_SERVICE : 7;
    const moved = planes ? "10.0.135.250" : scoped ? "10.250.3.231" : "10.250.0.7";
    const change = await moveEndpoint(mesh, svc, moved, { profile: "change.cpuprofile" });
    if (change.checked !== proxies) throw new Error(`only ${change.checked} of ${proxies} proxies saw the new address`);
    const applyMs = server.appliedAfter(change.t0);
    // Scoped: then service 7 (in ns-7) moves; only the proxies of ns-7 import it, and only they are waited for.
    let local: MeshResult["local"];
    if (scoped) {
      const streams = Array.from({ length: proxies }, (_, i) => i).filter((i) => scopedNamespace(i) === scopedNamespace(7));
      const c = await moveEndpoint(mesh, 7, "10.250.0.7", { streams });
      if (c.checked !== streams.length) throw new Error(`only ${c.checked} of the ${streams.length} proxies of ${scopedNamespace(7)} saw the new address`);
      local = { latenciesMs: c.latenciesMs, cpuMs: c.after.cpuMs - c.before.cpuMs };
    }
    const { latenciesMs, before, after } = change;
    return {
      services, ...(planes ? { planes } : {}), ...(scoped ? { scoped } : {}), ...(local ? { local } : {}), proxies, protocol, connectMs, connectBytes: bytes, latenciesMs, loadMs, applyMs,
      cpuMs: { connectServer: connected.cpuMs - idle.cpuMs, connectClients, changeServer: after.cpuMs - before.cpuMs, changeClients: change.cpuMs - connectClients },
      rssMb: { idle: idle.rssMb, connected: connected.peakMb, peak: Math.max(connected.peakMb, before.peakMb, after.peakMb) },
    };
  } finally {
    child.kill();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
    if (planesFile) rmSync(planesFile, { force: true });
  }
}
