// Puts the chosen delivery of the loop guard module in place (delivery.ts): for a remote module, its
// sha256 and, when this control plane serves it, the module server; the generation options that point
// Envoy at it; and, per proxy, what the control plane can tell about it for /debug/proxies.
import { existsSync } from "node:fs";
import { listening } from "../common/listen.ts";
import { readableByOthers, readableCopy } from "./readable-copy.ts";
import { isUnspecified } from "../identity/ip.ts";
import type { LoopGuardOptions } from "../generation/options.ts";
import { RateLimitedLog } from "../log/rate-limited-log.ts";
import type { CertificateFiles } from "../tls/cert-files.ts";
import { checkModuleUrl } from "./check-url.ts";
import { guardDelivery, type GuardDeliveryFlags } from "./delivery.ts";
import { FetchLog } from "./fetches.ts";
import { readGuardModule } from "./module.ts";
import { GUARD_WASM_PATH, startGuardModuleServer, type GuardModuleServer } from "./module-server.ts";
import { hostPort } from "../common/host-port.ts";

export interface GuardModuleStatus {
  /** A file on the Envoy host, or a URL Envoy fetches (and checks against sha256). */
  source: "file" | "url";
  location: string;
  sha256?: string;
  /** When this control plane serves the module: its last answer to the proxy's address, or false if it never fetched it. */
  fetched?: { at: string; status: number } | false;
  /** For another server's URL: the control plane's own fetch of it ("ok", or what is wrong). */
  check?: string;
}

/** How often the control plane looks at a --guard-wasm-url again. */
const URL_CHECK_INTERVAL_MS = 60_000;

export interface GuardSetup {
  options: LoopGuardOptions;
  server?: GuardModuleServer;
  /** For a proxy at `remoteAddress` whose xDS connection arrived at `via`. */
  status(remoteAddress: string | undefined, via: string | undefined): GuardModuleStatus;
  close(): Promise<void>;
}

export async function setUpLoopGuard(
  flags: GuardDeliveryFlags & { mode: LoopGuardOptions["mode"]; certs?: CertificateFiles },
  log: (line: string) => void,
): Promise<GuardSetup> {
  const d = guardDelivery(flags);
  const mode = flags.mode;
  if (d.kind === "local") {
    const path = d.path === flags.defaultPath ? localModule(d.path, log) : d.path;
    log(`loop guard module: Envoy reads the file ${path} on its own host`);
    return { options: { wasmPath: path, mode }, status: () => ({ source: "file", location: path }), close: async () => {} };
  }

  const module = readGuardModule(flags.defaultPath);
  if (d.kind === "url") {
    log(`loop guard module: Envoy fetches ${d.url}, which must serve the bytes of ${module.path} (sha256 ${module.sha256})`);
    let check = "not checked yet";
    let stopped = false;
    const recheck = async () => {
      const result = await checkModuleUrl(d.url, module.sha256);
      if (stopped) return;
      if (result !== check) log(result === "ok" ? `loop guard module at ${d.url}: sha256 matches` : `warning: loop guard module: ${result}`);
      check = result;
    };
    void recheck();
    const timer = setInterval(() => void recheck(), URL_CHECK_INTERVAL_MS);
    timer.unref();
    return {
      options: { wasmPath: module.path, mode, remote: { sha256: module.sha256, from: { kind: "url", url: d.url } } },
      status: () => ({ source: "url", location: d.url, sha256: module.sha256, check }),
      close: async () => { stopped = true; clearInterval(timer); },
    };
  }

  const fetches = new FetchLog();
  // Counted per client address, like every other line a client can provoke.
  const requests = new RateLimitedLog(log);
  const server = await listening("loop guard module server", d.host, d.port, "--xds-host, --guard-wasm-port", () => startGuardModuleServer({
    host: d.host, port: d.port, module, ...(flags.certs ? { certs: flags.certs } : {}),
    onRequest: (line, address, status) => { fetches.record(address, status); requests.line(`module requests from ${address}`, line); },
  }));
  const tls = flags.certs ? (flags.certs.mutual ? "mtls" : "tls") : "none";
  // On a wildcard address each proxy fetches from the address its xDS connection arrived at.
  const host = isUnspecified(d.host) ? undefined : d.host;
  const url = (h: string) => `${server.scheme}://${hostPort(h, server.port)}${GUARD_WASM_PATH}`;
  log(`loop guard module served on ${url(d.host)} (${tls === "mtls" ? "mutual TLS" : tls === "tls" ? "TLS" : "plaintext"}), ${module.bytes.length} bytes, sha256 ${module.sha256}`);
  return {
    options: { wasmPath: module.path, mode, remote: { sha256: module.sha256, from: { kind: "control-plane", ...(host ? { host } : {}), port: server.port, tls, path: GUARD_WASM_PATH } } },
    server,
    status(remoteAddress, via) {
      const f = remoteAddress ? fetches.last(remoteAddress) : undefined;
      return { source: "url", location: url(host ?? via ?? d.host), sha256: module.sha256, fetched: f ? { at: f.at.toISOString(), status: f.status } : false };
    },
    close: () => { requests.stop(); return server.close(); },
  };
}

/** The module that comes with multiplane, where Envoy can read it whichever user it runs as (readable-copy.ts). */
function localModule(path: string, log: (line: string) => void): string {
  if (!existsSync(path)) {
    log(`warning: loop guard ${path} does not exist; Envoy will reject the listeners until it does (npm run build:wasm)`);
    return path;
  }
  if (readableByOthers(path)) return path;
  const copy = readableCopy(path);
  log(`loop guard module: ${path} is in a directory other users cannot enter, and Envoy may run as another user: it reads a copy, ${copy}`);
  return copy;
}
