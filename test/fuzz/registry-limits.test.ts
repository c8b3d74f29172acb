// What hostile or careless registry files do to a running control plane: every error list is capped
// where it is kept, logged and reported, and the last good registry keeps serving.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { rmSync, symlinkSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { MAX_FILE_BYTES } from "../../control/registry/text-limits.ts";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { tempRegistryDir } from "../support/control.ts";
import { badHostsText } from "../support/registry.ts";
import { waitFor } from "../support/net.ts";

const entry = (name: string, ip: string) => JSON.stringify({
  apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name, namespace: "default" },
  spec: { hosts: [`${name}.example`], ports: [{ number: 9080, name: "http", protocol: "HTTP" }], resolution: "STATIC", endpoints: [{ address: ip }] },
});

/**
 * How long a reload of 130,000-150,000 documents may take: 3 s here for the WorkloadEntries (JSON read by
 * JSON.parse; 18 s through the YAML path, which the skipped documents take: they warn), more on a slower
 * or busier machine. These tests are about what such a reload does, not how fast.
 */
const LARGE_RELOAD_MS = 120_000;

let dir: string;
let cp: ControlPlane;
const logs: string[] = [];
const call = (path: string) => fetch(`${cp.httpUrl}${path}`);

test.before(async () => {
  dir = tempRegistryDir({ "good.yaml": entry("good", "10.0.0.1") });
  cp = await serve({ registry: dir, xdsPort: 0, httpPort: 0, log: (l) => logs.push(l) });
});

