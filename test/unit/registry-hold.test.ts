// A reload that would empty the registry, served: held back and reported in the log, /readyz,
// /debug/registry and /metrics; applied only when an operator confirms it, never on a timer.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { tempRegistryDir } from "../support/control.ts";
import { waitFor } from "../support/net.ts";

const entry = (name: string) => JSON.stringify({
  apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name, namespace: "default" },
  spec: { hosts: [`${name}.example`], ports: [{ number: 9080, name: "http" }], resolution: "STATIC", endpoints: [{ address: "10.0.0.1" }] },
});

let dir: string;
let cp: ControlPlane;
const logs: string[] = [];
const call = (path: string) => fetch(`${cp.httpUrl}${path}`);
const metric = (name: string) => async () => (await (await call("/metrics")).text()).match(new RegExp(`^${name}\\{source="files"\\} (\\d)$`, "m"))?.[1];
const held = metric("multiplane_registry_held_changes");
const awaiting = metric("multiplane_registry_held_awaiting_confirmation");
const TOKEN = "hold-token";

test.before(async () => {
  dir = tempRegistryDir({ "services.yaml": entry("a") });
  cp = await serve({ registry: dir, xdsPort: 0, httpPort: 0, settleSeconds: 1, token: TOKEN, log: (l) => logs.push(l) });
});

test.after(async () => {
  await cp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("an emptied registry file is held and reported everywhere, and applies only when confirmed, never on a timer", async () => {
  assert.is(await held(), "0");
  writeFileSync(join(dir, "services.yaml"), "");
  assert.ok(await waitFor(async () => (await held()) === "1", 5_000), "metric");
  assert.is(await awaiting(), "1", "it waits for a confirmation");
  const readyz = await call("/readyz");
  assert.is(readyz.status, 503);
  assert.match(await readyz.text(), /files: a change is held back, the last good registry keeps serving: it would remove the only service the files define; .*services\.yaml is empty \(0 characters\) but held 1 resource; it applies only when confirmed: `multiplane registry confirm --token-file FILE` \(POST \/registry\/held\/confirm with the token\), or a restart with --accept-removals/);
  const debug = await (await call("/debug/registry")).json();
  const files = debug.status.sources.find((s: any) => s.name === "files");
  assert.equal(files.held.reasons.length, 2);
  assert.is(files.held.appliesAt, undefined, "no time at which it applies by itself");
  assert.equal(debug.serviceEntries.map((e: any) => e.name), ["a"], "the last good registry serves");
  assert.ok(logs.some((l) => l.startsWith("registry reload held back, last good registry keeps serving: it would remove the only service the files define;") && l.includes("it applies only when confirmed")), logs.join("\n"));

  // A change held for a timer applies once its settle period has passed; this one is still held after
  // that (a second, partial reload held on the timer in another plane shows the period did pass).
  const timer = tempRegistryDir({ "a.yaml": entry("a"), "b.yaml": entry("b") });
  const other = await serve({ registry: timer, xdsPort: 0, httpPort: false, settleSeconds: 1, maxRemovalShare: 0.4, log: () => {} });
  try {
    rmSync(join(timer, "b.yaml"));
    assert.ok(await waitFor(() => other.store.status().sources[0]!.held?.appliesAt !== undefined, 5_000), "the partial removal is held on the timer");
    assert.ok(await waitFor(() => other.store.registry.services.length === 1, 10_000), "and applies after its settle period");
  } finally {
    await other.stop();
    rmSync(timer, { recursive: true, force: true });
  }
  assert.is(await held(), "1", "the removal of every service is still held after a settle period");
  assert.equal((await (await call("/registry/serviceentries")).json()).serviceEntries.map((e: any) => e.name), ["a"]);

  assert.is((await fetch(`${cp.httpUrl}/registry/held/confirm`, { method: "POST" })).status, 401, "confirming needs the token");
  const confirmed = await fetch(`${cp.httpUrl}/registry/held/confirm`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } });
  assert.is(confirmed.status, 200, await confirmed.clone().text());
  const body = await confirmed.json();
  assert.equal(body.confirmed.map((c: any) => c.source), ["files"]);
  assert.is(body.services, 0);
  assert.is(await held(), "0");
  assert.equal((await (await call("/registry/serviceentries")).json()).serviceEntries, []);
  assert.is((await call("/readyz")).status, 200);
  const again = await fetch(`${cp.httpUrl}/registry/held/confirm`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } });
  assert.is(again.status, 409, "nothing waits any more");
});

test.run();
