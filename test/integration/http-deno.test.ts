// The HTTP API under a real Deno: control/http/handler.ts, unmodified, imported by
// test/support/deno-serve.ts and served by Deno.serve over the fixture view, called over HTTP from here.
// Deno is the npm package `deno` (pinned in package.json); it runs with network access to 127.0.0.1
// only, no other permission, no config, lock file, remote or npm modules, and its cache in a temp dir.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { MAX_BODY_BYTES } from "../../control/http/handler.ts";
import { FIXTURE_PROXY } from "../support/http-fixture.ts";

const TOKEN = "deno-test-token";

/** The native binary of the installed @deno/<platform> package (the `deno` package's own bin is a Node wrapper). */
function denoBinary(): string {
  const target = process.platform === "linux" ? `linux-${process.arch}-glibc` : `${process.platform}-${process.arch}`;
  const pkg = createRequire(join(PROJECT_ROOT, "package.json")).resolve(`@deno/${target}/package.json`);
  const bin = join(dirname(pkg), process.platform === "win32" ? "deno.exe" : "deno");
  if (!existsSync(bin)) throw new Error(`no Deno binary at ${bin}: run npm install`);
  return bin;
}

let deno: ChildProcess | undefined;
let denoDir: string;
let started: { deno: string; handler: string; permissions: Record<string, string>; ports: { withToken: number; readOnly: number } };
let base: string;
let readOnlyBase: string;
let stderr = "";
process.on("exit", () => deno?.kill("SIGKILL"));

const call = (path: string, init: RequestInit = {}) => fetch(`${base}${path}`, init);
const auth = (token = TOKEN) => ({ authorization: `Bearer ${token}` });
const entry = (name: string, ip: string, ns = "default") => JSON.stringify({
  apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name, namespace: ns },
  spec: { hosts: [`${name}.example`], ports: [{ number: 9080, name: "http" }], endpoints: [{ address: ip }] },
});

test.before(async () => {
  denoDir = mkdtempSync(join(tmpdir(), "mp-deno-"));
  deno = spawn(denoBinary(), [
    "run", "--no-prompt", "--no-config", "--no-lock", "--no-remote", "--no-npm", "--allow-net=127.0.0.1",
    join(PROJECT_ROOT, "test", "support", "deno-serve.ts"), TOKEN,
  ], {
    cwd: denoDir,
    // Nothing of this process's environment: Deno's cache and home are the temp dir, and it must not phone home.
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: denoDir, DENO_DIR: join(denoDir, "cache"), DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  deno.stderr!.on("data", (d) => { stderr += d; });
  const line = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`Deno did not start in 30 s:\n${stderr}`)), 30_000);
    deno!.stdout!.on("data", (d) => {
      out += d;
      if (out.includes("\n")) { clearTimeout(timer); resolve(out.split("\n")[0]!); }
    });
    deno!.once("exit", (code, signal) => { clearTimeout(timer); reject(new Error(`Deno exited (${code ?? signal}) before listening:\n${stderr}`)); });
  });
  started = JSON.parse(line);
  base = `http://127.0.0.1:${started.ports.withToken}`;
  readOnlyBase = `http://127.0.0.1:${started.ports.readOnly}`;
  console.log(`  (deno ${started.deno})`);
});

test.after(async () => {
  if (deno && deno.exitCode === null && deno.signalCode === null) {
    const exited = new Promise((r) => deno!.once("exit", r));
    deno.kill("SIGKILL");
    await exited;
  }
  if (denoDir) rmSync(denoDir, { recursive: true, force: true });
});

test("Deno serves the project's own handler.ts, with network access to 127.0.0.1 and nothing else", () => {
  assert.is(started.deno, "2.9.6");
  assert.is(started.handler, pathToFileURL(join(PROJECT_ROOT, "control", "http", "handler.ts")).href);
  assert.equal(started.permissions, {
    "net 127.0.0.1": "granted", net: "prompt", read: "prompt", write: "prompt", env: "prompt", run: "prompt", sys: "prompt", ffi: "prompt",
  });
});

