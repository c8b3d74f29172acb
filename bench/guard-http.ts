// The HTTP rows of `npm run bench:guard`: what the HTTP loop guard costs a healthy request, against the
// same job done by Envoy's native CDN-Loop filter (RFC 8586: it appends its id to the CDN-Loop request
// header and answers loops, as the guard does with x-multiplane-hops). One real Envoy (one worker) with
// OUTBOUND HTTP listeners in front of the same upstream, all on loopback:
//   (e) router only
//   (f) the HTTP loop guard as the control plane configures it (node_ips + metadata, enforce,
//       all_listeners: it is on outbound listeners only) + router
//   (f2) the same without all_listeners: it reads the listener's direction per request, as a guard
//       configured by hand for OUTBOUND listeners does
//   (g) envoy.filters.http.cdn_loop + router
//   (h) reference: an empty wasm HTTP filter + router (Envoy's cost of running any wasm HTTP filter)
//   (f') with BENCH_GUARD_BEFORE=FILE: the HTTP guard built from an earlier commit, for before/after
//        figures from one run
//   with BENCH_GUARD_PROFILE=1, the probe filter (wasm/harness/probe.ts) making each of the guard's host
//   calls alone, then all of them: what each costs, and the floor of the guard's design
// Rate: keep-alive HTTP/1.1, LOADERS load-generator processes x CONNECTIONS connections each, one request
// in flight per connection (a new connection every PER_CONNECTION requests, when set), rounds interleaved
// across scenarios, each round starting with the next one; every reply is checked (status 200 and the
// exact body, which names the header the filter added: each request provably went through it).
// Latency: one keep-alive connection per scenario, one request at a time, scenarios taking turns.
// Envoy's worker thread CPU per request, and how busy it was: near 100 %, Envoy is what limits the
// rate; well below, the load generator or the upstream did (give them more cores).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { createInterface, type Interface } from "node:readline";
import { fileURLToPath } from "node:url";
import { startEnvoy, type RunningEnvoy } from "../test/support/envoy.ts";
import { freePort } from "../test/support/net.ts";
import * as f from "../test/support/guard-fixtures.ts";
import { cpuMicros, median, quantileUs, rotated, sortNs, workerStat } from "./envoy-worker.ts";
import { KeepAliveConnection } from "./http-client.ts";
import { buildHarnessWasm } from "./harness-wasm.ts";

export interface HttpBenchOptions {
  rounds: number;
  rateSeconds: number;
  latencySamples: number;
  loaders: number;
  connections: number;
  nodeIps: string[];
  /** An earlier build of the module, run as scenario (f'). */
  before?: string;
  /** Also run the probe's scenarios. */
  profile?: boolean;
  /** Requests per connection in the rate rounds (default: as many as fit). */
  perConnection?: number;
}

const NODE_ID = "sidecar~10.75.8.101~bench-1.default~default.svc.cluster.local";
const CDN_ID = "bench-node";
/** The probe's calls, in the order the guard makes them on a healthy request. */
const PROBE_CALLS = ["count", "direction", "header", "destination", "source", "shared", "add"];

interface Scenario { key: string; label: string; filters: object[]; expected: string }

/** What the upstream answers when the request went through a filter that added these headers. */
const reply = (hops: string, cdnLoop: string) => `ok hops=${hops} cdn-loop=${cdnLoop}\n`;

function scenarios(o: HttpBenchOptions, empty: string, probe: string | undefined): Scenario[] {
  const guard = { node_ips: o.nodeIps, mode: "enforce" };
  const list: Scenario[] = [
    { key: "e", label: "(e) router only", filters: [], expected: reply("", "") },
    { key: "f", label: "(f) HTTP guard", filters: [f.guardHttpFilter({ ...guard, all_listeners: true })], expected: reply(NODE_ID, "") },
    { key: "f2", label: "(f2) guard, direction", filters: [f.guardHttpFilter(guard)], expected: reply(NODE_ID, "") },
    { key: "g", label: "(g) cdn_loop", filters: [f.cdnLoopFilter(CDN_ID)], expected: reply("", CDN_ID) },
    { key: "h", label: "(h) empty wasm", filters: [f.guardHttpFilter("", "empty", empty)], expected: reply("", "") },
  ];
  if (o.before) list.push({ key: "f'", label: "(f') guard before", filters: [f.guardHttpFilter(guard, "loop_guard_http", o.before)], expected: reply(NODE_ID, "") });
  if (probe) {
    const step = (calls: string[], label: string) => ({
      key: `probe ${calls.join(",")}`, label, filters: [f.guardHttpFilter(calls.join(","), "probe", probe)], expected: reply(calls.includes("add") ? NODE_ID : "", ""),
    });
    list.push(step([], "probe: dispatch"));
    for (const call of PROBE_CALLS) list.push(step([call], `probe: ${call}`));
    list.push(step(PROBE_CALLS, "probe: all"));
    list.push(step(["connection"], "probe: connection.id"));
  }
  return list;
}

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
interface Round { rate: number; cpu: number; busy: number; loaderCpu: number }

