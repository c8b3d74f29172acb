// The HTTP rows of `npm run bench:guard`: what the HTTP loop guard costs a healthy request, against the
// same job done by Envoy's native CDN-Loop filter (RFC 8586: it appends its id to the CDN-Loop request
// header and answers loops, as the guard does with x-multiplane-hops). One real Envoy (one worker) with
// OUTBOUND HTTP listeners in front of the same upstream, all on loopback:
//   (e) router only
//   (f) the HTTP loop guard (node_ips + metadata, enforce) + router
//   (g) envoy.filters.http.cdn_loop + router
// Rate: keep-alive HTTP/1.1, LOADERS load-generator processes x CONNECTIONS connections each, one request
// in flight per connection, rounds interleaved across scenarios; every reply is checked (status 200 and
// the exact body, which names the header the filter added: each request provably went through it).
// Latency: one keep-alive connection per scenario, one request at a time, scenarios taking turns.
// Envoy's worker thread CPU per request, and how busy it was: near 100 %, Envoy is what limits the
// rate; well below, the load generator or the upstream did (give them more cores).
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface, type Interface } from "node:readline";
import { fileURLToPath } from "node:url";
import { startEnvoy, type RunningEnvoy } from "../test/support/envoy.ts";
import { freePort } from "../test/support/net.ts";
import * as f from "../test/support/guard-fixtures.ts";
import { cpuMicros, median, quantileUs, sortNs, workerStat } from "./envoy-worker.ts";
import { KeepAliveConnection } from "./http-client.ts";

export interface HttpBenchOptions {
  rounds: number;
  rateSeconds: number;
  latencySamples: number;
  loaders: number;
  connections: number;
  nodeIps: string[];
}

const NAMES = ["e", "f", "g"] as const;
type Name = (typeof NAMES)[number];
const LABELS: Record<Name, string> = { e: "(e) router only", f: "(f) HTTP guard", g: "(g) cdn_loop" };
const NODE_ID = "sidecar~10.75.8.101~bench-1.default~default.svc.cluster.local";
const CDN_ID = "bench-node";
/** What the upstream answers when the request went through each scenario's filter. */
const EXPECTED: Record<Name, string> = { e: "ok hops= cdn-loop=\n", f: `ok hops=${NODE_ID} cdn-loop=\n`, g: `ok hops= cdn-loop=${CDN_ID}\n` };

function child(script: string, args: string[] = []): { proc: ChildProcess; lines: Interface } {
  const proc = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL(script, import.meta.url)), ...args], { stdio: ["pipe", "pipe", "inherit"] });
  return { proc, lines: createInterface({ input: proc.stdout! }) };
}

const nextLine = (c: { proc: ChildProcess; lines: Interface }) => new Promise<string>((resolve, reject) => {
  const exited = (code: number | null) => reject(new Error(`${c.proc.spawnargs.join(" ")} exited (${code})`));
  c.proc.once("exit", exited);
  c.lines.once("line", (line) => {
    c.proc.off("exit", exited); // one listener per line would pile up over the rounds
    resolve(line);
  });
});

interface LoadResult { ok: number; bad: number; sample?: string; error?: string; cpuMs: number }

