import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdirSync, mkdtempSync, openSync, closeSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiSource } from "../../control/registry/sources/api/api-source.ts";
import { FileSource, type FileSourceOptions } from "../../control/registry/sources/files/file-source.ts";
import type { RegistryWrite } from "../../control/registry/source.ts";
import { RegistryStore, type StoreEvents } from "../../control/registry/store.ts";
import { waitFor } from "../support/net.ts";

const entry = (name: string, ip: string, port = 9080) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ${name}
spec:
  hosts: [${name}.example]
  ports: [{number: ${port}, name: http}]
  endpoints: [{address: ${ip}}]
  resolution: STATIC
`;

/** The store as `serve` builds it: a file source for `path` and the HTTP API's source, storing in `path`.api. */
function storeOn(path: string, events: StoreEvents = {}, opts: FileSourceOptions = {}) {
  const files = new FileSource(path, opts);
  return { files, store: new RegistryStore([files, new ApiSource(`${path}.api`)], events) };
}

const put = (namespace: string, name: string, body: string): RegistryWrite => ({ op: "put", kind: "ServiceEntry", namespace, name, body });
const del = (namespace: string, name: string): RegistryWrite => ({ op: "delete", kind: "ServiceEntry", namespace, name });

function tempDir() {
  return mkdtempSync(join(tmpdir(), "mp-store-"));
}

test("a bad edit is rejected with file:line and the last good registry keeps serving; the fix applies", async () => {
  const dir = tempDir();
  const rejected: string[][] = [];
  const { files, store } = storeOn(dir, { rejected: (_s, e) => rejected.push(e) });
  try {
    writeFileSync(join(dir, "a.yaml"), entry("a", "10.0.0.1"));
    writeFileSync(join(dir, "b.yaml"), entry("b", "10.0.0.2"));
    await store.start();
    assert.is(store.version, 1);
    assert.is(store.status().loaded, true);
    const good = store.registry;
    assert.ok(Object.isFrozen(good) && Object.isFrozen(good.services[0]!.endpoints[0]), "a serving registry version is frozen");

    writeFileSync(join(dir, "b.yaml"), entry("b", "10.0.0.999"));
    await files.reload();
    const expected = [`${join(dir, "b.yaml")}:8:16: spec.endpoints[0].address: "10.0.0.999" is not an IPv4 or IPv6 address (resolution STATIC needs IP addresses)`];
    assert.equal(rejected.at(-1), expected);
    assert.is(store.registry, good, "nothing dropped");
    assert.is(store.version, 1);
    assert.is(store.status().rejections, 1);
    assert.equal(store.status().lastErrors, expected);
    assert.equal(store.status().sources.find((s) => s.name === "files")!.refused, expected);

    writeFileSync(join(dir, "b.yaml"), entry("b", "10.0.0.3"));
    await files.reload();
    assert.is(store.version, 2);
    assert.equal(store.registry.services.map((s) => s.endpoints[0]!.address), ["10.0.0.1", "10.0.0.3"]);
    assert.equal(store.status().lastErrors, []);
  } finally {
    store.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${dir}.api`, { recursive: true, force: true });
  }
});