export async function httpGuardBench(o: HttpBenchOptions): Promise<void> {
  const upstream = child("./http-upstream.ts", ["4"]);
  const loaders = Array.from({ length: o.loaders }, () => child("./http-load.ts"));
  const dir = mkdtempSync(join(os.tmpdir(), "multiplane-bench-"));
  let env: RunningEnvoy | undefined;
  try {
    const list = scenarios(o, buildHarnessWasm(dir, "empty"), o.profile ? buildHarnessWasm(dir, "probe") : undefined);
    const upstreamPorts = (await nextLine(upstream)).split(",").map(Number);
    const ports = new Map<string, number>();
    for (const s of list) ports.set(s.key, await freePort("127.0.0.3"));
    env = await startEnvoy(f.bootstrap({
      nodeId: NODE_ID,
      instanceIps: o.nodeIps.join(","),
      listeners: list.map((s, i) => f.listener(`s${i}`, "127.0.0.3", ports.get(s.key)!, [f.httpConnectionManager("web", s.filters)], "OUTBOUND")),
      clusters: [{
        ...f.cluster("web", "127.0.0.1", 0, { maxConnections: 100000 }),
        load_assignment: {
          cluster_name: "web",
          endpoints: [{ lb_endpoints: upstreamPorts.map((port) => ({ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } })) }],
        },
      }],
    }), { concurrency: 1 });
    const worker = workerStat(env.process.pid!);
    console.log(`\nHTTP: rate: ${o.rounds} rounds x ${list.length} scenarios x ${o.rateSeconds}s, ${o.loaders} load generators x ${o.connections} keep-alive connections` +
      `${o.perConnection ? ` (a new one every ${o.perConnection} requests)` : ""}, ` +
      `every reply checked; latency: ${o.latencySamples} requests per scenario, one at a time, scenarios taking turns`);

    // Latency first, on one warm connection per scenario.
    const conns = new Map<string, KeepAliveConnection>();
    for (const s of list) conns.set(s.key, await KeepAliveConnection.open("127.0.0.3", ports.get(s.key)!));
    const latencies = new Map<string, bigint[]>(list.map((s) => [s.key, []]));
    const expected = new Map(list.map((s) => [s.key, Buffer.from(s.expected)]));
    let badLatency = 0;
    for (let i = 0; i < o.latencySamples + 100; i++) {
      for (const s of list) {
        const t0 = process.hrtime.bigint();
        const r = await conns.get(s.key)!.get();
        const dt = process.hrtime.bigint() - t0;
        if (r.status !== 200 || !r.body.equals(expected.get(s.key)!)) badLatency++;
        if (i >= 100) latencies.get(s.key)!.push(dt); // the first 100 warm up
      }
    }
    for (const c of conns.values()) c.close();
    if (badLatency > 0) throw new Error(`${badLatency} latency requests got an unexpected reply`);

    const rounds = new Map<string, Round[]>(list.map((s) => [s.key, []]));
    for (let r = 0; r < o.rounds; r++) {
      for (const s of rotated(list, r)) {
        const cpu0 = cpuMicros(worker);
        const t0 = process.hrtime.bigint();
        const command = JSON.stringify({ host: "127.0.0.3", port: ports.get(s.key), connections: o.connections, seconds: o.rateSeconds, expected: s.expected, perConnection: o.perConnection }) + "\n";
        const results = await Promise.all(loaders.map((l) => { const line = nextLine(l); l.proc.stdin!.write(command); return line; }))
          .then((lines) => lines.map((line) => JSON.parse(line) as LoadResult));
        const wallUs = Number(process.hrtime.bigint() - t0) / 1000;
        const cpu = cpuMicros(worker) - cpu0;
        const ok = results.reduce((sum, x) => sum + x.ok, 0);
        const bad = results.filter((x) => x.bad > 0 || x.error);
        if (bad.length > 0) throw new Error(`${s.label}: unexpected replies: ${JSON.stringify(bad)}`);
        rounds.get(s.key)!.push({ rate: ok / (wallUs / 1e6), cpu: cpu / ok, busy: cpu / wallUs, loaderCpu: results.reduce((sum, x) => sum + x.cpuMs, 0) * 1000 / wallUs });
        process.stdout.write(".");
      }
    }
    process.stdout.write("\n");

    const stats = await env.stats();
    if ((stats.get("wasmcustom.loop_guard.connections_checked") ?? 0) === 0) throw new Error("the HTTP loop guard checked no request");
    if ((stats.get("wasmcustom.loop_guard.short_circuited") ?? 0) !== 0) throw new Error("the HTTP loop guard refused benchmark requests");

    const fig = new Map<string, Round & { p50: number; p99: number }>();
    for (const s of list) {
      const lat = sortNs(latencies.get(s.key)!);
      const m = (k: keyof Round) => median(rounds.get(s.key)!.map((x) => x[k]));
      fig.set(s.key, { rate: m("rate"), cpu: m("cpu"), busy: m("busy"), loaderCpu: m("loaderCpu"), p50: quantileUs(lat, 0.5), p99: quantileUs(lat, 0.99) });
    }
    const at = (key: string) => fig.get(key)!;
    const rateRatio = (x: string, y: string) => median(rounds.get(x)!.map((v, i) => v.rate / rounds.get(y)![i]!.rate));
    const row = (cols: string[]) => console.log(cols.map((c, i) => (i === 0 ? c.padEnd(22) : c.padStart(14))).join(""));
    row(["scenario", "req/s", "p50 us", "p99 us", "worker us/req", "worker busy", "loaders cores"]);
    for (const s of list) {
      const x = at(s.key);
      row([s.label, x.rate.toFixed(0), x.p50.toFixed(0), x.p99.toFixed(0), x.cpu.toFixed(1), `${(100 * x.busy).toFixed(0)} %`, x.loaderCpu.toFixed(2)]);
    }
    for (const [x, y] of [["f", "e"], ["f2", "e"], ["f", "g"], ["g", "e"], ["h", "e"], ["f", "h"], ...(o.before ? [["f", "f'"]] : [])]) {
      row([`(${x})/(${y})`, rateRatio(x!, y!).toFixed(3), (at(x!).p50 / at(y!).p50).toFixed(3), (at(x!).p99 / at(y!).p99).toFixed(3), (at(x!).cpu / at(y!).cpu).toFixed(3)]);
    }
    const f0 = at("f"), e0 = at("e");
    console.log(`(f)-(e): p50 ${(f0.p50 - e0.p50).toFixed(0)} us, p99 ${(f0.p99 - e0.p99).toFixed(0)} us, worker CPU ${(f0.cpu - e0.cpu).toFixed(1)} us per request; ` +
      `(f)-(g): worker CPU ${(f0.cpu - at("g").cpu).toFixed(1)} us per request; (h)-(e), any wasm HTTP filter: worker CPU ${(at("h").cpu - e0.cpu).toFixed(1)} us`);
    if (o.before) console.log(`(f)-(f'): worker CPU ${(f0.cpu - at("f'").cpu).toFixed(1)} us per request`);
    if (o.profile) {
      const dispatch = at("probe ");
      console.log(`probe: dispatch ${(dispatch.cpu - at("h").cpu).toFixed(1)} us over the empty filter; each call over dispatch: ` +
        PROBE_CALLS.map((c) => `${c} ${(at(`probe ${c}`).cpu - dispatch.cpu).toFixed(1)}`).join(", ") +
        ` us (connection.id, for a per-connection cache: ${(at("probe connection").cpu - dispatch.cpu).toFixed(1)} us); all of them ${(at(`probe ${PROBE_CALLS.join(",")}`).cpu - e0.cpu).toFixed(1)} us over the router alone (the guard: ${(f0.cpu - e0.cpu).toFixed(1)} us)`);
    }
    console.log(`goals: (f)/(e) req/s >= 0.90: ${rateRatio("f", "e") >= 0.9 ? "met" : "NOT met"}; worker CPU within +6 us: ${f0.cpu - e0.cpu <= 6 ? "met" : "NOT met"}`);
    const idle = list.filter((s) => at(s.key).busy < 0.9);
    if (idle.length > 0) {
      console.log(`note: Envoy's worker was busy less than 90 % of the time in ${idle.map((s) => s.label).join(", ")}: the load generators or the upstream limited the rate ` +
        `(raise BENCH_HTTP_LOADERS on a machine with more cores); the per-request CPU figures still hold`);
    }
  } finally {
    await env?.stop();
    for (const l of loaders) l.proc.kill();
    upstream.proc.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
