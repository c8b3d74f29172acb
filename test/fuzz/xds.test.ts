// Fuzz: what an unauthenticated xDS client may send, against a real serve() on free ports. Random
// streams (SotW, delta, or bytes that are no request at all) with random node ids, metadata (garbage
// INSTANCE_IPS, huge values, wrong types, deep nesting), type URLs, nonces, versions, resource names
// and NACKs. Properties: the process stays up (an exception escaping a handler would end this test
// process); a stream either works or ends with INVALID_ARGUMENT / RESOURCE_EXHAUSTED (INTERNAL for bytes
// that do not decode); a well-behaved proxy keeps getting exactly its config over both protocols; log
// output per stream stays small; memory stays bounded and nothing is left behind once streams close.
// Bounded in time; the number of streams run is printed.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import fc from "fast-check";
import { rmSync } from "node:fs";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { loadEnvoyProtos, TYPE_URL } from "../../control/xds/cache/protos.ts";
import { adsClient, node, type AdsClient } from "../support/ads-client.ts";
import { tempRegistryDir } from "../support/control.ts";
import { heapAfterGc } from "../support/memory.ts";
import { waitFor } from "../support/net.ts";
import { slowReader } from "../support/slow-reader.ts";

const TIME_LIMIT_MS = Number(process.env.FUZZ_MS ?? 15_000);
const HEALTHY = "sidecar~10.75.8.101~healthy.default~default.svc.cluster.local";
const ALLOWED = new Set([grpc.status.INVALID_ARGUMENT, grpc.status.RESOURCE_EXHAUSTED, grpc.status.CANCELLED]);


// Huge values are built once; the generators pick them.
const HUGE = ["x".repeat(2000), "y".repeat(70_000), "1.1.1.1,".repeat(10_000), "banana,".repeat(300), "\u{1F600}".repeat(400)];
const MANY_NAMES = Array.from({ length: 100_001 }, (_, i) => `n${i}`);
const KNOWN_TYPES = Object.values(TYPE_URL);

