// Child process of bench/control.ts: N concurrent ADS streams (state of the world or delta), one
// proxy each, that ACK every response like Envoy does (LDS, CDS, then EDS for the clusters CDS named).
// Protocol with the parent, one JSON object per line:
//   stdout {"ready": N}                      every stream has ACKed its first LDS, CDS and EDS
//   stdin  {"expect": ["lds", ...], "t0": ns} a change is about to happen at t0 (hrtime, ns)
//   stdout {"latenciesMs": [...]}            per stream: t0 -> ACK of the last changed type
import { createInterface } from "node:readline";
import { TYPE_URL } from "../control/xds/cache/protos.ts";
import { adsClient, node } from "../test/support/ads-client.ts";

const [address, countText, protocol = "sotw"] = process.argv.slice(2) as [string, string, string?];
const delta = protocol === "delta";
const COUNT = Number(countText);
const SHORT: Record<string, string> = { [TYPE_URL.listener]: "lds", [TYPE_URL.cluster]: "cds", [TYPE_URL.endpoint]: "eds" };

interface Stream {
  versions: Map<string, string>;
  /** Set when the parent announced a change: the versions to move away from. */
  baseline?: Map<string, string>;
  doneAt?: bigint;
  edsRequested?: boolean;
}

// Several channels, as many Envoys would be several connections (ADS_CHANNELS, default 8).
const CHANNELS = Number(process.env.ADS_CHANNELS ?? 8);
const clients = Array.from({ length: CHANNELS }, () => adsClient(address));
const streams: Stream[] = [];
let ready = 0;
let expect: string[] = [];
let t0 = 0n;
let reported = false;

function report(): void {
  if (reported || !streams.every((s) => s.doneAt !== undefined)) return;
  reported = true;
  process.stdout.write(JSON.stringify({ latenciesMs: streams.map((s) => Number(s.doneAt! - t0) / 1e6) }) + "\n");
}

for (let i = 0; i < COUNT; i++) {
  const s: Stream = { versions: new Map() };
  streams.push(s);
  const client = clients[i % CHANNELS]!;
  const call = delta ? client.DeltaAggregatedResources() : client.StreamAggregatedResources();
  call.on("error", (e: Error) => { process.stderr.write(`stream ${i}: ${e.message}\n`); process.exit(1); });
  let counted = false;
  call.on("data", (res: any) => {
    const type = SHORT[res.type_url] ?? res.type_url;
    s.versions.set(type, delta ? res.system_version_info : res.version_info);
    call.write(delta
      ? { type_url: res.type_url, response_nonce: res.nonce }
      : { type_url: res.type_url, version_info: res.version_info, response_nonce: res.nonce });
    // Like Envoy, subscribe to EDS once CDS has named clusters (SotW: empty names = all of them).
    if (type === "cds" && !s.edsRequested) {
      s.edsRequested = true;
      const names = delta ? res.resources.map((r: any) => String(r.name)).filter((n: string) => n.startsWith("outbound|")) : [];
      call.write(delta ? { type_url: TYPE_URL.endpoint, resource_names_subscribe: names } : { type_url: TYPE_URL.endpoint });
    }
    if (!counted && s.versions.has("lds") && s.versions.has("cds") && s.versions.has("eds")) {
      counted = true;
      if (++ready === COUNT) process.stdout.write(JSON.stringify({ ready }) + "\n");
    }
    if (s.baseline && s.doneAt === undefined && expect.every((t) => s.versions.get(t) !== s.baseline!.get(t))) {
      s.doneAt = process.hrtime.bigint();
      report();
    }
  });
  call.write({ node: node(`bench-${i}`, `10.200.${i >> 8}.${i & 255}`), type_url: TYPE_URL.listener });
  call.write({ type_url: TYPE_URL.cluster });
}

createInterface({ input: process.stdin }).on("line", (line) => {
  const msg = JSON.parse(line) as { expect: string[]; t0: string };
  expect = msg.expect;
  t0 = BigInt(msg.t0);
  for (const s of streams) s.baseline = new Map(s.versions);
});
