// What one unauthenticated xDS client may send: every value is bounded, and a request over a limit
// ends its stream with INVALID_ARGUMENT or RESOURCE_EXHAUSTED naming the limit, after little work and
// one short log line. A well-behaved client on the same control plane is served throughout.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";
import { adsClient, node, type AdsClient } from "../support/ads-client.ts";
import { waitFor } from "../support/net.ts";

let cp: ControlPlane;
let client: AdsClient;
let logBytes = 0;
const logs: string[] = [];

test.before(async () => {
  cp = await serve({ xdsPort: 0, httpPort: false, loopGuard: false, log: (l) => { logBytes += l.length + 1; logs.push(l.slice(0, 2000)); } });
  client = adsClient(`127.0.0.1:${cp.xds.port}`);
});
test.after(async () => {
  client.close();
  await cp.stop();
});

type Outcome = { code: number; details: string } | { response: any };

/**
 * Writes the requests on a new stream; resolves with the status it ends with, or (`untilStatus`
 * false) its first response, or after 5 s with no status.
 */
function exchange(requests: object[], protocol: "sotw" | "delta" = "sotw", untilStatus = false): Promise<Outcome> {
  return new Promise((resolve) => {
    const call = protocol === "sotw" ? client.StreamAggregatedResources() : client.DeltaAggregatedResources();
    const timer = setTimeout(() => { call.cancel(); resolve({ response: "none within 5 s" }); }, 5000);
    const done = (o: Outcome) => { clearTimeout(timer); resolve(o); };
    call.on("error", (e: grpc.ServiceError) => done({ code: e.code, details: e.details }));
    call.on("data", (response: any) => { if (!untilStatus) { done({ response }); call.cancel(); } });
    for (const r of requests) call.write(r);
  });
}

const struct = (fields: Record<string, object>) => ({ fields });
const str = (s: string) => ({ stringValue: s });
const SEED = "sidecar~10.0.0.1~a.default~default.svc.cluster.local";

async function refused(requests: object[], code: grpc.status, pattern: RegExp, protocol: "sotw" | "delta" = "sotw") {
  const before = logBytes;
  const outcome = await exchange(requests, protocol, true);
  assert.ok("code" in outcome, `expected a refusal, got a response: ${JSON.stringify(outcome).slice(0, 200)}`);
  assert.is(grpc.status[outcome.code], grpc.status[code], outcome.details);
  assert.match(outcome.details, pattern);
  assert.ok(outcome.details.length < 300, `status details stay short: ${outcome.details.length}`);
  // One log line, short, whatever the request held.
  assert.ok(logBytes - before < 1000, `logged ${logBytes - before} bytes`);
  assert.ok(logs.some((l) => l.startsWith("refused peer=127.0.0.1 ") && l.includes(grpc.status[code])), logs.slice(-3).join("\n"));
}

test("node: a 1 MB node.id with garbage INSTANCE_IPS is refused before anything is parsed or logged", async () => {
  const garbage = Array.from({ length: 5000 }, (_, i) => `garbage-${i}`).join(",");
  await refused([{ node: { id: `sidecar~${"x".repeat(1 << 20)}~a.b~b.svc`, metadata: struct({ INSTANCE_IPS: str(garbage) }) }, type_url: TYPE_URL.listener }],
    grpc.status.INVALID_ARGUMENT, /^node\.id is 1048\d+ bytes, over the limit of 1024 bytes$/);
  await refused([{ node: { id: SEED, cluster: "c".repeat(2000) }, type_url: TYPE_URL.listener }], grpc.status.INVALID_ARGUMENT, /^node\.cluster is 2000 bytes, over the limit of 1024 bytes$/);
});

test("node: INSTANCE_IPS over 256 entries, metadata over 64 KiB or nested deeper than 16 levels", async () => {
  const ips = Array.from({ length: 300 }, (_, i) => `10.1.${i >> 8}.${i & 255}`);
  await refused([{ node: node(SEED, ips.join(",")), type_url: TYPE_URL.listener }], grpc.status.INVALID_ARGUMENT, /^node\.metadata\.INSTANCE_IPS lists 300 entries, over the limit of 256$/);
  const list = { listValue: { values: ips.map(str) } };
  await refused([{ node: { id: SEED, metadata: struct({ INSTANCE_IPS: list }) }, type_url: TYPE_URL.listener }], grpc.status.INVALID_ARGUMENT, /INSTANCE_IPS lists 300 entries/);
  await refused([{ node: { id: SEED, metadata: struct({ LABELS: str("v".repeat(70_000)) }) }, type_url: TYPE_URL.listener }], grpc.status.INVALID_ARGUMENT, /^node\.metadata is over the limit of 65536 bytes$/);
  let deep: object = str("bottom");
  for (let i = 0; i < 40; i++) deep = { structValue: struct({ d: deep }) };
  await refused([{ node: { id: SEED, metadata: struct({ DEEP: deep }) }, type_url: TYPE_URL.listener }], grpc.status.INVALID_ARGUMENT, /^node\.metadata nests deeper than the limit of 16 levels$/);
  // Many small entries count too (each at least 8 bytes): 10,000 keys.
  const many = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, { boolValue: true }]));
  await refused([{ node: { id: SEED, metadata: struct(many) }, type_url: TYPE_URL.listener }], grpc.status.INVALID_ARGUMENT, /^node\.metadata is over the limit/);
});

