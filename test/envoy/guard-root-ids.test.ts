// Each of the module's filters runs under its own root id only: an HTTP filter given the network
// filter's root id (loop_guard), or a network filter given the HTTP filter's (loop_guard_http), lets
// traffic through untouched (no hop marking, no closing), as the SDK's default callbacks did. Only an
// unknown root id makes Envoy refuse the filter (guard-behaviour.test.ts).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { startEnvoy, type RunningEnvoy } from "../support/envoy.ts";
import { exchange, freePort, startEcho, type EchoServer } from "../support/net.ts";
import * as f from "../support/guard-fixtures.ts";

let env: RunningEnvoy | undefined;
let upstream: f.HopsServer | undefined;
let echo: EchoServer | undefined;
let http = 0, tcp = 0;

/** The filter as fixtures make it, under another root id. */
function withRootId<T extends { typed_config: { config: { root_id: string } } }>(filter: T, rootId: string): T {
  return { ...filter, typed_config: { ...filter.typed_config, config: { ...filter.typed_config.config, root_id: rootId } } };
}

test.before(async () => {
  upstream = await f.startHopsServer("127.0.0.1");
  echo = await startEcho("127.0.0.1");
  [http, tcp] = [await freePort("127.0.0.2"), await freePort("127.0.0.2")];
  // 127.0.0.2 is this node's: either filter, under its own root id, would refuse these.
  const config = { node_ips: ["127.0.0.2"], mode: "enforce" };
  env = await startEnvoy(f.bootstrap({
    nodeId: "sidecar~10.75.8.101~a-1.default~default.svc.cluster.local",
    listeners: [
      f.listener("http", "127.0.0.2", http, [f.httpConnectionManager("upstream", [withRootId(f.guardHttpFilter(config), "loop_guard")])], "OUTBOUND"),
      f.listener("tcp", "127.0.0.2", tcp, [withRootId(f.guardNetworkFilter(config), "loop_guard_http"), f.tcpProxy("echo")], "OUTBOUND"),
    ],
    clusters: [f.cluster("upstream", "127.0.0.1", upstream.port), f.cluster("echo", "127.0.0.1", echo.port)],
  }));
});

test.after(async () => {
  await env?.stop();
  await upstream?.close();
  await echo?.close();
});

test("an HTTP filter under the network filter's root id: requests pass, unmarked", async () => {
  const r = await f.httpGet("127.0.0.2", http);
  assert.is(r.status, 200);
  assert.is(upstream!.seen.at(-1), undefined, "no x-multiplane-hops added");
});

test("a network filter under the HTTP filter's root id: connections pass", async () => {
  const r = await exchange("127.0.0.2", tcp, "hello", { timeoutMs: 2000 });
  assert.is(r.received, "hello");
  assert.is(await f.guardStat(env!, "short_circuited"), 0);
});

test.run();
