// ServiceEntries written over the HTTP API are stored in --api-dir, one file each, written atomically,
// and read back at start through the same parser and validation; without the directory, writes are
// refused rather than kept only in memory.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { tempRegistryDir } from "../support/control.ts";
import { waitFor } from "../support/net.ts";

const TOKEN = "api-store-token";
const auth = { authorization: `Bearer ${TOKEN}` };
const entry = (name: string, ip: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${name}.example]
  ports: [{number: 9080, name: http}]
  resolution: STATIC
  endpoints: [{address: ${ip}}]
`;

function plane(root: string, withApiDir = true): Promise<ControlPlane> {
  return serve({ registry: join(root, "registry"), xdsPort: 0, httpPort: 0, token: TOKEN, ...(withApiDir ? { apiDir: join(root, "api") } : {}), log: () => {} });
}

function tempRoot(): string {
  const root = tempRegistryDir();
  mkdirSync(join(root, "registry"));
  writeFileSync(join(root, "registry", "files.yaml"), entry("from-file", "10.0.0.1"));
  return root;
}

const put = (cp: ControlPlane, name: string, body: string) => fetch(`${cp.httpUrl}/registry/serviceentries/default/${name}`, { method: "PUT", body, headers: auth });
const del = (cp: ControlPlane, name: string) => fetch(`${cp.httpUrl}/registry/serviceentries/default/${name}`, { method: "DELETE", headers: auth });
const served = async (cp: ControlPlane) => (await (await fetch(`${cp.httpUrl}/registry/serviceentries`)).json()).serviceEntries.map((e: any) => `${e.name}@${e.origin.file}`);

test("an API entry that a file edit also defines: the edit waits; DELETE of the API's entry succeeds, and the file's content then applies on its own", async () => {
  const root = tempRoot();
  const cp = await plane(root);
  try {
    assert.is((await put(cp, "both", entry("both", "10.0.0.2"))).status, 200);
    writeFileSync(join(root, "registry", "files.yaml"), `${entry("from-file", "10.0.0.1")}---\n${entry("both", "10.0.0.3")}`);
    assert.ok(await waitFor(() => cp.store.status().sources.find((s) => s.name === "files")!.refused.length > 0, 5000), "the file edit is refused while the API holds the entry");
    assert.equal((await served(cp)).sort(), ["both@http-api", `from-file@${join(root, "registry", "files.yaml")}`]);
    const removed = await del(cp, "both");
    assert.is(removed.status, 200, await removed.clone().text());
    assert.ok(await waitFor(async () => (await served(cp)).includes(`both@${join(root, "registry", "files.yaml")}`), 5000), `the file's entry serves: ${await served(cp)}`);
    assert.equal(cp.store.status().sources.find((s) => s.name === "files")!.refused, []);
    const fromFile = await del(cp, "both");
    assert.is(fromFile.status, 409, "an entry a file serves is still not the API's to delete");
  } finally {
    await cp.stop();
    rmSync(root, { recursive: true, force: true });
  }
});

test("API writes survive a restart: each entry is a file in --api-dir, written whole, read back at start", async () => {
  const root = tempRoot();
  const apiDir = join(root, "api");
  let cp = await plane(root);
  try {
    assert.is((await put(cp, "a", entry("a", "10.0.0.5"))).status, 200);
    assert.is((await put(cp, "b", entry("b", "10.0.0.6"))).status, 200);
    assert.is((await put(cp, "a", entry("a", "10.0.0.7"))).status, 200);
    assert.is((await del(cp, "b")).status, 200);
    assert.equal(readdirSync(apiDir), ["default.a.yaml"], "one file per entry, no temporary files left");
    assert.is(readFileSync(join(apiDir, "default.a.yaml"), "utf8"), entry("a", "10.0.0.7"));
    await cp.stop();

    cp = await plane(root);
    assert.equal(await served(cp), ["a@http-api", "from-file@" + join(root, "registry", "files.yaml")]);
    const a = (await (await fetch(`${cp.httpUrl}/registry/serviceentries`)).json()).serviceEntries[0];
    assert.is(a.endpoints[0].address, "10.0.0.7");
    assert.is((await del(cp, "a")).status, 200);
    await cp.stop();
    cp = await plane(root);
    assert.equal(await served(cp), ["from-file@" + join(root, "registry", "files.yaml")]);
  } finally {
    await cp.stop();
    rmSync(root, { recursive: true, force: true });
  }
});

