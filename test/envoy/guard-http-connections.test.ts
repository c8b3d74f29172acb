// The HTTP filter on keep-alive connections: a connection's addresses are read on its first request
// and remembered per connection id (wasm/assembly/addresses.ts), so every request must still get the
// verdict of its own connection, however requests of many connections interleave and whatever the
// table evicted; the hop header is still read per request.
import { test } from "uvu";
import * as assert from "uvu/assert";
import type http from "node:http";
import { startEnvoy, type RunningEnvoy } from "../support/envoy.ts";
import { freePort } from "../support/net.ts";
import * as f from "../support/guard-fixtures.ts";

const NODE = "sidecar~10.75.8.101~a-1.default~default.svc.cluster.local";
let env: RunningEnvoy | undefined;
let upstream: f.HopsServer | undefined;
let plain = 0, self = 0, learned = 0;
const agents: http.Agent[] = [];

test.before(async () => {
  upstream = await f.startHopsServer("127.0.0.1");
  [plain, self, learned] = [await freePort("127.0.0.3"), await freePort("127.0.0.2"), await freePort("127.0.0.5")];
  const guard = f.guardHttpFilter({ node_ips: ["127.0.0.2"], mode: "enforce", all_listeners: true });
  env = await startEnvoy(f.bootstrap({
    nodeId: NODE,
    listeners: [
      f.listener("plain", "127.0.0.3", plain, [f.httpConnectionManager("upstream", [guard])], "OUTBOUND"),
      f.listener("self", "127.0.0.2", self, [f.httpConnectionManager("upstream", [guard])], "OUTBOUND"),
      f.listener("learned", "127.0.0.5", learned, [f.httpConnectionManager("upstream", [guard])], "OUTBOUND"),
    ],
    clusters: [f.cluster("upstream", "127.0.0.1", upstream.port)],
  }));
});

test.after(async () => {
  for (const a of agents) a.destroy();
  await env?.stop();
  await upstream?.close();
});

const agent = (localAddress?: string) => { const a = f.keepAliveAgent(localAddress); agents.push(a); return a; };
const connections = async (listener: string) => (await env!.stat(`listener.${listener}.downstream_cx_total`)) ?? 0;

test("interleaved keep-alive connections: each request gets its own connection's verdict; the hop header is read every time", async () => {
  const [toPlain, toSelf] = [agent(), agent()];
  const [plain0, self0] = [await connections("plain"), await connections("self")];
  for (let i = 0; i < 10; i++) {
    const ok = await f.httpGet("127.0.0.3", plain, {}, toPlain);
    assert.is(ok.status, 200, `request ${i} to another host`);
    assert.is(upstream!.seen.at(-1), NODE, "marked");
    const refused = await f.httpGet("127.0.0.2", self, {}, toSelf);
    assert.is(refused.status, 508, `request ${i} to this node`);
    assert.match(refused.body, "(configuration)");
    // The same healthy connection, now with this node in the hops: refused, and the next one passes.
    if (i === 5) {
      const looped = await f.httpGet("127.0.0.3", plain, { "x-multiplane-hops": NODE }, toPlain);
      assert.is(looped.status, 508);
      assert.match(looped.body, "(x-multiplane-hops)");
    }
  }
  assert.is(await connections("plain") - plain0, 1, "all requests to another host on one connection");
  assert.is(await connections("self") - self0, 1, "all requests to this node on one connection");
});

test("more connections than the table holds (256), visited twice in another order: no verdict crosses connections", async () => {
  // Every third connection goes to this node; each sends a request, then all send a second in reverse.
  const conns = Array.from({ length: 300 }, (_, i) => ({ toSelf: i % 3 === 0, agent: agent() }));
  const send = async (c: (typeof conns)[number]) => {
    const r = c.toSelf ? await f.httpGet("127.0.0.2", self, {}, c.agent) : await f.httpGet("127.0.0.3", plain, {}, c.agent);
    assert.is(r.status, c.toSelf ? 508 : 200);
  };
  const before = (await connections("plain")) + (await connections("self"));
  for (const c of conns) await send(c);
  for (const c of [...conns].reverse()) await send(c);
  assert.is((await connections("plain")) + (await connections("self")) - before, 300, "one connection each");
  for (const c of conns) c.agent.destroy();
});

test("a connection from its own destination (source == destination) is refused on every request and teaches the address", async () => {
  const own = agent("127.0.0.5");
  for (let i = 0; i < 3; i++) {
    const r = await f.httpGet("127.0.0.5", learned, {}, own);
    assert.is(r.status, 508, `request ${i}`);
    assert.match(r.body, "(source == destination)");
  }
  assert.match(await f.waitForLog(env!, "learned self address 127.0.0.5"), "learned self address 127.0.0.5");
  const other = await f.httpGet("127.0.0.5", learned, {}, agent("127.0.0.6"));
  assert.is(other.status, 508, "from elsewhere: the learned address");
  assert.match(other.body, "(learned address)");
});

test.run();
