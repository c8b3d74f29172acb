// `npm run bench:control`: the control plane's cost at scale.
//  1. Registry of 10,000 ServiceEntries x 3 endpoints: full LDS+CDS+EDS generation for one proxy,
//     then serialization (Snapshot.fromResources: protobuf encoding and hashing). Goal <= 50 ms.
//  2. 1,000 concurrent ADS streams (grpc-js clients in a child process, one proxy each, ACKing like
//     Envoy): one endpoint changes in the registry file; time until every stream has received and
//     ACKed the new config. Goal p99 <= 1 s.
//  3. The control plane's RSS during (2). Goal <= 512 MB.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { generate } from "../control/generation/generate.ts";
import { ConfigPipeline } from "../control/pipeline/config-pipeline.ts";
import { generationOptions } from "../control/generation/options.ts";
import { proxyIdentity } from "../control/identity/proxy.ts";
import { buildRegistry } from "../control/registry/build.ts";
import type { Registry, Resource } from "../control/registry/model.ts";
import { parseRegistryText } from "../control/registry/parse.ts";
import { serve } from "../control/serve.ts";
import { Encoder } from "../control/xds/encode.ts";
import { TYPE_URL } from "../control/xds/protos.ts";
import { Packer, Snapshot } from "../control/xds/snapshot.ts";
import { LOOP_GUARD_WASM } from "../envoy/paths.ts";

