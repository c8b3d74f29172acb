// `npm run bench:guard`: what the loop guard costs healthy traffic, on one real Envoy with one worker.
// TCP (bench/guard-tcp.ts): connections through the network guard vs tcp_proxy alone, Envoy's native
// RBAC and an empty wasm filter. HTTP (bench/guard-http.ts): requests through the HTTP guard vs the
// router alone and Envoy's native CDN-Loop filter.
// Environment: BENCH_PARTS (tcp,http), BENCH_ROUNDS (10), BENCH_RATE_SECONDS (2), BENCH_LATENCY_SAMPLES
// (4000), BENCH_HTTP_LOADERS (load-generator processes, 2), BENCH_HTTP_CONNECTIONS (per loader, 8),
// BENCH_GUARD_BEFORE (an earlier build of dist/loop-guard.wasm, run beside the current one),
// BENCH_GUARD_PROFILE=1 (the HTTP guard's host calls measured one by one with wasm/harness/probe.ts),
// BENCH_HTTP_REQUESTS_PER_CONNECTION (a new connection after that many requests; default: keep-alive).
import os from "node:os";
import { statSync } from "node:fs";
import { LOOP_GUARD_WASM } from "../envoy/paths.ts";
import { httpGuardBench } from "./guard-http.ts";
import { tcpGuardBench } from "./guard-tcp.ts";

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const PARTS = (process.env.BENCH_PARTS ?? "tcp,http").split(",");
const common = {
  rounds: env("BENCH_ROUNDS", 10),
  rateSeconds: env("BENCH_RATE_SECONDS", 2),
  latencySamples: env("BENCH_LATENCY_SAMPLES", 4000),
  nodeIps: ["10.75.8.101", "192.168.10.63"],
  before: process.env.BENCH_GUARD_BEFORE,
};

function requestsPerConnection(): number | undefined {
  const text = process.env.BENCH_HTTP_REQUESTS_PER_CONNECTION;
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_HTTP_REQUESTS_PER_CONNECTION must be a whole number >= 1, got "${text}"`);
  return n;
}

console.log(`loop-guard benchmark, ${new Date().toISOString().slice(0, 10)}: ${os.cpus().length} cores (${os.cpus()[0]?.model.trim() ?? "?"}), ` +
  `node ${process.version}, Envoy concurrency 1, wasm ${statSync(LOOP_GUARD_WASM).size} bytes`);
if (PARTS.includes("tcp")) await tcpGuardBench(common);
if (PARTS.includes("http")) await httpGuardBench({ ...common, loaders: env("BENCH_HTTP_LOADERS", 2), connections: env("BENCH_HTTP_CONNECTIONS", 8), profile: process.env.BENCH_GUARD_PROFILE === "1",
  perConnection: requestsPerConnection() });
