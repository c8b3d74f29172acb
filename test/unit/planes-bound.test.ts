// A proxy's bound clusters (planes with bindSource) are the shared clusters' bytes with its source
// address appended (protobuf merges a message field written twice), and the streams send them like
// any cluster: all at first, only what changed after (delta), the source
// dropped when the plane stops binding and added when it binds again; SotW with each proxy's own source.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Encoder } from "../../control/xds/cache/encode.ts";
import { BoundType, Layer, packBoundBase, Packer, Snapshot, versionOfNames } from "../../control/xds/cache/snapshot.ts";
import { loadEnvoyProtos, TYPE_URL } from "../../control/xds/cache/protos.ts";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { adsClient, node, type AdsClient } from "../support/ads-client.ts";
import { tempRegistryDir } from "../support/control.ts";
import { waitFor } from "../support/net.ts";

const root = loadEnvoyProtos();
const ClusterType = root.lookupType("envoy.config.cluster.v3.Cluster");
const decode = (value: Uint8Array) => ClusterType.toObject(ClusterType.decode(value), { longs: Number, enums: String, defaults: false });

const se = (name: string, address: string, protocol = "TCP") => `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${name}, namespace: default}\nspec:\n  hosts: [${name}.example]\n  ports: [{number: 5060, name: p, protocol: ${protocol}}]\n  resolution: STATIC\n  endpoints: [{address: ${address}}]\n---\n`;
const PLANES = (bind: boolean) => `planes:\n- name: data\n  cidrs: [172.20.0.0/16, 10.75.8.0/24]\n  dscp: 46\n  bindSource: ${bind}\n- name: management\n  cidrs: [192.168.10.0/24]\n`;
const ID = "sidecar~192.168.10.63~app.default~default.svc.cluster.local";

let dir: string;
let planesFile: string;
let cp: ControlPlane;
let client: AdsClient;

test.before(async () => {
  dir = tempRegistryDir({ "r.yaml": se("media", "172.20.0.5") + se("video", "172.20.0.6") + se("console", "192.168.10.20") });
  planesFile = `${dir}.planes.yaml`;
  writeFileSync(planesFile, PLANES(true));
  cp = await serve({ registry: dir, planesFile, xdsPort: 0, httpPort: false, loopGuard: false, log: () => {} });
  client = adsClient(`127.0.0.1:${cp.xds.port}`);
});

test.after(async () => {
  client?.close();
  await cp?.stop();
  rmSync(dir, { recursive: true, force: true });
  rmSync(planesFile, { force: true });
});

/** Clusters by name, decoded from a response's entries (delta: Resource.resource, SotW: the Any). */
const clustersOf = (res: any): Map<string, any> => new Map((res.resources ?? []).map((r: any) => {
  const c = decode((r.resource ?? r).value);
  return [c.name as string, c];
}));

/** The first response of a delta stream for `id`. */
async function firstClusters(call: any, id: string, ips: string): Promise<any> {
  const got: any[] = [];
  call.on("data", (r: any) => got.push(r));
  call.on("error", () => {});
  call.write({ node: node(id, ips), type_url: TYPE_URL.cluster });
  try {
    assert.ok(await waitFor(() => got.length === 1, 5000));
    return got[0];
  } finally {
    call.cancel();
  }
}

