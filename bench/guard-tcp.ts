// The TCP rows of `npm run bench:guard`: what the loop guard costs a healthy connection. One real Envoy
// (one worker) with OUTBOUND listeners in front of the same echo upstream, all on loopback:
//   (a) tcp_proxy only
//   (b) loop guard (node_ips + metadata INSTANCE_IPS, enforce) + tcp_proxy
//   (c) Envoy's native RBAC network filter denying the same destination IPs + tcp_proxy
//   (d) reference: an empty wasm network filter + tcp_proxy (Envoy's cost of running any wasm filter)
//   (b') with BENCH_GUARD_BEFORE=FILE: the loop guard built from an earlier commit, for before/after
//        figures from one run
// The destination is not self, so every connection is checked and forwarded. Per scenario: the
// rate of new connections (connect, 64-byte echo, close; 16 in flight) in rounds interleaved across
// scenarios, each round starting with the next one (ratios are medians of per-round ratios), the CPU time of Envoy's worker thread per
// connection in those rounds, and p50/p99 latency of connect+echo with one connection at a time,
// the scenarios taking turns connection by connection so drift hits them all alike.
import net from "node:net";
import os from "node:os";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { startEnvoy, type RunningEnvoy } from "../test/support/envoy.ts";
import { freePort } from "../test/support/net.ts";
import * as f from "../test/support/guard-fixtures.ts";
import { buildHarnessWasm } from "./harness-wasm.ts";
import { cpuMicros, median, quantileUs, rotated, sortNs, workerStat } from "./envoy-worker.ts";

export interface TcpBenchOptions {
  rounds: number;
  rateSeconds: number;
  latencySamples: number;
  nodeIps: string[];
  /** An earlier build of the module, run as scenario (b'). */
  before?: string;
}

const IN_FLIGHT = 16;
const PAYLOAD = Buffer.alloc(64, "x");
type Name = "a" | "b" | "c" | "d" | "b'";
const LABELS: Record<Name, string> = { a: "(a) no filter", b: "(b) loop guard", c: "(c) RBAC deny", d: "(d) empty wasm", "b'": "(b') guard before" };

/** One connection: connect, send PAYLOAD, wait until it is back, close. Resolves the latency in ns. */
function once(port: number, localAddress: string): Promise<bigint> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    let got = 0;
    const sock = net.connect({ host: "127.0.0.3", port, localAddress, noDelay: true }, () => sock.write(PAYLOAD));
    sock.on("data", (d: Buffer) => {
      got += d.length;
      if (got >= PAYLOAD.length) {
        resolve(process.hrtime.bigint() - start);
        sock.destroy();
      }
    });
    sock.on("error", (e) => { sock.destroy(); reject(e); });
  });
}

let sourceIndex = 0;
/** `inFlight` connection loops for `seconds`; returns every latency (ns). */
async function drive(port: number, seconds: number, inFlight: number): Promise<bigint[]> {
  const deadline = Date.now() + seconds * 1000;
  const latencies: bigint[] = [];
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (Date.now() < deadline) {
      // Sources spread over 127.0.0.10-.249 so 4-tuples (and TIME_WAIT) do not pile up.
      latencies.push(await once(port, `127.0.0.${10 + (sourceIndex++ % 240)}`));
    }
  }));
  return latencies;
}

/**
 * The echo upstream in its own process (not sharing the load generator's event loop), on
 * ECHO_PORTS ports: Envoy round-robins over them, so its upstream 4-tuples (and TIME_WAIT) spread.
 */
const ECHO_PORTS = 16;
async function startEchoProcess(): Promise<{ ports: number[]; stop(): void }> {
  const child = spawn(process.execPath, ["-e", `
    const net = require("node:net");
    const ports = [];
    for (let i = 0; i < ${ECHO_PORTS}; i++) {
      const s = net.createServer((c) => { c.on("error", () => {}); c.pipe(c); });
      s.listen(0, "127.0.0.1", () => { ports.push(s.address().port); if (ports.length === ${ECHO_PORTS}) console.log(ports.join(",")); });
    }`], { stdio: ["ignore", "pipe", "inherit"] });
  const ports = await new Promise<number[]>((resolve, reject) => {
    child.stdout!.once("data", (d) => resolve(String(d).trim().split(",").map(Number)));
    child.once("exit", () => reject(new Error("echo process exited")));
  });
  return { ports, stop: () => child.kill("SIGKILL") };
}

interface Round { rate: number; cpu: number }

