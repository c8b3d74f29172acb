// The agent's report stream survives the control plane: when it restarts (or the agent fails over to
// a replica on the same address) the agent reconnects with its back-off and sends the node's current
// set at once, so the new control plane knows it without waiting for an address change; a change made
// while it was away goes out then, on one stream.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import { rmSync } from "node:fs";
import { Reporter } from "../../control/agent/reporter.ts";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { tempRegistryDir } from "../support/control.ts";
import { waitFor } from "../support/net.ts";

const NODE_ID = "router~192.168.10.63~node-a.default~default.svc.cluster.local";
const reports = (cp: ControlPlane) => Number(/^multiplane_agent_reports_total (\d+)$/m.exec(cp.view.metricsText())?.[1] ?? 0);

test("a restarted control plane gets the node's current set on the reopened stream", async () => {
  const dir = tempRegistryDir();
  const start = (port: number) => serve({ registry: dir, xdsPort: port, httpPort: false, loopGuard: false, log: () => {} });
  let cp = await start(0);
  const port = cp.xds.port;
  const log: string[] = [];
  const reporter = new Reporter({ target: `127.0.0.1:${port}`, credentials: grpc.credentials.createInsecure(), nodeIds: [NODE_ID], log: (l) => log.push(l), retryMs: { first: 100, max: 400 } });
  try {
    const first = reporter.nextAnswer();
    reporter.set(["192.168.10.63"]);
    assert.equal((await first).accepted, ["192.168.10.63"]);
    assert.equal(cp.view.agentReports().map((r) => r.ips), [["192.168.10.63"]]);

    await cp.stop();
    assert.ok(await waitFor(() => log.some((l) => l.includes("report stream to") && l.includes("broken")), 5000), log.join("\n"));
    // The node changes while the control plane is away: the set waits for the stream.
    reporter.set(["192.168.10.63", "10.75.8.101"]);
    cp = await start(port);
    assert.ok(await waitFor(() => cp.view.agentReports().length > 0, 10000), log.join("\n"));
    assert.equal(cp.view.agentReports().map((r) => [r.nodeId, r.ips]), [[NODE_ID, ["192.168.10.63", "10.75.8.101"]]]);
    await new Promise((r) => setTimeout(r, 600));
    assert.is(reports(cp), 1, "one stream, one report: the change made meanwhile did not open a second stream");
  } finally {
    reporter.stop();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
