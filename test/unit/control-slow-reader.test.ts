// A proxy that stops reading must not make the control plane keep every version it was sent: per
// stream and type, at most one response is on its way and the newest snapshot waits as a mark, so
// 60 changes of 400 KiB each cost the server about one change. When the proxy reads again it gets
// the newest version (SotW) or deltas that add up to it (delta), not the history.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";
import type { Snapshot } from "../../control/xds/cache/snapshot.ts";
import { node } from "../support/ads-client.ts";
import { retainedBytes } from "../support/memory.ts";
import { waitFor } from "../support/net.ts";
import { slowReader, stallingRelay, type SlowReader } from "../support/slow-reader.ts";
import { tempRegistryDir } from "../support/control.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { snapshotOf } from "../support/snapshot.ts";


const CHANGES = 60;
const ID = "sidecar~10.0.0.7~stuck.default~default.svc.cluster.local";

/** Version i: a "keep" listener plus one of 400 KiB named after i (so delta must add one and remove one). */
function version(i: number): Snapshot {
  const listener = (name: string, filler: string) => ({ name, stat_prefix: filler, address: { socket_address: { address: "127.0.0.1", port_value: 10000 } } });
  return snapshotOf({ listeners: [listener("keep", "k"), listener(`l${i}`, `${i}:`.padEnd(400 * 1024, "x"))], clusters: [], endpoints: [], routes: [], extensionConfigs: [] });
}

async function stuckClientScenario(protocol: "sotw" | "delta"): Promise<{ cp: ControlPlane; client: SlowReader; grew: number; last: Snapshot }> {
  const cp = await serve({ xdsPort: 0, httpPort: false, loopGuard: false, log: () => {} });
  const client = slowReader(cp.xds.port, protocol === "sotw" ? "StreamAggregatedResources" : "DeltaAggregatedResources");
  client.write({ node: node(ID, "10.0.0.7"), type_url: TYPE_URL.listener });
  assert.ok(await waitFor(() => client.responses.length === 1, 5000), "first response");
  client.pause();
  const before = retainedBytes();
  let last = version(0);
  const streamId = cp.view.proxies()[0]!.streams[0]!.streamId;
  for (let i = 1; i <= CHANGES; i++) {
    last = version(i);
    cp.cache.set(streamId, last);
    await new Promise((r) => setImmediate(r)); // let the server write what it may
  }
  const grew = retainedBytes() - before;
  return { cp, client, grew, last };
}

for (const protocol of ["sotw", "delta"] as const) {
  test(`${protocol}: a proxy that stops reading costs the server one pending version, then gets the newest`, async () => {
    const { cp, client, grew, last } = await stuckClientScenario(protocol);
    try {
      // 60 versions of ~400 KiB were pushed at a proxy that reads nothing; the server keeps about one.
      assert.ok(grew < 8 * 2 ** 20, `server memory grew by ${(grew / 2 ** 20).toFixed(1)} MiB`);
      const seen = client.responses.length;
      client.resume();
      const want = last.get(TYPE_URL.listener)!;
      if (protocol === "sotw") {
        assert.ok(await waitFor(() => client.responses.at(-1)?.version_info === want.version, 10_000), "the newest version arrives");
        const names = client.responses.at(-1)!.resources.length;
        assert.is(names, 2);
      } else {
        // Apply the deltas in order, as Envoy does: the result must be the newest snapshot's listeners.
        const held = new Map<string, string>();
        const apply = () => {
          held.clear();
          for (const r of client.responses) {
            for (const x of r.resources ?? []) held.set(x.name, x.version);
            for (const name of r.removed_resources ?? []) held.delete(name);
          }
          return [...held.keys()].sort().join(",");
        };
        assert.ok(await waitFor(() => apply() === `keep,l${CHANGES}`, 10_000), `held after the deltas: ${apply()}`);
        assert.is(held.get(`l${CHANGES}`), want.resources.get(`l${CHANGES}`)!.hash);
      }
      // Coalesced: a handful of responses after the pause, not one per change.
      assert.ok(client.responses.length - seen <= 3, `${client.responses.length - seen} responses after resuming`);
    } finally {
      client.close();
      await cp.stop();
    }
  });
}

// The same through the whole pipeline, as a stuck Envoy is stuck: it announced 256 MiB HTTP/2 windows
// and stopped reading its TCP connection, and the registry changes through the HTTP API. Twenty such
// proxies over 150 changes must cost the server a few of their configs, not one per change (the
// server once held about one full response per change per stream: 150 MB here).
test("proxies stuck at the socket with Envoy's windows cost about one config each over 150 registry changes", async () => {
  const SERVICES = 400, STREAMS = 20, CHANGES = 150;
  const entry = (name: string, ip: string, host = name) => `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${name}, namespace: default}\nspec:\n  hosts: [${host}.default.svc.cluster.local]\n  ports: [{number: 9080, name: tcp, protocol: TCP}]\n  resolution: STATIC\n  endpoints: [{address: ${ip}}]\n`;
  const registry = tempRegistryDir({ "mesh.yaml": Array.from({ length: SERVICES }, (_, i) => entry(`s${i}`, `10.1.${i >> 8}.${i & 255}`)).join("---\n") });
  const apiDir = mkdtempSync(join(tmpdir(), "mp-api-"));
  const cp = await serve({ registry, apiDir, token: "t", xdsPort: 0, httpPort: 0, loopGuard: false, log: () => {} });
  const relay = await stallingRelay(cp.xds.port);
  const clients: SlowReader[] = [];
  try {
    for (let s = 0; s < STREAMS; s++) {
      const ip = `10.9.0.${s + 1}`;
      const c = slowReader(relay.port, "StreamAggregatedResources", { windowBytes: 2 ** 28 });
      c.write({ node: node(`sidecar~${ip}~p${s}.default~default.svc.cluster.local`, ip), type_url: TYPE_URL.cluster });
      clients.push(c);
    }
    assert.ok(await waitFor(() => clients.every((c) => c.responses.length === 1), 10_000), "first responses");
    const configBytes = clients[0]!.responses[0].resources.reduce((n: number, r: { value: Uint8Array }) => n + r.value.length, 0);
    relay.stall();
    const before = retainedBytes();
    for (let i = 0; i < CHANGES; i++) {
      // Each change renames a service every proxy sees: a new CDS version for each.
      const r = await fetch(`${cp.httpUrl}/registry/serviceentries/default/moved`, { method: "PUT", body: entry("moved", "10.2.0.1", `moved-${i}`), headers: { authorization: "Bearer t" } });
      assert.is(r.status, 200, await r.text());
    }
    assert.ok(await waitFor(() => cp.store.version >= CHANGES, 10_000), "every change applied");
    await new Promise((r) => setTimeout(r, 500)); // let the streams write what the sockets take
    const grew = retainedBytes() - before;
    const perChange = STREAMS * CHANGES * configBytes;
    assert.ok(grew < perChange / 10, `server memory grew by ${(grew / 2 ** 20).toFixed(1)} MiB; one config per change and stream would be ${(perChange / 2 ** 20).toFixed(0)} MiB`);
  } finally {
    for (const c of clients) c.close();
    await relay.close();
    await cp.stop();
    rmSync(registry, { recursive: true, force: true });
    rmSync(apiDir, { recursive: true, force: true });
  }
});

test.run();
