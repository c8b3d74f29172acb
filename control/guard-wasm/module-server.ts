// Serves the loop guard module to Envoys on other hosts: one file at one path, over HTTP, or over
// HTTPS with the xDS certificate (and, under mutual TLS, only to clients with a certificate from the
// xDS client CA). Its own listener, not the debug API: the debug API stays on loopback.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import type { CertificateFiles, TlsMaterial } from "../tls/cert-files.ts";
import type { GuardModule } from "./module.ts";

export const GUARD_WASM_PATH = "/loop-guard.wasm";

export interface GuardModuleServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  module: GuardModule;
  /** HTTPS with these certificates (reloaded with them); mutual TLS when they include a client CA. */
  certs?: CertificateFiles;
  /** One line per request (the caller limits how many), and the client's address and the answer. */
  onRequest?(line: string, address: string, status: number): void;
}

export interface GuardModuleServer {
  host: string;
  port: number;
  scheme: "http" | "https";
  close(): Promise<void>;
}

const unmapped = (a: string) => (a.startsWith("::ffff:") && a.includes(".") ? a.slice(7) : a);

const tlsOptions = (m: TlsMaterial) => ({ cert: m.cert, key: m.key, ...(m.ca ? { ca: m.ca, requestCert: true, rejectUnauthorized: true } : {}) });

export async function startGuardModuleServer(opts: GuardModuleServerOptions): Promise<GuardModuleServer> {
  const { module } = opts;
  const etag = `"${module.sha256}"`;
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "").split("?")[0];
    let status: number;
    if (path !== GUARD_WASM_PATH) {
      status = 404;
      res.writeHead(status, { "content-type": "text/plain" }).end(`only ${GUARD_WASM_PATH} is served here\n`);
    } else if (req.method !== "GET" && req.method !== "HEAD") {
      status = 405;
      res.writeHead(status, { allow: "GET, HEAD", "content-type": "text/plain" }).end("GET or HEAD\n");
    } else {
      status = 200;
      res.writeHead(status, { "content-type": "application/wasm", "content-length": module.bytes.length, etag, "cache-control": "no-cache" });
      res.end(req.method === "HEAD" ? undefined : module.bytes);
    }
    const peer = (req.socket as TLSSocket).getPeerCertificate?.()?.subjectaltname;
    const address = unmapped(req.socket.remoteAddress ?? "");
    opts.onRequest?.(`loop guard module: ${req.method} ${path} from ${address}${peer ? ` (${peer})` : ""}: ${status}${status === 200 ? ` ${module.bytes.length} bytes sha256 ${module.sha256}` : ""}`, address, status);
  };

  let server: Server;
  let unwatch = () => {};
  if (opts.certs) {
    const certs = opts.certs;
    const https = createHttpsServer(tlsOptions(certs.current()), handle);
    unwatch = certs.onChange((m) => https.setSecureContext(tlsOptions(m)));
    server = https;
  } else {
    server = createHttpServer(handle);
  }
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(new Error(`loop guard module server cannot listen on ${opts.host}:${opts.port}: ${err.message}`)));
    server.listen(opts.port, opts.host, () => resolve());
  });
  return {
    host: opts.host,
    port: (server.address() as AddressInfo).port,
    scheme: opts.certs ? "https" : "http",
    close: () => new Promise<void>((resolve) => {
      unwatch();
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
