// `multiplane validate` as users run it (the built bundle, dist/multiplane.js): files and directories
// checked without serving, one file:line:column: reason per problem, --json for machines, exit 0/1.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT } from "../../envoy/paths.ts";

const cli = (args: string[]) => spawnSync(process.execPath, [join(PROJECT_ROOT, "dist", "multiplane.js"), "validate", ...args], { encoding: "utf8" });
const dir = mkdtempSync(join(tmpdir(), "mp-validate-"));
const BAD = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: bad}
spec:
  hosts: [bad.example]
  ports: [{number: 80, name: http_web, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1}]
`;
const CLASH = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: clash}
spec:
  hosts: [service-a.default.svc.cluster.local]
  ports: [{number: 9080, name: http}]
`;

test.after(() => rmSync(dir, { recursive: true, force: true }));

test("valid files and directories: exit 0, warnings listed, a summary line", () => {
  const r = cli(["--mesh-networks", join(PROJECT_ROOT, "examples", "mesh-networks.yaml"), join(PROJECT_ROOT, "examples", "registry"), join(PROJECT_ROOT, "examples", "istio"), join(PROJECT_ROOT, "test", "fixtures", "istio", "valid.yaml")]);
  assert.is(r.status, 0, r.stdout + r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.match(lines.at(-1)!, /^valid: 7 files, \d+ resources, 0 errors, \d+ warnings$/, "six registry files and the meshNetworks file");
  assert.ok(lines.some((l) => /valid\.yaml:\d+:\d+: warning: spec\.subjectAltNames is ignored/.test(l)), r.stdout);
});

test("an invalid file: exit 1, one file:line:column: reason per problem", () => {
  writeFileSync(join(dir, "bad.yaml"), BAD);
  const r = cli([join(dir, "bad.yaml")]);
  assert.is(r.status, 1);
  assert.equal(r.stdout.trim().split("\n"), [
    `${join(dir, "bad.yaml")}:6:24: invalid port name: "http_web" (a DNS-1123 label: letters, digits and '-', at most 63)`,
    `${join(dir, "bad.yaml")}:7:3: no endpoints should be provided for resolution type NONE (connections go to the address the client dialled)`,
    "invalid: 1 file, 0 resources, 2 errors, 0 warnings",
  ]);
});

test("documents checked together: a host:port defined twice in one namespace across paths is an error", () => {
  writeFileSync(join(dir, "clash.yaml"), CLASH);
  const r = cli([join(PROJECT_ROOT, "examples", "registry", "seed.yaml"), join(dir, "clash.yaml")]);
  assert.is(r.status, 1);
  assert.match(r.stdout, /clash\.yaml:1: host service-a\.default\.svc\.cluster\.local port 9080 is already defined by ServiceEntry default\/service-a at .*seed\.yaml:\d+/);
});

test("--json: one object for machines, the same problems", () => {
  const r = cli(["--json", join(dir, "bad.yaml"), join(PROJECT_ROOT, "examples", "registry", "seed.yaml")]);
  assert.is(r.status, 1);
  const out = JSON.parse(r.stdout);
  assert.equal([out.valid, out.errors, out.files.length], [false, 2, 2]);
  assert.equal(out.problems[0], { file: join(dir, "bad.yaml"), line: 6, column: 24, reason: "invalid port name: \"http_web\" (a DNS-1123 label: letters, digits and '-', at most 63)", severity: "error" });
  assert.ok(out.problems.some((p: any) => p.severity === "warning"));
  // Problems come in the order the paths were named, whatever the paths' collation.
  const reversed = JSON.parse(cli(["--json", join(PROJECT_ROOT, "examples", "registry", "seed.yaml"), join(dir, "bad.yaml")]).stdout);
  assert.is(reversed.problems[0].file, join(PROJECT_ROOT, "examples", "registry", "seed.yaml"));
  assert.is(reversed.problems.at(-1).file, join(dir, "bad.yaml"));
});

test("--mesh-networks is checked too; no path is a usage error (exit 2); a missing path is an error", () => {
  writeFileSync(join(dir, "mesh.yaml"), "networks:\n  n1:\n    gateways: [{registryServiceName: gw.example, port: 15443}]\n");
  const mesh = cli(["--mesh-networks", join(dir, "mesh.yaml")]);
  assert.is(mesh.status, 1);
  assert.match(mesh.stdout, /mesh\.yaml:3:\d+: registryServiceName gateways are not supported/);
  const none = cli([]);
  assert.is(none.status, 2);
  assert.match(none.stderr, /validate: name at least one registry file or directory/);
  const missing = cli([join(dir, "nope")]);
  assert.is(missing.status, 1);
  assert.match(missing.stdout, /nope:0: no such file or directory/);
});

test("--planes is checked too: the README's example is valid, a bad one is refused with its place", () => {
  const good = cli(["--planes", join(PROJECT_ROOT, "examples", "planes.yaml")]);
  assert.is(good.status, 0, good.stdout + good.stderr);
  assert.match(good.stdout, /^valid: 1 file, 0 resources, 0 errors, 0 warnings$/m, "the planes file counts as a file checked");
  const missing = cli(["--planes", join(dir, "nope.yaml")]);
  assert.equal([missing.status, missing.stdout.trim().split("\n")], [1, [`${join(dir, "nope.yaml")}:0: no such file`, "invalid: 0 files, 0 resources, 1 error, 0 warnings"]]);
  writeFileSync(join(dir, "planes.yaml"), "planes:\n- name: data\n  cidrs: [10.0.0.0/8, 10.1.0.0/16]\n  connectTimeout: soon\n");
  const bad = cli(["--planes", join(dir, "planes.yaml")]);
  assert.is(bad.status, 1);
  assert.match(bad.stdout, /planes\.yaml:4:3: planes\[0\]\.connectTimeout must be a duration like 250ms, 1\.5s or 1m30s, got "soon"/);
  assert.match(bad.stdout, /planes\.yaml:3:23: 10\.1\.0\.0\/16 \(plane data\) overlaps 10\.0\.0\.0\/8 \(plane data\)/);
});

test.run();
