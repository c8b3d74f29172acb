// The reflector (control/registry/sources/kubernetes/reflector.ts) against a scripted API server on
// loopback, for the answers a real one gives only rarely: 410 as an HTTP status, a continue token
// that expired mid-listing, 5xx and Retry-After, an ERROR event other than 410, bookmarks, a watch
// that ends at once every time, and a custom resource that disappears.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { KubeHttp } from "../../control/registry/sources/kubernetes/kube-http.ts";
import { Reflector, type ReflectorSnapshot } from "../../control/registry/sources/kubernetes/reflector.ts";
import type { KubeObject } from "../../control/registry/sources/kubernetes/api-objects.ts";
import { waitFor } from "../support/net.ts";

type Handler = (url: URL, res: ServerResponse) => void;

/** A server that hands each request to the next scripted handler (the last one repeats), and records the URLs. */
async function scripted(): Promise<{ url: string; requests: URL[]; script(...h: Handler[]): void; close(): Promise<void> }> {
  let handlers: Handler[] = [];
  const requests: URL[] = [];
  const open = new Set<ServerResponse>();
  const server: Server = createServer((req: IncomingMessage, res) => {
    const url = new URL(req.url!, "http://x");
    requests.push(url);
    open.add(res);
    res.on("close", () => open.delete(res));
    const h = handlers.length > 1 ? handlers.shift()! : handlers[0]!;
    h(url, res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    script: (...h) => { handlers = h; },
    close: () => new Promise((r) => { for (const res of open) res.destroy(); server.close(() => r()); }),
  };
}

const obj = (name: string, rv: string): KubeObject => ({ metadata: { name, namespace: "ns", resourceVersion: rv } });
const list = (rv: string, items: KubeObject[], cont?: string): Handler => (_url, res) => {
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ kind: "ServiceList", metadata: { resourceVersion: rv, ...(cont ? { continue: cont } : {}) }, items }));
};
const status = (code: number, reason: string, message: string, headers: Record<string, string> = {}): Handler => (_url, res) => {
  res.writeHead(code, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", code, reason, message }));
};
/** A watch that sends `events` and then stays open (or ends, with `end`). */
const watch = (events: { type: string; object: unknown }[], end = false): Handler => (_url, res) => {
  res.writeHead(200, { "content-type": "application/json" });
  for (const e of events) res.write(JSON.stringify(e) + "\n");
  if (end) res.end();
};
const hold: Handler = () => {};

function reflector(server: string, opts: { custom?: boolean; present?: () => boolean; pageSize?: number } = {}) {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server, skipTLSVerify: true }],
    users: [{ name: "u", token: "secret-token" }],
    contexts: [{ name: "c", cluster: "c", user: "u" }],
    currentContext: "c",
  });
  const snapshots: ReflectorSnapshot<KubeObject>[] = [];
  const lines: string[] = [];
  const r = new Reflector<KubeObject>({
    http: new KubeHttp(kc, { requestTimeoutMs: 2000 }),
    group: "", plural: "services",
    custom: opts.custom,
    resolve: async () => (opts.present?.() ?? true ? { group: "", version: "v1", plural: "services" } : undefined),
    pageSize: opts.pageSize ?? 500,
    backoff: { initialMs: 20, maxMs: 100 },
    absentRecheckMs: 50,
    forbiddenRetryMs: 50,
    coalesce: { quietMs: 5, maxWaitMs: 20 },
    onChange: (s) => snapshots.push(s),
    log: (l) => lines.push(l),
  });
  return { r, snapshots, lines, keys: () => [...r.snapshot().objects.keys()].sort() };
}

test("410 as the watch's HTTP status: listed again, the state replaced in one change", async () => {
  const s = await scripted();
  const { r, snapshots, keys } = reflector(s.url);
  try {
    s.script(list("10", [obj("a", "5"), obj("b", "6")]), status(410, "Gone", "too old"), list("20", [obj("b", "6"), obj("c", "19")]), hold);
    r.start();
    await waitFor(() => keys().join() === "ns/b,ns/c", 3000);
    assert.equal(keys(), ["ns/b", "ns/c"]);
    assert.is(r.stats().gone, 1);
    assert.is(r.stats().lists, 2);
    assert.ok(snapshots.every((x) => x.objects.size === 2), "never empty in between");
    assert.is(s.requests.at(-1)!.searchParams.get("resourceVersion"), "20", "watching from the new listing's version");
    assert.is(s.requests[1]!.searchParams.get("allowWatchBookmarks"), "true");
  } finally {
    await r.stop();
    await s.close();
  }
});

test("pages: limit and continue, the listing's first version; an expired continue token lists once without pages", async () => {
  const s = await scripted();
  const { r, keys } = reflector(s.url, { pageSize: 2 });
  try {
    s.script(
      list("7", [obj("a", "1"), obj("b", "2")], "tok1"),
      status(410, "Expired", "The provided continue parameter is too old to display a consistent list result."),
      list("9", [obj("a", "1"), obj("b", "2"), obj("c", "8")]),
      hold,
    );
    r.start();
    assert.ok(await r.whenSynced(3000));
    assert.equal(keys(), ["ns/a", "ns/b", "ns/c"]);
    assert.is(s.requests[0]!.searchParams.get("limit"), "2");
    assert.is(s.requests[1]!.searchParams.get("continue"), "tok1");
    assert.is(s.requests[2]!.searchParams.get("limit"), null, "the retry is one unpaged listing");
    assert.is(r.snapshot().resourceVersion, "9");
  } finally {
    await r.stop();
    await s.close();
  }
});

