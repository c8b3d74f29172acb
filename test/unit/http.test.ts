import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHandler } from "../../control/http/handler.ts";
import { clip, MAX_ITEM_CHARS, MAX_ITEMS } from "../../control/common/clip.ts";
import { MAX_BODY_BYTES } from "../../control/http/handler.ts";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { waitFor } from "../support/net.ts";

const TOKEN = "s3cret-token";
const entry = (name: string, ip: string, ns = "default") => JSON.stringify({
  apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name, namespace: ns },
  spec: { hosts: [`${name}.example`], ports: [{ number: 9080, name: "http" }], resolution: "STATIC", endpoints: [{ address: ip }] },
});

let dir: string;
let cp: ControlPlane;
const logs: string[] = [];
const call = (path: string, init: RequestInit = {}) => fetch(`${cp.httpUrl}${path}`, init);
const auth = (token = TOKEN) => ({ authorization: `Bearer ${token}` });

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), "mp-http-"));
  writeFileSync(join(dir, "reg.yaml"), "kind: ServiceEntry\napiVersion: networking.istio.io/v1\nmetadata: {name: broken}\nspec: {hosts: [b.example], ports: [{number: 0, name: x}]}\n");
  cp = await serve({ registry: dir, xdsPort: 0, httpPort: 0, token: TOKEN, apiDir: `${dir}.api`, log: (l) => logs.push(l) });
});

test.after(async () => {
  await cp?.stop();
  rmSync(dir, { recursive: true, force: true });
  rmSync(`${dir}.api`, { recursive: true, force: true });
});

