// Node agents' reports over mutual TLS, with a real Envoy (certificates made by openssl): the seed's
// proxy starts with only 192.168.10.63; its node's agent reports 10.75.8.101 too and Envoy gets the
// inbound listener for service A there on the same xDS stream (no reconnect); a hostile agent with
// another node's certificate is refused (counted, logged, nothing changes); a malformed report ends
// the agent's stream with INVALID_ARGUMENT; when the agent goes away its report lapses after the
// expiry and the proxy's own node IPs apply again.
import * as grpc from "@grpc/grpc-js";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Reporter } from "../../control/agent/reporter.ts";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { agentService } from "../../control/xds/server/agent-protocol.ts";
import { generateBootstrap } from "../../envoy/bootstrap.ts";
import { whenAvailable } from "../support/available.ts";
import { makeCa, makeLeaf, opensslUnavailableReason, type CertPair } from "../support/certs.ts";
import { envoyListeners, SEED_NODE_ID, tempRegistryDir } from "../support/control.ts";
import { startEnvoy, type RunningEnvoy } from "../support/envoy.ts";
import { waitFor } from "../support/net.ts";

const SA = "spiffe://cluster.local/ns/default/sa/service-a";
const SERVICE_A = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: service-a}
spec: {hosts: [service-a.example], ports: [{number: 9080, name: http}], resolution: STATIC, endpoints: [{address: 10.75.8.101}]}
`;

whenAvailable(opensslUnavailableReason(), "node agent reports", (test) => {
  let dir: string;
  let certs: string;
  let ca: CertPair;
  let cp: ControlPlane;
  let envoy: RunningEnvoy;
  const logs: string[] = [];
  const reporters: Reporter[] = [];

  const counter = (name: string, labels = "") => Number(new RegExp(`^${name}${labels ? `\\{${labels}\\}` : ""} (\\d+)$`, "m").exec(cp.view.metricsText())?.[1] ?? 0);
  const reporter = (pair: CertPair, log: string[] = []) => {
    const r = new Reporter({
      target: `127.0.0.1:${cp.xds.port}`, nodeIds: [SEED_NODE_ID], log: (l) => log.push(l),
      credentials: grpc.credentials.createSsl(readFileSync(ca.cert), readFileSync(pair.key), readFileSync(pair.cert)),
      retryMs: { first: 50, max: 200 },
    });
    reporters.push(r);
    return r;
  };
  const hasInboundA = async () => (await envoyListeners(envoy)).has("10.75.8.101_9080");
  const xdsConnects = async () => (await envoy.stats()).get("cluster.xds-grpc.upstream_cx_total");

  test.before(async () => {
    dir = tempRegistryDir({ "a.yaml": SERVICE_A });
    certs = mkdtempSync(join(tmpdir(), "mp-agent-"));
    ca = makeCa(certs);
    const server = makeLeaf(certs, ca, "control-plane", { ips: ["127.0.0.1"] });
    const proxy = makeLeaf(certs, ca, "proxy", { uris: [SA], ips: ["192.168.10.63"] });
    cp = await serve({
      registry: dir, xdsPort: 0, httpPort: false, loopGuard: false, log: (l) => logs.push(l), agentExpirySeconds: 1,
      tls: { certFile: server.cert, keyFile: server.key, clientCaFile: ca.cert },
    });
    envoy = await startEnvoy(generateBootstrap({
      nodeId: SEED_NODE_ID, instanceIps: ["192.168.10.63"], xds: { host: "127.0.0.1", port: cp.xds.port },
      tls: { caFile: ca.cert, certFile: proxy.cert, keyFile: proxy.key },
    }));
    assert.ok(await waitFor(() => cp.view.proxies()[0]?.types.lds?.state === "ACK", 10000), `${logs.join("\n")}\n${envoy.log().slice(-2000)}`);
    assert.not.ok(await hasInboundA(), "only 192.168.10.63 at the start: service A is not local");
  });

  test.after(async () => {
    for (const r of reporters) r.stop();
    await envoy?.stop();
    await cp?.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(certs, { recursive: true, force: true });
  });

  test("a hostile agent (another node's certificate) claiming 10.75.8.101 for this proxy is refused, and nothing changes", async () => {
    const hostile = makeLeaf(certs, ca, "node-b", { ips: ["192.168.10.64"] });
    const log: string[] = [];
    const r = reporter(hostile, log);
    const answer = r.nextAnswer();
    r.set(["192.168.10.64", "10.75.8.101"]);
    const a = await answer;
    assert.equal(a.accepted, ["192.168.10.64"]);
    assert.match(a.refused[0]?.reason ?? "", /^10\.75\.8\.101 is not among certificate CN=node-b's IP addresses 192\.168\.10\.64/);
    assert.match(a.nodes[0]?.refused[0]?.reason ?? "", /is not on this agent's node/);
    assert.ok(log.some((l) => l.startsWith("node agent: refused 10.75.8.101: ")), log.join("\n"));
    assert.ok(counter("multiplane_agent_refusals_total", 'kind="ip"') >= 1, cp.view.metricsText());
    assert.ok(counter("multiplane_agent_refusals_total", 'kind="proxy"') >= 1, cp.view.metricsText());
    assert.ok(logs.some((l) => /^warning: node agent 127\.0\.0\.1 \(CN=node-b\): refused: 10\.75\.8\.101 is not among/.test(l)), logs.join("\n"));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.not.ok(await hasInboundA());
    assert.equal(cp.view.proxies()[0]!.nodeIps, ["192.168.10.63"]);
    r.stop();
  });

  test("the node's own agent reports 10.75.8.101: Envoy gets the inbound listener on the same stream, and /debug names the agent", async () => {
    const nodeA = makeLeaf(certs, ca, "node-a", { ips: ["192.168.10.63", "10.75.8.101"] });
    const connects = await xdsConnects();
    const r = reporter(nodeA);
    const answer = r.nextAnswer();
    r.set(["192.168.10.63", "10.75.8.101"]);
    assert.equal((await answer).nodes, [{ nodeId: SEED_NODE_ID, applied: 1, refused: [] }]);
    assert.ok(await waitFor(hasInboundA, 5000), envoy.log().slice(-2000));
    assert.is(await xdsConnects(), connects, "no reconnect: the same stream carried the change");
    const decision = cp.view.decisions(SEED_NODE_ID)!.find((d) => d.direction === "inbound" && d.reason.startsWith("10.75.8.101"));
    assert.match(decision?.reason ?? "", /node IP 2 of 2 \(from node agent 127\.0\.0\.1 \(CN=node-a\), reported /);
    assert.equal(cp.view.agentReports().map((x) => [x.nodeId, x.ips]), [[SEED_NODE_ID, ["192.168.10.63", "10.75.8.101"]]]);
    // The address goes: the listener goes.
    r.set(["192.168.10.63"]);
    assert.ok(await waitFor(async () => !(await hasInboundA()), 5000));
    r.set(["192.168.10.63", "10.75.8.101"]);
    assert.ok(await waitFor(hasInboundA, 5000));
    // The agent goes away: its report stands until the expiry (1 s), then the proxy's own set applies.
    r.stop();
    assert.ok(await waitFor(() => cp.view.agentReports()[0]?.expiresAt !== undefined, 5000));
    assert.ok(await hasInboundA());
    assert.ok(await waitFor(async () => !(await hasInboundA()), 5000));
    assert.equal(cp.view.agentReports(), []);
    assert.ok(logs.some((l) => l.includes("went away and its report expired")), logs.join("\n"));
  });

  test("a malformed report ends the agent's stream with INVALID_ARGUMENT naming what is wrong", async () => {
    const nodeA = makeLeaf(certs, ca, "node-a2", { ips: ["192.168.10.63"] });
    const Client = grpc.makeGenericClientConstructor(agentService, "NodeAgent");
    const client = new Client(`127.0.0.1:${cp.xds.port}`, grpc.credentials.createSsl(readFileSync(ca.cert), readFileSync(nodeA.key), readFileSync(nodeA.cert)));
    const before = counter("multiplane_agent_refusals_total", 'kind="report"');
    try {
      const err = await new Promise<grpc.ServiceError>((resolve) => {
        const call = (client as any).ReportAddresses();
        call.on("error", resolve);
        call.on("data", () => {});
        call.write({ nodeIds: [SEED_NODE_ID], ips: ["10.75.8.101", "not-an-ip"] });
      });
      assert.is(err.code, grpc.status.INVALID_ARGUMENT);
      assert.is(err.details, 'node agent report refused: "not-an-ip" in ips is not an IP address');
      assert.is(counter("multiplane_agent_refusals_total", 'kind="report"'), before + 1);
    } finally {
      client.close();
    }
  });

  test("a client without a certificate the CA signed cannot report", async () => {
    const otherCa = makeCa(certs, "other-ca");
    const stranger = makeLeaf(certs, otherCa, "stranger", { ips: ["192.168.10.63", "10.75.8.101"] });
    const Client = grpc.makeGenericClientConstructor(agentService, "NodeAgent");
    const client = new Client(`127.0.0.1:${cp.xds.port}`, grpc.credentials.createSsl(readFileSync(ca.cert), readFileSync(stranger.key), readFileSync(stranger.cert)));
    const reports = counter("multiplane_agent_reports_total");
    try {
      const err = await new Promise<grpc.ServiceError>((resolve) => {
        const call = (client as any).ReportAddresses();
        call.on("error", resolve);
        call.write({ nodeIds: [SEED_NODE_ID], ips: ["10.75.8.101"] });
      });
      assert.is(err.code, grpc.status.UNAVAILABLE);
      assert.is(counter("multiplane_agent_reports_total"), reports);
    } finally {
      client.close();
    }
  });
});

test.run();