// Each change is waited for as a condition; the deadlines only bound the waits. How soon a change
// applies is measured by `npm run bench:control`, not asserted here.
test("file edits, atomic renames, new and deleted files are picked up by the watcher", async () => {
  const dir = tempDir();
  let versions = 0;
  const { store } = storeOn(dir, { changed: () => versions++ });
  try {
    writeFileSync(join(dir, "a.yaml"), entry("a", "10.0.0.1"));
    await store.start();
    writeFileSync(join(dir, "a.yaml"), entry("a", "10.0.0.7"));
    assert.ok(await waitFor(() => store.registry.services[0]?.endpoints[0]?.address === "10.0.0.7", 10_000), "in-place edit");
    writeFileSync(join(dir, ".a.yaml.tmp"), entry("a", "10.0.0.8"));
    renameSync(join(dir, ".a.yaml.tmp"), join(dir, "a.yaml"));
    assert.ok(await waitFor(() => store.registry.services[0]?.endpoints[0]?.address === "10.0.0.8", 10_000), "rename over");
    writeFileSync(join(dir, "c.yaml"), entry("c", "10.0.0.9"));
    assert.ok(await waitFor(() => store.registry.services.length === 2, 10_000), "new file");
    rmSync(join(dir, "c.yaml"));
    assert.ok(await waitFor(() => store.registry.services.length === 1, 10_000), "deleted file");
  } finally {
    store.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${dir}.api`, { recursive: true, force: true });
  }
});

test("a single registry file is watched through its directory; a missing registry starts empty and not loaded", async () => {
  const dir = tempDir();
  const file = join(dir, "registry.yaml");
  const { store } = storeOn(file);
  try {
    await store.start();
    assert.is(store.status().loaded, false);
    assert.match(store.status().sources[0]!.refused.join(), /registry\.yaml:0: no such file or directory/);
    assert.equal(store.registry.services, []);
    writeFileSync(file, entry("a", "10.0.0.1"));
    assert.ok(await waitFor(() => store.status().loaded, 1000));
    assert.is(store.registry.services.length, 1);
  } finally {
    store.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${dir}.api`, { recursive: true, force: true });
  }
});

test("HTTP-API entries: validated, all-or-nothing, never shadow a file's entries", async () => {
  const dir = tempDir();
  writeFileSync(join(dir, "a.yaml"), entry("a", "10.0.0.1"));
  const { store } = storeOn(dir);
  try {
    await store.start();
    const first = await store.write(put("default", "api", entry("api", "10.0.0.5", 7000)));
    assert.ok(first.ok);
    assert.equal(store.registry.services.map((s) => s.host), ["a.example", "api.example"]);
    const before = store.registry;
    const cases: [string, string, string, string, RegExp][] = [
      ["default", "bad", entry("bad", "nope"), "invalid", /request body:8:16: .*not an IPv4/],
      ["default", "other", entry("api", "10.0.0.6"), "invalid", /does not match the path default\/other/],
      ["default", "a", entry("a", "10.0.0.6"), "conflict", /defined in .*a\.yaml:1; edit that file/],
      ["default", "clash", entry("clash", "10.0.0.6").replace("clash.example", "a.example"), "conflict", /host a\.example port 9080 is already defined/],
      ["default", "two", entry("two", "10.0.0.6") + "---\n" + entry("three", "10.0.0.7"), "invalid", /exactly one ServiceEntry/],
      ["default", "x", "{not json", "invalid", /request body:1/],
    ];
    for (const [ns, name, body, kind, reason] of cases) {
      const r = await store.write(put(ns, name, body));
      assert.is(!r.ok && r.problem.kind, kind, name);
      assert.match(!r.ok ? r.problem.errors.join("\n") : "", reason);
      assert.is(store.registry, before, `${name}: nothing half-applied`);
    }
    const fromFile = await store.write(del("default", "a"));
    assert.is(!fromFile.ok && fromFile.problem.kind, "conflict");
    const gone = await store.write(del("default", "missing"));
    assert.is(!gone.ok && gone.problem.kind, "not-found");
    assert.ok((await store.write(del("default", "api"))).ok);
    assert.equal(store.registry.services.map((s) => s.host), ["a.example"]);
  } finally {
    store.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${dir}.api`, { recursive: true, force: true });
  }
});

test("a file edit refused because it collides with an API entry is reported, and applies once the API entry is gone", async () => {
  const dir = tempDir();
  writeFileSync(join(dir, "a.yaml"), entry("a", "10.0.0.1"));
  const { files, store } = storeOn(dir);
  try {
    await store.start();
    assert.ok((await store.write(put("default", "api", entry("api", "10.0.0.5", 7000)))).ok);
    // The file now defines the host and port the API entry has.
    writeFileSync(join(dir, "a.yaml"), entry("a", "10.0.0.1") + "---\n" + entry("api", "10.0.0.9", 7000).replace("name: api", "name: api-file"));
    await files.reload();
    const refused = store.status().sources.find((s) => s.name === "files")!.refused;
    assert.match(refused.join(), /host api\.example port 7000 is already defined/);
    assert.equal(store.registry.services.map((s) => s.host), ["a.example", "api.example"]);
    assert.is(store.registry.services[1]!.endpoints[0]!.address, "10.0.0.5", "the API entry keeps serving");

    assert.ok((await store.write(del("default", "api"))).ok);
    assert.equal(store.status().sources.find((s) => s.name === "files")!.refused, [], "retried when the blocker went away");
    assert.is(store.registry.services[1]!.endpoints[0]!.address, "10.0.0.9", "the file's version now serves");
  } finally {
    store.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${dir}.api`, { recursive: true, force: true });
  }
});