test("binds 127.0.0.1 by default; /healthz is ok while /readyz waits for a good registry, with the reason", async () => {
  assert.match(cp.httpUrl!, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.is(cp.xds.host, "127.0.0.1");
  assert.is((await call("/healthz")).status, 200);
  const notReady = await call("/readyz");
  assert.is(notReady.status, 503);
  assert.match(await notReady.text(), /registry not loaded: .*reg\.yaml:4:\d+: spec\.ports\[0\]\.number must be a port number/);
  writeFileSync(join(dir, "reg.yaml"), entry("a", "10.0.0.1"));
  assert.ok(await waitFor(async () => (await call("/readyz")).status === 200, 2000));
});

test("writes need the bearer token: 401 without or with a wrong one, nothing applied", async () => {
  for (const headers of [{}, auth("wrong"), { authorization: "Basic abc" }]) {
    const r = await call("/registry/serviceentries/default/api", { method: "PUT", body: entry("api", "10.0.0.5"), headers });
    assert.is(r.status, 401);
    assert.ok(r.headers.get("www-authenticate"));
  }
  assert.is((await call("/registry/serviceentries/default/api", { method: "DELETE" })).status, 401);
  const list = await (await call("/registry/serviceentries")).json();
  assert.equal(list.serviceEntries.map((e: any) => e.name), ["a"]);
});

test("PUT applies a valid ServiceEntry (JSON or YAML); DELETE removes it; malformed bodies get 400 with file:line reason", async () => {
  const put = await call("/registry/serviceentries/default/api", { method: "PUT", body: entry("api", "10.0.0.5"), headers: auth() });
  assert.is(put.status, 200, await put.clone().text());
  assert.equal(await put.json(), { applied: "PUT default/api", changed: true, services: 2 });
  const again = await call("/registry/serviceentries/default/api", { method: "PUT", body: entry("api", "10.0.0.5"), headers: auth() });
  assert.is((await again.json()).changed, false);

  const bad = await call("/registry/serviceentries/default/bad", { method: "PUT", body: "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: bad}\nspec:\n  hosts: [bad.example]\n  ports: [{number: 99999, name: p}]\n", headers: auth() });
  assert.is(bad.status, 400);
  assert.equal(await bad.json(), { error: "PUT default/bad refused; nothing was changed", details: ["request body:6:12: spec.ports[0].number must be a port number 1..65535, got 99999"] });
  for (const body of ["", "{", "[1,2]", "kind: ServiceEntry"]) {
    const r = await call("/registry/serviceentries/default/bad", { method: "PUT", body, headers: auth() });
    assert.is(r.status, 400, body);
    assert.ok((await r.json()).details.length > 0, body);
  }
  const conflict = await call("/registry/serviceentries/default/a", { method: "PUT", body: entry("a", "10.0.0.9"), headers: auth() });
  assert.is(conflict.status, 409);
  assert.is((await call("/registry/serviceentries/default/a", { method: "DELETE", headers: auth() })).status, 409);
  assert.is((await call("/registry/serviceentries/default/nope", { method: "DELETE", headers: auth() })).status, 404);

  const list = await (await call("/registry/serviceentries")).json();
  assert.equal(list.serviceEntries.map((e: any) => [e.name, e.origin.file]), [["a", join(dir, "reg.yaml")], ["api", "http-api"]]);
  assert.is((await call("/registry/serviceentries/default/api", { method: "DELETE", headers: auth() })).status, 200);
  assert.equal((await (await call("/registry/serviceentries")).json()).serviceEntries.length, 1);
});

test("GET one entry carries an ETag; PUT and DELETE with a stale If-Match get 412 and change nothing", async () => {
  const path = "/registry/serviceentries/default/tagged";
  const created = await call(path, { method: "PUT", body: entry("tagged", "10.0.0.5"), headers: auth() });
  assert.is(created.status, 200);
  const tag1 = created.headers.get("etag")!;
  assert.match(tag1, /^"[0-9a-f]{16}"$/);
  const got = await call(path);
  assert.is(got.status, 200);
  assert.is(got.headers.get("etag"), tag1);
  assert.is((await got.json()).spec.endpoints[0].address, "10.0.0.5");
  const updated = await call(path, { method: "PUT", body: entry("tagged", "10.0.0.6"), headers: { ...auth(), "if-match": tag1 } });
  assert.is(updated.status, 200, await updated.clone().text());
  const tag2 = updated.headers.get("etag")!;
  assert.is.not(tag2, tag1);
  const stale = await call(path, { method: "PUT", body: entry("tagged", "10.0.0.7"), headers: { ...auth(), "if-match": tag1 } });
  assert.is(stale.status, 412);
  assert.equal((await stale.json()).details, [`ServiceEntry default/tagged is at ETag ${tag2}, not If-Match ${tag1}; read it again`]);
  assert.is((await call(path, { method: "DELETE", headers: { ...auth(), "if-match": tag1 } })).status, 412);
  assert.is((await (await call(path)).json()).spec.endpoints[0].address, "10.0.0.6", "nothing changed");
  assert.is((await call("/registry/serviceentries/default/absent", { method: "PUT", body: entry("absent", "10.0.0.8"), headers: { ...auth(), "if-match": "*" } })).status, 412, "If-Match: * needs the entry to exist");
  assert.is((await call(path, { method: "PUT", body: entry("tagged", "10.0.0.6"), headers: { ...auth(), "if-match": "*" } })).status, 200);
  assert.is((await call(path, { method: "DELETE", headers: { ...auth(), "if-match": tag2 } })).status, 200);
  assert.is((await call(path)).status, 404);
});

test("read-modify-write: a GET's body, edited, PUT back with its ETag applies; unedited it changes nothing", async () => {
  const path = "/registry/serviceentries/default/rmw";
  assert.is((await call(path, { method: "PUT", body: entry("rmw", "10.0.0.20"), headers: auth() })).status, 200);
  const got = await call(path);
  const doc = await got.json();
  assert.equal([doc.apiVersion, doc.kind, doc.metadata.name, doc.metadata.namespace], ["networking.istio.io/v1", "ServiceEntry", "rmw", "default"]);
  const same = await call(path, { method: "PUT", body: JSON.stringify(doc), headers: { ...auth(), "if-match": got.headers.get("etag")! } });
  assert.is(same.status, 200, await same.clone().text());
  assert.is((await same.json()).changed, false, "the document is the entry: putting it back changes nothing");
  doc.spec.endpoints[0].address = "10.0.0.21";
  const edited = await call(path, { method: "PUT", body: JSON.stringify(doc), headers: { ...auth(), "if-match": same.headers.get("etag")! } });
  assert.is(edited.status, 200, await edited.clone().text());
  assert.is((await (await call(path)).json()).spec.endpoints[0].address, "10.0.0.21");
  assert.is((await call(path, { method: "DELETE", headers: auth() })).status, 200);
});

test("oversized bodies get 413; unknown routes 404; wrong methods 405", async () => {
  const big = await call("/registry/serviceentries/default/big", { method: "PUT", body: "x".repeat(MAX_BODY_BYTES + 10), headers: auth() }).catch((e) => e);
  assert.ok(big instanceof Response, String(big));
  assert.is(big.status, 413);
  assert.is((await call("/nope")).status, 404);
  const post = await call("/debug/proxies", { method: "POST" });
  assert.is(post.status, 405);
  assert.is(post.headers.get("allow"), "GET, HEAD");
  assert.equal(await post.json(), { error: "POST is not allowed on /debug/proxies; allowed: GET, HEAD" });
  const postEntry = await call("/registry/serviceentries/default/x", { method: "POST" });
  assert.is(postEntry.status, 405);
  assert.is(postEntry.headers.get("allow"), "GET, PUT, DELETE, HEAD");
  const head = await call("/healthz", { method: "HEAD" });
  assert.is(head.status, 200);
  assert.is(await head.text(), "");
});

test("the 404 answer lists the route table, and every route it lists is served", async () => {
  const r = await call("/nope");
  const body = await r.json();
  assert.is(body.error, "no route /nope");
  assert.equal(body.details, [
    "GET, HEAD /healthz", "GET, HEAD /readyz", "GET, HEAD /metrics", "GET, HEAD /debug/proxies", "GET, HEAD /debug/agents",
    "GET, HEAD /debug/config_dump?proxy=ID", "GET, HEAD /debug/decisions?proxy=ID", "GET, HEAD /debug/registry",
    "POST /registry/held/confirm", "GET, HEAD /registry/serviceentries", "GET, PUT, DELETE, HEAD /registry/serviceentries/{namespace}/{name}",
  ]);
  for (const line of body.details as string[]) {
    const [methods, route] = line.split(/ (?=\/)/) as [string, string];
    const path = route.replace("{namespace}", "default").replace("{name}", "listed").replace("?proxy=ID", "?proxy=nobody");
    for (const method of methods.split(", ")) {
      const res = await call(path, { method, headers: auth() });
      // A 404 here may only be the view's own "no such proxy/entry", never "no route".
      if (res.status === 404 && method !== "HEAD") assert.not.match((await res.json()).error, /^no route/, `${method} ${path}`);
      else assert.ok(res.status !== 405, `${method} ${path}: ${res.status}`);
    }
  }
});

test("the handler itself refuses a body over MAX_BODY_BYTES with 413, also without content-length", async () => {
  const handler = createHandler({ putServiceEntry: () => { throw new Error("must not be reached"); } } as any, { token: TOKEN });
  let sent = 0;
  const chunk = new Uint8Array(64 * 1024);
  const body = new ReadableStream<Uint8Array>({
    pull(c) { if (sent > MAX_BODY_BYTES * 4) c.close(); else { sent += chunk.length; c.enqueue(chunk); } },
  });
  const r = await handler(new Request("http://x/registry/serviceentries/default/a", { method: "PUT", body, headers: auth(), duplex: "half" } as RequestInit));
  assert.is(r.status, 413);
  assert.ok(sent <= MAX_BODY_BYTES + 2 * chunk.length, `read ${sent} bytes`);
  const declared = await handler(new Request("http://x/registry/serviceentries/default/a", { method: "PUT", body: "{}", headers: { ...auth(), "content-length": String(MAX_BODY_BYTES + 1) } }));
  assert.is(declared.status, 413);
});

test("malformed percent-encoding in a path is a 400 naming the segment, before and after the token check", async () => {
  for (const [method, headers] of [["PUT", auth()], ["DELETE", auth()]] as const) {
    const r = await call("/registry/serviceentries/%E0%A4%A/x", { method, body: method === "PUT" ? entry("x", "10.0.0.7") : undefined, headers });
    assert.is(r.status, 400, method);
    assert.equal(await r.json(), { error: 'path segment "%E0%A4%A" is not valid percent-encoding (UTF-8)' });
  }
  assert.is((await call("/registry/serviceentries/default/%zz", { method: "DELETE", headers: auth() })).status, 400);
  // Without the token the answer is still 401: the path is not looked at for anyone who may not write.
  assert.is((await call("/registry/serviceentries/%E0%A4%A/x", { method: "DELETE" })).status, 401);
  // Valid escapes are decoded: %2D is "-".
  assert.is((await call("/registry/serviceentries/default/no%2Dsuch", { method: "DELETE", headers: auth() })).status, 404);
});

test("error lists are capped: a 1 MB body with 20,002 errors gets 20 details of at most ~500 characters and a count", async () => {
  // Two errors per port (number out of range, name missing): 20,000 of them in 30,000 values, under the body's limit.
  const ports = Array.from({ length: 10000 }, (_, i) => ({ number: 70000 + i }));
  const body = JSON.stringify({
    apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: "many", namespace: "default" },
    spec: { hosts: [`${"h".repeat(860000)}.example`], ports },
  });
  assert.ok(body.length > 1_000_000 && body.length < MAX_BODY_BYTES, String(body.length));
  const r = await call("/registry/serviceentries/default/many", { method: "PUT", body, headers: auth() });
  assert.is(r.status, 400);
  const raw = await r.text();
  assert.ok(raw.length < 16_000, `answer is ${raw.length} bytes`);
  const { details } = JSON.parse(raw);
  assert.is(details.length, 21);
  assert.is(details[20], "and 19982 more");
  for (const d of details) assert.ok(d.length <= 560, `${d.length}: ${d.slice(0, 80)}`);
  // The 360,000-character host is cut with a marker that says how much is missing.
  assert.match(details[0], /^request body:1:\d+: host "hhhh.*… \[\d+ more characters\]$/);
  assert.match(details[1], /spec\.ports may list at most 256 items, got 10000$/);
  assert.match(details[2], /spec\.ports\[0\]\.number must be a port number 1\.\.65535, got 70000$/);
});

test("/readyz caps its reasons the same way; clipping never splits a character", async () => {
  const reasons = Array.from({ length: 1000 }, (_, i) => `reason ${i} ${"x".repeat(2000)}`);
  const r = await createHandler({ readiness: () => ({ ready: false, reasons }) } as any)(new Request("http://x/readyz"));
  assert.is(r.status, 503);
  const body = await r.text();
  assert.ok(body.length < MAX_ITEMS * (MAX_ITEM_CHARS + 40), String(body.length));
  assert.ok(body.endsWith("; and 980 more\n"), body.slice(-40));
  assert.is(clip("a".repeat(MAX_ITEM_CHARS - 1) + "\u{1F600}b", MAX_ITEM_CHARS), `${"a".repeat(MAX_ITEM_CHARS - 1)}… [3 more characters]`);
  assert.is(clip("short", MAX_ITEM_CHARS), "short");
});

test("debug routes: proxies list, config_dump and decisions need a connected proxy id", async () => {
  assert.equal(await (await call("/debug/proxies")).json(), { proxies: [] });
  const missing = await call("/debug/config_dump");
  assert.is(missing.status, 400);
  assert.equal(await missing.json(), { error: "query parameter proxy=<node id> is required", details: ["no proxy is connected"] });
  assert.is((await call("/debug/decisions?proxy=nobody")).status, 404);
  const reg = await (await call("/debug/registry")).json();
  assert.is(reg.status.loaded, true);
  assert.ok(reg.status.rejections >= 1);
});

test("/metrics is Prometheus text with the control plane's series", async () => {
  const r = await call("/metrics");
  assert.match(r.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
  const body = await r.text();
  for (const series of ["multiplane_connected_proxies 0", "multiplane_xds_pushes_total", "multiplane_xds_push_latency_seconds", "multiplane_xds_nacks_total",
    "multiplane_registry_reloads_total 1", 'multiplane_registry_rejections_total{source="files"} 1', 'multiplane_registry_rejections_total{source="http-api"}', "multiplane_registry_services 1"]) {
    assert.ok(body.includes(series), `${series} in\n${body}`);
  }
  for (const line of body.split("\n").filter((l) => l && !l.startsWith("#"))) assert.match(line, /^[a-z_]+(\{[^}]*\})? ([0-9.e+-]+|\+Inf)$/);
});

test("deeply nested bodies get 400 naming the limit; the process survives them and keeps serving", async () => {
  const depth = (d: number) => "[".repeat(d) + "]".repeat(d);
  const yamlDepth = (d: number) => "- ".repeat(d) + "x";
  const rssBefore = process.memoryUsage().rss;
  // Two 4 KB bodies of depth 2,000 used to abort the process; 800 KB used to stall it for seconds.
  for (const body of [depth(2_000), depth(2_000), yamlDepth(2_000), depth(400_000)]) {
    const r = await call("/registry/serviceentries/default/deep", { method: "PUT", body, headers: auth() });
    assert.is(r.status, 400);
    assert.equal((await r.json()).details, [`request body:1:${body.startsWith("-") ? 130 : 66}: nested deeper than 64 levels: the limit per request body; not read further`]);
  }
  const grown = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
  assert.ok(grown < 100, `RSS grew ${grown.toFixed(0)} MiB`);
  assert.is((await call("/healthz")).status, 200);
  const put = await call("/registry/serviceentries/default/after-deep", { method: "PUT", body: entry("after-deep", "10.0.0.8"), headers: auth() });
  assert.is(put.status, 200);
  assert.is((await call("/registry/serviceentries/default/after-deep", { method: "DELETE", headers: auth() })).status, 200);
});

test("a failing view is a 500 for that request, not a crash", async () => {
  const handler = createHandler({ proxies: () => { throw new Error("boom"); } } as any);
  const r = await handler(new Request("http://x/debug/proxies"));
  assert.is(r.status, 500);
  assert.match((await r.json()).error, /boom/);
});

test("without a token, writes are disabled (403)", async () => {
  const handler = createHandler({} as any);
  const r = await handler(new Request("http://x/registry/serviceentries/default/a", { method: "PUT", body: "{}", headers: auth() }));
  assert.is(r.status, 403);
});

test.run();
