// `npm run bench:control`: the control plane's cost at scale, all rows from one run.
//  1. Pipeline, in process, on 10,000 ServiceEntries x 3 endpoints (a quarter of them HTTP, on 125 of
//     the 500 ports: route configs by RDS; bench/mesh.ts): the first full build and pack of
//     the shared layer, a new proxy's config once it is packed, a registry change (one endpoint moved),
//     encoding against protobufjs's own encoder, the registry as JSON read by JSON.parse or as YAML, and
//     as a directory of files served with no proxy (bench/registry-files.ts): load, one file edited.
//  2. Meshes (bench/mesh.ts): a registry directory of one file per service, N proxies each with its
//     own node IPs in a child process (light ADS clients), one endpoint moved by an atomic file edit:
//     time until every proxy has received and ACKed the new address, control plane RSS and CPU; the
//     scoped mesh (bench/scoped-mesh.ts) spreads the services over 100 namespaces under a Sidecar.
//  3. etcd (bench/etcd.ts): the same ServiceEntries in a 3-member etcd, two replicas with N proxies
//     each: import, cold load, one key changed until every proxy of both replicas has the new address.
//  4. Kubernetes (bench/kubernetes.ts): the same services as Services with EndpointSlices and one pod
//     per proxy in a real kube-apiserver: cold list + build to serving, one EndpointSlice edited until
//     every proxy has the new address, RSS.
//  5. Node agents (bench/agents.ts): N proxies on nodes of 10, one agent per node (100; the Reporter of
//     `multiplane agent`, in a second child process); every agent at once reports one new IP that a
//     service instance waits on: time until every affected proxy has ACKed the LDS response with its
//     new inbound listener, p50 / p99 per change; control plane, agents' and clients' CPU for it.
// Environment: BENCH_ROUNDS (default 7), BENCH_SERVICES (the pipeline's registry, default 10,000),
// BENCH_MESHES and BENCH_ETCD to pick rows (e.g. "100x1000:delta,10000x1000:delta"; for etcd, services x
// proxies per replica, default "10000x100:delta"), BENCH_KUBERNETES (services x proxies, default
// "10000x1000:delta"; needs the kube-apiserver the tests build), BENCH_AGENTS (services x proxies, or
// services x proxies x agents, default "1000x1000:delta": 100 agents, min(BENCH_ROUNDS, 5) changes in a
// row); an empty value skips the section.
import os from "node:os";
import { parse as parseYaml } from "yaml";
import { generate } from "../control/generation/generate.ts";
import { generationOptions } from "../control/generation/options.ts";
import { proxyIdentity } from "../control/identity/proxy.ts";
import { ConfigPipeline } from "../control/pipeline/config-pipeline.ts";
import { buildRegistry } from "../control/registry/build.ts";
import type { Registry } from "../control/registry/model.ts";
import { parseRegistryText } from "../control/registry/istio/parse.ts";
import { Encoder } from "../control/xds/cache/encode.ts";
import { TYPE_URL } from "../control/xds/cache/protos.ts";
import { LOOP_GUARD_WASM } from "../envoy/paths.ts";
import { agentsBench, type AgentsResult } from "./agents.ts";
import { etcdBench, type EtcdResult } from "./etcd.ts";
import { kubernetesBench, type KubernetesResult } from "./kubernetes.ts";
import { meshBench, serviceEntryYaml, type MeshResult } from "./mesh.ts";
import { registryFilesBench } from "./registry-files.ts";