test("5xx and a non-410 ERROR event: unavailable with the reason, the copy kept, retried; events and bookmarks advance the version", async () => {
  const s = await scripted();
  const { r, keys, lines, snapshots } = reflector(s.url);
  try {
    s.script(
      list("10", [obj("a", "5")]),
      watch([{ type: "ADDED", object: obj("b", "11") }, { type: "BOOKMARK", object: { metadata: { resourceVersion: "15" } } }, { type: "ERROR", object: { kind: "Status", code: 500, reason: "InternalError", message: "etcd is sad" } }]),
      status(503, "ServiceUnavailable", "the server is shutting down", { "retry-after": "0" }),
      watch([{ type: "DELETED", object: obj("a", "16") }]),
      hold,
    );
    r.start();
    // Each fault is logged once, when it starts; the status carries it meanwhile.
    await waitFor(() => keys().join() === "ns/b" && r.snapshot().status.unavailable === undefined, 3000);
    assert.equal(lines.filter((l) => l.includes("cannot")), [
      "kubernetes: cannot watch services (v1) in all namespaces: etcd is sad (500 InternalError)",
      "kubernetes: cannot watch services (v1) in all namespaces: the server is shutting down (503 ServiceUnavailable)",
    ]);
    assert.ok(snapshots.some((x) => x.status.unavailable !== undefined && x.status.synced && x.objects.size === 2), "unavailable, still synced, the copy kept");
    await waitFor(() => keys().join() === "ns/b" && r.snapshot().status.unavailable === undefined, 3000);
    assert.equal(keys(), ["ns/b"]);
    const watches = s.requests.filter((u) => u.searchParams.get("watch") === "true").map((u) => u.searchParams.get("resourceVersion"));
    assert.equal(watches, ["10", "15", "15"], "re-watched from the bookmark's version");
    assert.is(r.stats().lists, 1, "no listing again: the version was still good");
    assert.ok(lines.some((l) => /watching again/.test(l)));
    assert.not.ok(lines.join("\n").includes("secret-token"), "no credential in the log");
  } finally {
    await r.stop();
    await s.close();
  }
});

test("a watch that ends at once with nothing in it is retried with back-off, not in a tight loop", async () => {
  const s = await scripted();
  const { r } = reflector(s.url);
  try {
    s.script(list("10", []), watch([], true));
    r.start();
    await new Promise((res) => setTimeout(res, 500));
    const watches = s.requests.filter((u) => u.searchParams.get("watch") === "true").length;
    // Back-off 20 ms doubling to 100 ms: a handful in 500 ms, not hundreds.
    assert.ok(watches >= 3 && watches <= 15, `${watches} watches in 500 ms`);
  } finally {
    await r.stop();
    await s.close();
  }
});

test("403: forbidden names the verb and the resource; the copy stays empty and unsynced; retried", async () => {
  const s = await scripted();
  const { r } = reflector(s.url);
  try {
    s.script(status(403, "Forbidden", 'services is forbidden: User "u" cannot list resource "services" in API group "" at the cluster scope'));
    r.start();
    await waitFor(() => r.snapshot().status.forbidden !== undefined, 3000);
    assert.equal(r.snapshot().status, { synced: false, forbidden: 'forbidden: cannot list services (v1) in all namespaces: services is forbidden: User "u" cannot list resource "services" in API group "" at the cluster scope' });
    await waitFor(() => s.requests.length >= 3, 3000);
    s.script(list("3", [obj("a", "2")]), hold);
    assert.ok(await r.whenSynced(3000), "synced once allowed");
    assert.equal(r.snapshot().status, { synced: true, version: "v1" });
  } finally {
    await r.stop();
    await s.close();
  }
});

test("a custom resource whose definition is removed: 404, then absent with an empty copy; back when it is served again", async () => {
  const s = await scripted();
  let present = true;
  const { r, keys } = reflector(s.url, { custom: true, present: () => present });
  try {
    s.script(list("10", [obj("a", "5")]), (_u, res) => { present = false; status(404, "NotFound", "the server could not find the requested resource")(_u, res); });
    r.start();
    await waitFor(() => r.snapshot().status.absent === true, 3000);
    assert.equal(r.snapshot().status, { synced: true, absent: true });
    assert.equal(keys(), []);
    s.script(list("30", [obj("z", "29")]), hold);
    present = true;
    await waitFor(() => keys().join() === "ns/z", 3000);
    assert.equal(r.snapshot().status, { synced: true, version: "v1" });
  } finally {
    await r.stop();
    await s.close();
  }
});

test("pause() closes the watch and holds; resume() watches again from the same version", async () => {
  const s = await scripted();
  const { r } = reflector(s.url);
  try {
    s.script(list("10", [obj("a", "5")]), hold);
    r.start();
    await waitFor(() => s.requests.length === 2, 3000);
    await r.pause();
    await new Promise((res) => setTimeout(res, 100));
    assert.is(s.requests.length, 2, "nothing asked while paused");
    r.resume();
    await waitFor(() => s.requests.length === 3, 3000);
    assert.is(s.requests[2]!.searchParams.get("resourceVersion"), "10");
  } finally {
    await r.stop();
    await s.close();
  }
});

test.run();
