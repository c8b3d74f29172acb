// Child process of bench/control.ts: N ADS streams (delta or state of the world), each acting as one
// Envoy with its own node IPs, subscribing like Envoy does (LDS and CDS wildcard, EDS by the cluster
// names CDS gave, RDS by the route configs the HTTP listeners name, ECDS by the loop guard filters'
// names) and ACKing every response. Responses are scanned, not
// decoded (bench/wire.ts), so this process is not the bottleneck.
// Protocol with the parent, one JSON object per line:
//   stdout {"ready": N, "bytes": B, "cpuMs": C}               every stream has ACKed LDS, CDS, EDS, RDS and ECDS
//   stdin  {"t0": ns, "cluster": NAME, "address": IP[, "streams": [i, ...]]}  an endpoint of NAME is about to move to IP
//   stdout {"latenciesMs": [...], "checked": N, "cpuMs": C}  per stream (or per named stream: those that import
//                                                            NAME): t0 -> ACK of the EDS response carrying IP
// (once per change; bench/etcd.ts makes several in a row)
//   stdin  {"t0": ns, "listeners": {"<stream index>": NAME, ...}}  these streams' node IPs are about to change
//   stdout {"latenciesMs": [...], "checked": N, "bytes": B, "cpuMs": C}  per named stream, in the order named:
//                                                            t0 -> ACK of the LDS response whose resources
//                                                            include NAME; B: bytes received so far
//                                                            (no names: answered at once, a probe of B and C)
// (bench/agents.ts: node agents report new IPs; only the named streams are waited for)
// cpuMs is this process's CPU time so far, so the parent can show the clients are not the bottleneck.
import * as grpc from "@grpc/grpc-js";
import { createInterface } from "node:readline";
import { scopedNamespace } from "./scoped-mesh.ts";
import { encodeDeltaRequest, encodeSotwRequest, scanDeltaResponse, scanSotwResponse, type ScannedResponse } from "./wire.ts";

// Ended by the parent with SIGTERM: exit normally, so a --cpu-prof profile is written.
process.on("SIGTERM", () => process.exit(0));

const TYPE = {
  lds: "type.googleapis.com/envoy.config.listener.v3.Listener",
  cds: "type.googleapis.com/envoy.config.cluster.v3.Cluster",
  eds: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
  ecds: "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
  rds: "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
};

// routes: the route configs the listeners name (the parent knows them; scanning listeners for them
// would cost this process more than Envoy's subscription logic is worth here).
// scoped: proxy i is in service i's namespace (bench/scoped-mesh.ts), else all are in "bench".
const [address, countText, protocol = "delta", routesText = "", layout = ""] = process.argv.slice(2) as [string, string, string?, string?, string?];
const ROUTES = routesText ? routesText.split(",") : [];
const GUARDS = ROUTES.length > 0 ? ["loop_guard", "loop_guard_http"] : ["loop_guard"];
const WANTED = [TYPE.lds, TYPE.cds, TYPE.eds, TYPE.ecds, ...(ROUTES.length > 0 ? [TYPE.rds] : [])];
const delta = protocol === "delta";
const COUNT = Number(countText);
const CHANNELS = 8; // several connections, as many Envoys would be
const identity = (b: Buffer) => b;
const clients = Array.from({ length: CHANNELS }, () => new grpc.Client(address, grpc.credentials.createInsecure(), { "grpc.max_receive_message_length": 256 << 20 }));
const method = delta ? "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources" : "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";

interface Stream {
  seen: Set<string>;
  counted: boolean;
  edsNames?: string[];
  doneAt?: bigint;
}

const streams: Stream[] = [];
let ready = 0;
let bytes = 0;
let change: { t0: bigint; cluster: string; address: Buffer; streams?: Set<number> } | undefined;
let checked = 0;
/** The listener change waited for: per named stream, the listener it must get. */
let listenerChange: { t0: bigint; wanted: Map<number, string>; doneAt: Map<number, bigint> } | undefined;

const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

function report(): void {
  const wanted = change?.streams ? streams.filter((_, i) => change!.streams!.has(i)) : streams;
  if (!change || !wanted.every((s) => s.doneAt !== undefined)) return;
  process.stdout.write(JSON.stringify({ latenciesMs: wanted.map((s) => Number(s.doneAt! - change!.t0) / 1e6), checked, cpuMs: cpuMs() }) + "\n");
  change = undefined;
}

function reportListeners(): void {
  const c = listenerChange;
  if (!c || c.doneAt.size < c.wanted.size) return;
  process.stdout.write(JSON.stringify({ latenciesMs: [...c.wanted.keys()].map((i) => Number(c.doneAt.get(i)! - c.t0) / 1e6), checked: c.doneAt.size, bytes, cpuMs: cpuMs() }) + "\n");
  listenerChange = undefined;
}

