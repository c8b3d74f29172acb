// control/xds/cache/encode.ts against protobufjs's own encoder: for generated resources the bytes decode
// to the same message, unknown fields are errors (protobufjs would drop them silently), and
// shared constants encode to the same bytes they always did.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { Encoder } from "../../control/xds/cache/encode.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";
import { encodeOnce } from "../../control/generation/envoy-objects.ts";
import { generate } from "../../control/generation/generate.ts";
import { generationOptions } from "../../control/generation/options.ts";
import { registryFrom, sidecar } from "../support/registry.ts";

const encoder = new Encoder();
const root = encoder.root;
const encode = (typeUrl: string, obj: object) => encoder.encode(typeUrl, obj);
const decoded = (typeUrl: string, bytes: Uint8Array) => {
  const type = root.lookupType(typeUrl.slice(typeUrl.lastIndexOf("/") + 1));
  // json: Any payloads are expanded, so field order inside them does not matter; empty and absent
  // bytes are the same in proto3.
  return JSON.stringify(type.toObject(type.decode(bytes), { json: true, enums: String, longs: String, bytes: String }))
    .replace(/,"value":""/g, "");
};
const reference = (typeUrl: string, obj: object) => {
  const type = root.lookupType(typeUrl.slice(typeUrl.lastIndexOf("/") + 1));
  return type.encode(type.fromObject(obj)).finish();
};

const IPS = ["10.0.0.1", "10.75.8.101", "192.168.10.63", "fd00::1", "127.0.0.5"];
const scenario = fc.record({
  services: fc.uniqueArray(fc.record({
    name: fc.constantFrom("a", "b", "c", "d"),
    port: fc.integer({ min: 1, max: 65535 }),
    targetPort: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
    endpoints: fc.subarray(IPS, { maxLength: 3 }),
  }), { selector: (s) => s.name, maxLength: 4 }),
  nodeIps: fc.subarray(IPS, { minLength: 1, maxLength: 3 }),
  guard: fc.boolean(),
  timeoutMs: fc.integer({ min: 1, max: 60_000 }),
});

test("generated resources encode to the same messages as protobufjs's encoder", () => {
  fc.assert(fc.property(scenario, (s) => {
    const registry = registryFrom(s.services.map((x) => ({
      name: x.name,
      ports: [{ number: x.port, name: "tcp", ...(x.targetPort ? { targetPort: x.targetPort } : {}) }],
      endpoints: x.endpoints.map((address) => ({ address })),
    })));
    const options = generationOptions({
      connectTimeoutMs: s.timeoutMs,
      ...(s.guard ? { loopGuard: { wasmPath: "/x/loop-guard.wasm", mode: "observe" as const } } : {}),
    });
    const r = generate(sidecar(s.nodeIps[0]!, s.nodeIps.join(",")), registry, options);
    const typed: [string, readonly object[]][] = [[TYPE_URL.listener, r.listeners], [TYPE_URL.cluster, r.clusters], [TYPE_URL.endpoint, r.endpoints], [TYPE_URL.extensionConfig, r.extensionConfigs]];
    for (const [typeUrl, list] of typed) {
      for (const obj of list) assert.is(decoded(typeUrl, encode(typeUrl, obj)), decoded(typeUrl, reference(typeUrl, obj)));
    }
  }), { numRuns: 200 });
});

test("an unknown field is an error naming the path, not silently dropped", () => {
  assert.throws(() => encode(TYPE_URL.cluster, { name: "c", connect_timeout: { seconds: 1, nanoz: 5 } }), /Cluster\.connect_timeout: google\.protobuf\.Duration has no field "nanoz"/);
  assert.throws(() => encode(TYPE_URL.cluster, { name: "c", type: "NOT_A_TYPE" }), /"NOT_A_TYPE" is not a DiscoveryType value/);
  assert.throws(() => encode(TYPE_URL.listener, { name: 5 }), /expected a string/);
});

test("a shared constant (encodeOnce) encodes identically wherever it appears", () => {
  const shared = encodeOnce({ "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", stat_prefix: "s", cluster: "c" });
  const listener = (name: string) => ({ name, filter_chains: [{ filters: [{ name: "tcp", typed_config: shared }] }] });
  const a = encode(TYPE_URL.listener, listener("a"));
  const b = encode(TYPE_URL.listener, listener("a"));
  assert.equal(Buffer.from(a), Buffer.from(b));
  assert.is(decoded(TYPE_URL.listener, a), decoded(TYPE_URL.listener, reference(TYPE_URL.listener, listener("a"))));
});

test.run();