test("requests: type_url, nonce, version and resource name lengths; names per request; types per stream", async () => {
  const first = { node: node(SEED), type_url: TYPE_URL.listener };
  await refused([{ ...first, type_url: `type.googleapis.com/${"x".repeat(300)}` }], grpc.status.INVALID_ARGUMENT, /^type_url is 320 bytes, over the limit of 256 bytes$/);
  await refused([first, { type_url: TYPE_URL.listener, response_nonce: "n".repeat(200) }], grpc.status.INVALID_ARGUMENT, /^response_nonce is 200 bytes, over the limit of 128 bytes$/);
  await refused([first, { type_url: TYPE_URL.listener, version_info: "v".repeat(200), response_nonce: "1" }], grpc.status.INVALID_ARGUMENT, /^version_info is 200 bytes/);
  await refused([{ ...first, type_url: TYPE_URL.endpoint, resource_names: ["ok", "n".repeat(2000)] }], grpc.status.INVALID_ARGUMENT, /^resource_names\[1\] is 2000 bytes, over the limit of 1024 bytes$/);
  const names = Array.from({ length: 100_001 }, (_, i) => String(i));
  await refused([{ ...first, type_url: TYPE_URL.endpoint, resource_names: names }], grpc.status.RESOURCE_EXHAUSTED, /^the request names 100001 resources, over the limit of 100000 per request$/);
  const types = Array.from({ length: 17 }, (_, i) => ({ type_url: `type.googleapis.com/t${i}` }));
  await refused([{ ...first, type_url: "type.googleapis.com/t-first" }, ...types], grpc.status.RESOURCE_EXHAUSTED, /more than 16 resource types, the limit per stream/);
});

test("delta requests: subscribe and initial_resource_versions are bounded the same way", async () => {
  const first = { node: node(SEED), type_url: TYPE_URL.cluster };
  await refused([{ ...first, resource_names_subscribe: ["x".repeat(1025)] }], grpc.status.INVALID_ARGUMENT, /^resource_names_subscribe\[0\] is 1025 bytes/, "delta");
  await refused([{ ...first, initial_resource_versions: { a: "v".repeat(129) } }], grpc.status.INVALID_ARGUMENT, /^initial_resource_versions\["a"\] is 129 bytes/, "delta");
  const names = Array.from({ length: 60_000 }, (_, i) => String(i));
  await refused([{ ...first, resource_names_subscribe: names, resource_names_unsubscribe: names }], grpc.status.RESOURCE_EXHAUSTED, /^the request names 120000 resources/, "delta");
});

test("a request over 4 MiB is refused by gRPC itself with RESOURCE_EXHAUSTED", async () => {
  const outcome = await exchange([{ node: node(SEED), type_url: TYPE_URL.endpoint, resource_names: Array.from({ length: 5000 }, () => "n".repeat(1000)) }]);
  assert.ok("code" in outcome);
  assert.is(grpc.status[outcome.code], "RESOURCE_EXHAUSTED");
  assert.match(outcome.details, /larger than max/);
});

test("a well-behaved client is served, over both protocols, after all of the above", async () => {
  const sotw = await exchange([{ node: node("sidecar~10.0.0.9~ok.default~default.svc.cluster.local", "10.0.0.9"), type_url: TYPE_URL.listener }]);
  assert.ok("response" in sotw, JSON.stringify(sotw));
  assert.is(sotw.response.type_url, TYPE_URL.listener);
  assert.ok(sotw.response.resources.length >= 1, "gets the virtual listener");
  const delta = await exchange([{ node: node("sidecar~10.0.0.9~ok.default~default.svc.cluster.local", "10.0.0.9"), type_url: TYPE_URL.listener }], "delta");
  assert.ok("response" in delta, JSON.stringify(delta));
  assert.ok(delta.response.resources.length >= 1);
  const clean = await waitFor(() => cp.openStreams() === 0 && cp.view.proxies().length === 0 && cp.cache.watcherCount() === 0, 5000);
  assert.ok(clean, `left behind: streams=${cp.openStreams()} proxies=${cp.view.proxies().length} watchers=${cp.cache.watcherCount()}`);
});

test.run();
