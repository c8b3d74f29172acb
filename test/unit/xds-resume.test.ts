// An Envoy re-opening its stream with the versions it already holds (it failed over from another
// replica, or this one restarted) gets nothing until something changes: SotW by version_info, delta
// by initial_resource_versions. A version that is not current is answered as usual.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";
import { adsClient, node, type AdsClient } from "../support/ads-client.ts";
import { tempRegistryDir } from "../support/control.ts";
import { waitFor } from "../support/net.ts";

const entry = (name: string, port: number) => `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${name}}\nspec:\n  hosts: [${name}.example]\n  ports: [{number: ${port}, name: tcp}]\n  resolution: STATIC\n  endpoints: [{address: 10.1.0.1}]\n---\n`;
const ID = "sidecar~10.9.0.1~resume.default~default.svc.cluster.local";

interface Plane {
  cp: ControlPlane;
  client: AdsClient;
  dir: string;
  edit(text: string): void;
  close(): Promise<void>;
}

async function plane(): Promise<Plane> {
  const dir = tempRegistryDir({ "r.yaml": entry("a", 9080) });
  const cp = await serve({ registry: dir, xdsPort: 0, httpPort: false, loopGuard: false, log: () => {} });
  const client = adsClient(`127.0.0.1:${cp.xds.port}`);
  return {
    cp, client, dir,
    edit: (text) => writeFileSync(join(dir, "r.yaml"), text),
    async close() {
      client.close();
      await cp.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Responses of one stream, in order, as they arrive. */
function collect(call: { on(event: string, fn: (x: any) => void): unknown }): any[] {
  const got: any[] = [];
  call.on("data", (res: any) => got.push(res));
  call.on("error", () => {});
  return got;
}

/** What /debug/proxies says of the proxy's clusters (without the time). */
const held = (cp: ControlPlane) => {
  const { updatedAt: _at, ...rest } = cp.view.proxies()[0]!.types.cds!;
  return rest;
};

/** The stream is open and its snapshot stored: the control plane has decided whether to answer. */
const decided = (cp: ControlPlane) => waitFor(() => cp.openStreams() === 1 && cp.cache.streamIds().length === 1, 5000);

test("SotW: a stream re-opened with the current version_info gets no response until a change; a stale one is answered", async () => {
  const p = await plane();
  try {
    const first = p.client.StreamAggregatedResources();
    const firstGot = collect(first);
    first.write({ node: node(ID), type_url: TYPE_URL.cluster });
    assert.ok(await waitFor(() => firstGot.length === 1, 5000));
    const version: string = firstGot[0].version_info;
    first.cancel();
    assert.ok(await waitFor(() => p.cp.openStreams() === 0, 5000));

    const again = p.client.StreamAggregatedResources();
    const got = collect(again);
    again.write({ node: node(ID), type_url: TYPE_URL.cluster, version_info: version });
    assert.ok(await decided(p.cp));
    assert.equal(held(p.cp), { state: "ACK", sentVersion: version, ackedVersion: version, nonce: "", resources: firstGot[0].resources.length }, "/debug/proxies: the version the proxy holds");
    p.edit(entry("a", 9080) + entry("b", 9081));
    assert.ok(await waitFor(() => got.length > 0, 5000), "the change is sent");
    assert.is.not(got[0].version_info, version, "the first response is the change, not what the proxy held");
    assert.is(got[0].resources.length, firstGot[0].resources.length + 1);
    again.cancel();
    assert.ok(await waitFor(() => p.cp.openStreams() === 0, 5000));

    const stale = p.client.StreamAggregatedResources();
    const staleGot = collect(stale);
    stale.write({ node: node(ID), type_url: TYPE_URL.cluster, version_info: version });
    assert.ok(await waitFor(() => staleGot.length === 1, 5000), "a version that is not current is answered");
    assert.is(staleGot[0].version_info, got[0].version_info);
    stale.cancel();
  } finally {
    await p.close();
  }
});

test("SotW: a re-opened stream that asks for more endpoints than its version_info covered gets them", async () => {
  // Envoy learns a new cluster by CDS, and its stream ends before the endpoints of that cluster arrive;
  // re-opened, it names both clusters with the EDS version it holds, which covers the first one only.
  const p = await plane();
  try {
    p.edit(entry("a", 9080) + entry("b", 9081));
    const [a, b] = ["outbound|9080||a.example", "outbound|9081||b.example"];
    const first = p.client.StreamAggregatedResources();
    const firstGot = collect(first);
    // Clusters first, as Envoy asks: once both are there, the stream's snapshot has both services.
    first.write({ node: node(ID), type_url: TYPE_URL.cluster });
    const hasB = () => firstGot.some((r) => r.type_url === TYPE_URL.cluster && r.resources.length >= 2);
    assert.ok(await waitFor(hasB, 5000), "both clusters");
    const cds = firstGot.filter((r) => r.type_url === TYPE_URL.cluster).at(-1);
    first.write({ type_url: TYPE_URL.cluster, version_info: cds.version_info, response_nonce: cds.nonce });
    first.write({ type_url: TYPE_URL.endpoint, resource_names: [a] });
    const eds = () => firstGot.filter((r) => r.type_url === TYPE_URL.endpoint);
    assert.ok(await waitFor(() => eds().length === 1, 5000));
    assert.is(eds()[0].resources.length, 1);
    const version: string = eds()[0].version_info;
    first.cancel();
    assert.ok(await waitFor(() => p.cp.openStreams() === 0, 5000));

    const again = p.client.StreamAggregatedResources();
    const got = collect(again);
    again.write({ node: node(ID), type_url: TYPE_URL.endpoint, resource_names: [a, b], version_info: version });
    assert.ok(await waitFor(() => got.length === 1, 5000), "the endpoints it lacks are sent");
    assert.is(got[0].resources.length, 2);
    assert.is.not(got[0].version_info, version);
    again.cancel();
  } finally {
    await p.close();
  }
});

test("delta: a stream re-opened with current initial_resource_versions gets no response until a change; what changed is sent", async () => {
  const p = await plane();
  try {
    const first = p.client.DeltaAggregatedResources();
    const firstGot = collect(first);
    first.write({ node: node(ID), type_url: TYPE_URL.cluster });
    assert.ok(await waitFor(() => firstGot.length === 1, 5000));
    const versions: Record<string, string> = Object.fromEntries(firstGot[0].resources.map((r: any) => [r.name, r.version]));
    assert.ok(Object.keys(versions).length > 0);
    first.cancel();
    assert.ok(await waitFor(() => p.cp.openStreams() === 0, 5000));

    const again = p.client.DeltaAggregatedResources();
    const got = collect(again);
    again.write({ node: node(ID), type_url: TYPE_URL.cluster, initial_resource_versions: versions });
    assert.ok(await decided(p.cp));
    assert.equal(held(p.cp), { state: "ACK", sentVersion: firstGot[0].system_version_info, ackedVersion: firstGot[0].system_version_info, nonce: "", resources: Object.keys(versions).length });
    p.edit(entry("a", 9080) + entry("b", 9081));
    assert.ok(await waitFor(() => got.length > 0, 5000), "the change is sent");
    assert.equal(got[0].resources.map((r: any) => r.name), ["outbound|9081||b.example"], "only what changed, not an empty first response");
    again.cancel();
    assert.ok(await waitFor(() => p.cp.openStreams() === 0, 5000));

    // Held versions of which one is stale and one is gone: those are sent and removed.
    const stale = p.client.DeltaAggregatedResources();
    const staleGot = collect(stale);
    stale.write({ node: node(ID), type_url: TYPE_URL.cluster, initial_resource_versions: { ...versions, "outbound|9081||b.example": "old", "outbound|1||gone.example": "x" } });
    assert.ok(await waitFor(() => staleGot.length === 1, 5000));
    assert.equal(staleGot[0].resources.map((r: any) => r.name), ["outbound|9081||b.example"]);
    assert.equal(staleGot[0].removed_resources, ["outbound|1||gone.example"]);
    stale.cancel();
  } finally {
    await p.close();
  }
});

test.run();
