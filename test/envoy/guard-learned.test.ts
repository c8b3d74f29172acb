// The learned layer over time, on a real Envoy: a self address learned from source ==
// destination expires learned_ttl_seconds after its last hit, hits keep it alive, and the
// wasmcustom.loop_guard.learned_addresses gauge follows. The setup is guard-loop's: an OUTBOUND
// listener on 127.0.0.1 whose tcp_proxy cluster is itself, so hop 2 arrives from 127.0.0.1 to
// 127.0.0.1. Times are waited for with deadlines; only lower bounds on elapsed time are asserted.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { startEnvoy, type RunningEnvoy } from "../support/envoy.ts";
import { freePort, exchange, startEcho, waitFor } from "../support/net.ts";
import * as f from "../support/guard-fixtures.ts";

/** Spaces hits apart in time (the TTL is a real-time behaviour); never used to wait for an outcome. */
const pace = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function selfForwarding(port: number, config: f.GuardConfig, opts: { concurrency?: number; logLevel?: string } = {}) {
  return startEnvoy(f.bootstrap({
    listeners: [f.listener("self", "127.0.0.1", port, [f.guardNetworkFilter(config), f.tcpProxy("self")], "OUTBOUND")],
    clusters: [f.cluster("self", "127.0.0.1", port, { maxConnections: 500 })],
  }), { concurrency: opts.concurrency ?? 2, logLevel: opts.logLevel });
}

const upstream = async (env: RunningEnvoy) => (await env.stat("cluster.self.upstream_cx_total")) ?? -1;
const gauge = (env: RunningEnvoy) => f.guardStat(env, "learned_addresses");

/**
 * One client connection from 127.0.0.<from>; the guard closes it at hop 1 or 2. When it returns,
 * upstream_cx_total is final: a forwarded hop 1 connected upstream before the client saw the close.
 */
async function connect(port: number, from: number) {
  const r = await exchange("127.0.0.1", port, "hello", { timeoutMs: 3000, localAddress: `127.0.0.${from}` });
  assert.is(r.received, "");
  assert.not.equal(r.ended, "timeout");
}