const text = fc.oneof(fc.string({ maxLength: 30 }), fc.string({ unit: "binary", maxLength: 20 }), fc.constantFrom(...HUGE));
const ipish = fc.oneof(fc.ipV4(), fc.ipV6(), fc.constantFrom("10.75.8.101", "::ffff:10.0.0.1", "fe80::1%eth0", "300.1.1.1", "[::1]", ""), fc.string({ maxLength: 15 }));
const structValue: fc.Arbitrary<object> = fc.letrec<{ value: object }>((tie) => ({
  value: fc.oneof({ depthSize: "small", withCrossShrink: true },
    text.map((s) => ({ stringValue: s })),
    fc.double().map((n) => ({ numberValue: n })),
    fc.boolean().map((b) => ({ boolValue: b })),
    fc.constant({ nullValue: 0 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie("value"), { maxKeys: 4 }).map((fields) => ({ structValue: { fields } })),
    fc.array(tie("value"), { maxLength: 4 }).map((values) => ({ listValue: { values } })),
  ),
})).value;
/** Nesting past the 16-level limit, built directly (the generator above stays shallow); protobufjs itself stops at 100 messages. */
const deep = fc.integer({ min: 10, max: 40 }).map((n) => {
  let v: object = { stringValue: "bottom" };
  for (let i = 0; i < n; i++) v = i % 2 ? { structValue: { fields: { d: v } } } : { listValue: { values: [v] } };
  return v;
});
const instanceIps = fc.oneof(
  fc.array(ipish, { maxLength: 12 }).chain((ips) => fc.constantFrom(",", ";", " ", ", ").map((sep) => ({ stringValue: ips.join(sep) }))),
  fc.array(fc.oneof(ipish.map((s) => ({ stringValue: s })), structValue), { maxLength: 6 }).map((values) => ({ listValue: { values } })),
  fc.integer({ min: 200, max: 400 }).map((n) => ({ stringValue: Array.from({ length: n }, (_, i) => `10.9.${i >> 8}.${i & 255}`).join(",") })),
  structValue, deep, text.map((s) => ({ stringValue: s })),
);
const metadata = fc.record({
  INSTANCE_IPS: instanceIps,
  extra: fc.dictionary(fc.string({ maxLength: 10 }), fc.oneof(structValue, deep), { maxKeys: 3 }),
}, { requiredKeys: [] }).map(({ INSTANCE_IPS, extra }) => ({ fields: { ...extra, ...(INSTANCE_IPS ? { INSTANCE_IPS } : {}) } }));
const nodeId = fc.oneof(
  fc.tuple(fc.constantFrom("sidecar", "router", "ingress", "other"), ipish, fc.string({ maxLength: 10 })).map(([t, ip, name]) => `${t}~${ip}~${name}.default~default.svc.cluster.local`),
  text, fc.constant(""),
);
const xdsNode = fc.record({ id: nodeId, cluster: text, metadata }, { requiredKeys: [] });
const typeUrl = fc.oneof(fc.constantFrom(...KNOWN_TYPES), fc.constantFrom(...KNOWN_TYPES), text);
const nonce = fc.oneof(fc.constantFrom("", "1", "2", "3"), text);
const names = fc.oneof(fc.array(fc.oneof(fc.constantFrom("virtual", "10.75.8.101_9080", "outbound|9081||service-b.example", "loop_guard", "*"), text), { maxLength: 6 }), fc.constant(MANY_NAMES));
const errorDetail = fc.option(fc.record({ code: fc.integer({ min: 0, max: 20 }), message: text }), { nil: undefined });
const sotwRequest = fc.record({ node: xdsNode, type_url: typeUrl, response_nonce: nonce, version_info: nonce, resource_names: names, error_detail: errorDetail }, { requiredKeys: ["type_url"] });
const deltaRequest = fc.record({
  node: xdsNode, type_url: typeUrl, response_nonce: nonce, resource_names_subscribe: names, resource_names_unsubscribe: names,
  initial_resource_versions: fc.dictionary(text, text, { maxKeys: 4 }), error_detail: errorDetail,
}, { requiredKeys: ["type_url"] });
/**
 * A DiscoveryRequest whose node.metadata nests `levels` structs, encoded by hand: deeper than protobufjs
 * encodes (or decodes: the server must turn it away without a stack overflow).
 */
function deeplyNestedRequest(levels: number): Uint8Array {
  const varint = (n: number) => { const out: number[] = []; while (n > 127) { out.push((n & 127) | 128); n >>>= 7; } out.push(n); return out; };
  const field = (num: number, body: number[] | Buffer) => [(num << 3) | 2, ...varint(body.length), ...body];
  let value = field(3, Buffer.from("bottom")); // Value.string_value
  for (let i = 0; i < levels; i++) value = field(5, field(1, [...field(1, Buffer.from("d")), ...field(2, value)])); // Value.struct_value{fields{"d": value}}
  const metadata = field(1, [...field(1, Buffer.from("DEEP")), ...field(2, value)]);
  const nodeBytes = [...field(1, Buffer.from("sidecar~10.0.0.1~deep.default~default.svc.cluster.local")), ...field(3, metadata)];
  return Uint8Array.from([...field(2, nodeBytes), ...field(4, Buffer.from(TYPE_URL.listener))]);
}
const rawFrame = fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(deeplyNestedRequest(60), deeplyNestedRequest(3000)));

const session = fc.oneof(
  fc.record({ protocol: fc.constant("sotw" as const), requests: fc.array(sotwRequest, { minLength: 1, maxLength: 4 }) }),
  fc.record({ protocol: fc.constant("delta" as const), requests: fc.array(deltaRequest, { minLength: 1, maxLength: 4 }) }),
  fc.record({ protocol: fc.constant("raw" as const), requests: fc.array(rawFrame, { minLength: 1, maxLength: 3 }) }),
);

/** Runs one stream: writes the requests, reads until it ends or goes quiet; returns the status it ended with. */
function runSession(client: AdsClient, s: { protocol: "sotw" | "delta"; requests: object[] }): Promise<grpc.ServiceError | undefined> {
  return new Promise((resolve) => {
    const call = s.protocol === "sotw" ? client.StreamAggregatedResources() : client.DeltaAggregatedResources();
    let quiet: NodeJS.Timeout | undefined;
    const done = (e?: grpc.ServiceError) => { clearTimeout(quiet); clearTimeout(limit); call.cancel(); resolve(e); };
    const limit = setTimeout(() => done(), 500);
    call.on("error", (e: grpc.ServiceError) => done(e.code === grpc.status.CANCELLED ? undefined : e));
    call.on("data", () => { clearTimeout(quiet); quiet = setTimeout(() => done(), 20); });
    for (const r of s.requests) call.write(r);
    quiet = setTimeout(() => done(), 50);
  });
}

const Listener = loadEnvoyProtos().lookupType("envoy.config.listener.v3.Listener");

