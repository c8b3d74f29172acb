// A reload that would empty the registry, served: held back and reported in the log, /readyz,
// /debug/registry and /metrics; applied once the files stayed unchanged for the settle period.
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
const held = async () => (await (await call("/metrics")).text()).match(/^multiplane_registry_held_changes\{source="files"\} (\d)$/m)?.[1];

test.before(async () => {
  dir = tempRegistryDir({ "services.yaml": entry("a") });
  cp = await serve({ registry: dir, xdsPort: 0, httpPort: 0, settleSeconds: 1, log: (l) => logs.push(l) });
});

test.after(async () => {
  await cp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("an emptied registry file is held and reported everywhere, then applied once it stayed so for --settle-seconds", async () => {
  assert.is(await held(), "0");
  writeFileSync(join(dir, "services.yaml"), "");
  assert.ok(await waitFor(async () => (await held()) === "1", 5_000), "metric");
  const readyz = await call("/readyz");
  assert.is(readyz.status, 503);
  assert.match(await readyz.text(), /files: a change is held back, the last good registry keeps serving: it would remove the only service the files define; .*services\.yaml is empty \(0 characters\) but held 1 resource; it applies if the files stay unchanged until \S+ \(--settle-seconds\), or at once with --accept-removals/);
  const debug = await (await call("/debug/registry")).json();
  const files = debug.status.sources.find((s: any) => s.name === "files");
  assert.equal(files.held.reasons.length, 2);
  assert.equal(debug.serviceEntries.map((e: any) => e.name), ["a"], "the last good registry serves");
  assert.ok(logs.some((l) => l.startsWith("registry reload held back, last good registry keeps serving: it would remove the only service the files define;")), logs.join("\n"));
  assert.ok(await waitFor(async () => (await held()) === "0", 5_000), "applied after the settle period");
  assert.equal((await (await call("/registry/serviceentries")).json()).serviceEntries, []);
  assert.is((await call("/readyz")).status, 200);
});

test.run();