test("a proxy's bound clusters are the shared bytes with its source appended, and change like any cluster", async () => {
  const encoder = new Encoder(root);
  const call = client.DeltaAggregatedResources();
  const got: any[] = [];
  call.on("data", (r: any) => { got.push(r); call.write({ type_url: r.type_url, response_nonce: r.nonce }); });
  call.on("error", () => {});
  call.write({ node: node(ID, "192.168.10.63,10.75.8.101"), type_url: TYPE_URL.cluster });
  try {
    assert.ok(await waitFor(() => got.length === 1, 5000));
    const first = clustersOf(got[0]);
    assert.equal([...first.keys()].sort(), ["BlackHoleCluster", "PassthroughCluster", "outbound|5060||console.example", "outbound|5060||media.example", "outbound|5060||video.example"]);
    // protobufjs keeps the last instance of a message field where the protobuf spec (and Envoy) merges
    // them, so only the source is read back here; the netns test reads Envoy's merged cluster.
    assert.equal(first.get("outbound|5060||media.example").upstream_bind_config.source_address, { address: "10.75.8.101", port_value: 0 });
    assert.is(first.get("outbound|5060||console.example").upstream_bind_config, undefined);
    // Byte for byte: the cluster a proxy without a data IP gets (the shared one), then the source.
    const shared = await firstClusters(client.DeltaAggregatedResources(), "sidecar~192.168.10.64~mgmt.default~default.svc.cluster.local", "192.168.10.64");
    const raw = (res: any, name: string) => Buffer.from(res.resources.find((r: any) => r.name === name).resource.value);
    const source = encoder.encode(TYPE_URL.cluster, { upstream_bind_config: { source_address: { address: "10.75.8.101", port_value: 0 } } });
    assert.equal(raw(got[0], "outbound|5060||media.example"), Buffer.concat([raw(shared, "outbound|5060||media.example"), source]));
    assert.equal(raw(got[0], "outbound|5060||console.example"), raw(shared, "outbound|5060||console.example"), "unbound clusters as everyone's");

    // One bound cluster changes (its protocol): only it is sent, still bound.
    writeFileSync(join(dir, "r.yaml"), se("media", "172.20.0.5", "HTTP2") + se("video", "172.20.0.6") + se("console", "192.168.10.20"));
    assert.ok(await waitFor(() => got.length === 2, 5000), "one more CDS response");
    const changed = clustersOf(got[1]);
    assert.equal([...changed.keys()], ["outbound|5060||media.example"]);
    assert.equal(changed.get("outbound|5060||media.example").upstream_bind_config.source_address.address, "10.75.8.101");
    assert.equal(got[1].removed_resources ?? [], []);

    // The plane stops binding: the data plane's clusters come again without a source, nothing removed.
    writeFileSync(planesFile, PLANES(false));
    assert.ok(await waitFor(() => got.length === 3, 5000), "the reshaped clusters");
    const unbound = clustersOf(got[2]);
    assert.equal([...unbound.keys()].sort(), ["outbound|5060||media.example", "outbound|5060||video.example"]);
    for (const c of unbound.values()) assert.equal(c.upstream_bind_config.source_address, undefined);
    assert.equal(got[2].removed_resources ?? [], []);
    writeFileSync(planesFile, PLANES(true));
    assert.ok(await waitFor(() => got.length === 4, 5000), "bound again");
    assert.equal([...clustersOf(got[3]).values()].map((c) => c.upstream_bind_config.source_address.address), ["10.75.8.101", "10.75.8.101"]);
  } finally {
    call.cancel();
  }
});

test("SotW: every cluster in each response, the bound ones with the proxy's own source; two proxies, two sources", async () => {
  const streams = ["10.75.8.101", "10.75.8.102"].map((ip, i) => {
    const call = client.StreamAggregatedResources();
    const got: any[] = [];
    call.on("data", (r: any) => got.push(r));
    call.on("error", () => {});
    call.write({ node: node(`sidecar~192.168.10.${70 + i}~app-${i}.default~default.svc.cluster.local`, `192.168.10.${70 + i},${ip}`), type_url: TYPE_URL.cluster });
    return { call, got, ip };
  });
  try {
    for (const s of streams) {
      assert.ok(await waitFor(() => s.got.length === 1, 5000));
      const clusters = clustersOf(s.got[0]);
      assert.is(clusters.size, 5);
      assert.is(clusters.get("outbound|5060||video.example").upstream_bind_config.source_address.address, s.ip);
    }
    assert.is.not(streams[0]!.got[0].version_info, streams[1]!.got[0].version_info, "the source is part of the version");
  } finally {
    for (const s of streams) s.call.cancel();
  }
});

test("a bound type's version is the sum of its derived resources' hashes, as any type's (exact past 2^53)", () => {
  const packer = new Packer(new Encoder(root));
  const clusters = Array.from({ length: 5000 }, (_, i) => ({ name: `outbound|${i}||s${i}.example`, type: "EDS" as const, eds_cluster_config: { eds_config: { ads: {} } } }));
  const base = packBoundBase(packer, TYPE_URL.cluster, clusters, Layer.EMPTY);
  const suffix = Buffer.from(new Encoder(root).encode(TYPE_URL.cluster, { upstream_bind_config: { source_address: { address: "10.75.8.101", port_value: 0 } } }));
  const bound = new BoundType(TYPE_URL.cluster, [{ base, suffix, mix: 2 ** 52 - 7 }]);
  const snap = new Snapshot(Layer.EMPTY, Layer.EMPTY, [bound]).get(TYPE_URL.cluster)!;
  assert.is(snap.version, versionOfNames(bound.resources, clusters.map((c) => c.name)));
  assert.is(snap.resources.size, 5000);
  const r = snap.resources.get("outbound|7||s7.example")!;
  assert.equal(r.any.value, Buffer.concat([base.resources.get("outbound|7||s7.example")!.any.value, suffix]));
  assert.is.not(r.hash, base.resources.get("outbound|7||s7.example")!.hash);
});

test.run();
