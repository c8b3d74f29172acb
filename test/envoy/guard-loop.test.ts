// The loop itself, on loopback without iptables: an OUTBOUND listener whose tcp_proxy cluster is
// the listener's own address, so Envoy forwards every connection back into itself. Without the
// guard the connection count explodes; with it the first (or, learned, the second) hop is closed.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { startEnvoy, type RunningEnvoy } from "../support/envoy.ts";
import { freePort, exchange, startEcho, waitFor } from "../support/net.ts";
import * as f from "../support/guard-fixtures.ts";

/** An Envoy with one OUTBOUND listener on host:port forwarding to itself (cluster "self"). */
async function selfForwarding(host: string, port: number, filters: object[], opts: { instanceIps?: string; concurrency?: number } = {}) {
  return startEnvoy(f.bootstrap({
    instanceIps: opts.instanceIps,
    listeners: [f.listener("self", host, port, [...filters, f.tcpProxy("self")], "OUTBOUND")],
    // The circuit breaker bounds the unguarded loop so the baseline cannot hurt the machine.
    clusters: [f.cluster("self", host, port, { maxConnections: 500 })],
  }), { concurrency: opts.concurrency ?? 1 });
}

async function counts(env: RunningEnvoy) {
  const s = await env.stats();
  return { downstream: s.get("listener.self.downstream_cx_total") ?? -1, upstream: s.get("cluster.self.upstream_cx_total") ?? -1 };
}

/**
 * The counts once Envoy is quiet: the listener has accepted at least `downstream` connections and no
 * connection is open on it or to its cluster any more. A further hop of the loop can only come from
 * an open connection (tcp_proxy connecting upstream), so nothing can be added after this; no fixed
 * wait is needed. /stats reads counters and gauges as they are (only histograms wait for a flush).
 */
async function quiet(env: RunningEnvoy, downstream: number) {
  const settled = await waitFor(async () => {
    const s = await env.stats();
    return (s.get("listener.self.downstream_cx_total") ?? 0) >= downstream
      && s.get("listener.self.downstream_cx_active") === 0 && (s.get("cluster.self.upstream_cx_active") ?? 0) === 0;
  }, 5000, 20);
  const c = await counts(env);
  assert.ok(settled, `Envoy did not become quiet: ${JSON.stringify(Object.fromEntries([...(await env.stats())].filter(([k]) => /^(listener|cluster)\.self\.\w+_cx_(active|total)$/.test(k))))}`);
  return c;
}

// How fast the loop grows is not asserted (a loaded machine is slower, and nothing depends on the
// rate); that one client connection turns into hundreds is. The deadline only bounds the wait.
test("baseline: without the guard, Envoy forwarding to itself turns one connection into hundreds", async () => {
  const port = await freePort("127.0.0.2");
  const env = await selfForwarding("127.0.0.2", port, []);
  try {
    const started = Date.now();
    const client = exchange("127.0.0.2", port, "hello", { timeoutMs: 2000 });
    const grown = await waitFor(async () => ((await counts(env)).downstream >= 200 ? Date.now() - started : 0), 10_000, 20);
    const { downstream } = await counts(env);
    await env.stop(); // end the loop right away
    await client;
    assert.ok(grown, `downstream_cx_total only reached ${downstream} in 10 s`);
    console.log(`    (unguarded: ${downstream} downstream connections after ${grown} ms)`);
  } finally {
    await env.stop();
  }
});

