// The seed's node as the namespace tests run it: Istio 1.0's iptables capture, `multiplane serve` on a
// registry, and Envoy (uid 1337, so the capture lets its own traffic out) bootstrapped from the bundle,
// waited for until the wanted listeners are active. And the check that a test left nothing behind.
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AGENT_SOURCE, NsAgent } from "../../control/cmd/demo/agent.ts";
import { CleanupRegistry } from "../../control/cmd/demo/cleanup.ts";
import { activeListeners, ENVOY_UID, setprivAs } from "../../control/cmd/demo/runner.ts";
import { countersFrom, parseAdminStats } from "../../control/cmd/demo/scenario.ts";
import { installCapture, iptablesRunner } from "../../envoy/capture.ts";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { resolveEnvoy } from "../../envoy/resolve.ts";
import { waitFor } from "./net.ts";
import { createSeedTopology, type SpawnedProcess, type Topology } from "./netns.ts";

/**
 * The seed's namespaces and a temporary directory for the node's files, world-readable (Envoy runs as
 * uid 1337 and reads its bootstrap there); `close()` removes the namespaces, their processes and the
 * directory, whatever happened.
 */
export function seedTopology(dirPrefix: string): { t: Topology; dir: string; close(): Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), dirPrefix));
  chmodSync(dir, 0o755);
  const cleanup = new CleanupRegistry();
  let t: Topology;
  try {
    t = createSeedTopology(cleanup);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    t, dir,
    async close() {
      try {
        await t.destroy();
        cleanup.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** The node's own ports, excluded from the capture. */
export const NODE_PORTS = { admin: 15000, xds: 15010, http: 15014 };

export interface CapturedNode {
  cp: SpawnedProcess;
  envoy: SpawnedProcess;
  /** An agent in the node's namespace: requests from there are the application's (root, so captured). */
  node: NsAgent;
  /** The tails of Envoy's and the control plane's output, for assertion messages. */
  ctx(): string;
}

/**
 * Starts the node in `t.ns.node` serving `registry` (YAML) from `dir` (world-readable: Envoy reads its
 * bootstrap there) as `nodeId`; `editBootstrap` may change the bootstrap before Envoy starts. The
 * control plane's and Envoy's pids go into `pids` as they start, so a failed start is checked for leftovers too.
 */
export async function startCapturedNode(t: Topology, dir: string, o: {
  registry: string; nodeId: string; wanted: string[]; pids: number[]; editBootstrap?: (bootstrap: any) => void;
  /** More `multiplane serve` flags (e.g. --kubeconfig FILE). */
  serveArgs?: string[];
  /** The bootstrap's --instance-ips (default auto: every IP of the node). */
  instanceIps?: string;
}): Promise<CapturedNode> {
  const excluded = Object.values(NODE_PORTS);
  await installCapture({ proxyUids: [ENVOY_UID], proxyGids: [ENVOY_UID], excludeInboundPorts: excluded, excludeOutboundPorts: excluded }, iptablesRunner({ netns: t.ns.node }));
  const registry = join(dir, "registry");
  mkdirSync(registry, { mode: 0o755 });
  writeFileSync(join(registry, "services.yaml"), o.registry);
  const cli = join(PROJECT_ROOT, "dist", "multiplane.js");
  const cp = t.spawn(t.ns.node, process.execPath, [cli, "serve", "--registry", registry, "--xds-port", String(NODE_PORTS.xds), "--http-port", String(NODE_PORTS.http), ...(o.serveArgs ?? [])], { label: "control plane" });
  if (cp.child.pid) o.pids.push(cp.child.pid);
  const node = new NsAgent(t.spawn(t.ns.node, process.execPath, ["-e", AGENT_SOURCE], { label: "node agent" }));
  assert.ok(await waitFor(async () => cp.exited() || (await node.request(`http://127.0.0.1:${NODE_PORTS.http}/readyz`, { timeoutMs: 500 })).status === 200, 10000), cp.output());
  const bootstrapPath = join(dir, "envoy.json");
  t.exec(t.ns.node, process.execPath, [cli, "bootstrap", "--xds", `127.0.0.1:${NODE_PORTS.xds}`, "--node-id", o.nodeId, "--instance-ips", o.instanceIps ?? "auto", "--admin", `127.0.0.1:${NODE_PORTS.admin}`, "--out", bootstrapPath]);
  if (o.editBootstrap) {
    const bootstrap = JSON.parse(readFileSync(bootstrapPath, "utf8"));
    o.editBootstrap(bootstrap);
    writeFileSync(bootstrapPath, JSON.stringify(bootstrap));
  }
  chmodSync(bootstrapPath, 0o644);
  const envoy = t.spawn(t.ns.node, "setpriv", [...setprivAs(),
    resolveEnvoy().path, "-c", bootstrapPath, "--concurrency", "1", "-l", "warning", "--disable-hot-restart", "--use-dynamic-base-id"], { label: "envoy" });
  if (envoy.child.pid) o.pids.push(envoy.child.pid);
  let state = { active: [] as string[], warming: [] as string[] };
  const up = await waitFor(async () => {
    if (envoy.exited()) return true;
    const r = await node.request(`http://127.0.0.1:${NODE_PORTS.admin}/config_dump?resource=dynamic_listeners`, { timeoutMs: 2000 });
    if (r.status === 200 && r.body) state = activeListeners(r.body);
    return o.wanted.every((l) => state.active.includes(l)) && state.warming.length === 0;
  }, 20000, 100);
  const ctx = () => `\nenvoy: ${envoy.output().slice(-3000)}\ncontrol plane: ${cp.output().slice(-2000)}`;
  assert.ok(up && !envoy.exited(), `listeners active: ${state.active.join(", ")}; warming: ${state.warming.join(", ")}${ctx()}`);
  return { cp, envoy, node, ctx };
}

/**
 * The seed's request from the node: 10.75.8.101:9080 answered 200 by Service A (listening on the
 * node's loopback, as behind a sidecar) through the inbound listener, and the loop guard never had to
 * act (self_destined and self_learned 0).
 */
export async function assertServiceAServedUnguarded(c: CapturedNode, serviceAIp: string): Promise<void> {
  const r = await c.node.request(`http://${serviceAIp}:9080/`, { timeoutMs: 5000 });
  assert.is(r.status, 200, `Service A must answer${c.ctx()}`);
  assert.is(r.body, "service A\n");
  const stats = countersFrom(parseAdminStats((await c.node.request(`http://127.0.0.1:${NODE_PORTS.admin}/stats`)).body ?? ""));
  assert.is(stats.selfDestined, 0, `self_destined${c.ctx()}`);
  assert.is(stats.selfLearned, 0, `self_learned${c.ctx()}`);
}

/** No namespace of `namespaces` is listed any more and no process of `pids` runs. */
export function assertNothingLeftBehind(namespaces: readonly string[], pids: readonly number[]): void {
  const listed = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
  for (const ns of namespaces) assert.not.match(listed, ns, `namespace ${ns} still exists`);
  for (const pid of pids) {
    let alive = true;
    try { process.kill(pid, 0); } catch { alive = false; }
    assert.not.ok(alive, `process ${pid} still running`);
  }
}
