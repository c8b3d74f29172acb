// The `multiplane` bin as users run it (dist/multiplane.js, built by npm install).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { PROJECT_ROOT } from "../envoy/paths.ts";
import { parseServeArgs } from "../control/cli.ts";

const cli = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(process.execPath, [join(PROJECT_ROOT, "dist", "multiplane.js"), ...args], { encoding: "utf8", env });

test("envoy-path prints the resolved, runnable Envoy", () => {
  const r = cli(["envoy-path"]);
  assert.is(r.status, 0, r.stderr);
  const version = spawnSync(r.stdout.trim(), ["--version"], { encoding: "utf8" });
  assert.match(version.stdout, /version: \S+\/1\.\d+\.\d+\//);
});

test("without Envoy: a one-line error naming ENVOY_BIN and npm install, no stack trace", () => {
  const r = cli(["envoy-path"], { ...process.env, ENVOY_BIN: "/nonexistent/envoy" });
  assert.is(r.status, 1);
  assert.match(r.stderr, "ENVOY_BIN=/nonexistent/envoy");
  assert.match(r.stderr, "npm install");
  assert.not.match(r.stderr, /\n\s+at /);
});

test("bootstrap: node id, INSTANCE_IPS, ADS to the given control plane, admin on 127.0.0.1", () => {
  const r = cli(["bootstrap", "--xds", "127.0.0.1:15010", "--node-id", "sidecar~192.168.10.63~a-1.default~default.svc.cluster.local", "--instance-ips", "192.168.10.63,10.75.8.101"]);
  assert.is(r.status, 0, r.stderr);
  const b = JSON.parse(r.stdout);
  assert.is(b.node.id, "sidecar~192.168.10.63~a-1.default~default.svc.cluster.local");
  assert.is(b.node.metadata.INSTANCE_IPS, "192.168.10.63,10.75.8.101");
  assert.is(b.admin.address.socket_address.address, "127.0.0.1");
  assert.is(b.dynamic_resources.ads_config.api_type, "GRPC");
  const xds = b.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
  assert.equal(xds, { address: "127.0.0.1", port_value: 15010 });
});

test("bootstrap --instance-ips none omits INSTANCE_IPS (an old single-IP proxy)", () => {
  const r = cli(["bootstrap", "--xds", "127.0.0.1:15010", "--node-id", "n", "--instance-ips", "none"]);
  assert.is(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).node.metadata, {});
});

test("bootstrap with a bad --xds is a usage error", () => {
  const r = cli(["bootstrap", "--xds", "nowhere", "--node-id", "n"]);
  assert.is(r.status, 1);
  assert.match(r.stderr, "--xds: expected HOST:PORT");
});

test("serve flags: defaults on loopback, xDS and HTTP hosts apart, guard and virtual listener options", () => {
  assert.equal(parseServeArgs(["--registry", "r"]), {
    registry: "r", xdsHost: "127.0.0.1", xdsPort: 15010, httpHost: "127.0.0.1", httpPort: 15014,
    legacySingleIp: false, loopGuard: { mode: "enforce" }, virtualListener: { handoff: "original_dst" },
  });
  const o = parseServeArgs(["--registry", "r", "--xds-host", "0.0.0.0", "--http-port", "0", "--legacy-single-ip", "--no-loop-guard",
    "--virtual-listener", "127.0.0.1:25001", "--virtual-handoff", "proxy_protocol"]);
  assert.equal([o.xdsHost, o.httpHost, o.httpPort, o.legacySingleIp, o.loopGuard], ["0.0.0.0", "127.0.0.1", 0, true, false]);
  assert.equal(o.virtualListener, { address: "127.0.0.1", port: 25001, handoff: "proxy_protocol" });
  assert.equal(parseServeArgs(["--registry", "r", "--guard-mode", "observe"]).loopGuard, { mode: "observe" });
  const safety = parseServeArgs(["--registry", "r", "--max-removal-share", "0.25", "--settle-seconds", "30", "--accept-removals", "--api-dir", "/var/lib/mp"]);
  assert.equal([safety.maxRemovalShare, safety.settleSeconds, safety.acceptRemovals, safety.apiDir], [0.25, 30, true, "/var/lib/mp"]);
});

test("serve flags: each mistake is a precise usage error", () => {
  const err = (args: string[]) => { try { parseServeArgs(args); return "accepted"; } catch (e) { return (e as Error).message; } };
  assert.match(err([]), "--registry PATH is required");
  assert.match(err(["--registry", "r", "--xds-port", "70000"]), "--xds-port: expected a port number");
  assert.match(err(["--registry", "r", "--http-port", "web"]), "--http-port: expected a port number");
  assert.match(err(["--registry", "r", "--guard-mode", "block"]), "--guard-mode: expected enforce or observe");
  assert.match(err(["--registry", "r", "--no-loop-guard", "--guard-mode", "observe"]), "contradict");
  assert.match(err(["--registry", "r", "--virtual-handoff", "magic"]), "--virtual-handoff");
  assert.match(err(["--registry", "r", "--token-file", "/nonexistent/token"]), "--token-file: cannot read /nonexistent/token: ENOENT");
  assert.match(err(["--registry", "r", "--bogus"]), "bogus");
  assert.match(err(["--registry", "r", "--max-removal-share", "1.5"]), "--max-removal-share: expected a number from 0 to 1");
  assert.match(err(["--registry", "r", "--settle-seconds", "ten"]), "--settle-seconds: expected a number from 0");
});

test.run();
