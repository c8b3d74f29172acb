// Fuzzing the HTTP API of a real control plane: random methods, paths and headers, and PUT bodies that
// are garbage, YAML token soup, deep nesting, huge repetitive text, or ServiceEntries broken at a random
// place. After every request: no 500, the answer and the log it caused stay small, and the process is
// healthy (the good registry serves over HTTP and to a connected xDS client, memory stays bounded).
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { fuzzFor, MAX_LOG_BYTES_PER_EVENT, startFuzzPlane, TOKEN, type FuzzPlane } from "../support/fuzz-plane.ts";
import { registryText } from "../support/fuzz-text.ts";

let plane: FuzzPlane;
/** Statuses a request may get; 500 means a bug surfaced. 431: a path past Node's 16 KiB limit on headers. */
const EXPECTED = new Set([200, 400, 401, 403, 404, 405, 409, 412, 413, 431, 503]);
/** Error answers are capped (20 details of 500 characters); 200s may be large (config dumps). */
const MAX_ANSWER_BYTES = 20_000;

test.before(async () => {
  plane = await startFuzzPlane();
});

test.after(async () => {
  await plane?.stop();
});

/** Sends one request and checks everything that must hold after it; returns what went wrong. */
async function attack(path: string, init: RequestInit): Promise<string | undefined> {
  const logged = plane.loggedBytes();
  const r = await plane.call(path, init).catch((e: Error) => e);
  if (r instanceof Error) return `${init.method} ${path}: ${r.message}`;
  const body = await r.text();
  if (!EXPECTED.has(r.status)) return `${init.method} ${path}: status ${r.status}: ${body.slice(0, 300)}`;
  if (r.status !== 200 && body.length > MAX_ANSWER_BYTES) return `${init.method} ${path}: a ${body.length}-byte error answer`;
  if (plane.loggedBytes() - logged > MAX_LOG_BYTES_PER_EVENT) return `${init.method} ${path}: ${plane.loggedBytes() - logged} bytes of log`;
  return plane.healthy();
}

const segment = fc.oneof(
  fc.constantFrom("registry", "serviceentries", "default", "debug", "readyz", "healthz", "metrics", "config_dump", "decisions", "proxies", "good", "..", ".", ""),
  fc.constantFrom("%", "%zz", "%E0%A4%A", "%2F", "%00", "%C0%AF", "a%2Fb", "%F0%9F%98%80", "x".repeat(5_000)),
  fc.string({ unit: "grapheme", maxLength: 40 }).map(encodeURIComponent),
);
const headers: fc.Arbitrary<Record<string, string>> = fc.oneof(
  fc.constant({ authorization: `Bearer ${TOKEN}` }),
  fc.constantFrom<Record<string, string>>({}, { authorization: "Bearer wrong" }, { authorization: "Basic x" }, { authorization: `Bearer ${TOKEN}`, "content-type": "application/x-nonsense" }),
);

test("random methods, paths and headers: every answer expected and small, the process healthy", async () => {
  const requests = fc.tuple(
    fc.constantFrom("GET", "HEAD", "PUT", "DELETE", "POST", "PATCH", "OPTIONS"),
    fc.array(segment, { minLength: 1, maxLength: 6 }),
    fc.option(fc.string({ maxLength: 60 }).map(encodeURIComponent), { nil: undefined }),
    headers,
  );
  const runs = await fuzzFor(4, requests, async ([method, segments, query, h]) => {
    const path = `/${segments.join("/")}${query !== undefined ? `?proxy=${query}` : ""}`;
    const problem = await attack(path, { method, headers: h, ...(method === "PUT" || method === "POST" || method === "PATCH" ? { body: "{}" } : {}) });
    assert.is(problem, undefined);
  });
  assert.ok(runs > 0);
  console.log(`    ${runs} requests`);
});

test("PUT bodies: garbage, token soup, deep nesting, huge text, broken ServiceEntries: refused or applied, never a crash", async () => {
  const bodies = fc.constantFrom("a", "b", "good", "x-1").chain((n) => fc.tuple(fc.constant(n), registryText(n)));
  const runs = await fuzzFor(6, bodies, async ([n, body]) => {
    const problem = await attack(`/registry/serviceentries/default/${n}`, { method: "PUT", headers: { authorization: `Bearer ${TOKEN}` }, body });
    assert.is(problem, undefined, `body of ${body.length} characters: ${JSON.stringify(body.slice(0, 200))}`);
  });
  assert.ok(runs > 0);
  console.log(`    ${runs} bodies`);
  // A healthy client can still write.
  const put = await plane.call("/registry/serviceentries/default/after-fuzz", {
    method: "PUT", headers: { authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: "after-fuzz" }, spec: { hosts: ["after-fuzz.example"], ports: [{ number: 7777, name: "tcp" }] } }),
  });
  assert.is(put.status, 200, await put.text());
});

test("DELETE of everything written: the API entries go, the file entry stays", async () => {
  const entries = (await (await plane.call("/registry/serviceentries")).json()).serviceEntries as any[];
  for (const e of entries.filter((x) => x.origin.file === "http-api")) {
    const r = await plane.call(`/registry/serviceentries/${e.namespace}/${e.name}`, { method: "DELETE", headers: { authorization: `Bearer ${TOKEN}` } });
    assert.is(r.status, 200);
  }
  assert.equal((await (await plane.call("/registry/serviceentries")).json()).serviceEntries.map((e: any) => e.name), ["good"]);
  assert.is(await plane.healthy(), undefined);
});

test.run();
