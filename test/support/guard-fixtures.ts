// Static Envoy bootstraps for the loop-guard tests and benchmark: listeners with our wasm
// filters, tcp_proxy / router to STATIC clusters, all on 127.0.0.x. No control plane needed.
import net from "node:net";
import http from "node:http";
import { LOOP_GUARD_WASM } from "../../envoy/paths.ts";
import { tcpProxy } from "../../control/generation/envoy-objects.ts";

export { tcpProxy };

export type Direction = "OUTBOUND" | "INBOUND" | undefined;

/** The plugin configuration: an object (JSON-encoded here) or raw text (for bad configs). */
export type GuardConfig = Record<string, unknown> | string;

function wasmConfig(rootId: string, config: GuardConfig, name: string, wasm = LOOP_GUARD_WASM) {
  return {
    name,
    root_id: rootId,
    configuration: {
      "@type": "type.googleapis.com/google.protobuf.StringValue",
      value: typeof config === "string" ? config : JSON.stringify(config),
    },
    vm_config: { vm_id: wasm === LOOP_GUARD_WASM ? "loop_guard" : wasm, runtime: "envoy.wasm.runtime.v8", code: { local: { filename: wasm } } },
  };
}

/** The loop guard as a network filter (`wasm`: another module, e.g. the benchmark's empty one). */
export function guardNetworkFilter(config: GuardConfig, name = "loop_guard", wasm = LOOP_GUARD_WASM) {
  return {
    name: "envoy.filters.network.wasm",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
      config: wasmConfig("loop_guard", config, name, wasm),
    },
  };
}

/** The HTTP loop guard (`wasm`: another module, e.g. the benchmark's empty one or an earlier build). */
export function guardHttpFilter(config: GuardConfig, name = "loop_guard_http", wasm = LOOP_GUARD_WASM) {
  return {
    name: "envoy.filters.http.wasm",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
      config: wasmConfig("loop_guard_http", config, name, wasm),
    },
  };
}

/** Envoy's native CDN-Loop filter (RFC 8586): appends `cdnId` to CDN-Loop, answers a request that already carries it (bench (g)). */
export function cdnLoopFilter(cdnId: string) {
  return {
    name: "envoy.filters.http.cdn_loop",
    typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.cdn_loop.v3.CdnLoopConfig", cdn_id: cdnId, max_allowed_occurrences: 0 },
  };
}

/** Envoy's native RBAC network filter denying connections to these destination IPs (bench (c)). */
export function rbacDenyFilter(ips: string[]) {
  return {
    name: "envoy.filters.network.rbac",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC",
      stat_prefix: "loop_rbac",
      rules: {
        action: "DENY",
        policies: {
          self: {
            permissions: ips.map((ip) => ({ destination_ip: { address_prefix: ip, prefix_len: ip.includes(":") ? 128 : 32 } })),
            principals: [{ any: true }],
          },
        },
      },
    },
  };
}

export function httpConnectionManager(cluster: string, httpFilters: object[]) {
  return {
    name: "envoy.filters.network.http_connection_manager",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
      stat_prefix: cluster,
      route_config: {
        virtual_hosts: [{ name: "all", domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster } }] }],
      },
      http_filters: [...httpFilters, {
        name: "envoy.filters.http.router",
        typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
      }],
    },
  };
}

export function listener(name: string, host: string, port: number, filters: object[], direction?: Direction) {
  return {
    name,
    stat_prefix: name, // listener.<name>.downstream_cx_total, whatever the address
    address: { socket_address: { address: host, port_value: port } },
    ...(direction ? { traffic_direction: direction } : {}),
    filter_chains: [{ filters }],
  };
}

export function cluster(name: string, host: string, port: number, opts: { maxConnections?: number } = {}) {
  return {
    name,
    type: "STATIC",
    connect_timeout: "1s",
    ...(opts.maxConnections ? {
      circuit_breakers: { thresholds: [{ max_connections: opts.maxConnections, max_pending_requests: opts.maxConnections }] },
    } : {}),
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: port } } } }] }],
    },
  };
}

