// The seed (README, "The story") for real (root only): a node with 192.168.10.63 and 10.75.8.101 in its own network namespace,
// Istio 1.0 iptables capture, `multiplane serve` and Envoy (uid 1337, ulimit -n 512) inside it, Service A
// on 127.0.0.1:9080 registered at 10.75.8.101:9080, and one HTTP request per row from namespace `client`.
// Each row builds and removes its own namespaces; the last test checks nothing was left behind.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { MATRIX, EXPLODED_CONNECTIONS, BOUNDED_CONNECTIONS, type ScenarioResult } from "../../control/cmd/demo/scenario.ts";
import { runScenario, SERVICE_A_BODY, ENVOY_FD_LIMIT } from "../../control/cmd/demo/runner.ts";
import { netnsUnavailableReason } from "../support/netns.ts";
import { whenAvailable } from "../support/available.ts";

const results = new Map<string, ScenarioResult>();
const spec = (name: string) => MATRIX.find((s) => s.name === name)!;

async function row(name: string): Promise<ScenarioResult> {
  const r = await runScenario(spec(name), "netns", { log: (l) => console.log(`  ${l}`) });
  results.set(name, r);
  return r;
}

/** Context for a failed assertion: the measurements and Envoy's last log lines. */
const ctx = (r: ScenarioResult) => {
  const { envoyLogTail, body, ...rest } = r;
  return `\n${JSON.stringify(rest)}\nbody: ${JSON.stringify((body ?? "").slice(0, 200))}\nenvoy log:\n${envoyLogTail}`;
};

const fdsBounded = (r: ScenarioResult) => r.fdsBefore !== undefined && r.fdsMax !== undefined && r.fdsMax - r.fdsBefore <= 16;