const SERVICES = Number(process.env.BENCH_SERVICES ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
/** "SERVICESxPROXIES:PROTOCOL[:planes|:planes-bind|:scoped],..." (planes: see bench/mesh.ts; scoped: bench/scoped-mesh.ts) */
const sizes = (spec: string) => spec.split(",").filter(Boolean).map((m) => {
  const [size, protocol, variant] = m.split(":") as [string, "sotw" | "delta", string | undefined];
  const [services, proxies] = size.split("x").map(Number) as [number, number];
  if (variant !== undefined && variant !== "planes" && variant !== "planes-bind" && variant !== "scoped") throw new Error(`${m}: expected :planes, :planes-bind or :scoped after the protocol`);
  const planes = variant === "planes-bind" ? "bind" as const : variant === "planes" ? "nobind" as const : undefined;
  return { services, proxies, protocol, ...(planes ? { planes } : {}), scoped: variant === "scoped" };
});
const MESHES = sizes(process.env.BENCH_MESHES ?? "10000x1000:delta:scoped,100x1000:sotw,100x1000:delta,1000x1000:delta,1000x1000:delta:planes-bind,10000x1000:delta,10000x1000:delta:planes,10000x1000:delta:planes-bind,10000x1000:sotw");
const ETCD = sizes(process.env.BENCH_ETCD ?? "10000x100:delta");
const KUBERNETES = sizes(process.env.BENCH_KUBERNETES ?? "10000x1000:delta");
/** "SERVICESxPROXIES[xAGENTS]:PROTOCOL,...": 100 agents unless named. */
const AGENTS = (process.env.BENCH_AGENTS ?? "1000x1000:delta").split(",").filter(Boolean).map((m) => {
  const [size, protocol] = m.split(":") as [string, "sotw" | "delta"];
  const [services, proxies, agents = 100] = size.split("x").map(Number) as [number, number, number?];
  return { services, proxies, agents, protocol };
});

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number) => sorted(xs)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;
const ms = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(1)} ms`);
const spread = (xs: number[]) => `${ms(median(xs))} (min ${ms(Math.min(...xs))})`;

function pipelineBench() {
  let text = "";
  for (let i = 0; i < SERVICES; i++) text += `${serviceEntryYaml(i)}---\n`;
  const t0 = performance.now();
  const parsed = parseRegistryText(text, "bench.yaml");
  const built = buildRegistry(parsed.resources);
  const tLoad = performance.now() - t0;
  if (parsed.errors.length || !built.ok) throw new Error("bench registry does not load");
  const registry = built.registry;
  const encoder = new Encoder(); // loading the .proto files is start-up cost, not generation
  const options = generationOptions({ loopGuard: { wasmPath: LOOP_GUARD_WASM, mode: "enforce" } });
  // Proxy i hosts the first endpoint of service i, like the mesh's proxies.
  const proxy = (i: number) => proxyIdentity({ id: `sidecar~10.200.0.${i}~p${i}.bench~bench.svc.cluster.local`, metadata: { INSTANCE_IPS: `10.200.0.${i},10.0.${i}.1` } });
  // A cold build needs content the pipeline never saw (it reuses unchanged objects): rename every host.
  const renamed = (tag: string): Registry => ({ ...registry, services: registry.services.map((svc) => ({ ...svc, host: `${tag}.${svc.host}` })) });
  const pipeline = new ConfigPipeline(options, encoder);
  pipeline.setRegistry(renamed("warmup"));
  pipeline.configFor(proxy(1));
  const cold: number[] = [], newProxy: number[] = [], change: number[] = [];
  let last = registry;
  for (let r = 0; r < ROUNDS; r++) {
    last = renamed(`r${r}`);
    const a = performance.now();
    pipeline.setRegistry(last);
    pipeline.configFor(proxy(1)); // builds and packs the shared layer, then the proxy's own
    cold.push(performance.now() - a);
    const b = performance.now();
    pipeline.configFor(proxy(2 + r));
    newProxy.push(performance.now() - b);
  }
  // The operational case: one service's first endpoint moves; only what changed is built and packed.
  for (let r = 0; r < ROUNDS; r++) {
    const i = (r * 7919) % last.services.length;
    const next: Registry = { ...last, services: last.services.map((svc, k) => (k !== i ? svc : {
      ...svc, endpoints: svc.endpoints.map((e, j) => (j === 0 ? { ...e, address: `10.250.${r}.${(k % 250) + 1}` } : e)),
    })) };
    const a = performance.now();
    pipeline.setRegistry(next);
    pipeline.configFor(proxy(1));
    change.push(performance.now() - a);
    last = next;
  }
  // The same resources through protobufjs's own fromObject+encode, in the same run, for the ratio.
  const resources = generate(proxy(1), registry, options);
  const typed: [string, readonly object[]][] = [[TYPE_URL.listener, resources.listeners], [TYPE_URL.cluster, resources.clusters], [TYPE_URL.endpoint, resources.endpoints], [TYPE_URL.route, resources.routes]];
  const viaProtobufjs: number[] = [], viaEncoder: number[] = [];
  let bytes = 0;
  for (let r = 0; r < 3; r++) {
    let t = performance.now();
    for (const [url, list] of typed) { const T = encoder.root.lookupType(url.slice(url.lastIndexOf("/") + 1)); for (const o of list) T.encode(T.fromObject(o)).finish(); }
    viaProtobufjs.push(performance.now() - t);
    t = performance.now();
    bytes = 0;
    for (const [url, list] of typed) for (const o of list) bytes += encoder.encode(url, o).length;
    viaEncoder.push(performance.now() - t);
  }
  const counts = { listeners: resources.listeners.length, clusters: resources.clusters.length, endpoints: resources.endpoints.length, routes: resources.routes.length };
  const httpShare = registry.services.filter((svc) => svc.ports.some((port) => port.protocol === "HTTP")).length / registry.services.length;
  // The same documents as JSON (as exported with kubectl -o json): JSON.parse's path against the YAML path's, interleaved.
  const jsonText = text.split("---\n").filter((doc) => doc.trim() !== "").map((doc) => JSON.stringify(parseYaml(doc), null, 2)).join("\n---\n");
  const viaJson: number[] = [], viaYaml: number[] = [];
  for (let r = 0; r < 3; r++) {
    for (const fast of [true, false]) {
      const t = performance.now();
      const json = parseRegistryText(jsonText, "bench.json", undefined, fast);
      (fast ? viaJson : viaYaml).push(performance.now() - t);
      if (json.errors.length > 0 || json.resources.length !== parsed.resources.length) throw new Error("the JSON registry does not parse like the YAML one");
    }
  }
  return { tLoad, cold, newProxy, change, viaProtobufjs, viaEncoder, bytes, counts, httpShare, viaJson, viaYaml };
}

const p = pipelineBench();
const files = await registryFilesBench(SERVICES, ROUNDS);
const meshes: MeshResult[] = [];
for (const m of MESHES) {
  try {
    meshes.push(await meshBench(m.services, m.proxies, m.protocol, m.planes, m.scoped));
  } catch (err) {
    console.error(`mesh ${m.services} x ${m.proxies} ${m.protocol}${m.planes ? ` planes (${m.planes})` : ""}${m.scoped ? " scoped" : ""} failed: ${(err as Error).message}`);
  }
}
const etcds: EtcdResult[] = [];
for (const e of ETCD) {
  try {
    etcds.push(await etcdBench(e.services, e.proxies, e.protocol, ROUNDS));
  } catch (err) {
    console.error(`etcd ${e.services} x ${e.proxies} ${e.protocol} failed: ${(err as Error).message}`);
  }
}
const kubes: KubernetesResult[] = [];
for (const k of KUBERNETES) {
  try {
    kubes.push(await kubernetesBench(k.services, k.proxies, k.protocol, Math.min(ROUNDS, 3)));
  } catch (err) {
    console.error(`kubernetes ${k.services} x ${k.proxies} ${k.protocol} failed: ${(err as Error).message}`);
  }
}

const agentRuns: AgentsResult[] = [];
for (const a of AGENTS) {
  try {
    agentRuns.push(await agentsBench(a.services, a.proxies, a.agents, a.protocol, Math.min(ROUNDS, 5)));
  } catch (err) {
    console.error(`agents ${a.services} x ${a.proxies} x ${a.agents} ${a.protocol} failed: ${(err as Error).message}`);
  }
}

const cpu = os.cpus();
const row = (what: string, value: string, goal = "") => `| ${what} | ${value} | ${goal} |`;
console.log(`\nmultiplane control plane benchmark, ${new Date().toISOString().slice(0, 10)}: ${cpu.length} x ${cpu[0]?.model.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}\n`);
console.log("| measure | result | goal |\n|---|---|---|");
console.log(row(`${SERVICES} ServiceEntries x 3 endpoints, ${Math.round(100 * p.httpShare)} % HTTP (${p.counts.listeners} listeners, ${p.counts.clusters} clusters, ${p.counts.endpoints} endpoint sets, ${p.counts.routes} route configs, ${(p.bytes / 2 ** 20).toFixed(1)} MB): parse + validate + build, once`, ms(p.tLoad), "<= 1 s"));
console.log(row(`  first full build + pack of the shared layer, and the first proxy (median of ${ROUNDS})`, spread(p.cold), "<= 150 ms"));
console.log(row("  a new proxy, shared layer already packed", spread(p.newProxy), "<= 50 ms"));
console.log(row("  a registry change (one endpoint moved): rebuild + pack what changed, for a proxy", spread(p.change), "<= 50 ms"));
console.log(row(`  the same as ${files.files} files, served with no proxy: load at start; one file edited -> new version serving (incl. 30 ms debounce; median and max of ${files.editMs.length})`,
  `${ms(files.loadMs)}; ${ms(median(files.editMs))}, max ${ms(Math.max(...files.editMs))}`, files.files === 10_000 ? "<= 1 s; <= 50 ms" : ""));
console.log(row("  the same as JSON documents: parse + validate, JSON.parse path vs the YAML path (median of 3)", `${ms(median(p.viaJson))} vs ${ms(median(p.viaYaml))} (${(median(p.viaYaml) / median(p.viaJson)).toFixed(1)}x)`));
console.log(row("  encoding only: control/xds/cache/encode.ts vs protobufjs fromObject+encode", `${ms(median(p.viaEncoder))} vs ${ms(median(p.viaProtobufjs))} (${(median(p.viaProtobufjs) / median(p.viaEncoder)).toFixed(1)}x)`));
for (const m of meshes) {
  const goals = m.scoped ? { p99: "<= 300 ms", rss: "<= 512 MB", connect: "<= 10 s" }
    : m.services === 10_000 && m.protocol === "delta" ? { p99: "<= 1 s", rss: "<= 1 GB", connect: "<= 60 s" }
    : m.services === 1000 ? { p99: "<= 300 ms", rss: "<= 512 MB", connect: "" } : { p99: "", rss: "", connect: "" };
  const planes = m.planes === "bind" ? ", two planes (data: DSCP, isolated, source bound)" : m.planes ? ", two planes (data: DSCP, isolated)" : "";
  const scope = m.scoped ? " in 100 namespaces, scoped by a Sidecar (own namespace + istio-system)" : "";
  const name = `${m.services} services${scope} x ${m.proxies} ${m.protocol === "sotw" ? "SotW" : "delta"} proxies${planes}`;
  console.log(row(`${name}: all connected and ACKed (${(m.connectBytes / 2 ** 30).toFixed(2)} GiB received)`, ms(m.connectMs), goals.connect));
  console.log(row(`  one endpoint moved by a file edit: new address received + ACKed, p50 / p99${m.scoped ? " (a service in istio-system: every proxy imports it)" : ""}`, `${ms(pct(m.latenciesMs, 50))} / ${ms(pct(m.latenciesMs, 99))}`, goals.p99));
  if (m.local) console.log(row(`  one endpoint of a service in ns-7 moved: the ${m.local.latenciesMs.length} proxies that import it, p50 / p99; control plane CPU for it`, `${ms(pct(m.local.latenciesMs, 50))} / ${ms(pct(m.local.latenciesMs, 99))}; ${ms(m.local.cpuMs)}`, goals.p99));
  console.log(row("  control plane RSS: idle / all connected / peak", `${m.rssMb.idle.toFixed(0)} / ${m.rssMb.connected.toFixed(0)} / ${m.rssMb.peak.toFixed(0)} MB`, goals.rss));
  console.log(row("  CPU while connecting: control plane / clients; for the change: control plane", `${ms(m.cpuMs.connectServer)} / ${ms(m.cpuMs.connectClients)}; ${ms(m.cpuMs.changeServer)}`));
  console.log(row(`  registry of ${m.services} files: load at start / one file edited, new version serving`, `${ms(m.loadMs)} / ${ms(m.applyMs)}`, m.services === 10_000 ? "<= 1 s / <= 50 ms" : ""));
}
for (const e of etcds) {
  console.log(row(`etcd (3 members, loopback): ${e.services} ServiceEntries imported (\`registry import --apply\`)`, ms(e.importMs)));
  console.log(row(`  cold load: serve() on etcd until the ${e.services} services serve (median of ${e.loadMs.length})`, spread(e.loadMs)));
  console.log(row(`  one key changed in etcd -> that control plane serves the new registry version (median of ${e.watchMs.length})`, spread(e.watchMs)));
  console.log(row(`  2 replicas x ${e.proxiesPerReplica} ${e.protocol === "sotw" ? "SotW" : "delta"} proxies: all connected and ACKed`, ms(e.connectMs)));
  console.log(row(`  one key changed in etcd -> every proxy of both replicas has the new address + ACKed, p50 / p99 (${e.latenciesMs.length / (2 * e.proxiesPerReplica)} changes)`, `${ms(pct(e.latenciesMs, 50))} / ${ms(pct(e.latenciesMs, 99))}`));
}
for (const k of kubes) {
  const name = `${k.proxies} ${k.protocol === "sotw" ? "SotW" : "delta"} proxies`;
  console.log(row(`Kubernetes (kube-apiserver on etcd, loopback): ${k.services} Services with EndpointSlices of 3 endpoints, ${k.pods} pods (created in ${ms(k.populateMs)})`, ""));
  console.log(row(`  cold: serve --kubeconfig until the ${k.services} services serve: list + translate + build (median of ${k.loadMs.length})`, spread(k.loadMs)));
  console.log(row(`  ${name}: all connected and ACKed`, ms(k.connectMs)));
  console.log(row(`  one EndpointSlice edited: new address received + ACKed by every proxy, p50 / p99 (${k.latenciesMs.length / k.proxies} edits)`, `${ms(pct(k.latenciesMs, 50))} / ${ms(pct(k.latenciesMs, 99))}`, k.services === 10_000 ? "<= 1 s" : ""));
  console.log(row("  control plane RSS: idle / all connected / peak", `${k.rssMb.idle.toFixed(0)} / ${k.rssMb.connected.toFixed(0)} / ${k.rssMb.peak.toFixed(0)} MB`));
}
for (const a of agentRuns) {
  const name = `${a.proxies} ${a.protocol === "sotw" ? "SotW" : "delta"} proxies`;
  const cpuText = (r: AgentsResult["first"]) => `${ms(r.cpuMs.server)} (${ms(r.cpuMs.serverUntilQuiet)}) / ${ms(r.cpuMs.agents)} / ${ms(r.cpuMs.clients)} (${ms(r.cpuMs.clientsUntilQuiet)})`;
  const all = a.rounds.flatMap((r) => r.latenciesMs);
  console.log(row(`Node agents: ${a.services} services x ${name} (connected in ${ms(a.connectMs)}) on ${a.agents} nodes of ${a.perNode}, one agent each (plaintext, loopback)`, ""));
  console.log(row(`  first reports (each proxy's node IPs become its node's ${2 * a.perNode}): ${a.first.affected} proxies checked, p50 / p99 (${(a.first.bytes / 2 ** 20).toFixed(1)} MB sent to the proxies); CPU control plane / agents / clients, until the last ACK (until quiet)`, `${a.first.latenciesMs.length > 0 ? `${ms(pct(a.first.latenciesMs, 50))} / ${ms(pct(a.first.latenciesMs, 99))}` : "(nodes of 1: nothing to check)"}; ${cpuText(a.first)}`));
  a.rounds.forEach((r, n) => {
    console.log(row(`  change ${n + 1}: ${a.agents} agents each report one new IP at once: new inbound listener ACKed by all ${r.affected} proxies affected, p50 / p99 (agents all answered in ${ms(r.answersMs)}; ${(r.bytes / 2 ** 20).toFixed(1)} MB sent to the proxies)`, `${ms(pct(r.latenciesMs, 50))} / ${ms(pct(r.latenciesMs, 99))}`, "<= 500 ms"));
    console.log(row("    CPU for the change, until the last ACK (until quiet again): control plane / agents / clients", cpuText(r)));
  });
  if (a.rounds.length > 1) console.log(row(`  all ${a.rounds.length} changes (${all.length} proxy updates): p50 / p99`, `${ms(pct(all, 50))} / ${ms(pct(all, 99))}`, "<= 500 ms"));
}
console.log("");
