// `multiplane registry import|export` against real etcd: dry run by default with the plan (added,
// changed, removed keys), --apply to write; broken files refused with file:line; a round trip
// files -> etcd -> file -> etcd changes nothing; a key changed by someone else while an import runs
// is not overwritten.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Etcd3 } from "etcd3";
import { etcdClient } from "../../control/registry/sources/etcd/etcd-client.ts";
import { registryCommand } from "../../control/cmd/transfer/command.ts";
import { applyToEtcd, filesAsValues, plan, readEtcd } from "../../control/cmd/transfer/transfer.ts";
import { loadRegistry } from "../../control/registry/sources/files/load.ts";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { whenAvailable } from "../support/available.ts";
import { etcdUnavailableReason, startEtcdCluster, type EtcdCluster } from "../support/etcd.ts";

const se = (name: string, ip: string, port: number) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${name}.example]
  ports: [{number: ${port}, name: http}]
  resolution: STATIC
  endpoints: [{address: ${ip}}]
`;
const we = JSON.stringify({ apiVersion: "networking.istio.io/v1", kind: "WorkloadEntry", metadata: { name: "w1", namespace: "ns" }, spec: { address: "10.9.0.1", labels: { app: "x" } } });

async function run(args: string[]): Promise<{ code: number; out: string[] }> {
  const out: string[] = [];
  const code = await registryCommand(args, (l) => out.push(l));
  return { code, out };
}

whenAvailable(etcdUnavailableReason(), "registry import/export", (test) => {
  let etcd: EtcdCluster;
  let client: Etcd3;
  let dir: string;
  test.before(async () => {
    etcd = await startEtcdCluster(1);
    client = etcdClient(etcd.endpoints);
    dir = mkdtempSync(join(tmpdir(), "mp-transfer-"));
  });
  test.after(async () => {
    client?.close();
    await etcd?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("import: dry run shows the plan and writes nothing; --apply writes it; then nothing is left to do", async () => {
    const files = join(dir, "files");
    mkdirSync(files);
    writeFileSync(join(files, "a.yaml"), se("a", "10.0.0.1", 80) + "---\n" + se("b", "10.0.0.2", 81));
    writeFileSync(join(files, "w.json"), we);
    const url = etcd.url("imp");
    await client.put("imp/ServiceEntry/default/stale").value(se("stale", "10.0.0.9", 89));

    const dry = await run(["import", files, "--to", url]);
    assert.is(dry.code, 0, dry.out.join("\n"));
    assert.equal(dry.out.slice(1), [
      "  + imp/ServiceEntry/default/a", "  + imp/ServiceEntry/default/b", "  + imp/WorkloadEntry/ns/w1",
      "  - imp/ServiceEntry/default/stale", "3 added, 0 changed, 1 removed, 0 unchanged",
    ]);
    assert.match(dry.out[0]!, /dry run/);
    assert.equal(await client.getAll().prefix("imp/").keys(), ["imp/ServiceEntry/default/stale"], "a dry run writes nothing");

    const applied = await run(["import", files, "--to", url, "--apply"]);
    assert.is(applied.code, 0, applied.out.join("\n"));
    assert.is(applied.out.at(-1), "applied: 4 keys written");
    assert.equal((await client.getAll().prefix("imp/").keys()).sort(), ["imp/ServiceEntry/default/a", "imp/ServiceEntry/default/b", "imp/WorkloadEntry/ns/w1"]);
    assert.is((await run(["import", files, "--to", url])).out.at(-1), "0 added, 0 changed, 0 removed, 3 unchanged");

    writeFileSync(join(files, "a.yaml"), se("a", "10.0.0.11", 80));
    const changed = await run(["import", files, "--to", url]);
    assert.equal(changed.out.slice(1), ["  ~ imp/ServiceEntry/default/a", "  - imp/ServiceEntry/default/b", "0 added, 1 changed, 1 removed, 1 unchanged"]);
  });

  test("import refuses files that do not load, with file:line, and writes nothing", async () => {
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, se("x", "10.0.0.999", 80));
    const r = await run(["import", bad, "--to", etcd.url("bad"), "--apply"]);
    assert.is(r.code, 1);
    assert.match(r.out.join("\n"), /bad\.yaml:8:16: spec\.endpoints\[0\]\.address: "10\.0\.0\.999" is not an IPv4/);
    assert.equal(await client.getAll().prefix("bad/").keys(), []);
  });

  test("export writes one registry file; a round trip files -> etcd -> file -> etcd changes nothing", async () => {
    const url = etcd.url("imp");
    const out = join(dir, "exported.yaml");
    const dry = await run(["export", "--from", url, out]);
    assert.is(dry.code, 0, dry.out.join("\n"));
    assert.equal(dry.out.slice(1), ["  + imp/ServiceEntry/default/a", "  + imp/ServiceEntry/default/b", "  + imp/WorkloadEntry/ns/w1", "3 added, 0 changed, 0 removed, 0 unchanged"]);
    assert.is((await run(["export", "--from", url, out, "--apply"])).code, 0);
    const loaded = await loadRegistry(out);
    assert.equal(loaded.errors, []);
    assert.equal(loaded.resources.map((r) => `${r.kind}/${r.namespace}/${r.name}`), ["ServiceEntry/default/a", "ServiceEntry/default/b", "WorkloadEntry/ns/w1"]);
    assert.is((await run(["export", "--from", url, out])).out.at(-1), "0 added, 0 changed, 0 removed, 3 unchanged");
    assert.is((await run(["import", out, "--to", url])).out.at(-1), "0 added, 0 changed, 0 removed, 3 unchanged");
    // Into an empty prefix and back out: the same file.
    assert.is((await run(["import", out, "--to", etcd.url("copy"), "--apply"])).code, 0);
    const again = join(dir, "again.yaml");
    assert.is((await run(["export", "--from", etcd.url("copy"), again, "--apply"])).code, 0);
    assert.is(readFileSync(again, "utf8").replaceAll("copy/", "imp/"), readFileSync(out, "utf8"));
    unlinkSync(again);
  });

  test("a key changed in etcd after the import read it is not overwritten: the import stops and says so", async () => {
    const file = join(dir, "race.yaml");
    writeFileSync(file, se("r", "10.0.1.1", 80));
    await client.put("race/ServiceEntry/default/r").value(se("r", "10.0.1.0", 80));
    const values = await filesAsValues(file, "race");
    assert.ok("values" in values);
    const read = await readEtcd(client, "race");
    const p = plan("race", values.values, new Map([...read].map(([k, v]) => [k, v.value])));
    assert.equal(p.changed.map((k) => k.key), ["race/ServiceEntry/default/r"]);
    await client.put("race/ServiceEntry/default/r").value(se("r", "10.0.1.2", 80));
    const r = await applyToEtcd(client, p, read);
    assert.is(r.written, 0);
    assert.match(r.conflict!, /changed in etcd after it was read/);
    assert.match(await client.get("race/ServiceEntry/default/r").string() ?? "", /10\.0\.1\.2/);
  });

  test("the multiplane bin runs it; an unreachable etcd is one line, a bad command a usage error", async () => {
    const bin = (args: string[]) => new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, [join(PROJECT_ROOT, "dist", "multiplane.js"), ...args], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d) => { out += d; });
      child.stderr.on("data", (d) => { out += d; });
      child.on("exit", (code) => resolve({ code, out }));
    });
    const seed = join(PROJECT_ROOT, "examples", "registry", "seed.yaml");
    const r = await bin(["registry", "import", seed, "--to", etcd.url("bin")]);
    assert.is(r.code, 0, r.out);
    assert.match(r.out, /\+ bin\/ServiceEntry\/default\/service-a\n/);
    assert.match(r.out, /added, 0 changed, 0 removed, 0 unchanged\n$/);
    const down = await bin(["registry", "import", seed, "--to", "etcd://127.0.0.1:1/x"]);
    assert.is(down.code, 1);
    assert.match(down.out, /^multiplane: etcd:\/\/127\.0\.0\.1:1\/x: .*ECONNREFUSED.*\n$/);
    const usage = await bin(["registry", "copy", seed]);
    assert.is(usage.code, 2);
    assert.match(usage.out, /^multiplane: registry: expected import, export or confirm, got "copy"\n/);
  });
});

test.run();