test("node_ips [127.0.0.2]: the client's connection is closed at the first hop, no upstream connection", async () => {
  const port = await freePort("127.0.0.2");
  const env = await selfForwarding("127.0.0.2", port, [f.guardNetworkFilter({ node_ips: ["127.0.0.2"], mode: "enforce" })], { concurrency: 2 });
  try {
    const r = await exchange("127.0.0.2", port, "hello", { timeoutMs: 2000 });
    assert.is(r.received, "");
    assert.ok(r.ended === "closed" || r.ended === "reset", r.ended);
    // A storm of further attempts: each closed, one log line for the destination.
    for (let i = 0; i < 9; i++) await exchange("127.0.0.2", port, "again", { timeoutMs: 2000 });
    const c = await quiet(env, 10);
    assert.is(c.downstream, 10, "one downstream connection per client connection, no loop");
    assert.is(c.upstream, 0, "tcp_proxy never connected upstream");
    assert.is(await f.guardStat(env, "short_circuited"), 10);
    assert.is(await f.guardStat(env, "self_destined"), 10);
    assert.is(await f.guardStat(env, "connections_checked"), 10);
    assert.is(await f.guardStat(env, "self_learned"), 0);
    // The same counters on /stats/prometheus (Envoy drops the wasmcustom namespace there).
    const prom = await (await fetch(`${env.adminUrl}/stats/prometheus`)).text();
    assert.match(prom, /^# TYPE loop_guard_short_circuited counter$/m);
    assert.match(prom, /^loop_guard_short_circuited\{\} 10$/m);
    assert.match(prom, /^loop_guard_config_errors\{\} 0$/m);
    const lines = (await f.waitForLog(env, `connection to 127.0.0.2:${port} `)).split("\n").filter((l) => l.includes(`connection to 127.0.0.2:${port} `));
    assert.is(lines.length, 1, `expected one rate-limited line, got:\n${lines.join("\n")}`);
    assert.match(lines[0]!, "[warning]");
    assert.match(lines[0]!, "matched: configuration");
    assert.match(lines[0]!, "from 127.0.0.1:");
    assert.ok(env.alive());
  } finally {
    await env.stop();
  }
});

test("empty configuration + node metadata INSTANCE_IPS: closed at the first hop", async () => {
  const port = await freePort("127.0.0.2");
  const env = await selfForwarding("127.0.0.2", port, [f.guardNetworkFilter("")], { instanceIps: "10.75.8.101, 127.0.0.2" });
  try {
    const r = await exchange("127.0.0.2", port, "hello", { timeoutMs: 2000 });
    assert.is(r.received, "");
    assert.not.equal(r.ended, "timeout");
    const c = await quiet(env, 1);
    assert.ok(c.downstream <= 2, `downstream_cx_total ${c.downstream}`);
    assert.is(c.upstream, 0);
    assert.ok((await f.guardStat(env, "short_circuited")) >= 1);
    assert.is(await f.guardStat(env, "self_destined"), 1);
    assert.match(await f.waitForLog(env, "matched: node metadata INSTANCE_IPS"), "matched: node metadata INSTANCE_IPS");
  } finally {
    await env.stop();
  }
});

test("learning: no configuration, no metadata; source == destination stops the loop at hop 2, later connections at hop 1 (both workers)", async () => {
  const port = await freePort("127.0.0.1");
  const env = await selfForwarding("127.0.0.1", port, [f.guardNetworkFilter("")], { concurrency: 2 });
  try {
    // Hop 1: from 127.0.0.3 (not self as far as the guard knows) -> forwarded to 127.0.0.1:port.
    // Hop 2: Envoy's own connection comes from 127.0.0.1 to 127.0.0.1: learned, closed.
    const r = await exchange("127.0.0.1", port, "hello", { timeoutMs: 2000, localAddress: "127.0.0.3" });
    assert.is(r.received, "");
    assert.not.equal(r.ended, "timeout");
    let c = await quiet(env, 2);
    assert.is(c.downstream, 2, "the loop stopped at the second hop");
    assert.is(c.upstream, 1);
    assert.is(await f.guardStat(env, "self_learned"), 1);
    assert.is(await f.guardStat(env, "short_circuited"), 1);
    assert.match(await f.waitForLog(env, "learned self address 127.0.0.1 "), `learned self address 127.0.0.1 (a connection from 127.0.0.1:`);
    // Later connections to 127.0.0.1 from other loopback sources, until both workers got some
    // (SO_REUSEPORT hashes on the source): each refused at the first hop, whichever worker
    // learned the address.
    const perWorker = async () => { const s = await env.stats(); return [0, 1].map((w) => s.get(`listener.self.worker_${w}.downstream_cx_total`) ?? 0); };
    const before = await perWorker();
    let later = 0;
    for (let i = 4; i < 60; i++) {
      const r2 = await exchange("127.0.0.1", port, "hello", { timeoutMs: 2000, localAddress: `127.0.0.${i}` });
      assert.is(r2.received, "");
      later++;
      const now = await perWorker();
      if (later >= 8 && now[0]! > before[0]! && now[1]! > before[1]!) break;
    }
    const after = await perWorker();
    assert.ok(after[0]! > before[0]! && after[1]! > before[1]!, `both workers refused later connections: ${before} -> ${after}`);
    c = await quiet(env, 2 + later);
    assert.is(c.upstream, 1, "no later connection was forwarded");
    assert.is(c.downstream, 2 + later);
    assert.is(await f.guardStat(env, "self_learned"), 1 + later);
    assert.is(env.log().split("\n").filter((l) => l.includes("learned self address")).length, 1);
    // One warn line for this destination in the minute, naming the layer that matched first.
    const lines = (await f.waitForLog(env, `connection to 127.0.0.1:${port} `)).split("\n").filter((l) => l.includes(`connection to 127.0.0.1:${port} `));
    assert.is(lines.length, 1);
    assert.match(lines[0]!, "matched: source == destination");
  } finally {
    await env.stop();
  }
});

test("IPv6 and IPv4-mapped configuration: [::1] forwarding to itself is closed at the first hop", async () => {
  const port = await freePort("::1");
  const env = await selfForwarding("::1", port, [f.guardNetworkFilter({ node_ips: ["::ffff:10.75.8.101", "0:0:0:0:0:0:0:1"] })]);
  try {
    const r = await exchange("::1", port, "hello", { timeoutMs: 2000 });
    assert.is(r.received, "");
    const c = await quiet(env, 1);
    assert.is(c.downstream, 1);
    assert.is(c.upstream, 0);
    assert.is(await f.guardStat(env, "self_destined"), 1);
    assert.match(await f.waitForLog(env, `connection to [::1]:${port} from [::1]:`), `connection to [::1]:${port} from [::1]:`);
  } finally {
    await env.stop();
  }
});

test("cidrs: loopback is self only when listed (127.0.0.0/8)", async () => {
  const port = await freePort("127.0.0.6");
  const env = await selfForwarding("127.0.0.6", port, [f.guardNetworkFilter({ cidrs: ["10.0.0.0/8", "127.0.0.0/8"] })]);
  try {
    assert.is((await exchange("127.0.0.6", port, "hello", { timeoutMs: 2000 })).received, "");
    assert.equal(await quiet(env, 1), { downstream: 1, upstream: 0 });
    assert.is(await f.guardStat(env, "self_destined"), 1);
  } finally {
    await env.stop();
  }
});

test("only connections on OUTBOUND listeners are acted on, unless all_listeners is set", async () => {
  const echo = await startEcho("127.0.0.1");
  const [p1, p2, p3] = [await freePort("127.0.0.2"), await freePort("127.0.0.2"), await freePort("127.0.0.2")];
  const guard = (extra: object, name: string) => f.guardNetworkFilter({ node_ips: ["127.0.0.2"], ...extra }, name);
  const env = await startEnvoy(f.bootstrap({
    listeners: [
      f.listener("inbound", "127.0.0.2", p1!, [guard({}, "g1"), f.tcpProxy("echo")], "INBOUND"),
      f.listener("unspecified", "127.0.0.2", p2!, [guard({}, "g2"), f.tcpProxy("echo")]),
      f.listener("all", "127.0.0.2", p3!, [guard({ all_listeners: true }, "g3"), f.tcpProxy("echo")]),
    ],
    clusters: [f.cluster("echo", echo.host, echo.port)],
  }));
  try {
    assert.is((await exchange("127.0.0.2", p1!, "in")).ended, "echoed");
    assert.is((await exchange("127.0.0.2", p2!, "unspecified")).ended, "echoed");
    // Examined (connections_checked), but neither counted as self-destined nor acted on.
    assert.is(await f.guardStat(env, "connections_checked"), 2);
    assert.is(await f.guardStat(env, "self_destined"), 0);
    assert.is(await f.guardStat(env, "observed"), 0);
    const r = await exchange("127.0.0.2", p3!, "all", { timeoutMs: 2000 });
    assert.is(r.received, "");
    assert.is(await f.guardStat(env, "connections_checked"), 3);
    assert.is(await f.guardStat(env, "self_destined"), 1);
    assert.is(await f.guardStat(env, "short_circuited"), 1);
  } finally {
    await env.stop();
    await echo.close();
  }
});

test.run();
