// `npm start` (`multiplane start`): the control plane on examples/registry/loopback.yaml plus a local
// Envoy sidecar with the loop guard, all on loopback, until Ctrl-C. Without root there is no iptables,
// so a bound listener on each service address stands in for the capture and hands connections to
// Envoy's virtual listener with a PROXY header naming the original destination.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { generateBootstrap } from "../../envoy/bootstrap.ts";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { resolveEnvoy } from "../../envoy/resolve.ts";
import { startLoopbackCapture, type LoopbackCapture } from "./demo/loopback-capture.ts";
import { freePort } from "./demo/wait.ts";
import { serve, type ControlPlane } from "../serve/serve.ts";

interface HostPort { host: string; port: number }

/** Every address `multiplane start` listens on, and the registry that matches them. */
export interface StartLayout {
  registry: string;
  nodeId: string;
  nodeIps: readonly string[];
  envoyAdmin: HostPort;
  xds: HostPort;
  httpPort: number;
  virtual: HostPort;
  serviceA: HostPort;
  serviceB: HostPort;
  captured: readonly [HostPort, HostPort];
}

export const START: StartLayout = {
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

/**
 * START on ports the kernel reports free, for running beside another `npm start` (and for tests, which
 * must not depend on fixed ports): the same addresses, and the example registry with its two services
 * renumbered to match, written into `dir`.
 */
async function freePortLayout(dir: string): Promise<StartLayout> {
  const [admin, xds, http, virtual, serviceA, serviceB, capturedA, capturedB] = await Promise.all([
    freePort(START.envoyAdmin.host), freePort(START.xds.host), freePort("127.0.0.1"), freePort(START.virtual.host),
    freePort(START.serviceA.host), freePort(START.serviceB.host), freePort(START.captured[0].host), freePort(START.captured[1].host),
  ]);
  const layout: StartLayout = {
    ...START,
    registry: join(dir, "loopback.yaml"),
    envoyAdmin: { ...START.envoyAdmin, port: admin },
    xds: { ...START.xds, port: xds },
    httpPort: http,
    virtual: { ...START.virtual, port: virtual },
    serviceA: { ...START.serviceA, port: serviceA },
    serviceB: { ...START.serviceB, port: serviceB },
    captured: [{ ...START.captured[0], port: capturedA }, { ...START.captured[1], port: capturedB }],
  };
  // service-a: registered port = its captured port, delivered to its process on targetPort. service-b: its
  // VIP's port = its captured port, its instance's port given per endpoint (endpoints[].ports).
  const docs = parseAllDocuments(readFileSync(START.registry, "utf8"));
  if (!Array.isArray(docs)) throw new Error(`${START.registry}: no documents`);
  const renumber: Record<string, (d: (typeof docs)[number]) => void> = {
    "service-a-loopback": (d) => {
      d.setIn(["spec", "ports", 0, "number"], capturedA);
      d.setIn(["spec", "ports", 0, "targetPort"], serviceA);
    },
    "service-b-loopback": (d) => {
      d.setIn(["spec", "ports", 0, "number"], capturedB);
      d.setIn(["spec", "endpoints", 0, "ports"], { [String(d.getIn(["spec", "ports", 0, "name"]))]: serviceB });
    },
  };
  for (const d of docs) {
    const name = String(d.getIn(["metadata", "name"]));
    renumber[name]?.(d);
    delete renumber[name];
  }
  const missing = Object.keys(renumber);
  if (missing.length > 0) throw new Error(`${START.registry}: --free-ports expects ServiceEntries ${missing.join(", ")}`);
  writeFileSync(layout.registry, `# ${START.registry} on free ports (multiplane start --free-ports)\n${docs.map((d) => d.toString()).join("")}`);
  return layout;
}

/** Starts everything; resolves once Envoy serves the configuration. `stop()` undoes it all. */
export async function start(log: (line: string) => void = console.log, opts: { freePorts?: boolean } = {}): Promise<{ stop(): Promise<void> }> {
  const envoyBin = resolveEnvoy().path; // fails first, with the install hint, when there is no Envoy
  const cleanups: (() => Promise<void> | void)[] = [];
  let stopping = false;
  const stop = async () => {
    stopping = true;
    for (const c of cleanups.reverse()) await c();
  };
  try {
    const dir = mkdtempSync(join(tmpdir(), "multiplane-start-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const layout = opts.freePorts ? await freePortLayout(dir) : START;
    const cp: ControlPlane = await serve({
      registry: layout.registry, xdsHost: layout.xds.host, xdsPort: layout.xds.port, httpPort: layout.httpPort,
      virtualListener: { address: layout.virtual.host, port: layout.virtual.port, handoff: "proxy_protocol" },
      log: (line) => log(`[control] ${line}`),
    });
    cleanups.push(() => cp.stop());
    const a = await httpServer(layout.serviceA.host, layout.serviceA.port, "hello from service-a: delivered to the local process by the inbound listener\n");
    cleanups.push(() => new Promise((r) => a.close(() => r())));
    const b = await httpServer(layout.serviceB.host, layout.serviceB.port, "hello from service-b: reached through the guarded outbound listener\n");
    cleanups.push(() => new Promise((r) => b.close(() => r())));
    for (const listen of layout.captured) {
      const capture: LoopbackCapture = await startLoopbackCapture({ listen, envoy: layout.virtual, clientAddress: "127.0.0.1" })
        .catch((err: NodeJS.ErrnoException) => { throw new Error(`cannot listen on ${listen.host}:${listen.port} (capture stand-in): ${err.code ?? err.message}`); });
      cleanups.push(() => capture.close());
    }

    const bootstrap = join(dir, "envoy.json");
    writeFileSync(bootstrap, JSON.stringify(generateBootstrap({ nodeId: layout.nodeId, instanceIps: [...layout.nodeIps], xds: layout.xds, admin: layout.envoyAdmin })));
    const envoy = spawn(envoyBin, ["-c", bootstrap, "--concurrency", "2", "-l", "warning", "--use-dynamic-base-id"], { stdio: ["ignore", "inherit", "inherit"] });
    cleanups.push(() => new Promise<void>((resolve) => {
      if (envoy.exitCode !== null || envoy.signalCode !== null) return resolve();
      envoy.once("exit", () => resolve());
      envoy.kill("SIGTERM");
      setTimeout(() => envoy.kill("SIGKILL"), 5000).unref();
    }));
    const adminUrl = `http://${layout.envoyAdmin.host}:${layout.envoyAdmin.port}`;
    await waitForEnvoy(envoy, adminUrl, 20_000);
    envoy.once("exit", (code, signal) => { if (!stopping) log(`envoy exited (${code ?? signal}); press Ctrl-C to stop the rest`); });

    const proxy = encodeURIComponent(layout.nodeId);
    const [urlA, urlB] = layout.captured.map((c) => `http://${c.host}:${c.port}/`) as [string, string];
    const width = Math.max(urlA.length, urlB.length) + 3;
    log(`
multiplane is running: a control plane and an Envoy sidecar with the loop guard, on loopback.
  Envoy admin            ${adminUrl}   (ready: ${adminUrl}/ready)
  loop guard counters    ${adminUrl}/stats?filter=wasmcustom.loop_guard
  xDS (ADS)              ${layout.xds.host}:${layout.xds.port}
  control plane API      ${cp.httpUrl}/debug/proxies
                         ${cp.httpUrl}/debug/decisions?proxy=${proxy}
                         ${cp.httpUrl}/debug/config_dump?proxy=${proxy}
                         ${cp.httpUrl}/metrics
Try:
  curl ${urlA.padEnd(width)}service-a, registered on the node's second IP: inbound, delivered locally
  curl ${urlB.padEnd(width)}service-b on another node: outbound, through the loop guard
  curl '${adminUrl}/stats?filter=wasmcustom.loop_guard'
Ctrl-C stops everything.`);
    return { stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
