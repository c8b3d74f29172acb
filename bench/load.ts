// `npm run bench:load`: LOAD_STREAMS (1,000) proxies connect at once while a healthy proxy keeps
// reading. The control plane runs here; the storm (bench/ads-clients.ts) and the healthy proxy
// (bench/load-healthy.ts) run in two child processes, so neither load generator shares the control
// plane's event loop. During the storm a registry entry moves every CHANGE_MS.
// Reported, per storm protocol (SotW, delta):
//   - the healthy proxy's worst wait: for a probe (a CDS request it sends every 20 ms, answered from
//     the cache) and for a registry change (from the write to its new EDS version arriving); and a new
//     proxy's (one every 250 ms, its own node IP) for its first LDS and CDS. Goal <= 200 ms.
//   - the longest the control plane's event loop was blocked (the wait floor for any request);
//   - how long the storm took until every proxy had ACKed LDS, CDS and EDS;
//   - the control plane's peak RSS and how much it logged (LOAD_LOG=1 also prints it to stderr).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createInterface, type Interface } from "node:readline";
import { fileURLToPath } from "node:url";
import { serve } from "../control/serve/serve.ts";
import { LOOP_GUARD_WASM } from "../envoy/paths.ts";

const STREAMS = Number(process.env.LOAD_STREAMS ?? 1000);
const SERVICES = Number(process.env.LOAD_SERVICES ?? 400);
const CHANGE_MS = Number(process.env.CHANGE_MS ?? 1000);
const GOAL_MS = 200;

const pct = (xs: number[], p: number) => (xs.length === 0 ? NaN : [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!);
const ms = (x: number) => `${x.toFixed(1)} ms`;
const max = (xs: number[]) => xs.reduce((a, b) => Math.max(a, b), -Infinity);

function registryText(n: number): string {
  let text = "";
  for (let i = 0; i < n; i++) {
    const ip = (k: number) => `10.${(i >> 8) & 255}.${i & 255}.${k + 1}`;
    text += `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: svc-${i}, namespace: bench}\nspec:\n  hosts: [svc-${i}.bench.svc.cluster.local]\n  ports: [{number: ${10000 + (i % 500)}, name: tcp, protocol: TCP}]\n  resolution: STATIC\n  endpoints: [{address: ${ip(0)}}, {address: ${ip(1)}}, {address: ${ip(2)}}]\n---\n`;
  }
  return text;
}

/** The entry that moves: change k puts its endpoint at 10.251.<k>. */
const movingEntry = (k: number) =>
  `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: moving, namespace: bench}\nspec:\n  hosts: [moving.bench.svc.cluster.local]\n  ports: [{number: 19999, name: tcp, protocol: TCP}]\n  resolution: STATIC\n  endpoints: [{address: 10.251.${(k >> 8) & 255}.${k & 255}}]\n`;

function child(script: string, args: string[]): { proc: ChildProcess; lines: Interface } {
  const proc = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL(script, import.meta.url)), ...args], { stdio: ["pipe", "pipe", "inherit"] });
  return { proc, lines: createInterface({ input: proc.stdout! }) };
}

function nextMessage(c: { proc: ChildProcess; lines: Interface }, match: (m: any) => boolean, timeoutMs: number): Promise<any> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { cleanup(); reject(new Error(`no answer from child within ${timeoutMs} ms`)); }, timeoutMs);
    const onLine = (l: string) => { const m = JSON.parse(l); if (match(m)) { cleanup(); resolve(m); } };
    const onExit = (code: number | null) => { cleanup(); reject(new Error(`child exited (${code})`)); };
    const cleanup = () => { clearTimeout(timer); c.lines.off("line", onLine); c.proc.off("exit", onExit); };
    c.lines.on("line", onLine);
    c.proc.once("exit", onExit);
  });
}