const SERVICES = Number(process.env.BENCH_SERVICES ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const STREAMS = Number(process.env.BENCH_STREAMS ?? 1000);
const FANOUT_SERVICES = Number(process.env.BENCH_FANOUT_SERVICES ?? 100);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;
const ms = (x: number) => `${x.toFixed(1)} ms`;

/** ServiceEntry i: host svc-i, one port of 500 (services share ports as they do in real meshes), 3 endpoint IPs. */
function serviceEntryYaml(i: number, moved = false): string {
  const ip = (k: number) => `10.${(i >> 8) & 255}.${i & 255}.${k + 1 + (moved && k === 0 ? 100 : 0)}`;
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc-${i}, namespace: bench}
spec:
  hosts: [svc-${i}.bench.svc.cluster.local]
  ports: [{number: ${10000 + (i % 500)}, name: tcp, protocol: TCP}]
  resolution: STATIC
  location: MESH_INTERNAL
  endpoints: [{address: ${ip(0)}}, {address: ${ip(1)}}, {address: ${ip(2)}}]
---
`;
}

function registryText(n: number, movedService = -1): string {
  let text = "";
  for (let i = 0; i < n; i++) text += serviceEntryYaml(i, i === movedService);
  return text;
}

function buildFrom(resources: Resource[]): Registry {
  const built = buildRegistry(resources);
  if (!built.ok) throw new Error(built.errors[0]!.reason);
  return built.registry;
}

async function generationBench() {
  const t0 = performance.now();
  const parsed = parseRegistryText(registryText(SERVICES), "bench.yaml");
  const tParse = performance.now() - t0;
  if (parsed.errors.length) throw new Error(parsed.errors[0]!.reason);
  const registry = buildFrom(parsed.resources);
  const encoder = new Encoder(); // loading the .proto files is start-up cost, not generation
  const packer = new Packer(encoder);
  // Two of the node's IPs host instances: a proxy like the seed's.
  const proxy = proxyIdentity({ id: "sidecar~10.0.0.1~bench.bench~bench.svc.cluster.local", metadata: { INSTANCE_IPS: "10.0.0.1,10.0.1.2" } });
  const options = generationOptions({ loopGuard: { wasmPath: LOOP_GUARD_WASM, mode: "enforce" } });
  const gen: number[] = [], pack: number[] = [], total: number[] = [], other: number[] = [], incremental: number[] = [];
  const otherProxy = proxyIdentity({ id: "sidecar~10.0.0.2~bench2.bench~bench.svc.cluster.local", metadata: { INSTANCE_IPS: "10.0.0.2,10.0.2.3" } });
  let sizes = { listeners: 0, clusters: 0, endpoints: 0, bytes: 0 };
  // The control plane's own pipeline; generate() and a Packer separately for the split into
  // generation and serialization. The pipeline reuses what it built for the same content in the
  // previous registry version (interning), so a cold round needs content never seen: every round
  // renames all hosts.
  const pipeline = new ConfigPipeline(options, encoder);
  const renamed = (tag: string): Registry => ({ ...registry, services: registry.services.map((svc) => ({ ...svc, host: `${tag}.${svc.host}` })) });
  Snapshot.fromResources(generate(proxy, renamed("warmup"), options), packer); // JIT warm-up, on other names
  pipeline.setRegistry(renamed("warmup2"));
  pipeline.configFor(proxy);
  let last = registry;
  for (let r = 0; r < ROUNDS; r++) {
    const split = renamed(`s${r}`);
    const a = performance.now();
    const resources = generate(proxy, split, options);
    const b = performance.now();
    const snapshot = Snapshot.fromResources(resources, packer);
    const c = performance.now();
    gen.push(b - a); pack.push(c - b);
    const fresh = renamed(`r${r}`);
    const t = performance.now();
    pipeline.setRegistry(fresh);
    pipeline.configFor(proxy);
    total.push(performance.now() - t);
    // A second proxy on the same registry: the shared part is already generated and packed.
    const d = performance.now();
    pipeline.configFor(otherProxy);
    other.push(performance.now() - d);
    let bytes = 0;
    for (const t of [TYPE_URL.listener, TYPE_URL.cluster, TYPE_URL.endpoint]) for (const x of snapshot.get(t)!.resources.values()) bytes += x.any.value.length;
    sizes = { listeners: resources.listeners.length, clusters: resources.clusters.length, endpoints: resources.endpoints.length, bytes };
    last = fresh;
  }
  // A registry change as it happens in operation: one service's first endpoint moves; the new registry
  // is a new object, everything is generated again for the proxy, and only what changed is encoded.
  for (let r = 0; r < ROUNDS; r++) {
    const i = (r * 7919) % last.services.length;
    const next: Registry = { ...last, services: last.services.map((svc, k) => (k !== i ? svc : {
      ...svc, endpoints: svc.endpoints.map((e, j) => (j === 0 ? { ...e, address: `10.250.${r}.${(k % 250) + 1}` } : e)),
    })) };
    const a = performance.now();
    pipeline.setRegistry(next);
    pipeline.configFor(proxy);
    incremental.push(performance.now() - a);
    last = next;
  }
  // The same resources through protobufjs's own fromObject+encode, in the same run, for the ratio.
  const root = encoder.root;
  const resources = generate(proxy, registry, options);
  const typed: [string, readonly object[]][] = [[TYPE_URL.listener, resources.listeners], [TYPE_URL.cluster, resources.clusters], [TYPE_URL.endpoint, resources.endpoints]];
  const viaProtobufjs: number[] = [], viaEncoder: number[] = [];
  for (let r = 0; r < 3; r++) {
    let t = performance.now();
    for (const [url, list] of typed) { const T = root.lookupType(url.slice(url.lastIndexOf("/") + 1)); for (const o of list) T.encode(T.fromObject(o)).finish(); }
    viaProtobufjs.push(performance.now() - t);
    t = performance.now();
    for (const [url, list] of typed) for (const o of list) encoder.encode(url, o);
    viaEncoder.push(performance.now() - t);
  }
  return { tParse, gen, pack, total, other, incremental, sizes, viaProtobufjs, viaEncoder };
}

async function fanoutBench(protocol: "sotw" | "delta") {
  const dir = mkdtempSync(join(os.tmpdir(), "mp-bench-"));
  const file = join(dir, "registry.yaml");
  writeFileSync(file, registryText(FANOUT_SERVICES));
  let rss = process.memoryUsage().rss;
  const sampler = setInterval(() => { rss = Math.max(rss, process.memoryUsage().rss); }, 20);
  // Server side: when the last push of the change was written to its stream.
  let measuring = false, pushes = 0, lastPushAt = 0n;
  const log = (line: string) => { if (measuring && line.startsWith("push ")) { pushes++; lastPushAt = process.hrtime.bigint(); } };
  const cp = await serve({ registry: dir, xdsPort: 0, httpPort: false, loopGuard: { wasmPath: LOOP_GUARD_WASM }, log });
  const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./ads-clients.ts", import.meta.url)), `127.0.0.1:${cp.xds.port}`, String(STREAMS), protocol], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout! });
  const next = () => new Promise<any>((resolve, reject) => {
    lines.once("line", (l) => resolve(JSON.parse(l)));
    child.once("exit", (code) => reject(new Error(`ADS client process exited (${code})`)));
  });
  try {
    const tConnect = performance.now();
    await next(); // {"ready": N}
    const connectMs = performance.now() - tConnect;
    // Which types one endpoint move changes for a proxy: EDS (the endpoint) and LDS (destination match).
    const sample = proxyIdentity({ id: "bench-0", metadata: { INSTANCE_IPS: "10.200.0.0" } });
    const opts = generationOptions({ loopGuard: { wasmPath: LOOP_GUARD_WASM, mode: "enforce" } });
    const packer = new Packer(new Encoder());
    const before = Snapshot.fromResources(generate(sample, buildFrom(parseRegistryText(registryText(FANOUT_SERVICES), "x").resources), opts), packer);
    const after = Snapshot.fromResources(generate(sample, buildFrom(parseRegistryText(registryText(FANOUT_SERVICES, 7), "x").resources), opts), packer);
    const expect = [["lds", TYPE_URL.listener], ["cds", TYPE_URL.cluster], ["eds", TYPE_URL.endpoint]]
      .filter(([, url]) => before.get(url!)!.version !== after.get(url!)!.version).map(([t]) => t);
    const result = next();
    const t0 = process.hrtime.bigint();
    measuring = true;
    child.stdin!.write(JSON.stringify({ expect, t0: t0.toString() }) + "\n");
    writeFileSync(file, registryText(FANOUT_SERVICES, 7)); // service 7's first endpoint moves
    const { latenciesMs } = await result as { latenciesMs: number[] };
    return { protocol, connectMs, expect, latenciesMs, rssMb: rss / 2 ** 20, pushes, writtenMs: Number(lastPushAt - t0) / 1e6 };
  } finally {
    clearInterval(sampler);
    child.kill();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const g = await generationBench();
const fanouts = [];
for (const protocol of ["sotw", "delta"] as const) {
  try {
    fanouts.push(await fanoutBench(protocol));
  } catch (err) {
    console.error(`${protocol} fan-out failed: ${(err as Error).message}`);
  }
}
const cpu = os.cpus();
const row = (what: string, value: string, goal: string) => `| ${what.padEnd(66)} | ${value.padEnd(28)} | ${goal.padEnd(9)} |`;
console.log(`\nmultiplane control plane benchmark — ${new Date().toISOString().slice(0, 10)}, ${cpu.length} x ${cpu[0]?.model.trim()}, node ${process.version}\n`);
console.log(row("measure", "result", "goal"));
console.log(`|${"-".repeat(68)}|${"-".repeat(30)}|${"-".repeat(11)}|`);
console.log(row(`${SERVICES} ServiceEntries x 3: generation (median of ${ROUNDS})`, `${ms(median(g.gen))} (min ${ms(Math.min(...g.gen))})`, ""));
console.log(row(`  serialization: protobuf + hashes, ${(g.sizes.bytes / 2 ** 20).toFixed(1)} MB`, `${ms(median(g.pack))} (min ${ms(Math.min(...g.pack))})`, ""));
console.log(row(`  full LDS+CDS+EDS for one proxy, nothing cached (${g.sizes.listeners} L, ${g.sizes.clusters} C, ${g.sizes.endpoints} E)`, `${ms(median(g.total))} (min ${ms(Math.min(...g.total))})`, "<= 50 ms"));
console.log(row(`  another proxy, same registry (shared part already generated)`, `${ms(median(g.other))} (min ${ms(Math.min(...g.other))})`, ""));
console.log(row(`  after a registry change (one endpoint moved): regenerate + pack`, `${ms(median(g.incremental))} (min ${ms(Math.min(...g.incremental))})`, "<= 50 ms"));
console.log(row(`  (registry parse + validate of the YAML, once)`, ms(g.tParse), ""));
console.log(row(`  encoding only: control/xds/encode.ts vs protobufjs fromObject+encode`, `${ms(median(g.viaEncoder))} vs ${ms(median(g.viaProtobufjs))} (${(median(g.viaProtobufjs) / median(g.viaEncoder)).toFixed(1)}x)`, ""));
for (const f of fanouts) {
  console.log(row(`${STREAMS} ${f.protocol === "sotw" ? "SotW" : "delta"} ADS streams, ${FANOUT_SERVICES} services: all connected + ACKed`, ms(f.connectMs), ""));
  console.log(row(`  one endpoint moves: push (${f.expect.join("+")}) received + ACKed, p50`, ms(pct(f.latenciesMs, 50)), ""));
  console.log(row(`  p99`, ms(pct(f.latenciesMs, 99)), "<= 1 s"));
  console.log(row(`  max`, ms(Math.max(...f.latenciesMs)), ""));
  console.log(row(`  server side: last of ${f.pushes} pushes written`, ms(f.writtenMs), ""));
  console.log(row(`  control plane RSS, peak`, `${f.rssMb.toFixed(0)} MB`, "<= 512 MB"));
}
console.log("");
