// Stopping a control plane ends its xDS streams with UNAVAILABLE and a reason, so Envoys reconnect
// (to another replica) at once instead of holding a connection to a server that no longer answers.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { serve } from "../../control/serve/serve.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";
import { adsClient, node } from "../support/ads-client.ts";
import { waitFor } from "../support/net.ts";

test("stop(): every open stream, SotW and delta, ends with UNAVAILABLE naming the shutdown", async () => {
  const cp = await serve({ xdsPort: 0, httpPort: false, loopGuard: false, log: () => {} });
  const client = adsClient(`127.0.0.1:${cp.xds.port}`);
  const ends: { code?: number; details?: string }[] = [];
  const sotw = client.StreamAggregatedResources();
  const delta = client.DeltaAggregatedResources();
  for (const s of [sotw, delta]) {
    s.on("data", () => {});
    s.on("error", (e: { code: number; details: string }) => ends.push({ code: e.code, details: e.details }));
  }
  try {
    sotw.write({ node: node("sidecar~10.0.0.1~a.default~default.svc.cluster.local"), type_url: TYPE_URL.listener });
    delta.write({ node: node("sidecar~10.0.0.2~b.default~default.svc.cluster.local"), type_url: TYPE_URL.listener });
    assert.ok(await waitFor(() => cp.openStreams() === 2, 5000), "both streams open");
    await cp.stop();
    assert.ok(await waitFor(() => ends.length === 2, 1000), `streams ended: ${JSON.stringify(ends)}`);
    assert.equal(ends, [
      { code: 14, details: "the control plane is shutting down" },
      { code: 14, details: "the control plane is shutting down" },
    ]);
  } finally {
    client.close();
    await cp.stop();
  }
});

test.run();