test("without --api-dir, writes are refused with 403 naming the flag", async () => {
  const root = tempRoot();
  const cp = await plane(root, false);
  try {
    const r = await put(cp, "a", entry("a", "10.0.0.5"));
    assert.is(r.status, 403);
    assert.match((await r.json()).details.join(), /--api-dir DIR/);
    assert.equal(await served(cp), ["from-file@" + join(root, "registry", "files.yaml")]);
  } finally {
    await cp.stop();
    rmSync(root, { recursive: true, force: true });
  }
});

test("a bad or misnamed file in --api-dir is reported like a registry error; writes wait (503); fixing it applies", async () => {
  const root = tempRoot();
  const apiDir = join(root, "api");
  mkdirSync(apiDir);
  writeFileSync(join(apiDir, "default.good.yaml"), entry("good", "10.0.0.5"));
  writeFileSync(join(apiDir, "default.bad.yaml"), entry("bad", "10.0.0.999"));
  writeFileSync(join(apiDir, "default.wrong-name.yaml"), entry("named", "10.0.0.6"));
  writeFileSync(join(apiDir, ".tmp-1-1"), "left by a crash");
  const cp = await plane(root);
  try {
    assert.not.ok(existsSync(join(apiDir, ".tmp-1-1")), "a crashed write's temporary file is removed");
    const readyz = await fetch(`${cp.httpUrl}/readyz`);
    assert.is(readyz.status, 503);
    const reasons = await readyz.text();
    assert.match(reasons, `${join(apiDir, "default.bad.yaml")}:8:16: spec.endpoints[0].address: "10.0.0.999" is not an IPv4 or IPv6 address`);
    assert.match(reasons, `${join(apiDir, "default.wrong-name.yaml")}:1: holds ServiceEntry default/named, so it must be named default.named.yaml`);
    const status = (await (await fetch(`${cp.httpUrl}/debug/registry`)).json()).status;
    assert.is(status.sources.find((s: any) => s.name === "http-api").refused.length, 2);
    const refused = await put(cp, "c", entry("c", "10.0.0.8"));
    assert.is(refused.status, 503);
    assert.match((await refused.json()).details[0], /could not be read back; writes resume once those files are fixed or removed/);
    writeFileSync(join(apiDir, "default.bad.yaml"), entry("bad", "10.0.0.9"));
    rmSync(join(apiDir, "default.wrong-name.yaml"));
    assert.ok(await waitFor(async () => (await fetch(`${cp.httpUrl}/readyz`)).status === 200, 5_000), "retried when the directory changed");
    assert.equal(await served(cp), ["bad@http-api", "from-file@" + join(root, "registry", "files.yaml"), "good@http-api"]);
    assert.is((await put(cp, "c", entry("c", "10.0.0.8"))).status, 200);
  } finally {
    await cp.stop();
    rmSync(root, { recursive: true, force: true });
  }
});

test("a write that cannot be stored durably is refused (503) and changes nothing", async () => {
  const root = tempRoot();
  const apiDir = join(root, "api");
  const cp = await plane(root);
  try {
    // The directory is gone and a file stands in its place: creating the temporary file fails.
    rmSync(apiDir, { recursive: true });
    writeFileSync(apiDir, "not a directory");
    const r = await put(cp, "a", entry("a", "10.0.0.5"));
    assert.is(r.status, 503);
    assert.match((await r.json()).details[0], /^the write could not be stored durably, so the registry did not change: ENOTDIR/);
    assert.equal(await served(cp), ["from-file@" + join(root, "registry", "files.yaml")]);
  } finally {
    await cp.stop();
    rmSync(root, { recursive: true, force: true });
  }
});

test("an --api-dir that cannot be made fails the start and leaves the registry files unwatched", async () => {
  const root = tempRoot();
  writeFileSync(join(root, "api"), "not a directory");
  const lines: string[] = [];
  try {
    await serve({ registry: join(root, "registry"), apiDir: join(root, "api", "entries"), xdsPort: 0, httpPort: false, loopGuard: false, log: (l) => lines.push(l) })
      .then(() => assert.unreachable("started"), (err: Error) => assert.match(err.message, /ENOTDIR/));
    const seen = lines.length;
    // A source left running would reload this into the plane that failed to start, and log it. The
    // anchor: a plane watching the same files, started after the failed one, has taken the change; a
    // source left running, whose watch was set earlier in this process, would have done the same work first.
    const witness = await serve({ registry: join(root, "registry"), xdsPort: 0, httpPort: false, loopGuard: false, log: () => {} });
    try {
      writeFileSync(join(root, "registry", "files.yaml"), entry("changed", "10.0.0.2"));
      assert.ok(await waitFor(() => witness.store.registry.services.some((x) => x.host === "changed.example"), 5_000), "the witness took the change");
    } finally {
      await witness.stop();
    }
    assert.equal(lines.slice(seen), []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