/** What the healthy proxy gets, over both protocols: listener names and the LDS version. */
async function healthyConfig(client: AdsClient): Promise<{ sotw: string; delta: string }> {
  const first = (protocol: "sotw" | "delta") => new Promise<any>((resolve, reject) => {
    const call = protocol === "sotw" ? client.StreamAggregatedResources() : client.DeltaAggregatedResources();
    const timer = setTimeout(() => { call.cancel(); reject(new Error(`healthy ${protocol} proxy got no listeners within 5 s`)); }, 5000);
    call.on("error", (e: grpc.ServiceError) => { if (e.code !== grpc.status.CANCELLED) reject(e); });
    call.on("data", (res: any) => { clearTimeout(timer); call.cancel(); resolve(res); });
    call.write({ node: node(HEALTHY, "10.75.8.101"), type_url: TYPE_URL.listener });
  });
  const [sotw, delta] = await Promise.all([first("sotw"), first("delta")]);
  const decodeName = (any: { value: Buffer }) => (Listener.decode(any.value) as unknown as { name: string }).name;
  return {
    sotw: `${sotw.version_info} ${sotw.resources.map(decodeName).sort().join(",")}`,
    delta: `${delta.system_version_info} ${(delta.resources ?? []).map((r: any) => r.name).sort().join(",")}`,
  };
}

test("random xDS streams: the control plane stays up, answers within its limits, and keeps serving a healthy proxy", async () => {
  const entry = (name: string, port: number, ip: string) => `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${name}}\nspec:\n  hosts: [${name}.example]\n  ports: [{number: ${port}, name: tcp}]\n  resolution: STATIC\n  endpoints: [{address: ${ip}}]\n---\n`;
  const dir = tempRegistryDir({ "r.yaml": entry("service-a", 9080, "10.75.8.101") + entry("service-b", 9081, "10.75.8.102") });
  let logBytes = 0;
  const cp: ControlPlane = await serve({ registry: dir, xdsPort: 0, httpPort: 0, log: (l) => { logBytes += l.length + 1; } });
  const client = adsClient(`127.0.0.1:${cp.xds.port}`);
  let streams = 0;
  const statuses = new Map<string, number>();
  try {
    const want = await healthyConfig(client);
    assert.match(want.sotw, /10\.75\.8\.101_9080/, "the healthy proxy's inbound listener");
    const heapBefore = heapAfterGc();
    const logBefore = logBytes;

    const run = await fc.check(fc.asyncProperty(session, async (s) => {
      streams++;
      if (s.protocol === "raw") {
        const raw = slowReader(cp.xds.port, "StreamAggregatedResources");
        for (const bytes of s.requests) raw.writeFrame(bytes);
        await new Promise((r) => setTimeout(r, 20));
        raw.close();
      } else {
        const e = await runSession(client, s);
        if (e) {
          statuses.set(grpc.status[e.code]!, (statuses.get(grpc.status[e.code]!) ?? 0) + 1);
          assert.ok(ALLOWED.has(e.code), `status ${grpc.status[e.code]}: ${e.details}`);
          assert.ok(e.details.length < 400, `status details stay short (${e.details.length})`);
        }
      }
      if (streams % 10 === 0) assert.equal(await healthyConfig(client), want, "the healthy proxy still gets its config");
    }), { numRuns: 100_000, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: false, endOnFailure: true });
    if (run.failed) {
      throw new Error(`${String((run.errorInstance as Error)?.message ?? run.errorInstance).slice(0, 1000)}\n  for ${JSON.stringify(run.counterexample?.[0])?.slice(0, 1000)} (seed ${run.seed})`);
    }

    assert.equal(await healthyConfig(client), want, "the healthy proxy still gets its config");
    assert.is((await fetch(`${cp.httpUrl}/healthz`)).status, 200);
    const clean = await waitFor(() => cp.openStreams() === 0 && cp.view.proxies().length === 0 && cp.cache.watcherCount() === 0 && cp.cachedGenerations() === 0, 10_000);
    assert.ok(clean, `left behind: streams=${cp.openStreams()} proxies=${cp.view.proxies().length} watchers=${cp.cache.watcherCount()} generations=${cp.cachedGenerations()}`);
    const heapGrowth = heapAfterGc() - heapBefore;
    const logPerStream = (logBytes - logBefore) / streams;
    console.log(`    ${streams} random streams (${[...statuses].map(([k, v]) => `${v} ${k}`).join(", ")}); heap ${(heapGrowth / 2 ** 20).toFixed(1)} MiB, log ${logPerStream.toFixed(0)} bytes per stream`);
    assert.ok(streams >= 50, `only ${streams} streams ran`);
    assert.ok(heapGrowth < 32 * 2 ** 20, `heap grew by ${(heapGrowth / 2 ** 20).toFixed(1)} MiB`);
    assert.ok(logPerStream < 2048, `${logPerStream.toFixed(0)} bytes of log per stream`);
  } finally {
    client.close();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
