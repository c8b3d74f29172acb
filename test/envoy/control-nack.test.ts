// A deliberately invalid resource: Envoy NACKs it, the control plane records Envoy's error_detail
// (debug API, metrics, one log line), Envoy keeps serving the last good config, and the next good
// snapshot is ACKed again.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { serve } from "../../control/serve/serve.ts";
import { snapshotOf } from "../support/snapshot.ts";
import { startEnvoy } from "../support/envoy.ts";
import { freePort, startEcho, waitFor } from "../support/net.ts";
import { envoyListeners, SEED_NODE_ID, sidecarBootstrap, tempRegistryDir, throughVirtual } from "../support/control.ts";

test("an invalid listener is NACKed with Envoy's reason; the last good config keeps serving; the next good one is ACKed", async () => {
  const echo = await startEcho("127.0.0.1");
  const entry = (port: number) => `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: service-a}\nspec:\n  hosts: [service-a.example]\n  ports: [{number: ${port}, name: http, targetPort: ${echo.port}}]\n  resolution: STATIC\n  endpoints: [{address: 10.75.8.101}]\n`;
  const dir = tempRegistryDir({ "a.yaml": entry(9080) });
  const logs: string[] = [];
  const vport = await freePort();
  const cp = await serve({ registry: dir, xdsPort: 0, httpPort: 0, virtualListener: { address: "127.0.0.1", port: vport, handoff: "proxy_protocol" }, log: (l) => logs.push(l) });
  const envoy = await startEnvoy(sidecarBootstrap(cp.xds.port));
  const lds = () => cp.view.proxies()[0]?.types.lds;
  try {
    assert.ok(await waitFor(() => lds()?.state === "ACK", 10000), logs.join("\n"));
    const good = lds()!.ackedVersion;

    const resources = cp.view.configDump(SEED_NODE_ID)!;
    const bad = { name: "bad", address: { socket_address: { address: "not-an-ip", port_value: 1 } }, filter_chains: [] };
    cp.cache.set(cp.view.proxies()[0]!.streams[0]!.streamId, snapshotOf({ ...resources, listeners: [...resources.listeners, bad] }));

    assert.ok(await waitFor(() => lds()?.state === "NACK", 5000));
    const state = lds()!;
    assert.match(state.errorDetail!, /not-an-ip/);
    assert.is(state.ackedVersion, good, "the last ACKed version is still what Envoy runs");
    assert.ok(logs.some((l) => l.startsWith(`NACK proxy=${SEED_NODE_ID} `) && l.includes("type=lds") && l.includes("not-an-ip")), logs.join("\n"));
    const metrics = await (await fetch(`${cp.httpUrl}/metrics`)).text();
    assert.match(metrics, /^multiplane_xds_nacks_total\{type="lds"\} 1$/m);
    const debug = await (await fetch(`${cp.httpUrl}/debug/proxies`)).json();
    assert.is(debug.proxies[0].types.lds.state, "NACK");
    assert.match(debug.proxies[0].types.lds.errorDetail, /not-an-ip/);

    const held = await envoyListeners(envoy);
    assert.not.ok(held.has("bad"));
    assert.is(held.get("10.75.8.101_9080")?.state, "active");
    assert.is(await throughVirtual(vport, "10.75.8.101", 9080, "still served"), "still served");

    writeFileSync(join(dir, "a.yaml"), entry(9090));
    assert.ok(await waitFor(() => lds()?.state === "ACK" && lds()!.ackedVersion !== good, 3000), JSON.stringify(lds()));
    assert.ok(await waitFor(async () => (await envoyListeners(envoy)).has("10.75.8.101_9090"), 2000));
    assert.ok(envoy.alive());
  } finally {
    await envoy.stop();
    await cp.stop();
    await echo.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
