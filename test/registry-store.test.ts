import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RegistryStore } from "../control/registry/store.ts";
import { waitFor } from "./support/net.ts";

const entry = (name: string, ip: string, port = 9080) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ${name}
spec:
  hosts: [${name}.example]
  ports: [{number: ${port}, name: http}]
  endpoints: [{address: ${ip}}]
`;

function tempDir() {
  return mkdtempSync(join(tmpdir(), "mp-store-"));
}

test("a bad edit is rejected with file:line and the last good registry keeps serving; the fix applies", async () => {
  const dir = tempDir();
  const rejected: string[][] = [];
  const store = new RegistryStore(dir, { rejected: (_s, e) => rejected.push(e) });
  try {
    writeFileSync(join(dir, "a.yaml"), entry("a", "10.0.0.1"));
    writeFileSync(join(dir, "b.yaml"), entry("b", "10.0.0.2"));
    assert.ok((await store.start()).ok);
    assert.is(store.version, 1);
    assert.is(store.snapshotStatus().loaded, true);
    const good = store.registry;

    writeFileSync(join(dir, "b.yaml"), entry("b", "10.0.0.999"));
    const bad = await store.reload();
    assert.not.ok(bad.ok);
    assert.equal(!bad.ok && bad.errors, [`${join(dir, "b.yaml")}:8:16: spec.endpoints[0].address: "10.0.0.999" is not an IPv4 or IPv6 address (resolution STATIC needs IP addresses)`]);
    assert.is(store.registry, good, "nothing dropped");
    assert.is(store.version, 1);
    assert.is(store.snapshotStatus().rejections, 1);
    assert.is(store.snapshotStatus().lastErrors.length, 1);

    writeFileSync(join(dir, "b.yaml"), entry("b", "10.0.0.3"));
    assert.ok((await store.reload()).ok);
    assert.is(store.version, 2);
    assert.equal(store.registry.services.map((s) => s.endpoints[0]!.address), ["10.0.0.1", "10.0.0.3"]);
    assert.equal(store.snapshotStatus().lastErrors, []);
  } finally {
    store.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("file edits, atomic renames and new files are picked up by the watcher within a second", async () => {
  const dir = tempDir();
  let versions = 0;
  const store = new RegistryStore(dir, { changed: () => versions++ });
  try {
    writeFileSync(join(dir, "a.yaml"), entry("a", "10.0.0.1"));
    await store.start();
    const t0 = Date.now();
    writeFileSync(join(dir, "a.yaml"), entry("a", "10.0.0.7"));
    assert.ok(await waitFor(() => store.registry.services[0]?.endpoints[0]?.address === "10.0.0.7", 1000), "in-place edit");
    const latency = Date.now() - t0;
    assert.ok(latency < 1000, `took ${latency} ms`);
    writeFileSync(join(dir, ".a.yaml.tmp"), entry("a", "10.0.0.8"));
    renameSync(join(dir, ".a.yaml.tmp"), join(dir, "a.yaml"));
    assert.ok(await waitFor(() => store.registry.services[0]?.endpoints[0]?.address === "10.0.0.8", 1000), "rename over");
    writeFileSync(join(dir, "c.yaml"), entry("c", "10.0.0.9"));
    assert.ok(await waitFor(() => store.registry.services.length === 2, 1000), "new file");
    rmSync(join(dir, "c.yaml"));
    assert.ok(await waitFor(() => store.registry.services.length === 1, 1000), "deleted file");
  } finally {
    store.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a single registry file is watched through its directory; a missing registry starts empty and not loaded", async () => {
  const dir = tempDir();
  const file = join(dir, "registry.yaml");
  const store = new RegistryStore(file);
  try {
    const first = await store.start();
    assert.not.ok(first.ok);
    assert.is(store.snapshotStatus().loaded, false);
    assert.equal(store.registry.services, []);
    writeFileSync(file, entry("a", "10.0.0.1"));
    assert.ok(await waitFor(() => store.snapshotStatus().loaded, 1000));
    assert.is(store.registry.services.length, 1);
  } finally {
    store.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("HTTP-API entries: validated, all-or-nothing, never shadow a file's entries", async () => {
  const dir = tempDir();
  writeFileSync(join(dir, "a.yaml"), entry("a", "10.0.0.1"));
  const store = new RegistryStore(dir);
  try {
    await store.start();
    const put = store.putServiceEntry("default", "api", entry("api", "10.0.0.5", 7000));
    assert.ok(put.ok);
    assert.equal(store.registry.services.map((s) => s.host), ["a.example", "api.example"]);
    const before = store.registry;
    const cases: [string, string, string, number, RegExp][] = [
      ["default", "bad", entry("bad", "nope"), 400, /request body:8:16: .*not an IPv4/],
      ["default", "other", entry("api", "10.0.0.6"), 400, /does not match the path default\/other/],
      ["default", "a", entry("a", "10.0.0.6"), 409, /defined in .*a\.yaml:1; edit that file/],
      ["default", "clash", entry("clash", "10.0.0.6").replace("clash.example", "a.example"), 409, /host a\.example port 9080 is already defined/],
      ["default", "two", entry("two", "10.0.0.6") + "---\n" + entry("three", "10.0.0.7"), 400, /exactly one ServiceEntry/],
      ["default", "x", "{not json", 400, /request body:1/],
    ];
    for (const [ns, name, body, status, reason] of cases) {
      const r = store.putServiceEntry(ns, name, body);
      assert.is(!r.ok && r.status, status, name);
      assert.match(!r.ok ? r.errors.join("\n") : "", reason);
      assert.is(store.registry, before, `${name}: nothing half-applied`);
    }
    assert.is(store.deleteServiceEntry("default", "a").ok, false);
    const gone = store.deleteServiceEntry("default", "missing");
    assert.is(!gone.ok && gone.status, 404);
    assert.ok(store.deleteServiceEntry("default", "api").ok);
    assert.equal(store.registry.services.map((s) => s.host), ["a.example"]);
  } finally {
    store.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
