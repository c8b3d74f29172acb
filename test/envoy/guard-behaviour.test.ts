// What the guard must not do (touch unrelated traffic, crash on bad configuration) and what it
// does in observe mode and when a configuration update is bad.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { randomBytes } from "node:crypto";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEnvoy, type RunningEnvoy } from "../support/envoy.ts";
import { freePort, exchange, startEcho, waitFor } from "../support/net.ts";
import * as f from "../support/guard-fixtures.ts";

test("unrelated traffic passes byte for byte and is only counted as checked", async () => {
  const echo = await startEcho("127.0.0.1");
  const port = await freePort("127.0.0.3");
  const env = await startEnvoy(f.bootstrap({
    instanceIps: "10.75.8.101,192.168.10.63",
    listeners: [f.listener("out", "127.0.0.3", port, [
      f.guardNetworkFilter({ node_ips: ["127.0.0.2", "10.75.8.101"], cidrs: ["10.0.0.0/8", "fd00::/8"], mode: "enforce" }),
      f.tcpProxy("echo")], "OUTBOUND")],
    clusters: [f.cluster("echo", echo.host, echo.port)],
  }), { concurrency: 2 });
  try {
    const payloads = Array.from({ length: 8 }, (_, i) => randomBytes(i === 0 ? 1 << 20 : 4096 + i));
    payloads.push(Buffer.from(Array.from({ length: 256 }, (_, i) => i))); // every byte value
    const results = await Promise.all(payloads.map((p) => f.exchangeBytes("127.0.0.3", port, p)));
    results.forEach((r, i) => {
      assert.is(r.ended, "echoed");
      assert.ok(r.received.equals(payloads[i]!), `payload ${i} changed`);
    });
    assert.is(await f.guardStat(env, "connections_checked"), payloads.length);
    for (const m of ["self_destined", "self_learned", "short_circuited", "observed", "config_errors"]) {
      assert.is(await f.guardStat(env, m), 0, m);
    }
    assert.is(env.log().includes("loop_guard: connection"), false);
  } finally {
    await env.stop();
    await echo.close();
  }
});

test("observe mode: a self-destined connection is counted, logged and forwarded", async () => {
  const echo = await startEcho("127.0.0.1");
  const port = await freePort("127.0.0.2");
  const env = await startEnvoy(f.bootstrap({
    listeners: [f.listener("out", "127.0.0.2", port, [f.guardNetworkFilter({ node_ips: ["127.0.0.2"], mode: "observe" }), f.tcpProxy("echo")], "OUTBOUND")],
    clusters: [f.cluster("echo", echo.host, echo.port)],
  }));
  try {
    assert.equal(await exchange("127.0.0.2", port, "observed"), { received: "observed", ended: "echoed" });
    assert.is(await f.guardStat(env, "observed"), 1);
    assert.is(await f.guardStat(env, "self_destined"), 1);
    assert.is(await f.guardStat(env, "short_circuited"), 0);
    assert.is(await env.stat("cluster.echo.upstream_cx_total"), 1);
    const observedLine = /connection to 127\.0\.0\.2:\d+ from 127\.0\.0\.1:\d+: its destination is this node \(matched: configuration\); forwarded anyway \(mode=observe\)/;
    assert.match(await f.waitForLog(env, observedLine), observedLine);
  } finally {
    await env.stop();
    await echo.close();
  }
});

test("allow_ports: a self-destined connection to an allowed port is forwarded untouched", async () => {
  const echo = await startEcho("127.0.0.1");
  const [allowed, other] = [await freePort("127.0.0.2"), await freePort("127.0.0.2")];
  const guard = f.guardNetworkFilter({ node_ips: ["127.0.0.2"], allow_ports: [allowed!] });
  const env = await startEnvoy(f.bootstrap({
    listeners: [
      f.listener("allowed", "127.0.0.2", allowed!, [guard, f.tcpProxy("echo")], "OUTBOUND"),
      f.listener("other", "127.0.0.2", other!, [guard, f.tcpProxy("echo")], "OUTBOUND"),
    ],
    clusters: [f.cluster("echo", echo.host, echo.port)],
  }));
  try {
    assert.is((await exchange("127.0.0.2", allowed!, "allowed")).ended, "echoed");
    assert.is((await exchange("127.0.0.2", other!, "other", { timeoutMs: 2000 })).received, "");
    assert.is(await f.guardStat(env, "self_destined"), 1);
    assert.is(await f.guardStat(env, "short_circuited"), 1);
  } finally {
    await env.stop();
    await echo.close();
  }
});