test("a learned address stops matching after learned_ttl_seconds; the gauge rises and falls; it is learned again", async () => {
  const port = await freePort("127.0.0.1");
  const env = await selfForwarding(port, { learned_ttl_seconds: 1 }, { logLevel: "info" });
  try {
    assert.is(await gauge(env), 0);
    // Hop 1 (from 127.0.0.3) is forwarded; hop 2 (127.0.0.1 -> 127.0.0.1) teaches the guard.
    await connect(port, 3);
    assert.ok(await waitFor(async () => (await gauge(env)) === 1, 3000), "gauge rose to 1");
    assert.is(await upstream(env), 1);
    assert.match(await f.waitForLog(env, "learned self address 127.0.0.1 "), "; expires 1 s after its last hit)");

    // Until it expires, the learned address stops the next loop at its first hop.
    await connect(port, 4);
    assert.is(await upstream(env), 1, "hop 1 was refused while the address was learned");

    // No traffic: the timer drops it and the gauge falls, without anyone touching the table.
    assert.ok(await waitFor(async () => (await gauge(env)) === 0, 5000), "gauge fell to 0");
    assert.match(await f.waitForLog(env, /learned self address 127\.0\.0\.1 expired \(last seen \d+ s ago\)/),
      /learned self address 127\.0\.0\.1 expired \(last seen \d+ s ago\)/);

    // Expired, it no longer matches: hop 1 is forwarded again, and hop 2 learns it again.
    await connect(port, 5);
    assert.is(await upstream(env), 2, "forwarded once more after expiry");
    assert.ok(await waitFor(async () => (await gauge(env)) === 1, 3000), "learned again");
    const relearned = /learned self address 127\.0\.0\.1 \(a connection[^]*learned self address 127\.0\.0\.1 \(a connection/;
    assert.match(await f.waitForLog(env, relearned), relearned);

    // Prometheus types it as a gauge.
    const prom = await (await fetch(`${env.adminUrl}/stats/prometheus`)).text();
    assert.match(prom, /^# TYPE loop_guard_learned_addresses gauge$/m);
    assert.match(prom, /^loop_guard_learned_addresses\{\} 1$/m);
    assert.ok(env.alive());
  } finally {
    await env.stop();
  }
});

test("hits refresh the TTL: an address hit every 250 ms outlives its 2 s TTL, and expires 2 s after the last hit", async () => {
  const port = await freePort("127.0.0.1");
  const env = await selfForwarding(port, { learned_ttl_seconds: 2 });
  try {
    await connect(port, 3);
    assert.ok(await waitFor(async () => (await gauge(env)) === 1, 3000), "learned");
    const learnedAt = Date.now();
    // Loops from other sources for 5 s (2.5 TTLs): each is stopped at hop 1 by the learned
    // address (a match), which keeps it alive. The TTL runs on Envoy's real clock, so what is
    // proven here needs real time to pass: the pause paces the hits (the stimulus), it waits for
    // nothing. Both clock readings are taken before the event they stand for, so a slow machine
    // can only make the elapsed times below larger, never make a lower bound fail.
    let hits = 0;
    let lastHit = 0;
    while (Date.now() - learnedAt < 5000) {
      lastHit = Date.now();
      await connect(port, 10 + (hits % 200));
      hits++;
      await pace(250);
    }
    assert.is(await upstream(env), 1, `all ${hits} later loops were stopped at hop 1`);
    assert.is(await gauge(env), 1);
    assert.is(await f.guardStat(env, "self_learned"), 1 + hits);

    assert.ok(await waitFor(async () => (await gauge(env)) === 0, 6000), "expired after the hits stopped");
    const lived = Date.now() - lastHit;
    // Hits are written back at most every 200 ms (a tenth of the TTL), so at least 1.8 s.
    assert.ok(lived >= 1500, `expired ${lived} ms after the last hit, before its TTL`);
    await connect(port, 5);
    assert.is(await upstream(env), 2, "forwarded once it expired");
  } finally {
    await env.stop();
  }
});

test("bad learned_ttl_seconds values are configuration errors: logged with the reason, counted, traffic untouched", async () => {
  const bad: [string, string][] = [
    ['{"learned_ttl_seconds": 0}', "got 0"],
    ['{"learned_ttl_seconds": -30}', "got -30"],
    ['{"learned_ttl_seconds": 1.5}', "got 1.5"],
    ['{"learned_ttl_seconds": 2147483648}', "got 2147483648"],
    ['{"learned_ttl_seconds": "600"}', "got a string"],
    ['{"learned_ttl_seconds": null}', "got null"],
  ];
  const ports = await Promise.all(bad.map(() => freePort("127.0.0.3")));
  const echo = await startEcho("127.0.0.1");
  const env = await startEnvoy(f.bootstrap({
    listeners: bad.map(([cfg], i) => f.listener(`bad${i}`, "127.0.0.3", ports[i]!, [f.guardNetworkFilter(cfg, `bad${i}`), f.tcpProxy("echo")], "OUTBOUND")),
    clusters: [f.cluster("echo", echo.host, echo.port)],
  }), { concurrency: 2 });
  try {
    for (const port of ports) assert.equal(await exchange("127.0.0.3", port, "still works"), { received: "still works", ended: "echoed" });
    assert.ok(await waitFor(async () => (await f.guardStat(env, "config_errors")) === bad.length, 3000),
      `config_errors ${await f.guardStat(env, "config_errors")}, want ${bad.length}`);
    const log = await f.waitForLog(env, "got null");
    for (const [, got] of bad) {
      const line = `invalid configuration: learned_ttl_seconds must be a whole number of seconds from 1 to 2147483647, ${got}; no good configuration yet`;
      assert.is(log.split(line).length - 1, 1, `logged once: ${got}`);
    }
    assert.ok(env.alive());
  } finally {
    await env.stop();
    await echo.close();
  }
});

test.run();