for (let i = 0; i < COUNT; i++) {
  const s: Stream = { seen: new Set(), counted: false };
  streams.push(s);
  const call = clients[i % CHANNELS]!.makeBidiStreamRequest(method, identity, identity);
  call.on("error", (e: Error) => { process.stderr.write(`stream ${i}: ${e.message}\n`); process.exit(1); });
  // Proxy i's own IP, plus the first endpoint IP of service i: every proxy hosts one instance.
  const ns = layout === "scoped" ? scopedNamespace(i) : "bench";
  const node = { id: `sidecar~10.200.${i >> 8}.${i & 255}~bench-${i}.${ns}~${ns}.svc.cluster.local`, instanceIps: `10.200.${i >> 8}.${i & 255},10.${(i >> 8) & 255}.${i & 255}.1` };
  const send = (typeUrl: string, nonce?: string, version?: string, names?: string[]) => call.write(delta
    ? encodeDeltaRequest({ typeUrl, ...(nonce ? { nonce } : {}), ...(names ? { subscribe: names } : {}) })
    : encodeSotwRequest({ typeUrl, ...(nonce ? { nonce } : {}), ...(version ? { version } : {}), ...(names ? { names } : {}) }));
  call.on("data", (buf: Buffer) => {
    bytes += buf.length;
    const res: ScannedResponse = delta ? scanDeltaResponse(buf) : scanSotwResponse(buf);
    s.seen.add(res.typeUrl);
    // Like Envoy: EDS for the clusters CDS named (SotW names them all in every request).
    if (res.typeUrl === TYPE.cds && (!s.edsNames || !delta)) {
      const names = res.names().filter((n) => n.startsWith("outbound|"));
      const first = !s.edsNames;
      s.edsNames = names;
      if (first || !delta) send(TYPE.eds, undefined, undefined, names);
    }
    if (res.typeUrl === TYPE.lds && !s.seen.has("ecds-requested")) {
      s.seen.add("ecds-requested");
      send(TYPE.ecds, undefined, undefined, GUARDS);
      if (ROUTES.length > 0) send(TYPE.rds, undefined, undefined, ROUTES);
    }
    const named = !delta && res.typeUrl === TYPE.eds ? s.edsNames : !delta && res.typeUrl === TYPE.ecds ? GUARDS : !delta && res.typeUrl === TYPE.rds ? ROUTES : undefined;
    send(res.typeUrl, res.nonce, res.version, named);
    if (!s.counted && WANTED.every((t) => s.seen.has(t))) {
      s.counted = true;
      if (++ready === COUNT) process.stdout.write(JSON.stringify({ ready, bytes, cpuMs: cpuMs() }) + "\n");
    }
    // Content, not just a new version: the moved endpoint's new address must be in its endpoint set.
    if (change && s.doneAt === undefined && res.typeUrl === TYPE.eds && (!change.streams || change.streams.has(i))) {
      const moved = res.resources().find((r) => r.name === change!.cluster);
      if (moved && moved.body.includes(change.address)) {
        s.doneAt = process.hrtime.bigint();
        checked++;
        report();
      }
    }
    // Content again: the listener this stream must get is among the LDS response's resources (names only;
    // a delta response carries what changed, a SotW one every listener).
    if (listenerChange && res.typeUrl === TYPE.lds && listenerChange.wanted.has(i) && !listenerChange.doneAt.has(i)) {
      if (res.names().includes(listenerChange.wanted.get(i)!)) {
        listenerChange.doneAt.set(i, process.hrtime.bigint());
        reportListeners();
      }
    }
  });
  // The first request names the proxy.
  call.write(delta ? encodeDeltaRequest({ node, typeUrl: TYPE.lds }) : encodeSotwRequest({ node, typeUrl: TYPE.lds }));
  send(TYPE.cds);
}

createInterface({ input: process.stdin }).on("line", (line) => {
  const msg = JSON.parse(line) as { t0: string; cluster: string; address: string; streams?: number[]; listeners?: Record<string, string> };
  if (msg.listeners) {
    listenerChange = { t0: BigInt(msg.t0), wanted: new Map(Object.entries(msg.listeners).map(([k, v]) => [Number(k), v])), doneAt: new Map() };
    return reportListeners();
  }
  change = { t0: BigInt(msg.t0), cluster: msg.cluster, address: Buffer.from(msg.address), ...(msg.streams ? { streams: new Set(msg.streams) } : {}) };
  checked = 0;
  for (const s of streams) s.doneAt = undefined;
});