test("bad configurations: clear errors, config_errors counted, Envoy up, unrelated traffic untouched, metadata still protects", async () => {
  const echo = await startEcho("127.0.0.1");
  const bad: [string, string][] = [
    ["{not json", "invalid JSON: expected a string key at offset 1"],
    ['{"mode": "block"}', 'mode must be "enforce" or "observe", got "block"'],
    ['{"node_ips": ["127.0.0.300", "banana"]}', 'node_ips[0]: "127.0.0.300" is not an IP address'],
    ['{"node_ips": "127.0.0.2"}', "node_ips must be an array of strings, got a string"],
    ['{"allow_ports": ["80"]}', "allow_ports[0] must be a port number 1..65535"],
  ];
  const ports = await Promise.all(bad.map(() => freePort("127.0.0.3")));
  const protectedPort = await freePort("127.0.0.5");
  const env = await startEnvoy(f.bootstrap({
    instanceIps: "127.0.0.5",
    listeners: [
      ...bad.map(([cfg], i) => f.listener(`bad${i}`, "127.0.0.3", ports[i]!, [f.guardNetworkFilter(cfg, `bad${i}`), f.tcpProxy("echo")], "OUTBOUND")),
      f.listener("meta", "127.0.0.5", protectedPort, [f.guardNetworkFilter('{"mode": 1}', "meta"), f.tcpProxy("echo")], "OUTBOUND"),
    ],
    clusters: [f.cluster("echo", echo.host, echo.port)],
  }), { concurrency: 2 });
  try {
    assert.ok(env.alive());
    for (const port of ports) assert.equal(await exchange("127.0.0.3", port, "still works"), { received: "still works", ended: "echoed" });
    const log = await f.waitForLog(env, "mode must be a string, got a number");
    for (const [, message] of bad) {
      assert.ok(log.includes(`invalid configuration: ${message}; no good configuration yet: running with node metadata INSTANCE_IPS and learned addresses only`), message);
    }
    assert.match(log, /\[error\]\[wasm\].*loop_guard\[loop_guard\]: invalid configuration: mode must be a string, got a number/);
    // Counted (and logged) once per bad configuration, though Envoy configures each plugin in
    // several VMs (main thread and each worker).
    assert.is(await f.guardStat(env, "config_errors"), bad.length + 1);
    for (const [, message] of bad) assert.is(log.split(message).length - 1, 1, `logged once: ${message}`);
    // No configuration, but node metadata still stops a self-destined connection.
    const r = await exchange("127.0.0.5", protectedPort, "loop", { timeoutMs: 2000 });
    assert.is(r.received, "");
    assert.is(await f.guardStat(env, "short_circuited"), 1);
    assert.is(await env.stat("cluster.echo.upstream_cx_total"), bad.length);
    assert.ok(env.alive());
  } finally {
    await env.stop();
    await echo.close();
  }
});