test.after(async () => {
  await cp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A GET that tries twice: while a large reload keeps the event loop busy, the server may close an idle
 * kept-alive connection just as the client reuses it ("fetch failed"); a second try tells that race
 * from a server that stopped answering.
 */
const calmGet = (path: string) => call(path).catch(() => call(path));
const servesGood = async () => (await (await calmGet("/registry/serviceentries")).json()).serviceEntries.map((e: any) => e.name).join() === "good";

test("a 2 MB file of 130,000 bad hosts: rejected with capped errors in the log, /readyz and /debug/registry", async () => {
  writeFileSync(join(dir, "bad.json"), badHostsText(130_000));
  const status = await waitFor(async () => {
    const s = (await (await call("/debug/registry")).json()).status;
    return s.rejections > 0 && s;
  }, LARGE_RELOAD_MS);
  assert.ok(status, "rejected");
  assert.is(status.lastErrors.length, 101);
  assert.is(status.lastErrors[100], "and 129926 more"); // 130,000 bad hosts, the 256-host limit, and the rest of Istio's checks
  assert.ok(status.lastErrors[2].length < 1100, "a 300,000-character host is clipped where it is kept");
  assert.ok((await (await call("/debug/registry")).text()).length < 200_000);
  const readyz = await (await call("/readyz")).text();
  assert.ok(readyz.length < 2_000, `/readyz is ${readyz.length} characters`);
  const rejection = logs.find((l) => l.startsWith("registry reload rejected"))!;
  assert.ok(rejection.length < 15_000, `the rejection log line is ${rejection.length} characters`);
  assert.match(rejection, /\n {2}and 130006 more$/);
  assert.ok(await servesGood(), "the last good registry keeps serving");
  rmSync(join(dir, "bad.json"));
  assert.ok(await waitFor(async () => (await call("/readyz")).status === 200, 5_000));
});

test("130,000 skipped documents: the warnings are logged capped, not one line each", async () => {
  const before = logs.length;
  // Four lists of 32,500 (each under the per-document limit of values).
  const list = JSON.stringify({ kind: "List", items: Array.from({ length: 32_500 }, () => ({ kind: "X" })) });
  writeFileSync(join(dir, "other.json"), [list, list, list, list].join("\n---\n"));
  assert.ok(await waitFor(() => logs.slice(before).some((l) => l === "registry warning: and 129980 more"), LARGE_RELOAD_MS), logs.slice(before, before + 3).join("\n"));
  assert.is(logs.slice(before).filter((l) => l.startsWith("registry warning:")).length, 21);
  assert.ok(await servesGood());
  rmSync(join(dir, "other.json"));
});

/**
 * A ServiceEntry (DNS_ROUND_ROBIN: one endpoint at most) selecting 150,000 WorkloadEntries it cannot use,
 * one warning each, in Lists of 5,000 (under the per-document limit of values), six per file.
 */
function unusableSelection(into: string): void {
  writeFileSync(join(into, "rr.json"), JSON.stringify({
    apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: "rr", namespace: "default" },
    spec: { hosts: ["rr.example"], ports: [{ number: 80, name: "http", protocol: "HTTP" }], resolution: "DNS_ROUND_ROBIN", workloadSelector: { labels: { app: "rr" } } },
  }));
  const list = (from: number) => JSON.stringify({
    kind: "List",
    items: Array.from({ length: 5_000 }, (_, i) => ({
      apiVersion: "networking.istio.io/v1", kind: "WorkloadEntry", metadata: { name: `w${from + i}`, namespace: "default" },
      spec: { address: `w${from + i}.example`, labels: { app: "rr" } },
    })),
  });
  for (let f = 0; f < 5; f++) writeFileSync(join(into, `workloads-${f}.json`), [0, 1, 2, 3, 4, 5].map((d) => list((f * 6 + d) * 5_000)).join("\n---\n"));
}

test("150,000 WorkloadEntries a ServiceEntry selects but cannot use: on reload and at start-up, warnings capped, no crash", async () => {
  const before = logs.length;
  const files = ["rr.json", ...[0, 1, 2, 3, 4].map((i) => `workloads-${i}.json`)];
  const other = tempRegistryDir();
  try {
    unusableSelection(dir);
    const applied = await waitFor(async () => (await (await calmGet("/registry/serviceentries")).json()).serviceEntries.some((e: any) => e.name === "rr"), LARGE_RELOAD_MS);
    assert.ok(applied, `the reload applied: ${logs.slice(before).filter((l) => !l.startsWith("registry warning")).slice(0, 3).join("\n")}`);
    assert.ok(logs.slice(before).some((l) => /^registry warning: and \d+ more$/.test(l)), "warnings capped in the log");
    const status = (await (await calmGet("/debug/registry")).json()).status;
    assert.ok(status.warnings.length <= 101, `${status.warnings.length} warnings kept`);
    // The same registry at start-up, in a control plane of its own.
    unusableSelection(other);
    const started = await serve({ registry: other, xdsPort: 0, httpPort: false, log: () => {} });
    assert.ok(started.store.status().loaded, "loaded at start-up");
    await started.stop();
  } finally {
    rmSync(other, { recursive: true, force: true });
    for (const f of files) rmSync(join(dir, f), { force: true });
  }
  assert.ok(await waitFor(servesGood, LARGE_RELOAD_MS), "the files removed, the good registry alone serves again");
});

const refusedFiles = async () => (await (await call("/debug/registry")).json()).status.sources.find((s: any) => s.name === "files").refused.join("\n");

test("a FIFO, a socket or a device in the registry directory is refused by name without being opened; reloads go on", async () => {
  const fifo = join(dir, "pipe.yaml");
  assert.is(spawnSync("mkfifo", [fifo]).status, 0);
  const socketServer = net.createServer();
  await new Promise<void>((r) => socketServer.listen(join(dir, "sock.yaml"), r));
  symlinkSync("/dev/null", join(dir, "null.yaml"));
  try {
    const refused = await waitFor(async () => {
      const r = await refusedFiles();
      return r.includes("pipe.yaml") && r.includes("sock.yaml") && r.includes("null.yaml") && r;
    }, 5_000);
    assert.ok(refused, await refusedFiles());
    assert.match(refused as string, `${fifo}:0: a FIFO (named pipe), not a regular file; refused without opening it`);
    assert.match(refused as string, /sock\.yaml:0: a socket, not a regular file/);
    assert.match(refused as string, /null\.yaml:0: a character device, not a regular file/);
    assert.match(await (await call("/readyz")).text(), /pipe\.yaml:0: a FIFO/);
    assert.ok(await servesGood(), "the last good registry keeps serving");
    // The next change is read as usual (a blocked read used to freeze every later reload, silently).
    const rejections = async () => (await (await call("/debug/registry")).json()).status.rejections;
    const before = await rejections();
    writeFileSync(join(dir, "good.yaml"), entry("good", "10.0.0.2"));
    assert.ok(await waitFor(async () => (await rejections()) > before, 5_000), "the edit was read (and refused: the FIFO is still there)");
  } finally {
    rmSync(fifo);
    rmSync(join(dir, "null.yaml"));
    await new Promise((r) => socketServer.close(r));
  }
  // Once what blocked it is gone, the reload applies.
  assert.ok(await waitFor(async () => (await call("/readyz")).status === 200, 5_000), await refusedFiles());
  const served = (await (await call("/registry/serviceentries")).json()).serviceEntries;
  assert.is(served[0].endpoints[0].address, "10.0.0.2");
});

test("a file over the size limit is refused naming the limit, before it is read", async () => {
  writeFileSync(join(dir, "huge.yaml"), Buffer.alloc(MAX_FILE_BYTES + 1, "#"));
  assert.ok(await waitFor(async () => (await refusedFiles()).includes(`huge.yaml:0: ${MAX_FILE_BYTES + 1} bytes, over the limit of ${MAX_FILE_BYTES} bytes per registry file; not read`), 5_000), await refusedFiles());
  rmSync(join(dir, "huge.yaml"));
  assert.ok(await waitFor(async () => (await call("/readyz")).status === 200, 5_000));
});

test.run();
