// Child process of bench/load.ts: one well-behaved proxy that keeps reading while others storm the
// control plane. Two streams of the same proxy, like an Envoy that reconnects now and then:
//   - the main stream ACKs every response (LDS, CDS, EDS) and reports each new EDS version;
//   - the probe stream asks for CDS again every PROBE_MS (a request without a nonce, as after a
//     reconnect, which the control plane must answer) and times each answer.
// Protocol with the parent, one JSON object per line:
//   stdout {"ready": true}                      the main stream has ACKed LDS, CDS and EDS
//   stdout {"eds": version, "at": ns}           a new EDS version arrived (hrtime, ns)
//   stdin  {"stop": true}  ->  stdout {"probesMs": [...], "newcomersMs": [...]} and exit
import { createInterface } from "node:readline";
import { TYPE_URL } from "../control/xds/cache/protos.ts";
import { adsClient, node } from "../test/support/ads-client.ts";

const [address, nodeId = "sidecar~10.250.0.1~healthy.bench~bench.svc.cluster.local"] = process.argv.slice(2) as [string, string?];
const PROBE_MS = Number(process.env.PROBE_MS ?? 20);
const client = adsClient(address);
const out = (msg: object) => process.stdout.write(JSON.stringify(msg) + "\n");
const fail = (what: string) => (e: Error) => { process.stderr.write(`healthy ${what}: ${e.message}\n`); process.exit(1); };

const main = client.StreamAggregatedResources();
main.on("error", fail("main stream"));
const seen = new Set<string>();
let eds = "";
let ready = false;
main.on("data", (res: any) => {
  main.write({ type_url: res.type_url, version_info: res.version_info, response_nonce: res.nonce });
  seen.add(res.type_url);
  if (res.type_url === TYPE_URL.cluster && !seen.has("eds-requested")) {
    seen.add("eds-requested");
    main.write({ type_url: TYPE_URL.endpoint });
  }
  if (res.type_url === TYPE_URL.endpoint && res.version_info !== eds) {
    eds = res.version_info;
    if (ready) out({ eds, at: String(process.hrtime.bigint()) });
  }
  if (!ready && [TYPE_URL.listener, TYPE_URL.cluster, TYPE_URL.endpoint].every((t) => seen.has(t))) {
    ready = true;
    setTimeout(newcomer, NEWCOMER_MS);
    out({ ready: true, eds });
  }
});
main.write({ node: node(nodeId, "10.250.0.1"), type_url: TYPE_URL.listener });
main.write({ type_url: TYPE_URL.cluster });

const probesMs: number[] = [];
const probe = client.StreamAggregatedResources();
probe.on("error", fail("probe stream"));
let sentAt: bigint | undefined;
let stopping = false;
probe.on("data", () => {
  if (sentAt !== undefined) probesMs.push(Number(process.hrtime.bigint() - sentAt) / 1e6);
  sentAt = undefined;
  if (!stopping) setTimeout(sendProbe, PROBE_MS);
});
const sendProbe = () => {
  sentAt = process.hrtime.bigint();
  probe.write({ type_url: TYPE_URL.cluster }); // no nonce: must be answered
};
probe.write({ node: node(nodeId, "10.250.0.1"), type_url: TYPE_URL.cluster });

// Newcomers: every NEWCOMER_MS a proxy never seen before (its own node IP) opens a stream and times
// its first LDS and CDS answers, as an Envoy starting during the storm waits to finish its init.
const NEWCOMER_MS = Number(process.env.NEWCOMER_MS ?? 250);
const newcomersMs: number[] = [];
let newcomers = 0;
const newcomer = () => {
  if (stopping) return;
  const k = ++newcomers;
  const ip = `10.252.${k >> 8}.${k & 255}`;
  const call = client.StreamAggregatedResources();
  const t0 = process.hrtime.bigint();
  const got = new Set<string>();
  call.on("error", () => {});
  call.on("data", (res: any) => {
    got.add(res.type_url);
    if (got.size < 2) return;
    newcomersMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    call.cancel();
  });
  call.write({ node: node(`sidecar~${ip}~new-${k}.bench~bench.svc.cluster.local`, ip), type_url: TYPE_URL.listener });
  call.write({ type_url: TYPE_URL.cluster });
  setTimeout(newcomer, NEWCOMER_MS);
};

createInterface({ input: process.stdin }).on("line", (line) => {
  if (!JSON.parse(line).stop) return;
  stopping = true;
  // A probe still unanswered counts with its wait so far.
  if (sentAt !== undefined) probesMs.push(Number(process.hrtime.bigint() - sentAt) / 1e6);
  out({ probesMs, newcomersMs });
  process.exit(0);
});