export async function httpGuardBench(o: HttpBenchOptions): Promise<void> {
  const upstream = child("./http-upstream.ts", ["4"]);
  const loaders = Array.from({ length: o.loaders }, () => child("./http-load.ts"));
  let env: RunningEnvoy | undefined;
  try {
    const upstreamPorts = (await nextLine(upstream)).split(",").map(Number);
    const ports = {} as Record<Name, number>;
    for (const n of NAMES) ports[n] = await freePort("127.0.0.3");
    const filters: Record<Name, object[]> = {
      e: [],
      f: [f.guardHttpFilter({ node_ips: o.nodeIps, mode: "enforce" })],
      g: [f.cdnLoopFilter(CDN_ID)],
    };
    env = await startEnvoy(f.bootstrap({
      nodeId: NODE_ID,
      instanceIps: o.nodeIps.join(","),
      listeners: NAMES.map((n) => f.listener(n, "127.0.0.3", ports[n], [f.httpConnectionManager("web", filters[n])], "OUTBOUND")),
      clusters: [{
        ...f.cluster("web", "127.0.0.1", 0, { maxConnections: 100000 }),
        load_assignment: {
          cluster_name: "web",
          endpoints: [{ lb_endpoints: upstreamPorts.map((port) => ({ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } })) }],
        },
      }],
    }), { concurrency: 1 });
    const worker = workerStat(env.process.pid!);
    console.log(`\nHTTP: rate: ${o.rounds} rounds x ${NAMES.length} scenarios x ${o.rateSeconds}s, ${o.loaders} load generators x ${o.connections} keep-alive connections, ` +
      `every reply checked; latency: ${o.latencySamples} requests per scenario, one at a time, scenarios taking turns`);

    // Latency first, on one warm connection per scenario.
    const conns = {} as Record<Name, KeepAliveConnection>;
    for (const n of NAMES) conns[n] = await KeepAliveConnection.open("127.0.0.3", ports[n]);
    const latencies: Record<Name, bigint[]> = { e: [], f: [], g: [] };
    const expected = Object.fromEntries(NAMES.map((n) => [n, Buffer.from(EXPECTED[n])])) as Record<Name, Buffer>;
    let badLatency = 0;
    for (let i = 0; i < o.latencySamples + 100; i++) {
      for (const n of NAMES) {
        const t0 = process.hrtime.bigint();
        const r = await conns[n].get();
        const dt = process.hrtime.bigint() - t0;
        if (r.status !== 200 || !r.body.equals(expected[n])) badLatency++;
        if (i >= 100) latencies[n].push(dt); // the first 100 warm up
      }
    }
    for (const n of NAMES) conns[n].close();
    if (badLatency > 0) throw new Error(`${badLatency} latency requests got an unexpected reply`);

    const rounds: Record<Name, { rate: number; cpu: number; busy: number; loaderCpu: number }[]> = { e: [], f: [], g: [] };
    for (let r = 0; r < o.rounds; r++) {
      for (const n of NAMES) {
        const cpu0 = cpuMicros(worker);
        const t0 = process.hrtime.bigint();
        const command = JSON.stringify({ host: "127.0.0.3", port: ports[n], connections: o.connections, seconds: o.rateSeconds, expected: EXPECTED[n] }) + "\n";
        const results = await Promise.all(loaders.map((l) => { const line = nextLine(l); l.proc.stdin!.write(command); return line; }))
          .then((lines) => lines.map((line) => JSON.parse(line) as LoadResult));
        const wallUs = Number(process.hrtime.bigint() - t0) / 1000;
        const cpu = cpuMicros(worker) - cpu0;
        const ok = results.reduce((s, x) => s + x.ok, 0);
        const bad = results.filter((x) => x.bad > 0 || x.error);
        if (bad.length > 0) throw new Error(`${LABELS[n]}: unexpected replies: ${JSON.stringify(bad)}`);
        rounds[n].push({ rate: ok / (wallUs / 1e6), cpu: cpu / ok, busy: cpu / wallUs, loaderCpu: results.reduce((s, x) => s + x.cpuMs, 0) * 1000 / wallUs });
        process.stdout.write(".");
      }
    }
    process.stdout.write("\n");

    const s = await env.stats();
    if ((s.get("wasmcustom.loop_guard.connections_checked") ?? 0) === 0) throw new Error("the HTTP loop guard checked no request");
    if ((s.get("wasmcustom.loop_guard.short_circuited") ?? 0) !== 0) throw new Error("the HTTP loop guard refused benchmark requests");

    const fig = {} as Record<Name, { rate: number; cpu: number; busy: number; loaderCpu: number; p50: number; p99: number }>;
    for (const n of NAMES) {
      const lat = sortNs(latencies[n]);
      const m = (k: "rate" | "cpu" | "busy" | "loaderCpu") => median(rounds[n].map((x) => x[k]));
      fig[n] = { rate: m("rate"), cpu: m("cpu"), busy: m("busy"), loaderCpu: m("loaderCpu"), p50: quantileUs(lat, 0.5), p99: quantileUs(lat, 0.99) };
    }
    const rateRatio = (x: Name, y: Name) => median(rounds[x].map((v, i) => v.rate / rounds[y][i]!.rate));
    const row = (cols: string[]) => console.log(cols.map((c, i) => (i === 0 ? c.padEnd(18) : c.padStart(14))).join(""));
    row(["scenario", "req/s", "p50 us", "p99 us", "worker us/req", "worker busy", "loaders cores"]);
    for (const n of NAMES) {
      row([LABELS[n], fig[n].rate.toFixed(0), fig[n].p50.toFixed(0), fig[n].p99.toFixed(0), fig[n].cpu.toFixed(1), `${(100 * fig[n].busy).toFixed(0)} %`, fig[n].loaderCpu.toFixed(2)]);
    }
    for (const [x, y] of [["f", "e"], ["f", "g"], ["g", "e"]] as [Name, Name][]) {
      row([`(${x})/(${y})`, rateRatio(x, y).toFixed(3), (fig[x].p50 / fig[y].p50).toFixed(3), (fig[x].p99 / fig[y].p99).toFixed(3), (fig[x].cpu / fig[y].cpu).toFixed(3)]);
    }
    console.log(`(f)-(e): p50 ${(fig.f.p50 - fig.e.p50).toFixed(0)} us, p99 ${(fig.f.p99 - fig.e.p99).toFixed(0)} us, worker CPU ${(fig.f.cpu - fig.e.cpu).toFixed(1)} us per request; ` +
      `(f)-(g): worker CPU ${(fig.f.cpu - fig.g.cpu).toFixed(1)} us per request`);
    const idle = NAMES.filter((n) => fig[n].busy < 0.9);
    if (idle.length > 0) {
      console.log(`note: Envoy's worker was busy less than 90 % of the time in ${idle.map((n) => LABELS[n]).join(", ")}: the load generators or the upstream limited the rate ` +
        `(raise BENCH_HTTP_LOADERS on a machine with more cores); the per-request CPU figures still hold`);
    }
  } finally {
    await env?.stop();
    for (const l of loaders) l.proc.kill();
    upstream.proc.kill();
  }
}
