// `npm start` as a newcomer runs it: the control plane and an Envoy sidecar on loopback, the example
// requests from the banner work, the loop guard's counter shows in Envoy's stats, Ctrl-C cleans up.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { PROJECT_ROOT } from "../envoy/paths.ts";
import { waitFor } from "./support/net.ts";

test("npm start: inbound and outbound example requests, guard counter in /stats, clean shutdown on SIGINT", async () => {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, "dist", "multiplane.js"), "start"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => { out += d; });
  child.stderr.on("data", (d) => { out += d; });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  try {
    assert.ok(await waitFor(() => out.includes("multiplane is running"), 30_000), out);
    assert.match(out, "http://127.0.0.1:15000/stats?filter=wasmcustom.loop_guard");
    assert.match(out, "http://127.0.0.1:15014/debug/decisions?proxy=");
    assert.is((await (await fetch("http://127.0.0.1:15000/ready")).text()).trim(), "LIVE");

    const a = await fetch("http://127.0.0.3:9080/");
    assert.is(a.status, 200);
    assert.match(await a.text(), "service-a: delivered to the local process by the inbound listener");
    const b = await fetch("http://127.0.0.40:9081/");
    assert.is(b.status, 200);
    assert.match(await b.text(), "service-b");

    const stats = await (await fetch("http://127.0.0.1:15000/stats?filter=wasmcustom.loop_guard")).text();
    // Only service-b's connection crossed an outbound listener; service-a's was inbound.
    assert.match(stats, /^wasmcustom\.loop_guard\.connections_checked: 1$/m);
    assert.match(stats, /^wasmcustom\.loop_guard\.short_circuited: 0$/m);
    const decisions = await (await fetch(`http://127.0.0.1:15014/debug/decisions?proxy=${encodeURIComponent("sidecar~127.0.0.2~start-1.default~default.svc.cluster.local")}`)).json();
    const serviceA = decisions.decisions.find((d: any) => d.host === "service-a.loopback.test");
    assert.is(serviceA.direction, "inbound");
  } finally {
    child.kill("SIGINT");
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r("timeout"), 10_000))]);
    if (code === "timeout") child.kill("SIGKILL");
    assert.is(code, 0, out.slice(-2000));
  }
  // Nothing keeps the ports: a second start could bind them again.
  assert.not.ok(await fetch("http://127.0.0.1:15000/ready").then(() => true, () => false), "Envoy admin still answers after shutdown");
});

test.run();