test("a huge bad value (1 MiB) is clipped in the log line and still counted; Envoy and traffic unaffected", async () => {
  const echo = await startEcho("127.0.0.1");
  const MiB = 1 << 20;
  const huge = "x".repeat(MiB);
  const more = `…(${MiB - 200} more bytes)`;
  const bad: [string, string][] = [
    [JSON.stringify({ mode: huge }), `mode must be "enforce" or "observe", got "${"x".repeat(200)}${more}"`],
    [JSON.stringify({ node_ips: ["127.0.0.2", huge] }), `node_ips[1]: "${"x".repeat(200)}${more}" is not an IP address`],
    [JSON.stringify({ [huge]: true }), `unknown key "${"x".repeat(200)}${more}" (known: `],
    [`{"learned_ttl_seconds": 1${"0".repeat(MiB - 1)}}`, `learned_ttl_seconds must be a whole number of seconds from 1 to 2147483647, got 1${"0".repeat(199)}${more}`],
  ];
  const ports = await Promise.all(bad.map(() => freePort("127.0.0.3")));
  const env = await startEnvoy(f.bootstrap({
    // Node metadata is configuration too: its garbage entry is clipped in the warning.
    instanceIps: `127.0.0.5,${"y".repeat(MiB)}`,
    listeners: bad.map(([cfg], i) => f.listener(`huge${i}`, "127.0.0.3", ports[i]!, [f.guardNetworkFilter(cfg, `huge${i}`), f.tcpProxy("echo")], "OUTBOUND")),
    clusters: [f.cluster("echo", echo.host, echo.port)],
  }), { concurrency: 2 });
  try {
    for (const port of ports) assert.equal(await exchange("127.0.0.3", port, "still works"), { received: "still works", ended: "echoed" });
    assert.ok(await waitFor(async () => (await f.guardStat(env, "config_errors")) === bad.length, 5000),
      `config_errors ${await f.guardStat(env, "config_errors")}, want ${bad.length}`);
    const log = await f.waitForLog(env, bad.at(-1)![1]);
    const errors = log.split("\n").filter((l) => l.includes("invalid configuration: "));
    assert.is(errors.length, bad.length, "one error line per bad configuration");
    for (const [, message] of bad) {
      const line = errors.find((l) => l.includes(message));
      assert.ok(line, `logged: ${message.slice(0, 60)}`);
      assert.ok(Buffer.byteLength(line!) < 700, `${Buffer.byteLength(line!)} bytes: ${line!.slice(0, 300)}`);
    }
    const metadataLine = log.split("\n").find((l) => l.includes("in node metadata INSTANCE_IPS: not an IP address"));
    assert.ok(metadataLine?.includes(`ignoring "${"y".repeat(200)}…(${MiB - 200} more bytes)"`), metadataLine?.slice(0, 300));
    // Nothing anywhere echoed the megabytes.
    const longest = Math.max(...log.split("\n").map((l) => Buffer.byteLength(l)));
    assert.ok(longest < 1000, `longest log line ${longest} bytes`);
    assert.ok(log.length < 64 * 1024, `log is ${log.length} bytes`);
    assert.ok(env.alive());
  } finally {
    await env.stop();
    await echo.close();
  }
});

test("a bad configuration update keeps the last good configuration (listener updated over LDS from a file)", async () => {
  const echo = await startEcho("127.0.0.1");
  const port = await freePort("127.0.0.2");
  const dir = mkdtempSync(join(tmpdir(), "multiplane-lds-"));
  const ldsPath = join(dir, "lds.json");
  let version = 0;
  const publish = (config: f.GuardConfig) => {
    const l = f.listener("out", "127.0.0.2", port, [f.guardNetworkFilter(config), f.tcpProxy("echo")], "OUTBOUND");
    const body = { version_info: String(++version), resources: [{ "@type": "type.googleapis.com/envoy.config.listener.v3.Listener", ...l }] };
    writeFileSync(`${ldsPath}.tmp`, JSON.stringify(body));
    renameSync(`${ldsPath}.tmp`, ldsPath); // atomic, as Envoy's file watch expects
  };
  publish({ node_ips: ["127.0.0.2"] });
  let env: RunningEnvoy | undefined;
  try {
    env = await startEnvoy(f.bootstrap({
      clusters: [f.cluster("echo", echo.host, echo.port)],
      extra: { dynamic_resources: { lds_config: { path_config_source: { path: ldsPath, watched_directory: { path: dir } }, resource_api_version: "V3" } } },
    }));
    const e = env;
    const updates = () => e.stat("listener_manager.lds.update_success").then((v) => v ?? 0);
    assert.ok(await waitFor(async () => (await e.stat("listener_manager.total_listeners_active")) === 1, 5000), "listener active");
    assert.is((await exchange("127.0.0.2", port, "x", { timeoutMs: 2000 })).received, "", "good config: closed");

    publish({ mode: "off", node_ips: [] });
    assert.ok(await waitFor(async () => (await updates()) >= 2 && (await f.guardStat(e, "config_errors")) >= 1, 5000), "bad update applied");
    await waitFor(async () => (await e.stat("listener_manager.total_listeners_warming")) === 0, 3000);
    const kept = 'invalid configuration: mode must be "enforce" or "observe", got "off"; keeping the last good configuration: mode=enforce node_ips=[127.0.0.2]';
    assert.match(await f.waitForLog(e, kept), kept);
    assert.is(await f.guardStat(e, "config_errors"), 1);
    assert.is((await exchange("127.0.0.2", port, "x", { timeoutMs: 2000 })).received, "", "still closed after the bad update");

    // A good update does take effect (so the previous check was not just a stale listener).
    publish({ node_ips: [] });
    assert.ok(await waitFor(async () => (await updates()) >= 3, 5000));
    assert.ok(await waitFor(async () => (await exchange("127.0.0.2", port, "passes", { timeoutMs: 1000 })).ended === "echoed", 5000), "good update applied");
    assert.is(await env.stat("cluster.echo.upstream_cx_total"), 1);
  } finally {
    await env?.stop();
    await echo.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
