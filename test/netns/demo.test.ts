// `multiplane demo` as users run it (dist/multiplane.js): the rootless loopback variant, which needs no
// root and runs everywhere, shows the seed's outcomes and prints the documented JSON shape exactly. The
// namespace variant is asserted row by row in seed-netns.test.ts (root only).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { MATRIX } from "../../control/cmd/demo/scenario.ts";

const cli = (args: string[]) =>
  spawnSync(process.execPath, [join(PROJECT_ROOT, "dist", "multiplane.js"), ...args], { encoding: "utf8", timeout: 120_000 });

const KEYS = ["controlPlane", "downstreamCxTotal", "envoyAlive", "guard", "instanceIps", "name", "protocol", "request", "selfLearned", "shortCircuited", "status"];

test("demo --json --environment loopback: the seed's five outcomes and the HTTP loop's 508, JSON exactly as specified", () => {
  const r = cli(["demo", "--json", "--environment", "loopback"]);
  assert.is(r.status, 0, `exit ${r.status}${r.error ? ` (${r.error.message})` : ""}\nstderr:\n${r.stderr.slice(-4000)}`);
  const out = JSON.parse(r.stdout);
  assert.equal(Object.keys(out), ["scenarios"]);
  assert.equal(out.scenarios.map((s: any) => s.name), MATRIX.map((s) => s.name));
  for (const s of out.scenarios) assert.equal(Object.keys(s).sort(), KEYS, `keys of ${s.name}`);
  const row = (name: string) => out.scenarios.find((s: any) => s.name === name);

  const loop = row("seed-loop");
  assert.equal([loop.controlPlane, loop.guard, loop.request, loop.status, loop.shortCircuited], ["legacy", false, "failed", null, 0]);
  assert.ok(loop.downstreamCxTotal >= 100 || loop.envoyAlive === false, JSON.stringify(loop));

  const meta = row("guard-metadata");
  assert.equal([meta.controlPlane, meta.guard, meta.instanceIps, meta.request, meta.envoyAlive, meta.selfLearned], ["legacy", true, "auto", "failed", true, 0]);
  assert.ok(meta.shortCircuited >= 1 && meta.downstreamCxTotal <= 3, JSON.stringify(meta));

  const learned = row("guard-learned");
  assert.equal([learned.controlPlane, learned.guard, learned.instanceIps, learned.request, learned.envoyAlive], ["legacy", true, "none", "failed", true]);
  assert.ok(learned.selfLearned >= 1 && learned.shortCircuited >= 1 && learned.downstreamCxTotal <= 3, JSON.stringify(learned));

  for (const name of ["fix", "fix+guard"]) {
    const f = row(name);
    assert.equal([f.controlPlane, f.guard, f.request, f.status, f.shortCircuited, f.selfLearned, f.envoyAlive], ["multi-ip", name === "fix+guard", "ok", 200, 0, 0, true], name);
  }
  for (const s of out.scenarios) assert.is(s.protocol, s.name === "http-loop" ? "HTTP" : "TCP", s.name);

  const http = row("http-loop");
  assert.equal([http.controlPlane, http.guard, http.instanceIps, http.request, http.status, http.envoyAlive], ["legacy", true, "none", "failed", 508, true]);
  assert.ok(http.shortCircuited >= 1 && http.selfLearned >= 1 && http.downstreamCxTotal === 2, JSON.stringify(http));
});

test("demo: the table names every case and its outcome", () => {
  const r = cli(["demo", "--environment", "loopback", "--only", "guard-metadata,fix"]);
  assert.is(r.status, 0, r.stderr.slice(-3000));
  assert.match(r.stdout, /case\s+\| port \| control plane \| guard \| INSTANCE_IPS \| result/);
  assert.match(r.stdout, /guard-metadata\s+\| TCP\s+\| legacy\s+\| on\s+\| auto\s+\| failed/);
  assert.match(r.stdout, /fix\s+\| TCP\s+\| multi-ip\s+\| off\s+\| auto\s+\| ok\s+\| 200/);
  assert.match(r.stdout, "every row behaved as expected");
});

test("demo: bad flags are one-line errors", () => {
  const r = cli(["demo", "--environment", "mars"]);
  assert.is.not(r.status, 0);
  assert.match(r.stderr, "--environment must be netns or loopback");
  const o = cli(["demo", "--only", "nope"]);
  assert.is.not(o.status, 0);
  assert.match(o.stderr, "unknown case");
});

test.run();