const SETTLE_MS = 400;
const filesStatus = (store: RegistryStore) => store.status().sources.find((x) => x.name === "files")!;
const hosts = (store: RegistryStore) => store.registry.services.map((x) => x.host).join(",");

test("a file emptied to 0 bytes is held back and reported; it applies only once unchanged for the settle period", async () => {
  const dir = tempDir();
  const held: string[][] = [];
  const { files, store } = storeOn(dir, { held: (_s, h) => held.push(h.reasons) }, { settleMs: SETTLE_MS });
  try {
    writeFileSync(join(dir, "a.yaml"), entry("a", "10.0.0.1"));
    writeFileSync(join(dir, "b.yaml"), entry("b", "10.0.0.2"));
    await store.start();
    const t0 = Date.now();
    writeFileSync(join(dir, "a.yaml"), "");
    await files.reload();
    assert.is(hosts(store), "a.example,b.example", "nothing removed yet");
    assert.equal(held.at(-1), [`${join(dir, "a.yaml")} is empty (0 characters) but held 1 resource`]);
    const status = filesStatus(store);
    assert.equal(status.held?.reasons, held.at(-1));
    assert.ok(Date.parse(status.held!.appliesAt!) - Date.parse(status.held!.since) === SETTLE_MS);
    assert.ok(await waitFor(() => hosts(store) === "b.example", 5_000), "applied once stable");
    assert.ok(Date.now() - t0 >= SETTLE_MS, `applied after ${Date.now() - t0} ms`);
    assert.is(filesStatus(store).held, undefined, "the hold ends when the change applies");
  } finally {
    store.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${dir}.api`, { recursive: true, force: true });
  }
});

test("a file cut at a --- (a rewrite seen half-way) is held; the finished rewrite applies at once and ends the hold", async () => {
  const dir = tempDir();
  const served: number[] = [];
  const { files, store } = storeOn(dir, { changed: (r) => served.push(r.services.length) }, { settleMs: 60_000 });
  try {
    const three = [entry("a", "10.0.0.1"), entry("b", "10.0.0.2"), entry("c", "10.0.0.3")];
    writeFileSync(join(dir, "all.yaml"), three.join("---\n"));
    await store.start();
    // A writer that rewrites the file in place: truncated, then written in pieces.
    const fd = openSync(join(dir, "all.yaml"), "w");
    writeSync(fd, three.slice(0, 2).join("---\n") + "---\n");
    await files.reload();
    assert.match(filesStatus(store).held?.reasons.join() ?? "", /all\.yaml looks cut short: it is the first \d+ of the \d+ characters it had, with 2 of its 3 resources/);
    assert.is(store.registry.services.length, 3);
    writeSync(fd, entry("c", "10.0.0.9"));
    closeSync(fd);
    await files.reload();
    assert.is(filesStatus(store).held, undefined);
    assert.is(store.registry.services.find((x) => x.host === "c.example")?.endpoints[0]?.address, "10.0.0.9");
    assert.ok(served.every((n) => n === 3), `served ${served.join(", ")} services`);
  } finally {
    store.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${dir}.api`, { recursive: true, force: true });
  }
});

