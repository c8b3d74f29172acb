// Runs the real Envoy (resolved like everywhere else) for a test, and reads its admin API.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveEnvoy } from "../../envoy/resolve.ts";
import { setprivAs } from "../../control/cmd/demo/runner.ts";
import { waitFor } from "./net.ts";

export interface RunningEnvoy {
  adminUrl: string;
  process: ChildProcess;
  alive(): boolean;
  log(): string;
  /** All counters and gauges from /stats as name -> value. */
  stats(): Promise<Map<string, number>>;
  stat(name: string): Promise<number | undefined>;
  configDump(resource?: string): Promise<any>;
  stop(): Promise<void>;
}

const running = new Set<RunningEnvoy>();
process.on("exit", () => { for (const e of running) e.process.kill("SIGKILL"); });

export function envoyVersion(): string {
  const out = execFileSync(resolveEnvoy().path, ["--version"], { encoding: "utf8" });
  return /version: (\S+)/.exec(out)?.[1] ?? out.trim();
}

let printedVersion = false;

/** Starts Envoy on `config` (a bootstrap object whose admin port is replaced by a free one) and waits until admin answers. */
/** `user`: run Envoy as this uid/gid (root only), as a sidecar beside an iptables capture runs; its directory is handed to it. */
export async function startEnvoy(config: Record<string, any>, opts: { logLevel?: string; concurrency?: number; extraArgs?: string[]; user?: { uid: number; gid: number } } = {}): Promise<RunningEnvoy> {
  if (!printedVersion) {
    printedVersion = true;
    console.log(`  (envoy ${envoyVersion()} at ${resolveEnvoy().path})`);
  }
  const dir = mkdtempSync(join(tmpdir(), "multiplane-envoy-"));
  const cfg = structuredClone(config);
  cfg.admin = { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } };
  const cfgPath = join(dir, "envoy.json");
  const adminPath = join(dir, "admin-address");
  writeFileSync(cfgPath, JSON.stringify(cfg));
  if (opts.user) chownSync(dir, opts.user.uid, opts.user.gid);
  const args = [
    "-c", cfgPath, "--admin-address-path", adminPath, "--use-dynamic-base-id",
    "--concurrency", String(opts.concurrency ?? 1), "-l", opts.logLevel ?? "warning",
    "--disable-hot-restart", ...(opts.extraArgs ?? []),
  ];
  // As another user through setpriv, as the namespace tests and the demo do: it also runs an Envoy
  // installed inside a checkout that user cannot enter (a private clone).
  const child = opts.user
    ? spawn("setpriv", [...setprivAs(opts.user.uid, opts.user.gid), resolveEnvoy().path, ...args], { stdio: ["ignore", "pipe", "pipe"] })
    : spawn(resolveEnvoy().path, args, { stdio: ["ignore", "pipe", "pipe"] });
  let logText = "";
  child.stdout!.on("data", (d) => { logText += d; });
  child.stderr!.on("data", (d) => { logText += d; });
  let exited = false;
  child.on("exit", () => { exited = true; });
  child.on("error", (err) => { logText += `\ncannot start Envoy: ${err.message}`; exited = true; });

  const address = await waitFor(() => (existsSync(adminPath) ? readFileSync(adminPath, "utf8").trim() : exited ? "exited" : ""), 15000);
  if (!address || address === "exited") {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`envoy did not start:\n${logText.slice(-4000)}`);
  }
  const adminUrl = `http://${address}`;
  const env: RunningEnvoy = {
    adminUrl,
    process: child,
    alive: () => !exited,
    log: () => logText,
    async stats() {
      const text = await (await fetch(`${adminUrl}/stats`)).text();
      const out = new Map<string, number>();
      for (const line of text.split("\n")) {
        const m = /^(\S+): (\d+)$/.exec(line);
        if (m) out.set(m[1]!, Number(m[2]));
      }
      return out;
    },
    async stat(name) {
      return (await env.stats()).get(name);
    },
    async configDump(resource) {
      const q = resource ? `?resource=${encodeURIComponent(resource)}` : "";
      return (await fetch(`${adminUrl}/config_dump${q}`)).json();
    },
    async stop() {
      running.delete(env);
      if (!exited) {
        child.kill("SIGTERM");
        const ok = await waitFor(() => exited, 5000);
        if (!ok) child.kill("SIGKILL");
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  running.add(env);
  await waitFor(async () => (await fetch(`${adminUrl}/ready`).catch(() => undefined))?.status !== undefined, 10000);
  return env;
}
