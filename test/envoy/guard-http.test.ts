// The HTTP filter (root id loop_guard_http): hop marking with x-multiplane-hops and 508 Loop
// Detected for self-destined requests and requests that already passed this node.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { startEnvoy, type RunningEnvoy } from "../support/envoy.ts";
import { freePort } from "../support/net.ts";
import * as f from "../support/guard-fixtures.ts";

const NODE = "sidecar~10.75.8.101~a-1.default~default.svc.cluster.local";
let env: RunningEnvoy | undefined;
let upstream: f.HopsServer | undefined;
let plain = 0, self = 0, loop = 0, inbound = 0;

test.before(async () => {
  upstream = await f.startHopsServer("127.0.0.1");
  [plain, self, loop, inbound] = [await freePort("127.0.0.3"), await freePort("127.0.0.2"), await freePort("127.0.0.4"), await freePort("127.0.0.3")];
  const guard = f.guardHttpFilter({ node_ips: ["127.0.0.2"], mode: "enforce" });
  env = await startEnvoy(f.bootstrap({
    nodeId: NODE,
    listeners: [
      f.listener("plain", "127.0.0.3", plain, [f.httpConnectionManager("upstream", [guard])], "OUTBOUND"),
      f.listener("self", "127.0.0.2", self, [f.httpConnectionManager("upstream", [guard])], "OUTBOUND"),
      // Routes to itself: only the hop header can tell (no node_ips, and the source differs).
      f.listener("loop", "127.0.0.4", loop, [f.httpConnectionManager("loop", [f.guardHttpFilter({}, "loop")])], "OUTBOUND"),
      f.listener("inbound", "127.0.0.3", inbound, [f.httpConnectionManager("upstream", [guard])], "INBOUND"),
    ],
    clusters: [f.cluster("upstream", "127.0.0.1", upstream.port), f.cluster("loop", "127.0.0.4", loop, { maxConnections: 50 })],
  }));
});

test.after(async () => {
  await env?.stop();
  await upstream?.close();
});

const seen = () => upstream!.seen.length;

test("a normal request passes with this node's id appended to x-multiplane-hops", async () => {
  const r = await f.httpGet("127.0.0.3", plain);
  assert.is(r.status, 200);
  assert.is(r.body, "ok");
  assert.is(upstream!.seen.at(-1), NODE);
  const r2 = await f.httpGet("127.0.0.3", plain, { "x-multiplane-hops": "edge-1,node-b" });
  assert.is(r2.status, 200);
  assert.is(upstream!.seen.at(-1), `edge-1,node-b,${NODE}`);
  // An id that merely contains this node's id is another node.
  const r3 = await f.httpGet("127.0.0.3", plain, { "x-multiplane-hops": `${NODE}-2` });
  assert.is(r3.status, 200);
  assert.is(upstream!.seen.at(-1), `${NODE}-2,${NODE}`);
});

test("a request whose x-multiplane-hops already carries this node's id gets 508 with a one-line body and the hops it crossed", async () => {
  const before = seen();
  const r = await f.httpGet("127.0.0.3", plain, { "x-multiplane-hops": `edge-1, ${NODE} ,edge-2` });
  assert.is(r.status, 508);
  assert.match(r.headers["content-type"] ?? "", "text/plain");
  assert.is(r.headers["x-multiplane-hops"], `edge-1, ${NODE} ,edge-2,${NODE}`, "the hops, this node last");
  assert.is(r.body, `508 Loop Detected: multiplane loop guard on node ${NODE} (x-multiplane-hops)\n`);
  assert.is(r.body.trimEnd().split("\n").length, 1);
  assert.is(seen(), before, "the upstream never saw it");
  assert.match(await f.waitForLog(env!, `already carries this node's id "${NODE}"; short-circuited`), `"${NODE}"; short-circuited`);
});

test("a self-destined request gets 508", async () => {
  const before = seen();
  const r = await f.httpGet("127.0.0.2", self);
  assert.is(r.status, 508);
  assert.match(r.body, "(configuration)");
  assert.is(r.headers["x-multiplane-hops"], NODE, "refused at its first hop");
  assert.is(seen(), before);
});

test("an HTTP listener routed to itself is stopped at the second hop by the hop header alone", async () => {
  const before = await env!.stat("listener.loop.downstream_cx_total") ?? 0;
  const r = await f.httpGet("127.0.0.4", loop);
  assert.is(r.status, 508); // hop 2's reply, relayed by hop 1
  assert.match(r.body, "(x-multiplane-hops)");
  assert.is(r.headers["x-multiplane-hops"], `${NODE},${NODE}`, "the loop: this node twice");
  assert.is((await env!.stat("listener.loop.downstream_cx_total"))! - before, 2);
});

test("repeated x-multiplane-hops lines: the id is found in any line, and the hops are merged into one line", async () => {
  const before = seen();
  const r = await f.httpGet("127.0.0.3", plain, { "x-multiplane-hops": ["edge-1", NODE] });
  assert.is(r.status, 508);
  assert.is(seen(), before);
  const r2 = await f.httpGet("127.0.0.3", plain, { "x-multiplane-hops": ["edge-1", "edge-2"] });
  assert.is(r2.status, 200);
  assert.is(upstream!.seen.at(-1), `edge-1,edge-2,${NODE}`, "one header line with every hop");
});

test("INBOUND listeners are not checked and not marked", async () => {
  const r = await f.httpGet("127.0.0.3", inbound, { "x-multiplane-hops": NODE });
  assert.is(r.status, 200);
  assert.is(upstream!.seen.at(-1), NODE);
});

test("metrics: every request counted as checked, 508s counted as short-circuited", async () => {
  assert.is(await f.guardStat(env!, "connections_checked"), 10); // 3 + 1 + 1 + 2 (loop hops) + 2 + 1 inbound
  assert.is(await f.guardStat(env!, "short_circuited"), 4);
  assert.is(await f.guardStat(env!, "self_destined"), 1);
  assert.is(await f.guardStat(env!, "self_learned"), 0);
  assert.ok(env!.alive());
});

test.run();