whenAvailable(netnsUnavailableReason(), "seed in network namespaces", (test) => {
  test("legacy control plane, no guard: the seed's loop; Envoy's connections explode or it dies", async () => {
    const r = await row("seed-loop");
    assert.is(r.guardInConfig, false, `the loop guard must be absent${ctx(r)}`);
    assert.ok(r.listeners.includes("0.0.0.0_9080") && !r.listeners.includes("10.75.8.101_9080"), `Istio 1.0: OUTBOUND listener for Service A, no INBOUND one${ctx(r)}`);
    assert.is(r.request, "failed", `the request must fail${ctx(r)}`);
    assert.ok(r.downstreamCxTotal >= EXPLODED_CONNECTIONS || !r.envoyAlive, `downstream_cx_total must explode (>= ${EXPLODED_CONNECTIONS}) or Envoy die${ctx(r)}`);
    // The kernel's view: Envoy's own connections to 10.75.8.101 captured back over lo, many times.
    assert.ok((r.capture?.loopback ?? 0) >= EXPLODED_CONNECTIONS, `the -o lo rule must have re-captured Envoy's connections many times${ctx(r)}`);
    assert.ok(r.fdExhausted, `Envoy must have run out of its ${ENVOY_FD_LIMIT} FDs${ctx(r)}`);
    // How long the row took is printed, not asserted: the outcome above is the point, its speed is not.
    console.log(`    seed-loop row: ${r.durationMs} ms`);
  });

  test("legacy + guard, INSTANCE_IPS auto: refused at the first hop (self_destined), Envoy alive, FDs bounded", async () => {
    const r = await row("guard-metadata");
    assert.ok(r.guardInConfig, `the loop guard must be in Envoy's listeners${ctx(r)}`);
    assert.is(r.request, "failed", `the request must fail${ctx(r)}`);
    // Fails fast: Envoy ends the connection itself (a reset or hang-up), the client does not give up waiting.
    assert.ok(r.requestError !== undefined && r.requestError !== "timeout" && r.requestError !== "agent exited",
      `the connection must be ended by Envoy, got ${r.requestError ?? "no error"} after ${r.requestMs} ms${ctx(r)}`);
    assert.ok(r.selfDestined >= 1, `self_destined >= 1 (via INSTANCE_IPS metadata)${ctx(r)}`);
    assert.ok(r.shortCircuited >= 1, `short_circuited >= 1${ctx(r)}`);
    assert.is(r.selfLearned, 0, `stopped at the first hop: nothing to learn${ctx(r)}`);
    assert.is(r.capture?.loopback, 0, `no connection re-captured: no upstream connection was attempted${ctx(r)}`);
    assert.ok(r.downstreamCxTotal <= BOUNDED_CONNECTIONS, `downstream_cx_total bounded${ctx(r)}`);
    assert.ok(r.envoyAlive, `Envoy alive${ctx(r)}`);
    assert.ok(fdsBounded(r), `Envoy's FDs bounded${ctx(r)}`);
  });

  test("legacy + guard, INSTANCE_IPS none: refused at the second hop by learning (self_learned), Envoy alive", async () => {
    const r = await row("guard-learned");
    assert.ok(r.guardInConfig, `the loop guard must be in Envoy's listeners${ctx(r)}`);
    assert.is(r.request, "failed", `the request must fail${ctx(r)}`);
    assert.ok(r.selfLearned >= 1, `self_learned >= 1${ctx(r)}`);
    assert.ok(r.shortCircuited >= 1, `short_circuited >= 1${ctx(r)}`);
    assert.is(r.selfDestined, 0, `nobody told the guard the second IP${ctx(r)}`);
    assert.is(r.capture?.loopback, 1, `exactly one hop re-captured over lo${ctx(r)}`);
    assert.ok(r.downstreamCxTotal <= BOUNDED_CONNECTIONS, `downstream_cx_total bounded${ctx(r)}`);
    assert.ok(r.envoyAlive, `Envoy alive${ctx(r)}`);
    assert.ok(fdsBounded(r), `Envoy's FDs bounded${ctx(r)}`);
  });

  for (const name of ["fix", "fix+guard"]) {
    test(`multi-IP control plane${name === "fix+guard" ? " + guard" : ""}: 200 from Service A through the inbound listener, guard counters 0`, async () => {
      const r = await row(name);
      assert.is(r.guardInConfig, name === "fix+guard", `loop guard presence${ctx(r)}`);
      assert.ok(r.listeners.includes("10.75.8.101_9080"), `INBOUND listener 10.75.8.101_9080${ctx(r)}`);
      assert.is(r.status, 200, `Service A must answer${ctx(r)}`);
      assert.is(r.body, SERVICE_A_BODY);
      assert.is(r.shortCircuited, 0, `short_circuited${ctx(r)}`);
      assert.is(r.selfDestined, 0, `self_destined${ctx(r)}`);
      assert.is(r.selfLearned, 0, `self_learned${ctx(r)}`);
      assert.is(r.capture?.loopback, 0, `nothing re-captured${ctx(r)}`);
      assert.is(r.downstreamCxTotal, 1, `one downstream connection${ctx(r)}`);
      assert.ok(r.envoyAlive, `Envoy alive${ctx(r)}`);
    });
  }

  test("HTTP port, legacy + guard, INSTANCE_IPS none: the HTTP guard answers 508 at the second hop, the reply names this node twice", async () => {
    const r = await row("http-loop");
    assert.ok(r.guardInConfig, `the loop guard must be in Envoy's listeners${ctx(r)}`);
    assert.is(r.status, 508, `508 Loop Detected${ctx(r)}`);
    assert.match(r.body ?? "", /^508 Loop Detected: multiplane loop guard on node sidecar~192\.168\.10\.63~service-a-1\.default~default\.svc\.cluster\.local \(source == destination\)\n$/);
    const node = "sidecar~192.168.10.63~service-a-1.default~default.svc.cluster.local";
    assert.is(r.hops, `${node},${node}`, `x-multiplane-hops: hop 1 marked the request, hop 2 refused it${ctx(r)}`);
    assert.ok(r.shortCircuited >= 1 && r.selfLearned >= 1, `counted${ctx(r)}`);
    assert.is(r.capture?.loopback, 1, `exactly one hop re-captured over lo${ctx(r)}`);
    assert.is(r.downstreamCxTotal, 2, `two downstream connections: the client's and Envoy's own${ctx(r)}`);
    assert.ok(r.envoyAlive, `Envoy alive${ctx(r)}`);
    assert.ok(fdsBounded(r), `Envoy's FDs bounded${ctx(r)}`);
  });

  test("nothing left behind: namespaces, processes (iptables rules lived in the namespaces)", () => {
    const namespaces = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
    for (const r of results.values()) {
      for (const ns of r.namespaces) assert.not.match(namespaces, ns, `namespace ${ns} still exists`);
      for (const pid of r.pids) {
        let alive = true;
        try { process.kill(pid, 0); } catch { alive = false; }
        assert.not.ok(alive, `process ${pid} of ${r.name} still running`);
      }
    }
    assert.is(results.size, MATRIX.length, "every row ran");
  });
});

test.run();