test("/healthz, /readyz and /metrics", async () => {
  const health = await call("/healthz");
  assert.is(health.status, 200);
  assert.is(await health.text(), "ok\n");
  assert.is(await (await call("/readyz")).text(), "ready\n");
  const metrics = await call("/metrics");
  assert.match(metrics.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
  assert.match(await metrics.text(), /^multiplane_registry_services 2$/m);
  const head = await call("/healthz", { method: "HEAD" });
  assert.is(head.status, 200);
  assert.is(await head.text(), "");
});

test("/debug/proxies and /debug/decisions?proxy=...", async () => {
  const { proxies } = await (await call("/debug/proxies")).json();
  assert.equal(proxies.map((p: any) => [p.id, p.nodeIps]), [[FIXTURE_PROXY, ["192.168.10.63", "10.75.8.101"]]]);
  const r = await call(`/debug/decisions?proxy=${encodeURIComponent(FIXTURE_PROXY)}`);
  assert.is(r.status, 200);
  const body = await r.json();
  assert.is(body.proxy, FIXTURE_PROXY);
  assert.equal(body.decisions.map((d: any) => [d.entry, d.direction, d.reason]), [
    ["default/service-a", "inbound", "10.75.8.101 is node IP 2 of 2"],
    ["default/service-b", "outbound", "10.75.8.102 is not one of the 2 node IPs (192.168.10.63, 10.75.8.101)"],
  ]);
  const missing = await call("/debug/decisions");
  assert.is(missing.status, 400);
  assert.equal(await missing.json(), { error: "query parameter proxy=<node id> is required", details: [`connected: ${FIXTURE_PROXY}`] });
  assert.is((await call("/debug/decisions?proxy=nobody")).status, 404);
});

test("404 lists the routes; 405 names the allowed methods in Allow", async () => {
  const nope = await call("/nope");
  assert.is(nope.status, 404);
  const { error, details } = await nope.json();
  assert.is(error, "no route /nope");
  assert.ok(details.includes("GET, PUT, DELETE, HEAD /registry/serviceentries/{namespace}/{name}"), details.join("\n"));
  const post = await call("/debug/proxies", { method: "POST", body: "x" });
  assert.is(post.status, 405);
  assert.is(post.headers.get("allow"), "GET, HEAD");
  const postEntry = await call("/registry/serviceentries/default/x", { method: "POST" });
  assert.is(postEntry.status, 405);
  assert.is(postEntry.headers.get("allow"), "GET, PUT, DELETE, HEAD");
});

test("writes without the right token get 401, and without a configured token 403; nothing changes", async () => {
  for (const headers of [{}, auth("wrong"), { authorization: "Basic abc" }]) {
    const r = await call("/registry/serviceentries/default/api", { method: "PUT", body: entry("api", "10.0.0.5"), headers });
    assert.is(r.status, 401);
    assert.is(r.headers.get("www-authenticate"), 'Bearer realm="multiplane"');
  }
  assert.is((await call("/registry/serviceentries/default/service-a", { method: "DELETE" })).status, 401);
  const disabled = await fetch(`${readOnlyBase}/registry/serviceentries/default/api`, { method: "PUT", body: entry("api", "10.0.0.5"), headers: auth() });
  assert.is(disabled.status, 403);
  assert.match((await disabled.json()).error, /writes are disabled/);
  const { serviceEntries } = await (await call("/registry/serviceentries")).json();
  assert.equal(serviceEntries.map((e: any) => e.name), ["service-a", "service-b"]);
});

test("PUT and DELETE with the token change the fixture's state, as every read route shows", async () => {
  const put = await call("/registry/serviceentries/default/service-c", { method: "PUT", body: entry("service-c", "10.75.8.101"), headers: auth() });
  assert.is(put.status, 200, await put.clone().text());
  assert.equal(await put.json(), { applied: "PUT default/service-c", changed: true, services: 3 });
  assert.equal((await (await call("/registry/serviceentries")).json()).serviceEntries.map((e: any) => e.name), ["service-a", "service-b", "service-c"]);
  assert.match(await (await call("/metrics")).text(), /^multiplane_registry_services 3$/m);
  const { decisions } = await (await call(`/debug/decisions?proxy=${encodeURIComponent(FIXTURE_PROXY)}`)).json();
  assert.ok(decisions.some((d: any) => d.entry === "default/service-c" && d.direction === "inbound"), JSON.stringify(decisions));

  const del = await call("/registry/serviceentries/default/service-c", { method: "DELETE", headers: auth() });
  assert.is(del.status, 200);
  assert.is((await del.json()).services, 2);
  assert.is((await call("/registry/serviceentries/default/service-c", { method: "DELETE", headers: auth() })).status, 404);
  assert.is((await call("/registry/serviceentries/default/service-a", { method: "DELETE", headers: auth() })).status, 409);
});

test("rejected bodies: 400 with one detail per problem, capped; bad percent-encoding 400; too large 413", async () => {
  const bad = await call("/registry/serviceentries/default/bad", {
    method: "PUT", headers: auth(),
    body: JSON.stringify({ kind: "ServiceEntry", metadata: { name: "bad", namespace: "default" }, spec: { hosts: ["bad.example"], ports: [{ number: 99999 }] } }),
  });
  assert.is(bad.status, 400);
  assert.equal(await bad.json(), { error: "PUT default/bad refused; nothing was changed", details: ["request body: spec.ports[0].number must be a port number 1..65535, got 99999"] });
  assert.is((await call("/registry/serviceentries/default/bad", { method: "PUT", body: "{", headers: auth() })).status, 400);

  const ports = Array.from({ length: 20000 }, (_, i) => ({ number: 70000 + i }));
  const body = JSON.stringify({ kind: "ServiceEntry", metadata: { name: "many", namespace: "default" }, spec: { hosts: ["H".repeat(660000)], ports } });
  assert.ok(body.length > 1_000_000 && body.length < MAX_BODY_BYTES, String(body.length));
  const many = await call("/registry/serviceentries/default/many", { method: "PUT", headers: auth(), body });
  assert.is(many.status, 400);
  const raw = await many.text();
  assert.ok(raw.length < 16_000, `answer is ${raw.length} bytes`);
  const { details } = JSON.parse(raw);
  assert.is(details.length, 21);
  assert.is(details[20], "and 19981 more");
  assert.match(details[0], /… \[\d+ more characters\]$/);

  const encoded = await call("/registry/serviceentries/%E0%A4%A/x", { method: "PUT", body: entry("x", "10.0.0.7"), headers: auth() });
  assert.is(encoded.status, 400);
  assert.equal(await encoded.json(), { error: 'path segment "%E0%A4%A" is not valid percent-encoding (UTF-8)' });

  const big = await call("/registry/serviceentries/default/big", { method: "PUT", body: "x".repeat(MAX_BODY_BYTES + 10), headers: auth() }).catch((e) => e);
  assert.ok(big instanceof Response, String(big));
  assert.is(big.status, 413);
  assert.equal((await (await call("/registry/serviceentries")).json()).serviceEntries.map((e: any) => e.name), ["service-a", "service-b"]);
});

test.run();
