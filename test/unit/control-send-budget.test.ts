// The server's send budget: while the responses on their way over all streams are over its limit,
// other streams wait before building theirs (in the order they came), so proxies connecting all at
// once to a large mesh cannot make the control plane hold every first answer at the same time. A
// stream that stops reading cannot hold the budget for ever.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SnapshotCache } from "../../control/xds/cache/cache.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";
import { startXdsServer, type XdsServer } from "../../control/xds/server/grpc-server.ts";
import { SendBudget } from "../../control/xds/server/send-budget.ts";
import { node } from "../support/ads-client.ts";
import { waitFor } from "../support/net.ts";
import { slowReader, type SlowReader } from "../support/slow-reader.ts";
import { snapshotOf } from "../support/snapshot.ts";

const MIB = 2 ** 20;
/** One listener of ~400 KiB: a first answer far over a stalled proxy's 64 KiB flow-control window. */
const BIG = snapshotOf({
  listeners: [{ name: "big", stat_prefix: "x".repeat(400 * 1024), address: { socket_address: { address: "127.0.0.1", port_value: 10000 } } }],
  clusters: [], endpoints: [], routes: [], extensionConfigs: [],
});
const STREAMS = 6;

async function scenario(stallMs: number) {
  const cache = new SnapshotCache();
  let pushes = 0;
  const xds: XdsServer = await startXdsServer({
    host: "127.0.0.1", port: 0, cache, sendBudget: { maxBytes: MIB, stallMs },
    callbacks: { onStreamOpen: (info) => cache.set(info.streamId, BIG), onPush: () => void pushes++ },
  });
  const clients: SlowReader[] = [];
  for (let i = 0; i < STREAMS; i++) {
    const c = slowReader(xds.port, "StreamAggregatedResources");
    c.pause(); // a proxy that reads nothing: its first answer stays on its way
    c.write({ node: node(`sidecar~10.0.0.${i + 1}~p${i}.default~default.svc.cluster.local`, `10.0.0.${i + 1}`), type_url: TYPE_URL.listener });
    clients.push(c);
  }
  return { xds, clients, pushes: () => pushes };
}

test("over the budget, streams wait to build; as the proxies read, every one is answered", async () => {
  const { xds, clients, pushes } = await scenario(60_000);
  try {
    // Three answers of ~400 KiB pass 1 MiB: the other three streams wait without building anything.
    assert.ok(await waitFor(() => xds.sending().waiting === STREAMS - 3, 5000), `waiting: ${JSON.stringify(xds.sending())}`);
    assert.is(pushes(), 3);
    const { bytes } = xds.sending();
    assert.ok(bytes >= MIB && bytes < MIB + 450 * 1024, `${bytes} bytes on their way`);
    for (const c of clients) c.resume();
    assert.ok(await waitFor(() => clients.every((c) => c.responses.length === 1), 10_000), "every proxy gets its listener");
    assert.equal(clients.map((c) => c.responses[0].resources.length), Array(STREAMS).fill(1));
    assert.ok(await waitFor(() => xds.sending().bytes === 0 && xds.sending().waiting === 0, 5000), JSON.stringify(xds.sending()));
  } finally {
    for (const c of clients) c.close();
    await xds.stop();
  }
});

test("proxies that never read hold the budget only until it counts them stalled", async () => {
  const { xds, clients, pushes } = await scenario(200);
  try {
    assert.ok(await waitFor(() => pushes() === STREAMS, 10_000), `${pushes()} of ${STREAMS} streams answered; ${JSON.stringify(xds.sending())}`);
    assert.is(xds.sending().waiting, 0);
  } finally {
    for (const c of clients) c.close();
    await xds.stop();
  }
});

test("closed streams give back what they held and wait no more", async () => {
  const { xds, clients } = await scenario(60_000);
  try {
    assert.ok(await waitFor(() => xds.sending().waiting === STREAMS - 3, 5000));
    for (const c of clients) c.close();
    assert.ok(await waitFor(() => xds.openStreams() === 0, 5000), "streams closed");
    assert.equal(xds.sending(), { bytes: 0, waiting: 0 });
  } finally {
    await xds.stop();
  }
});

// Waiting streams go connection by connection: a proxy on its own connection waits for one response
// per busy connection, not behind every stream a connect storm opened before it on another.
test("a stream on another connection is woken before the rest of a storm that came first", () => {
  const budget = new SendBudget({ maxBytes: 100, stallMs: 60_000 });
  const woken: string[] = [];
  const releases: (() => void)[] = [];
  const stream = (name: string, connection: string) => {
    const resume = () => { woken.push(name); releases.push(budget.hold(100)); };
    assert.is(budget.admit(resume, connection), false, `${name} waits`);
  };
  releases.push(budget.hold(100)); // the budget is full
  for (let i = 1; i <= 5; i++) stream(`storm-${i}`, "10.0.0.1:40000");
  stream("newcomer", "10.0.0.2:40001");
  assert.is(budget.streamsWaiting, 6);
  releases.shift()!();
  releases.shift()!();
  releases.shift()!();
  assert.equal(woken, ["storm-1", "newcomer", "storm-2"]);
  // A stream that goes away before its turn is not woken.
  const gone = () => woken.push("gone");
  budget.admit(gone, "10.0.0.3:40002");
  budget.forget(gone);
  while (releases.length > 0) releases.shift()!();
  assert.equal(woken, ["storm-1", "newcomer", "storm-2", "storm-3", "storm-4", "storm-5"]);
  assert.is(budget.streamsWaiting, 0);
});

test.run();
