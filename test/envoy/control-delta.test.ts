// Delta (incremental) xDS with a real Envoy (ads_config api_type DELTA_GRPC): the seed's inbound
// listener arrives, a registry edit sends only what changed and removes what is gone, and delta
// streams are cleaned up like state-of-the-world ones.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { serve } from "../../control/serve/serve.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";
import { adsClient, node } from "../support/ads-client.ts";
import { startEnvoy } from "../support/envoy.ts";
import { freePort, waitFor } from "../support/net.ts";
import { envoyClusterNames, envoyListeners, SEED_NODE_ID, sidecarBootstrap, tempRegistryDir } from "../support/control.ts";

const entry = (name: string, port: number, ip: string) => `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${name}}\nspec:\n  hosts: [${name}.example]\n  ports: [{number: ${port}, name: tcp}]\n  resolution: STATIC\n  endpoints: [{address: ${ip}}]\n---\n`;

test("Envoy on delta xDS gets the seed's inbound listener; edits add and remove resources incrementally", async () => {
  const dir = tempRegistryDir({ "r.yaml": entry("service-a", 9080, "10.75.8.101") + entry("service-b", 9081, "10.75.8.102") });
  const logs: string[] = [];
  const vport = await freePort();
  const cp = await serve({ registry: dir, xdsPort: 0, httpPort: false, virtualListener: { address: "127.0.0.1", port: vport, handoff: "proxy_protocol" }, log: (l) => logs.push(l) });
  const envoy = await startEnvoy(sidecarBootstrap(cp.xds.port, { delta: true }));
  const types = () => cp.view.proxies()[0]?.types ?? {};
  try {
    const ready = await waitFor(() => ["lds", "cds", "eds", "ecds"].every((t) => types()[t]?.state === "ACK"), 10000);
    assert.ok(ready, envoy.log().includes("UNIMPLEMENTED") || envoy.log().includes("not%20served")
      ? "control/xds/server/grpc-server.ts must route DeltaAggregatedResources to handleDeltaStream (control/xds/server/delta.ts)"
      : `${logs.join("\n")}\n${envoy.log().slice(-2000)}`);
    assert.equal(cp.view.proxies()[0]!.streams.map((s) => s.protocol), ["delta"]);
    const listeners = await envoyListeners(envoy);
    assert.equal([...listeners.keys()].sort(), ["0.0.0.0_9080", "0.0.0.0_9081", "10.75.8.101_9080", "virtual"]);
    assert.is(listeners.get("10.75.8.101_9080")!.listener.traffic_direction, "INBOUND");

    // service-b goes, service-c comes: a delta push carries the new resources and names the removed ones.
    const pushesBefore = logs.filter((l) => l.startsWith("push ")).length;
    writeFileSync(join(dir, "r.yaml"), entry("service-a", 9080, "10.75.8.101") + entry("service-c", 9082, "10.75.8.101"));
    assert.ok(await waitFor(async () => {
      const names = [...(await envoyListeners(envoy)).keys()].sort().join(",");
      return names === "0.0.0.0_9080,0.0.0.0_9082,10.75.8.101_9080,10.75.8.101_9082,virtual";
    }, 2000));
    const clusters = await envoyClusterNames(envoy);
    assert.not.ok(clusters.includes("outbound|9081||service-b.example"), "removed cluster is gone");
    assert.ok(clusters.includes("inbound|9082|tcp|service-c.example"));
    const newPushes = logs.filter((l) => l.startsWith("push ")).slice(pushesBefore);
    // Only the changed resources travel: 2 listeners, 2 clusters (removals are names, not resources).
    assert.ok(newPushes.some((l) => /type=lds .* resources=2$/.test(l)), newPushes.join("\n"));
    assert.ok(newPushes.some((l) => /type=cds .* resources=2$/.test(l)), newPushes.join("\n"));
    assert.ok(await waitFor(() => ["lds", "cds"].every((t) => types()[t]?.state === "ACK"), 3000));
  } finally {
    await envoy.stop();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("delta streams that come and go leave nothing behind", async () => {
  const cp = await serve({ xdsPort: 0, httpPort: false, loopGuard: false, log: () => {} });
  const client = adsClient(`127.0.0.1:${cp.xds.port}`);
  let answered = 0;
  try {
    for (let round = 0; round < 10; round++) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => new Promise<void>((resolve) => {
        const call = client.DeltaAggregatedResources();
        call.on("error", () => resolve());
        call.on("end", () => resolve());
        call.on("data", (res: any) => {
          if (res.resources.length > 0) answered++;
          call.write({ type_url: TYPE_URL.cluster, response_nonce: res.nonce }); // ACK, then go away
          if (i % 2) call.cancel(); else call.end();
          resolve();
        });
        call.write({ node: node(`delta-${i % 30}`), type_url: TYPE_URL.cluster });
      })));
    }
    assert.is(answered, 1000, "every delta stream got its clusters");
    const clean = await waitFor(() => cp.openStreams() === 0 && cp.view.proxies().length === 0 && cp.cache.watcherCount() === 0, 5000);
    assert.ok(clean, `left behind: streams=${cp.openStreams()} proxies=${cp.view.proxies().length} watchers=${cp.cache.watcherCount()}`);
  } finally {
    client.close();
    await cp.stop();
  }
});

test.run();
