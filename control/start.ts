// `npm start` (`multiplane start`): the control plane on examples/registry/loopback.yaml plus a local
// Envoy sidecar with the loop guard, all on loopback, until Ctrl-C. Without root there is no iptables,
// so a bound listener on each service address stands in for the capture and hands connections to
// Envoy's virtual listener with a PROXY header naming the original destination.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateBootstrap } from "../envoy/bootstrap.ts";
import { PROJECT_ROOT } from "../envoy/paths.ts";
import { resolveEnvoy } from "../envoy/resolve.ts";
import { startLoopbackCapture, type LoopbackCapture } from "./demo/loopback-capture.ts";
import { serve, type ControlPlane } from "./serve.ts";

export const START = {
  registry: join(PROJECT_ROOT, "examples", "registry", "loopback.yaml"),
  nodeId: "sidecar~127.0.0.2~start-1.default~default.svc.cluster.local",
  nodeIps: ["127.0.0.2", "127.0.0.3"],
  envoyAdmin: { host: "127.0.0.1", port: 15000 },
  xds: { host: "127.0.0.1", port: 15010 },
  httpPort: 15014,
  virtual: { host: "127.0.0.1", port: 15001 },
  /** The local process behind service-a's inbound listener, and service-b's instance on "another node". */
  serviceA: { host: "127.0.0.1", port: 9080 },
  serviceB: { host: "127.0.0.4", port: 9081 },
  /** Addresses clients dial, captured to Envoy: service-a's registered endpoint, service-b's VIP. */
  captured: [{ host: "127.0.0.3", port: 9080 }, { host: "127.0.0.40", port: 9081 }],
} as const;

function httpServer(host: string, port: number, body: string): Promise<http.Server> {
  return new Promise((resolve, reject) => {
    const server = http.createServer((_req, res) => res.end(body));
    server.once("error", (err: NodeJS.ErrnoException) => reject(new Error(`cannot listen on ${host}:${port} for the example service: ${err.code ?? err.message}`)));
    server.listen(port, host, () => resolve(server));
  });
}

async function waitForEnvoy(envoy: ChildProcess, adminUrl: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (envoy.exitCode !== null || envoy.signalCode !== null) throw new Error(`envoy exited (${envoy.exitCode ?? envoy.signalCode}) before it was ready; its log is above`);
    const stats = await fetch(`${adminUrl}/stats?filter=^listener_manager\\.total_listeners_(active|warming)$`).then((r) => r.text(), () => "");
    const active = Number(/total_listeners_active: (\d+)/.exec(stats)?.[1] ?? 0);
    const warming = Number(/total_listeners_warming: (\d+)/.exec(stats)?.[1] ?? 1);
    // Ready once listeners are active and none warms: outbound ones wait for ECDS to deliver the guard.
    if (active > 0 && warming === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`envoy did not become ready within ${timeoutMs / 1000} s`);
}

/** Starts everything; resolves once Envoy serves the configuration. `stop()` undoes it all. */
export async function start(log: (line: string) => void = console.log): Promise<{ stop(): Promise<void> }> {
  const envoyBin = resolveEnvoy().path; // fails first, with the install hint, when there is no Envoy
  const cleanups: (() => Promise<void> | void)[] = [];
  let stopping = false;
  const stop = async () => {
    stopping = true;
    for (const c of cleanups.reverse()) await c();
  };
  try {
    const cp: ControlPlane = await serve({
      registry: START.registry, xdsHost: START.xds.host, xdsPort: START.xds.port, httpPort: START.httpPort,
      virtualListener: { address: START.virtual.host, port: START.virtual.port, handoff: "proxy_protocol" },
      log: (line) => log(`[control] ${line}`),
    });
    cleanups.push(() => cp.stop());
    const a = await httpServer(START.serviceA.host, START.serviceA.port, "hello from service-a: delivered to the local process by the inbound listener\n");
    cleanups.push(() => new Promise((r) => a.close(() => r())));
    const b = await httpServer(START.serviceB.host, START.serviceB.port, "hello from service-b: reached through the guarded outbound listener\n");
    cleanups.push(() => new Promise((r) => b.close(() => r())));
    for (const listen of START.captured) {
      const capture: LoopbackCapture = await startLoopbackCapture({ listen, envoy: START.virtual, clientAddress: "127.0.0.1" })
        .catch((err: NodeJS.ErrnoException) => { throw new Error(`cannot listen on ${listen.host}:${listen.port} (capture stand-in): ${err.code ?? err.message}`); });
      cleanups.push(() => capture.close());
    }

    const dir = mkdtempSync(join(tmpdir(), "multiplane-start-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const bootstrap = join(dir, "envoy.json");
    writeFileSync(bootstrap, JSON.stringify(generateBootstrap({ nodeId: START.nodeId, instanceIps: [...START.nodeIps], xds: START.xds, admin: START.envoyAdmin })));
    const envoy = spawn(envoyBin, ["-c", bootstrap, "--concurrency", "2", "-l", "warning", "--use-dynamic-base-id"], { stdio: ["ignore", "inherit", "inherit"] });
    cleanups.push(() => new Promise<void>((resolve) => {
      if (envoy.exitCode !== null || envoy.signalCode !== null) return resolve();
      envoy.once("exit", () => resolve());
      envoy.kill("SIGTERM");
      setTimeout(() => envoy.kill("SIGKILL"), 5000).unref();
    }));
    const adminUrl = `http://${START.envoyAdmin.host}:${START.envoyAdmin.port}`;
    await waitForEnvoy(envoy, adminUrl, 20_000);
    envoy.once("exit", (code, signal) => { if (!stopping) log(`envoy exited (${code ?? signal}); press Ctrl-C to stop the rest`); });

    const proxy = encodeURIComponent(START.nodeId);
    log(`
multiplane is running: a control plane and an Envoy sidecar with the loop guard, on loopback.
  Envoy admin            ${adminUrl}   (ready: ${adminUrl}/ready)
  loop guard counters    ${adminUrl}/stats?filter=wasmcustom.loop_guard
  xDS (ADS)              ${START.xds.host}:${START.xds.port}
  control plane API      ${cp.httpUrl}/debug/proxies
                         ${cp.httpUrl}/debug/decisions?proxy=${proxy}
                         ${cp.httpUrl}/debug/config_dump?proxy=${proxy}
                         ${cp.httpUrl}/metrics
Try:
  curl http://127.0.0.3:9080/    service-a, registered on the node's second IP: inbound, delivered locally
  curl http://127.0.0.40:9081/   service-b on another node: outbound, through the loop guard
  curl '${adminUrl}/stats?filter=wasmcustom.loop_guard'
Ctrl-C stops everything.`);
    return { stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
