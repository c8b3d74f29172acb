// 1,000 proxies connecting at once must not stop the control plane from answering anyone else for
// long: their configurations are generated in slices with the event loop free in between, so a
// request that can be answered at once (an ACK, a re-request) waits for at most a slice, not for
// the whole storm. Measured as the longest the control plane's event loop was busy without a break
// (the wait of any request arriving then); the storm runs in a child process.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { serve } from "../../control/serve/serve.ts";
import { tempRegistryDir } from "../support/control.ts";

const PROXIES = 1000;
const SERVICES = 500;
/** The longest a request may wait behind the storm; generating for all proxies at once took seconds. */
const MAX_BLOCKED_MS = 600;

function registry(): string {
  let text = "";
  for (let i = 0; i < SERVICES; i++) {
    text += `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: svc-${i}}\nspec:\n  hosts: [svc-${i}.example]\n  ports: [{number: ${10000 + (i % 100)}, name: tcp}]\n  resolution: STATIC\n  endpoints: [{address: 10.${i >> 8}.${i & 255}.1}, {address: 10.200.${i >> 8}.${i & 255}}]\n---\n`;
  }
  return text;
}

for (const protocol of ["sotw", "delta"] as const) {
  test(`${protocol}: while ${PROXIES} proxies connect at once, the event loop is never blocked for more than ${MAX_BLOCKED_MS} ms`, async () => {
    const dir = tempRegistryDir({ "r.yaml": registry() });
    const cp = await serve({ registry: dir, xdsPort: 0, httpPort: false, loopGuard: false, log: () => {} });
    const storm = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("../support/ads-storm.ts", import.meta.url)), `127.0.0.1:${cp.xds.port}`, String(PROXIES), protocol], { stdio: ["ignore", "pipe", "inherit"] });
    const delay = monitorEventLoopDelay({ resolution: 5 });
    try {
      delay.enable();
      const served = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 60_000);
        storm.stdout!.on("data", (d) => { if (String(d).includes("served")) { clearTimeout(timer); resolve(true); } });
        storm.on("exit", () => { clearTimeout(timer); resolve(false); });
      });
      delay.disable();
      assert.ok(served, "every proxy got its listeners");
      assert.is(cp.view.proxies().length, PROXIES);
      const blockedMs = delay.max / 1e6;
      console.log(`    ${protocol}: event loop blocked at most ${blockedMs.toFixed(0)} ms while ${PROXIES} proxies connected`);
      assert.ok(blockedMs < MAX_BLOCKED_MS, `event loop blocked for ${blockedMs.toFixed(0)} ms`);
    } finally {
      storm.kill();
      await cp.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test.run();
