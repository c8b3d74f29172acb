// A control-plane replica as its own process (`node dist/multiplane.js serve ...`), so that it can be
// killed with SIGKILL like a crashed host, and started again on the same ports.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { freePort, waitFor } from "./net.ts";

export interface Replica {
  name: string;
  xdsPort: number;
  httpUrl: string;
  running(): boolean;
  /** Starts the process (again) on the same ports and waits until its HTTP API answers. */
  start(): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  log(): string;
  /** GET/PUT/DELETE on the HTTP API with the token. */
  call(path: string, init?: RequestInit): Promise<Response>;
  /** Node ids of the proxies connected to it. */
  proxies(): Promise<string[]>;
}

const everyProcess = new Set<ChildProcess>();
process.on("exit", () => { for (const p of everyProcess) p.kill("SIGKILL"); });

export async function replica(name: string, opts: { registry: string; tokenFile: string; token: string; extraArgs?: string[] }): Promise<Replica> {
  const xdsPort = await freePort();
  const httpPort = await freePort();
  let child: ChildProcess | undefined;
  let text = "";
  const r: Replica = {
    name, xdsPort, httpUrl: `http://127.0.0.1:${httpPort}`,
    running: () => child !== undefined && child.exitCode === null && child.signalCode === null,
    async start() {
      if (r.running()) return;
      child = spawn(process.execPath, [
        join(PROJECT_ROOT, "dist", "multiplane.js"), "serve", "--registry", opts.registry,
        "--xds-port", String(xdsPort), "--http-port", String(httpPort), "--token-file", opts.tokenFile, ...(opts.extraArgs ?? []),
      ], { stdio: ["ignore", "pipe", "pipe"] });
      const c = child;
      everyProcess.add(c);
      c.stdout!.on("data", (d) => { text += d; });
      c.stderr!.on("data", (d) => { text += d; });
      c.on("exit", () => everyProcess.delete(c));
      const up = await waitFor(async () => !r.running() || (await fetch(`${r.httpUrl}/healthz`).catch(() => undefined))?.ok, 15000);
      if (!up || !r.running()) throw new Error(`replica ${name} did not start:\n${text.slice(-3000)}`);
    },
    async kill(signal = "SIGKILL") {
      const c = child;
      if (!c || !r.running()) return;
      const gone = new Promise<void>((res) => c.once("exit", () => res()));
      c.kill(signal);
      await gone;
    },
    log: () => text,
    call: (path, init = {}) => fetch(`${r.httpUrl}${path}`, { ...init, headers: { authorization: `Bearer ${opts.token}`, ...init.headers } }),
    async proxies() {
      const res = await fetch(`${r.httpUrl}/debug/proxies`).catch(() => undefined);
      if (!res?.ok) return [];
      return ((await res.json()).proxies as { id: string }[]).map((p) => p.id);
    },
  };
  return r;
}
