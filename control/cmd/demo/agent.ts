// A small helper process that lives inside a network namespace and makes HTTP requests from there on our
// behalf (the namespace's loopback, e.g. Envoy's admin on 127.0.0.1:15000, is only reachable from inside).
// Protocol: one JSON request per line on stdin, one JSON reply per line on stdout, matched by id.
import type { SpawnedProcess } from "./netns.ts";

/** Plain JavaScript (runs with `node -e`, no TypeScript loader needed inside the namespace). */
export const AGENT_SOURCE = String.raw`
// Everything lives inside main(): the agent's state (the stdin buffer, the statsd totals) belongs to this run.
function main() {
  const http = require("node:http");
  let buf = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.trim()) handle(JSON.parse(line));
    }
  });
  process.stdin.on("end", () => process.exit(0));
  const reply = (o) => process.stdout.write(JSON.stringify(o) + "\n");
  // A statsd receiver: Envoy's statsd sink sends counters as deltas ("name:3|c") and gauges as values ("name:7|g").
  const statsd = { counters: {}, gauges: {}, packets: 0 };
  function handle(req) {
    if (req.op === "statsd-listen") {
      const sock = require("node:dgram").createSocket("udp4");
      sock.on("message", (m) => {
        statsd.packets++;
        for (const line of m.toString("utf8").split("\n")) {
          const x = /^([^:]+):(-?[0-9.]+)\|(c|g|ms)/.exec(line);
          if (!x) continue;
          if (x[3] === "c") statsd.counters[x[1]] = (statsd.counters[x[1]] || 0) + Number(x[2]);
          else if (x[3] === "g") statsd.gauges[x[1]] = Number(x[2]);
        }
      });
      sock.on("error", (e) => reply({ id: req.id, ms: 0, error: e.code || e.message }));
      sock.bind(0, "127.0.0.1", () => reply({ id: req.id, ms: 0, status: 200, body: String(sock.address().port) }));
      return;
    }
    if (req.op === "statsd-get") {
      reply({ id: req.id, ms: 0, status: 200, body: JSON.stringify(statsd) });
      return;
    }
    if (req.op === "http-server") {
      // A small HTTP service (Service A): answers every request with 200 and a fixed body ({peer}: the client's address).
      const srv = http.createServer((q, s) => { s.setHeader("content-type", "text/plain"); s.end((req.body || "hello from service-a\n").replace("{peer}", q.socket.remoteAddress)); });
      srv.on("error", (e) => reply({ id: req.id, ms: 0, error: e.code || e.message }));
      srv.listen(req.port, req.host, () => reply({ id: req.id, ms: 0, status: 200, body: String(srv.address().port) }));
      return;
    }
    const t0 = Date.now();
    let done = false;
    const finish = (o) => { if (!done) { done = true; reply({ id: req.id, ms: Date.now() - t0, ...o }); } };
    const u = new URL(req.url);
    const r = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: req.method || "GET", agent: false, localAddress: req.localAddress, headers: { ...req.headers, connection: "close" } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => { if (body.length < (req.maxBody || 4194304)) body += c; });
      res.on("end", () => finish({ status: res.statusCode, body, headers: res.headers }));
      res.on("error", (e) => finish({ error: e.code || e.message }));
    });
    r.setTimeout(req.timeoutMs || 5000, () => { finish({ error: "timeout" }); r.destroy(); });
    r.on("error", (e) => finish({ error: e.code || e.message }));
    r.end();
  }
}
main();
`;

export interface HttpResult {
  status?: number;
  body?: string;
  /** The response's headers (lower-case names). */
  headers?: Record<string, string | string[]>;
  /** e.g. ECONNRESET, ECONNREFUSED, "socket hang up", "timeout". */
  error?: string;
  ms: number;
}

export class NsAgent {
  private nextId = 1;
  private pending = new Map<number, (r: HttpResult) => void>();
  private buf = "";

  constructor(private readonly proc: SpawnedProcess) {
    proc.child.stdout!.setEncoding("utf8");
    proc.child.stdout!.on("data", (d: string) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf("\n")) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        let msg: { id: number } & HttpResult;
        try { msg = JSON.parse(line); } catch { continue; }
        this.pending.get(msg.id)?.(msg);
        this.pending.delete(msg.id);
      }
    });
    proc.child.on("exit", () => {
      for (const [, resolve] of this.pending) resolve({ error: "agent exited", ms: 0 });
      this.pending.clear();
    });
  }

  private send(msg: Record<string, unknown>, timeoutMs: number): Promise<HttpResult> {
    if (this.proc.exited()) return Promise.resolve({ error: "agent exited", ms: 0 });
    const id = this.nextId++;
    return new Promise((resolve) => {
      // A backstop in case the agent itself hangs.
      const t = setTimeout(() => { this.pending.delete(id); resolve({ error: "timeout", ms: timeoutMs }); }, timeoutMs);
      this.pending.set(id, (r) => { clearTimeout(t); resolve(r); });
      this.proc.child.stdin!.write(JSON.stringify({ id, ...msg }) + "\n");
    });
  }

  /** One HTTP request on a fresh connection from inside the namespace (`headers`, e.g. host, added). Never rejects. */
  request(url: string, opts: { timeoutMs?: number; method?: string; localAddress?: string; headers?: Record<string, string> } = {}): Promise<HttpResult> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    return this.send({ url, timeoutMs, method: opts.method, localAddress: opts.localAddress, headers: opts.headers }, timeoutMs + 2000);
  }

  /** Starts an HTTP server in the namespace (200 with `body` for every request, `{peer}` in it replaced by the client's address); resolves with its port. */
  async httpServer(host: string, port: number, body?: string): Promise<number> {
    const r = await this.send({ op: "http-server", host, port, body }, 5000);
    if (r.error) throw new Error(`http server on ${host}:${port}: ${r.error}`);
    return Number(r.body);
  }

  /** Starts a statsd (UDP) receiver on 127.0.0.1 in the namespace; resolves with its port. */
  async statsdListen(): Promise<number> {
    const r = await this.send({ op: "statsd-listen" }, 5000);
    if (r.error) throw new Error(`statsd receiver: ${r.error}`);
    return Number(r.body);
  }

  /** Counters summed over every flush so far, and the last value of every gauge. */
  async statsd(): Promise<{ counters: Record<string, number>; gauges: Record<string, number>; packets: number }> {
    const r = await this.send({ op: "statsd-get" }, 5000);
    return r.body ? JSON.parse(r.body) : { counters: {}, gauges: {}, packets: 0 };
  }

  stop(): Promise<void> {
    this.proc.child.stdin!.end();
    return this.proc.stop(1000);
  }
}