async function run(protocol: "sotw" | "delta") {
  const dir = mkdtempSync(join(os.tmpdir(), "mp-load-"));
  writeFileSync(join(dir, "registry.yaml"), registryText(SERVICES));
  let logLines = 0, logBytes = 0;
  const log = (line: string) => { logLines++; logBytes += line.length + 1; if (process.env.LOAD_LOG) process.stderr.write(line + "\n"); };
  const apiDir = mkdtempSync(join(os.tmpdir(), "mp-load-api-"));
  const cp = await serve({ registry: dir, apiDir, xdsPort: 0, httpPort: false, loopGuard: { wasmPath: LOOP_GUARD_WASM }, log });
  const address = `127.0.0.1:${cp.xds.port}`;
  let change = 0;
  const first = await cp.view.write({ op: "put", kind: "ServiceEntry", namespace: "bench", name: "moving", body: movingEntry(change) });
  if (!first.ok) throw new Error(`registry write refused: ${first.problem.errors.join("; ")}`);
  const healthy = child("./load-healthy.ts", [address]);
  const edsArrivals: bigint[] = [];
  healthy.lines.on("line", (l) => { const m = JSON.parse(l); if (m.at) edsArrivals.push(BigInt(m.at)); });
  let storm: ReturnType<typeof child> | undefined;
  let rss = process.memoryUsage().rss;
  const rssBefore = rss;
  const sampler = setInterval(() => { rss = Math.max(rss, process.memoryUsage().rss); }, 10);
  try {
    await nextMessage(healthy, (m) => m.ready, 30_000);
    const logBefore = logBytes, linesBefore = logLines;
    // Changes while the storm runs: each write is timed from just before it is applied.
    const changes: bigint[] = [];
    let changing = true;
    const changer = (async () => {
      while (changing) {
        await new Promise((r) => setTimeout(r, CHANGE_MS));
        if (!changing) break;
        changes.push(process.hrtime.bigint());
        const w = await cp.view.write({ op: "put", kind: "ServiceEntry", namespace: "bench", name: "moving", body: movingEntry(++change) });
        if (!w.ok) throw new Error(`registry write refused: ${w.problem.errors.join("; ")}`);
      }
    })();
    const t0 = performance.now();
    const loop = monitorEventLoopDelay({ resolution: 5 });
    loop.enable();
    storm = child("./ads-clients.ts", [address, String(STREAMS), protocol]);
    await nextMessage(storm, (m) => m.ready !== undefined, 120_000);
    const stormMs = performance.now() - t0;
    loop.disable();
    await new Promise((r) => setTimeout(r, 2 * CHANGE_MS)); // changes with the storm connected, too
    changing = false;
    await changer;
    // Every change reaches the healthy proxy (the last one may coalesce the ones before it).
    const deadline = Date.now() + 30_000;
    while (edsArrivals.length === 0 || edsArrivals[edsArrivals.length - 1]! < changes[changes.length - 1]!) {
      if (Date.now() > deadline) throw new Error("the healthy proxy never saw the last change");
      await new Promise((r) => setTimeout(r, 10));
    }
    healthy.proc.stdin!.write(JSON.stringify({ stop: true }) + "\n");
    const { probesMs, newcomersMs } = await nextMessage(healthy, (m) => m.probesMs, 10_000) as { probesMs: number[]; newcomersMs: number[] };
    // A change's wait: until the first EDS version that arrived after it was written.
    const changeWaitsMs = changes.map((t) => Number(edsArrivals.find((a) => a > t)! - t) / 1e6);
    return { protocol, stormMs, blockedMs: loop.max / 1e6, probesMs, newcomersMs, changeWaitsMs, rssMb: rss / 2 ** 20, rssBeforeMb: rssBefore / 2 ** 20, logLines: logLines - linesBefore, logKb: (logBytes - logBefore) / 1024 };
  } finally {
    clearInterval(sampler);
    storm?.proc.kill();
    healthy.proc.kill();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(apiDir, { recursive: true, force: true });
  }
}

// Each protocol in a fresh process of its own, so one run's memory does not show in the other's RSS.
if (process.argv[2] === "--one") {
  process.stdout.write(JSON.stringify(await run(process.argv[3] as "sotw" | "delta")) + "\n");
  process.exit(0);
}
const results: Awaited<ReturnType<typeof run>>[] = [];
for (const protocol of ["sotw", "delta"] as const) {
  const one = child("./load.ts", ["--one", protocol]);
  results.push(await nextMessage(one, (m) => m.protocol === protocol, 600_000));
}

const cpu = os.cpus();
console.log(`\nmultiplane load test — ${new Date().toISOString().slice(0, 10)}, ${cpu.length} cores (${cpu[0]?.model.trim()}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`);
console.log(`${STREAMS} proxies connect at once (grpc-js, one child process), ${SERVICES + 1} services, a registry change every ${CHANGE_MS} ms; a healthy SotW proxy in another child process\n`);
const row = (a: string, b: string, c: string) => console.log(`| ${a.padEnd(66)} | ${b.padEnd(30)} | ${c.padEnd(14)} |`);
row("measure", "result", "goal");
console.log(`|${"-".repeat(68)}|${"-".repeat(32)}|${"-".repeat(16)}|`);
for (const r of results) {
  const worst = Math.max(max(r.probesMs), max(r.changeWaitsMs), max(r.newcomersMs));
  row(`${r.protocol === "sotw" ? "SotW" : "delta"} storm: all ${STREAMS} proxies connected and ACKed`, ms(r.stormMs), "");
  row(`  healthy proxy, probe answered (${r.probesMs.length} probes): p50 / p99 / max`, `${ms(pct(r.probesMs, 50))} / ${ms(pct(r.probesMs, 99))} / ${ms(max(r.probesMs))}`, "");
  row(`  healthy proxy, registry change received (${r.changeWaitsMs.length}): p50 / max`, `${ms(pct(r.changeWaitsMs, 50))} / ${ms(max(r.changeWaitsMs))}`, "");
  row(`  a new proxy (${r.newcomersMs.length}, one every 250 ms), first LDS and CDS: p50 / max`, `${ms(pct(r.newcomersMs, 50))} / ${ms(max(r.newcomersMs))}`, "");
  row(`  healthy or new proxy, worst wait`, ms(worst), `<= ${GOAL_MS} ms: ${worst <= GOAL_MS ? "met" : "not met"}`);
  row(`  control plane event loop, longest block during the storm`, ms(r.blockedMs), "");
  row(`  control plane RSS: before the storm / peak`, `${r.rssBeforeMb.toFixed(0)} / ${r.rssMb.toFixed(0)} MB`, "");
  row(`  control plane log during the storm`, `${r.logLines} lines, ${r.logKb.toFixed(0)} KiB`, "");
}
console.log("");