export function bootstrap(opts: { listeners?: object[]; clusters?: object[]; nodeId?: string; instanceIps?: string; extra?: object }) {
  return {
    node: {
      id: opts.nodeId ?? "guard-test-node",
      cluster: "guard-test",
      ...(opts.instanceIps !== undefined ? { metadata: { INSTANCE_IPS: opts.instanceIps } } : {}),
    },
    static_resources: { listeners: opts.listeners ?? [], clusters: opts.clusters ?? [] },
    ...(opts.extra ?? {}),
  };
}

/** Sends raw bytes and collects what comes back until `expect` bytes arrived or the peer closed. */
export function exchangeBytes(host: string, port: number, payload: Buffer, opts: { timeoutMs?: number; localAddress?: string } = {}):
  Promise<{ received: Buffer; ended: "echoed" | "closed" | "reset" | "refused" | "timeout" }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (ended: "echoed" | "closed" | "reset" | "refused" | "timeout") => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ received: Buffer.concat(chunks), ended });
    };
    const sock = net.connect({ host, port, localAddress: opts.localAddress }, () => sock.write(payload));
    const timer = setTimeout(() => finish("timeout"), opts.timeoutMs ?? 5000);
    sock.on("data", (d: Buffer) => {
      chunks.push(d);
      size += d.length;
      if (size >= payload.length) finish("echoed");
    });
    sock.on("end", () => finish("closed"));
    sock.on("close", () => finish("closed"));
    sock.on("error", (e: NodeJS.ErrnoException) => finish(e.code === "ECONNREFUSED" ? "refused" : "reset"));
  });
}

export interface HopsServer {
  port: number;
  /** x-multiplane-hops of every request the upstream received, in order. */
  seen: (string | undefined)[];
  close(): Promise<void>;
}

/** An HTTP upstream that records x-multiplane-hops and answers 200 "ok". */
export function startHopsServer(host = "127.0.0.1"): Promise<HopsServer> {
  return new Promise((resolve, reject) => {
    const seen: (string | undefined)[] = [];
    const srv = http.createServer((req, res) => {
      const h = req.headers["x-multiplane-hops"];
      seen.push(Array.isArray(h) ? h.join(",") : h);
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok");
    });
    srv.once("error", reject);
    srv.listen(0, host, () => {
      resolve({
        port: (srv.address() as net.AddressInfo).port,
        seen,
        close: () => new Promise((r) => { srv.closeAllConnections(); srv.close(() => r()); }),
      });
    });
  });
}

/** One HTTP/1.1 GET, without keep-alive unless an `agent` keeps its connection (e.g. `keepAliveAgent()`). */
export function httpGet(host: string, port: number, headers: Record<string, string | string[]> = {}, agent: http.Agent | false = false):
  Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: "/", headers, agent }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => { body += d; });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.setTimeout(5000, () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

/** An agent that sends every request over one keep-alive connection (from `localAddress`, when given). */
export function keepAliveAgent(localAddress?: string): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: 1, ...(localAddress ? { localAddress } : {}) });
}

/** Value of a wasmcustom loop_guard counter (0 when Envoy has not created it yet). */
export async function guardStat(env: { stat(name: string): Promise<number | undefined> }, name: string): Promise<number> {
  return (await env.stat(`wasmcustom.loop_guard.${name}`)) ?? 0;
}

/** Waits until Envoy's log matches (its log reaches us with a delay); returns the log. */
export async function waitForLog(env: { log(): string }, pattern: string | RegExp, timeoutMs = 3000): Promise<string> {
  const test = (log: string) => (typeof pattern === "string" ? log.includes(pattern) : pattern.test(log));
  const deadline = Date.now() + timeoutMs;
  while (!test(env.log()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  return env.log();
}
