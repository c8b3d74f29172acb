// Thousands of xDS streams opening and going away (cancelled, ended, or their channel closed) leave
// nothing behind: no open stream, no proxy record, no cache watcher, no snapshot.
import { test } from "uvu";
import { spawn } from "node:child_process";
import * as assert from "uvu/assert";
import { serve } from "../../control/serve/serve.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";
import { adsClient, node } from "../support/ads-client.ts";
import { waitFor } from "../support/net.ts";

const STREAMS = Number(process.env.LEAK_STREAMS ?? 3000);

test(`${STREAMS} connects and disconnects leak no stream, proxy, watcher or snapshot`, async () => {
  const cp = await serve({ xdsPort: 0, httpPort: false, loopGuard: false, log: () => {} });
  const address = `127.0.0.1:${cp.xds.port}`;
  let client = adsClient(address);
  let answered = 0;
  try {
    // One proxy with its identity over the wire, while it is connected.
    const probe = client.StreamAggregatedResources();
    probe.on("error", () => {});
    probe.write({ node: node("sidecar~10.0.0.1~p.default~default.svc.cluster.local", "10.0.0.1,fd00::1;10.0.0.2"), type_url: TYPE_URL.listener });
    assert.ok(await waitFor(() => cp.view.proxies().length === 1, 3000));
    assert.equal(cp.view.proxies()[0]!.nodeIps, ["10.0.0.1", "fd00::1", "10.0.0.2"]);
    probe.cancel();

    const BATCH = 100;
    for (let i = 0; i < STREAMS; i += BATCH) {
      await Promise.all(Array.from({ length: BATCH }, (_, j) => new Promise<void>((resolve) => {
        const n = i + j;
        const call = client.StreamAggregatedResources();
        call.on("error", () => resolve());
        call.on("end", () => resolve());
        call.on("data", () => {
          answered++;
          // Three ways to go away: cancel, half-close, or (once per batch) drop the whole channel.
          if (n % 3 === 0) call.cancel();
          else if (n % 3 === 1) call.end();
          else call.cancel();
          resolve();
        });
        call.write({ node: node(`proxy-${n % 250}`, `10.1.${n % 250 >> 8}.${n % 250}`), type_url: TYPE_URL.listener });
      })));
      if ((i / BATCH) % 5 === 4) {
        client.close();
        client = adsClient(address);
      }
    }
    // A process whose streams are all open when it is killed, as when Envoy crashes.
    const child = spawn(process.execPath, ["--import", "tsx", "-e", `
      const { adsClient, node } = await import(${JSON.stringify(new URL("../support/ads-client.ts", import.meta.url).pathname)});
      const c = adsClient(${JSON.stringify(address)});
      let n = 0;
      for (let i = 0; i < 200; i++) {
        const call = c.StreamAggregatedResources();
        call.on("error", () => {});
        call.on("data", () => { if (++n === 200) console.log("open"); });
        call.write({ node: node("killed-" + (i % 20)), type_url: ${JSON.stringify(TYPE_URL.listener)} });
      }`], { stdio: ["ignore", "pipe", "inherit"] });
    const opened = await new Promise<boolean>((resolve) => { child.stdout!.on("data", (d) => resolve(String(d).includes("open"))); child.on("exit", () => resolve(false)); });
    assert.ok(opened, "child opened its streams");
    assert.is(cp.view.proxies().length, 20);
    child.kill("SIGKILL");

    const clean = await waitFor(() => cp.openStreams() === 0 && cp.view.proxies().length === 0 && cp.cache.watcherCount() === 0 && cp.cache.streamIds().length === 0 && cp.cachedGenerations() === 0, 10000);
    assert.ok(clean, `left behind: streams=${cp.openStreams()} proxies=${cp.view.proxies().length} watchers=${cp.cache.watcherCount()} snapshots=${cp.cache.streamIds().length} generations=${cp.cachedGenerations()}`);
    assert.is(answered, STREAMS, "every stream got its listeners");
    assert.match(cp.view.metricsText(), /^multiplane_connected_proxies 0$/m);
  } finally {
    client.close();
    await cp.stop();
  }
});

test.run();
