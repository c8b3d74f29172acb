// Helpers for real-Envoy control plane tests: a registry directory, a sidecar bootstrap, reading
// listeners back from Envoy's admin API, and connections that carry their original destination in
// a PROXY protocol header (the virtual listener's test hand-off, in place of iptables).
import { mkdtempSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateBootstrap } from "../../envoy/bootstrap.ts";
import type { RunningEnvoy } from "./envoy.ts";

export const SEED_NODE_ID = "sidecar~192.168.10.63~a-1.default~default.svc.cluster.local";
export const SEED_IPS = ["192.168.10.63", "10.75.8.101"];

/** A temporary registry directory holding `files` (file name -> text). */
export function tempRegistryDir(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "mp-registry-"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

export function sidecarBootstrap(xdsPort: number, opts: { nodeId?: string; instanceIps?: string[]; delta?: boolean; labels?: Record<string, string> } = {}): Record<string, any> {
  const b: Record<string, any> = generateBootstrap({
    nodeId: opts.nodeId ?? SEED_NODE_ID, instanceIps: opts.instanceIps ?? SEED_IPS, xds: { host: "127.0.0.1", port: xdsPort },
    ...(opts.labels ? { labels: opts.labels } : {}),
  });
  if (opts.delta) b.dynamic_resources.ads_config.api_type = "DELTA_GRPC";
  return b;
}

export interface EnvoyListener {
  name: string;
  state: "active" | "warming";
  listener: any;
}

/** The dynamic listeners Envoy serves or is warming, from /config_dump (draining ones and rejected updates left out). */
export async function envoyListeners(envoy: RunningEnvoy): Promise<Map<string, EnvoyListener>> {
  const dump = await envoy.configDump("dynamic_listeners");
  const out = new Map<string, EnvoyListener>();
  for (const l of dump.configs ?? []) {
    if (!l.active_state && !l.warming_state) continue;
    const state = l.active_state ? "active" : "warming";
    out.set(l.name, { name: l.name, state, listener: (l.active_state ?? l.warming_state)?.listener });
  }
  return out;
}

export async function envoyClusterNames(envoy: RunningEnvoy): Promise<string[]> {
  const dump = await envoy.configDump("dynamic_active_clusters");
  return (dump.configs ?? []).map((c: any) => c.cluster.name).sort();
}

/**
 * Connects to Envoy's virtual listener claiming original destination dst:dstPort (PROXY v1), sends
 * `payload`, and resolves with what came back before the connection ended or `timeoutMs` passed.
 */
export function throughVirtual(vport: number, dst: string, dstPort: number, payload: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    let got = "";
    const sock = net.connect({ host: "127.0.0.1", port: vport }, () => {
      const fam = dst.includes(":") ? "TCP6" : "TCP4";
      const src = dst.includes(":") ? "fd00::99" : "10.75.8.99";
      sock.write(`PROXY ${fam} ${src} ${dst} 40000 ${dstPort}\r\n${payload}`);
    });
    const done = () => { clearTimeout(timer); sock.destroy(); resolve(got); };
    const timer = setTimeout(done, timeoutMs);
    sock.on("data", (d) => { got += d; if (got === payload) done(); });
    sock.on("close", done);
    sock.on("error", done);
  });
}

export interface HttpReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * One HTTP/1.1 request through Envoy's virtual listener, its connection claiming original destination
 * dst:dstPort (PROXY v1). `headers.host` picks the route. Rejects on a connection error or after `timeoutMs`.
 */
export function httpThroughVirtual(vport: number, dst: string, dstPort: number, headers: Record<string, string>, timeoutMs = 5000): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      // No agent: with one, Node would connect to dst itself and ignore createConnection.
      host: dst, port: dstPort, path: "/", headers: { connection: "close", ...headers },
      createConnection: () => {
        const s = net.connect({ host: "127.0.0.1", port: vport });
        s.write(`PROXY TCP4 127.0.0.1 ${dst} 40000 ${dstPort}\r\n`);
        return s;
      },
    }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => { body += c; });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on("error", reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from ${dst}:${dstPort} within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}
