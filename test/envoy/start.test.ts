// `npm start` as a newcomer runs it: the control plane and an Envoy sidecar on loopback, the example
// requests from the banner work, the loop guard's counter shows in Envoy's stats, Ctrl-C cleans up.
// It runs with --free-ports (the same layout on ports picked free) so that it never depends on, or
// collides with, whatever holds 15000, 9080, ... on this machine; every address is read from the banner.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { START } from "../../control/cmd/start.ts";
import { waitFor } from "../support/net.ts";

/** The first capture group of `re` in the banner, or a failed assertion naming what is missing. */
function fromBanner(out: string, re: RegExp, what: string): string {
  const m = re.exec(out);
  assert.ok(m?.[1], `banner has no ${what}:\n${out}`);
  return m![1]!;
}

test("npm start: inbound and outbound example requests, guard counter in /stats, clean shutdown on SIGINT", async () => {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, "dist", "multiplane.js"), "start", "--free-ports"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => { out += d; });
  child.stderr.on("data", (d) => { out += d; });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  let admin = "";
  try {
    assert.ok(await waitFor(() => out.includes("multiplane is running"), 30_000), out);
    admin = fromBanner(out, /Envoy admin\s+(http:\/\/127\.0\.0\.1:\d+)\s/, "Envoy admin");
    const api = fromBanner(out, /control plane API\s+(http:\/\/127\.0\.0\.1:\d+)\/debug\/proxies/, "control plane API");
    const serviceA = fromBanner(out, /curl (http:\/\/127\.0\.0\.3:\d+\/)\s+service-a/, "service-a example");
    const serviceB = fromBanner(out, /curl (http:\/\/127\.0\.0\.40:\d+\/)\s+service-b/, "service-b example");
    assert.match(out, `${admin}/stats?filter=wasmcustom.loop_guard`);
    assert.match(out, `${api}/debug/decisions?proxy=`);
    assert.is((await (await fetch(`${admin}/ready`)).text()).trim(), "LIVE");

    const a = await fetch(serviceA);
    assert.is(a.status, 200);
    assert.match(await a.text(), "service-a: delivered to the local process by the inbound listener");
    const b = await fetch(serviceB);
    assert.is(b.status, 200);
    assert.match(await b.text(), "service-b");

    const stats = await (await fetch(`${admin}/stats?filter=wasmcustom.loop_guard`)).text();
    // Only service-b's connection crossed an outbound listener; service-a's was inbound.
    assert.match(stats, /^wasmcustom\.loop_guard\.connections_checked: 1$/m);
    assert.match(stats, /^wasmcustom\.loop_guard\.short_circuited: 0$/m);
    const decisions = await (await fetch(`${api}/debug/decisions?proxy=${encodeURIComponent(START.nodeId)}`)).json();
    const decisionA = decisions.decisions.find((d: any) => d.host === "service-a.loopback.test");
    assert.is(decisionA.direction, "inbound");
  } finally {
    child.kill("SIGINT");
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r("timeout"), 10_000))]);
    if (code === "timeout") child.kill("SIGKILL");
    assert.is(code, 0, out.slice(-2000));
  }
  // Nothing keeps the ports: a second start could bind them again.
  assert.not.ok(await fetch(`${admin}/ready`).then(() => true, () => false), "Envoy admin still answers after shutdown");
});

test("npm start's own layout: the addresses the README's banner shows", () => {
  assert.equal([START.envoyAdmin, START.xds, START.httpPort, START.virtual], [
    { host: "127.0.0.1", port: 15000 }, { host: "127.0.0.1", port: 15010 }, 15014, { host: "127.0.0.1", port: 15001 },
  ]);
  assert.equal(START.captured, [{ host: "127.0.0.3", port: 9080 }, { host: "127.0.0.40", port: 9081 }]);
});

test.run();
