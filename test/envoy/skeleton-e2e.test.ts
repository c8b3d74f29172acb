// The walking skeleton, end to end: our xDS server configures a real Envoy whose listener runs
// our wasm filter in front of tcp_proxy; bytes echo through and the filter's counter shows in /stats.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SnapshotCache } from "../../control/xds/cache/cache.ts";
import { snapshotOf } from "../support/snapshot.ts";
import type { Snapshot } from "../../control/xds/cache/snapshot.ts";
import { startXdsServer } from "../../control/xds/server/grpc-server.ts";
import type { AckInfo } from "../../control/xds/server/callbacks.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";
import { generateBootstrap } from "../../envoy/bootstrap.ts";
import { LOOP_GUARD_WASM } from "../../envoy/paths.ts";
import { startEnvoy } from "../support/envoy.ts";
import { exchange, freePort, startEcho, waitFor } from "../support/net.ts";

test("control plane pushes LDS+CDS over ADS; Envoy ACKs, runs the wasm filter and echoes through tcp_proxy", async () => {
  const cache = new SnapshotCache();
  const acks: AckInfo[] = [];
  const nacks: string[] = [];
  // Snapshots are per stream: the stream gets its snapshot when it opens.
  let snapshot: Snapshot | undefined;
  const xds = await startXdsServer({
    host: "127.0.0.1", port: 0, cache,
    callbacks: { onStreamOpen: (info) => { if (snapshot) cache.set(info.streamId, snapshot); }, onAck: (a) => acks.push(a), onNack: (n) => nacks.push(n.errorDetail) },
  });
  const echo = await startEcho("127.0.0.1");
  // 127.0.0.2: a client's source is then 127.0.0.1, so it is not a connection to itself.
  const listenPort = await freePort("127.0.0.2");
  snapshot = snapshotOf({
    listeners: [{
      name: "skeleton", traffic_direction: "OUTBOUND",
      address: { socket_address: { address: "127.0.0.2", port_value: listenPort } },
      filter_chains: [{ filters: [
        { name: "envoy.filters.network.wasm", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
          config: { name: "loop_guard", root_id: "loop_guard", vm_config: { vm_id: "loop_guard", runtime: "envoy.wasm.runtime.v8", code: { local: { filename: LOOP_GUARD_WASM } } } } } },
        { name: "envoy.filters.network.tcp_proxy", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", stat_prefix: "skeleton", cluster: "echo" } },
      ] }],
    }],
    clusters: [{ name: "echo", type: "STATIC", connect_timeout: { seconds: 1 },
      load_assignment: { cluster_name: "echo", endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: echo.port } } } }] }] } }],
    endpoints: [],
    routes: [],
    extensionConfigs: [],
  });
  const envoy = await startEnvoy(generateBootstrap({ nodeId: "skeleton-node", instanceIps: [], xds: { host: "127.0.0.1", port: xds.port } }));
  try {
    const acked = await waitFor(() => acks.some((a) => a.typeUrl === TYPE_URL.listener) && acks.some((a) => a.typeUrl === TYPE_URL.cluster), 10000);
    assert.ok(acked, `no ACK for LDS and CDS; NACKs: ${nacks.join("; ")}\n${envoy.log().slice(-2000)}`);
    assert.equal(nacks, []);
    // An ACK echoes the version we sent, per type.
    assert.is(acks.find((a) => a.typeUrl === TYPE_URL.listener)!.version, snapshot!.get(TYPE_URL.listener)!.version);
    assert.is(acks.find((a) => a.typeUrl === TYPE_URL.cluster)!.version, snapshot!.get(TYPE_URL.cluster)!.version);

    const result = await exchange("127.0.0.2", listenPort, "hello through envoy");
    assert.equal(result, { received: "hello through envoy", ended: "echoed" });
    const counter = await waitFor(() => envoy.stat("wasmcustom.loop_guard.connections_checked"), 3000);
    assert.is(counter, 1);
    assert.is(echo.connections, 1);
  } finally {
    await envoy.stop();
    await xds.stop();
    await echo.close();
  }
});

test.run();
