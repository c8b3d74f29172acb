// GET requests and watch streams to the API server, authenticated and verified as the kubeconfig says
// (its CA, client certificate, bearer token, token file, exec plugin, proxy): each request asks
// KubeConfig.applyToHTTPSOptions for them afresh, so a rotated service account token is picked up.
// Plain node:http(s) rather than the client library's Watch and generated API clients: its Watch keeps
// only the status text of an HTTP error (not the server's message: which permission a 403 lacks) and
// has no deadline, so a connection that died silently would hang forever; the generated clients are
// one per kind and version, where a reflector needs one path for built-in and custom resources alike.
// Nothing here logs: errors carry the server's message and the request's address, never a header.
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { StringDecoder } from "node:string_decoder";
import { createGunzip } from "node:zlib";
import type { Readable } from "node:stream";
import type { KubeConfig } from "@kubernetes/client-node";
import { apiErrorFromBody, MAX_ERROR_BODY } from "./errors.ts";

export type Query = Record<string, string | number | boolean | undefined>;

/** One line of a watch stream. `object` is the resource, or a Status for ERROR. */
export interface WatchEvent {
  type: string;
  object: unknown;
}

export interface WatchHandlers {
  /** The server accepted the watch (HTTP 200). */
  onOpen(): void;
  /** An event, in order. Return "stop" to end the watch; throw to end it with that error. */
  onEvent(event: WatchEvent): "stop" | void;
}

export interface KubeHttpOptions {
  /** Deadline of a GET (headers and body), and of a watch's headers. */
  requestTimeoutMs?: number;
}

/** A connection the peer dropped silently is noticed by TCP keepalive probes this long after it went quiet. */
const KEEPALIVE_MS = 15_000;

export class KubeHttp {
  private readonly requestTimeoutMs: number;

  constructor(private readonly kc: KubeConfig, opts: KubeHttpOptions = {}) {
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
  }

  /** The API server's base URL (no credentials in it). */
  get server(): string {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error("the kubeconfig has no current cluster");
    return cluster.server.replace(/\/+$/, "");
  }

  /** GET `path` and parse the JSON answer; a non-200 answer rejects with a KubeApiError. */
  async getJson<T>(path: string, query: Query = {}, signal?: AbortSignal): Promise<T> {
    const deadline = new Deadline(this.requestTimeoutMs, signal);
    try {
      const res = await this.open(path, query, deadline.signal);
      if (res.statusCode !== 200) throw apiErrorFromBody(res.statusCode ?? 0, await readText(res, MAX_ERROR_BODY), header(res, "retry-after"));
      return JSON.parse(await readText(decoded(res), Infinity)) as T;
    } catch (err) {
      throw deadline.explain(err, `GET ${path}`);
    } finally {
      deadline.clear();
    }
  }

  /**
   * Watches `path` (query should hold watch=true and a resourceVersion) until the server ends the
   * stream (resolves), `maxMs` passes (resolves: a watch the server should have ended by then is
   * presumed stuck), a handler stops it (resolves) or throws (rejects), or the connection fails
   * (rejects). A non-200 answer rejects with a KubeApiError.
   */
  async watch(path: string, query: Query, handlers: WatchHandlers, maxMs: number, signal?: AbortSignal): Promise<void> {
    const headers = new Deadline(this.requestTimeoutMs, signal);
    let res: IncomingMessage;
    try {
      res = await this.open(path, query, headers.signal);
      if (res.statusCode !== 200) throw apiErrorFromBody(res.statusCode ?? 0, await readText(res, MAX_ERROR_BODY), header(res, "retry-after"));
    } catch (err) {
      throw headers.explain(err, `watch ${path}`);
    } finally {
      headers.clear();
    }
    handlers.onOpen();
    await readLines(decoded(res), maxMs, signal, (line) => handlers.onEvent(JSON.parse(line) as WatchEvent));
  }

  private async open(path: string, query: Query, signal: AbortSignal): Promise<IncomingMessage> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
    const opts: https.RequestOptions = {};
    await this.kc.applyToHTTPSOptions(opts);
    signal.throwIfAborted();
    const headers = { ...(opts.headers as Record<string, string> | undefined), accept: "application/json", "accept-encoding": "gzip", "user-agent": "multiplane" };
    const send = url.protocol === "http:" ? http.request : https.request;
    return new Promise((resolve, reject) => {
      const req = send(url, { ...opts, method: "GET", headers, signal }, resolve);
      req.on("socket", (s) => s.setKeepAlive(true, KEEPALIVE_MS));
      req.on("error", reject);
      req.end();
    });
  }
}

/** An abort signal that fires after `ms` or when `outer` does, and error messages that say which. */
class Deadline {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private timedOut = false;
  readonly signal: AbortSignal;

  constructor(private readonly ms: number, private readonly outer?: AbortSignal) {
    this.timer = setTimeout(() => { this.timedOut = true; this.controller.abort(); }, ms);
    this.signal = outer ? AbortSignal.any([outer, this.controller.signal]) : this.controller.signal;
  }

  clear(): void {
    clearTimeout(this.timer);
  }

  /** `err`, or a clearer one when the deadline or the caller aborted the request. */
  explain(err: unknown, what: string): unknown {
    if (this.outer?.aborted) return new Error(`${what}: cancelled`);
    if (this.timedOut) return new Error(`${what}: no answer within ${Math.round(this.ms / 1000)} s`);
    return err;
  }
}

const header = (res: IncomingMessage, name: string): string | undefined => {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/** The body, gunzipped when the server compressed it (it does for large lists when asked). */
function decoded(res: IncomingMessage): Readable {
  if (header(res, "content-encoding") !== "gzip") return res;
  const gunzip = createGunzip();
  res.on("error", (err) => gunzip.destroy(err));
  // Whoever stops reading destroys the gunzip stream; the connection under it must close too.
  gunzip.on("close", () => res.destroy());
  return res.pipe(gunzip);
}

/** The body as text, at most `limit` bytes of it (the rest is not read). */
async function readText(body: Readable, limit: number): Promise<string> {
  const decoder = new StringDecoder("utf8");
  let text = "";
  let bytes = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    text += decoder.write(chunk);
    bytes += chunk.length;
    if (bytes >= limit) {
      body.destroy();
      break;
    }
  }
  return text + decoder.end();
}

/** Calls `onLine` for each newline-terminated line of `body` (the API server writes one JSON event per line). */
function readLines(body: Readable, maxMs: number, signal: AbortSignal | undefined, onLine: (line: string) => "stop" | void): Promise<void> {
  return new Promise((resolve, reject) => {
    const decoder = new StringDecoder("utf8");
    let pending = "";
    let done = false;
    const finish = (err?: unknown) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      body.destroy();
      if (err === undefined) resolve();
      else reject(err);
    };
    const onAbort = () => finish(new Error("watch cancelled"));
    const timer = setTimeout(() => finish(), maxMs);
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) return onAbort();
    body.on("data", (chunk: Buffer) => {
      const text = decoder.write(chunk);
      // A large object arrives in many chunks: only a chunk with a newline ends a line.
      if (!text.includes("\n")) {
        pending += text;
        return;
      }
      const lines = (pending + text).split("\n");
      pending = lines.pop()!;
      for (const line of lines) {
        if (done) return;
        if (!line.trim()) continue;
        try {
          if (onLine(line) === "stop") finish();
        } catch (err) {
          finish(err);
        }
      }
    });
    body.on("end", () => finish());
    body.on("error", (err) => finish(err));
    // A connection closed before the end of the body: for a watch, the server went away.
    body.on("close", () => finish(done ? undefined : new Error("watch connection closed")));
  });
}