export async function tcpGuardBench(o: TcpBenchOptions): Promise<void> {
  const dir = mkdtempSync(join(os.tmpdir(), "multiplane-bench-"));
  const echo = await startEchoProcess();
  let env: RunningEnvoy | undefined;
  try {
    const empty = buildHarnessWasm(dir, "empty");
    const NAMES: Name[] = o.before ? ["a", "b", "c", "d", "b'"] : ["a", "b", "c", "d"];
    const ports = {} as Record<Name, number>;
    for (const n of NAMES) ports[n] = await freePort("127.0.0.3");
    const filters: Partial<Record<Name, object[]>> = {
      a: [],
      b: [f.guardNetworkFilter({ node_ips: o.nodeIps, mode: "enforce" })],
      c: [f.rbacDenyFilter(o.nodeIps)],
      d: [f.guardNetworkFilter("", "empty", empty)],
      "b'": o.before ? [f.guardNetworkFilter({ node_ips: o.nodeIps, mode: "enforce" }, "loop_guard", o.before)] : [],
    };
    env = await startEnvoy(f.bootstrap({
      instanceIps: o.nodeIps.join(","),
      listeners: NAMES.map((n) => f.listener(n, "127.0.0.3", ports[n], [...filters[n]!, f.tcpProxy("echo")], "OUTBOUND")),
      clusters: [{
        ...f.cluster("echo", "127.0.0.1", 0, { maxConnections: 100000 }),
        load_assignment: {
          cluster_name: "echo",
          endpoints: [{ lb_endpoints: echo.ports.map((port) => ({ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } })) }],
        },
      }],
    }), { concurrency: 1 });
    const worker = workerStat(env.process.pid!);
    console.log(`\nTCP: rate: ${o.rounds} rounds x ${NAMES.length} scenarios x ${o.rateSeconds}s at ${IN_FLIGHT} in flight; ` +
      `latency: ${o.latencySamples} connections per scenario, one at a time, scenarios taking turns`);

    for (const n of NAMES) await drive(ports[n], 1, 4); // warm-up
    // Latency first, before the rate rounds leave tens of thousands of sockets in TIME_WAIT.
    const latencies = Object.fromEntries(NAMES.map((n) => [n, [] as bigint[]])) as Record<Name, bigint[]>;
    for (let i = 0; i < o.latencySamples; i++) {
      for (const n of NAMES) latencies[n].push(await once(ports[n], `127.0.0.${10 + (sourceIndex++ % 240)}`));
    }
    const rounds = Object.fromEntries(NAMES.map((n) => [n, [] as Round[]])) as Record<Name, Round[]>;
    for (let r = 0; r < o.rounds; r++) {
      for (const n of rotated(NAMES, r)) {
        const cpu0 = cpuMicros(worker);
        const t0 = process.hrtime.bigint();
        const count = (await drive(ports[n], o.rateSeconds, IN_FLIGHT)).length;
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        const cpu = (cpuMicros(worker) - cpu0) / count;
        rounds[n].push({ rate: count / seconds, cpu });
        process.stdout.write(".");
      }
    }
    process.stdout.write("\n");

    const s = await env.stats();
    if (process.env.BENCH_NOCHECK === undefined && (s.get("wasmcustom.loop_guard.connections_checked") ?? 0) === 0) throw new Error("the loop guard checked no connection");
    if ((s.get("wasmcustom.loop_guard.short_circuited") ?? 0) !== 0) throw new Error("the loop guard closed benchmark connections");
    if ((s.get("loop_rbac.denied") ?? 0) !== 0) throw new Error("RBAC denied benchmark connections");

    const fig = {} as Record<Name, { rate: number; cpu: number; p50: number; p99: number }>;
    for (const n of NAMES) {
      const lat = sortNs(latencies[n]);
      fig[n] = { rate: median(rounds[n].map((x) => x.rate)), cpu: median(rounds[n].map((x) => x.cpu)), p50: quantileUs(lat, 0.5), p99: quantileUs(lat, 0.99) };
    }
    const rateRatio = (x: Name, y: Name) => median(rounds[x].map((v, i) => v.rate / rounds[y][i]!.rate));
    const cpuDelta = (x: Name, y: Name) => median(rounds[x].map((v, i) => v.cpu - rounds[y][i]!.cpu));
    const row = (cols: string[]) => console.log(cols.map((c, i) => (i === 0 ? c.padEnd(16) : c.padStart(14))).join(""));
    row(["scenario", "conn/s", "p50 us", "p99 us", "worker cpu us"]);
    for (const n of NAMES) row([LABELS[n], fig[n].rate.toFixed(0), fig[n].p50.toFixed(0), fig[n].p99.toFixed(0), fig[n].cpu.toFixed(1)]);
    for (const [x, y] of [["b", "a"], ["b", "c"], ["d", "a"], ...(o.before ? [["b", "b'"]] : [])] as [Name, Name][]) {
      row([`(${x})/(${y})`, rateRatio(x, y).toFixed(3), (fig[x].p50 / fig[y].p50).toFixed(3), (fig[x].p99 / fig[y].p99).toFixed(3), (fig[x].cpu / fig[y].cpu).toFixed(3)]);
    }
    const p99Delta = fig.b.p99 - fig.a.p99;
    console.log(`(b)-(a): p50 ${(fig.b.p50 - fig.a.p50).toFixed(0)} us, p99 ${p99Delta.toFixed(0)} us, worker CPU ${cpuDelta("b", "a").toFixed(1)} us per connection; ` +
      `(d)-(a), any wasm filter: p50 ${(fig.d.p50 - fig.a.p50).toFixed(0)} us, worker CPU ${cpuDelta("d", "a").toFixed(1)} us`);
    console.log(`goals: (b)/(a) conn/s >= 0.97: ${rateRatio("b", "a") >= 0.97 ? "met" : "NOT met"}; p99 within +50 us: ${p99Delta <= 50 ? "met" : "NOT met"}`);
  } finally {
    await env?.stop();
    echo.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