test("a registry directory replaced by an empty one is held (all services removed); acceptRemovals applies it at once", async () => {
  for (const acceptRemovals of [false, true]) {
    const root = tempDir();
    const dir = join(root, "registry");
    mkdirSync(dir);
    const { files, store } = storeOn(dir, {}, { settleMs: 60_000, acceptRemovals });
    try {
      writeFileSync(join(dir, "a.yaml"), entry("a", "10.0.0.1"));
      writeFileSync(join(dir, "b.yaml"), entry("b", "10.0.0.2"));
      await store.start();
      mkdirSync(join(root, "empty"));
      renameSync(dir, join(root, "old"));
      renameSync(join(root, "empty"), dir);
      await files.reload();
      if (acceptRemovals) {
        assert.is(hosts(store), "");
        assert.is(filesStatus(store).held, undefined);
      } else {
        assert.is(hosts(store), "a.example,b.example");
        assert.equal(filesStatus(store).held?.reasons, ["it would remove all 2 services the files define"]);
        // Put back, the hold ends and nothing ever changed.
        renameSync(dir, join(root, "empty"));
        renameSync(join(root, "old"), dir);
        await files.reload();
        assert.is(filesStatus(store).held, undefined);
        assert.is(store.version, 1);
      }
    } finally {
      store.stop();
      rmSync(root, { recursive: true, force: true });
    }
  }
});

test("a registry directory replaced by another (renamed into place) is watched anew: the swap and later edits are seen", async () => {
  const root = tempDir();
  const dir = join(root, "registry");
  mkdirSync(dir);
  const { store } = storeOn(dir);
  try {
    writeFileSync(join(dir, "a.yaml"), entry("a", "10.0.0.1"));
    await store.start();
    mkdirSync(join(root, "next"));
    writeFileSync(join(root, "next", "a.yaml"), entry("a", "10.0.0.2"));
    renameSync(dir, join(root, "previous"));
    renameSync(join(root, "next"), dir);
    assert.ok(await waitFor(() => store.registry.services[0]?.endpoints[0]?.address === "10.0.0.2", 3_000), "the swap");
    // The watch set on the old directory follows it to its new name; edits here must still be seen.
    writeFileSync(join(dir, "a.yaml"), entry("a", "10.0.0.3"));
    assert.ok(await waitFor(() => store.registry.services[0]?.endpoints[0]?.address === "10.0.0.3", 3_000), "an edit in the new directory");
    writeFileSync(join(root, "previous", "a.yaml"), entry("a", "10.0.0.9"));
    writeFileSync(join(dir, "b.yaml"), entry("b", "10.0.0.4"));
    assert.ok(await waitFor(() => store.registry.services.length === 2, 3_000), "a new file in the new directory");
    assert.is(store.registry.services[0]!.endpoints[0]!.address, "10.0.0.3", "the old directory is not read");
  } finally {
    store.stop();
    rmSync(root, { recursive: true, force: true });
  }
});

test("maxRemovalShare: removing more than the share of services is held, less applies at once", async () => {
  const dir = tempDir();
  const { files, store } = storeOn(dir, {}, { settleMs: 60_000, maxRemovalShare: 0.5 });
  try {
    for (const n of ["a", "b", "c", "d"]) writeFileSync(join(dir, `${n}.yaml`), entry(n, "10.0.0.1", n.charCodeAt(0) + 9000));
    await store.start();
    rmSync(join(dir, "d.yaml"));
    await files.reload();
    assert.is(hosts(store), "a.example,b.example,c.example", "1 of 4 applies");
    rmSync(join(dir, "b.yaml"));
    rmSync(join(dir, "c.yaml"));
    await files.reload();
    assert.equal(filesStatus(store).held?.reasons, ["it would remove 2 of the 3 services the files define (66.7 %), more than the allowed share of 50 %"]);
    assert.is(hosts(store), "a.example,b.example,c.example");
  } finally {
    store.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${dir}.api`, { recursive: true, force: true });
  }
});

test.run();
