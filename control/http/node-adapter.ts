// Serves a web-standard handler with node:http: IncomingMessage -> Request, Response -> ServerResponse.
// It stops reading a body at the handler's MAX_BODY_BYTES, so a client cannot make it buffer without limit.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { MAX_BODY_BYTES, type Handler } from "./handler.ts";
import { hostPort } from "../common/host-port.ts";

export interface HttpServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export function serveHandler(handler: Handler, opts: { host: string; port: number }): Promise<HttpServer> {
  const server = createServer((req, res) => void respond(handler, req, res));
  server.keepAliveTimeout = 5000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://${hostPort(opts.host, port)}`,
        port,
        close: () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }),
      });
    });
  });
}

async function respond(handler: Handler, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const body = await readBody(req);
    if (body === "too large") return void res.writeHead(413, { "content-type": "application/json", connection: "close" }).end(`{"error":"body larger than ${MAX_BODY_BYTES} bytes"}\n`);
    const host = req.headers.host ?? "localhost";
    const request = new Request(`http://${host}${req.url ?? "/"}`, {
      method: req.method,
      headers: Object.entries(req.headers).flatMap(([k, v]) => (v === undefined ? [] : Array.isArray(v) ? v.map((x) => [k, x] as [string, string]) : [[k, v] as [string, string]])),
      ...(body && req.method !== "GET" && req.method !== "HEAD" ? { body: new Uint8Array(body) } : {}),
    });
    const response = await handler(request);
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(req.method === "HEAD" ? undefined : Buffer.from(await response.arrayBuffer()));
  } catch (err) {
    if (!res.headersSent) res.writeHead(400, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: `bad request: ${(err as Error).message}` }) + "\n");
  }
}

function readBody(req: IncomingMessage): Promise<Buffer | "too large" | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        req.pause();
        resolve("too large");
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(chunks.length ? Buffer.concat(chunks) : undefined));
    req.on("error", reject);
  });
}
