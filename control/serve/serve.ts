// `multiplane serve`: the wiring of registry sources -> store -> config pipeline -> snapshot cache ->
// xDS, plus the HTTP API. The proxy's identity (node.id and INSTANCE_IPS) comes from its first xDS
// request. Every push and every NACK is logged on one line (events.ts). Signals are the CLI's
// business; this returns stop().
//
// Each part is made after the parts it reads, and its stop is pushed as it starts: a failed start
// unwinds what had started, newest first, and stop() unwinds the same stack.
import { listening } from "../common/listen.ts";
import { setUpLoopGuard } from "../guard-wasm/setup.ts";
import { createHandler } from "../http/handler.ts";
import { serveHandler } from "../http/node-adapter.ts";
import type { ControlPlaneView } from "../http/view.ts";
import { ConfigPipeline } from "../pipeline/config-pipeline.ts";
import { ConfigDistributor } from "../pipeline/distributor.ts";
import { AgentIpLearning } from "../pipeline/agent-ips.ts";
import { LearnedIps } from "../pipeline/learned-ips.ts";
import { PodIpLearning } from "../pipeline/pod-ips.ts";
import { Proxies } from "../pipeline/proxies.ts";
import { RegistryStore } from "../registry/store.ts";
import { xdsSecurity } from "../tls/xds-security.ts";
import { SnapshotCache } from "../xds/cache/cache.ts";
import { startXdsServer } from "../xds/server/grpc-server.ts";
import { agentCallbacks, agentEvents, distributorEvents, GUARD_PER_REPLICA_WARNING, podIpEvents, startedLine, storeEvents, StreamLog, xdsCallbacks } from "./events.ts";
import { controlPlaneCounters, controlPlaneMetrics } from "./metrics.ts";
import { loopGuardFlags, serveGenerationOptions, serveSettings, type ServeOptions } from "./options.ts";
import { describePlanes, readPlanesFile, watchPlanesFile } from "./planes-file.ts";
import { chooseRegistry, kubernetesSourceOf } from "./sources.ts";
import { StopStack } from "./stop-stack.ts";
import { controlPlaneView } from "./view.ts";

export interface ControlPlane {
  xds: { host: string; port: number };
  /** The loop guard module server, when this control plane serves the module. */
  guardModule?: { host: string; port: number; scheme: "http" | "https" };
  /** Base URL of the HTTP API, when it runs. */
  httpUrl?: string;
  store: RegistryStore;
  cache: SnapshotCache;
  view: ControlPlaneView;
  /** Open xDS streams (leak checks). */
  openStreams(): number;
  /** Generated configurations kept for reuse, one per distinct node-IP set in use (leak checks). */
  cachedGenerations(): number;
  stop(): Promise<void>;
}

export async function serve(opts: ServeOptions = {}): Promise<ControlPlane> {
  const settings = serveSettings(opts);
  const { log, limits } = settings;
  const registry = chooseRegistry(opts);
  const stack = new StopStack();
  try {
    const security = xdsSecurity(settings.xdsHost, settings.xdsPort, opts.tls, opts.insecureXds ?? false, log);
    stack.push(() => security.stop());
    const guardFlags = loopGuardFlags(opts, settings.xdsHost, security.certs);
    const guard = guardFlags && await setUpLoopGuard(guardFlags, log);
    if (guard) stack.push(() => guard.close());
    if (registry.etcd && guard?.server) log(GUARD_PER_REPLICA_WARNING);

    const planesFile = opts.planesFile !== undefined ? await readPlanesFile(opts.planesFile) : undefined;
    if (planesFile) log(`planes: ${describePlanes(planesFile.planes)} (from ${opts.planesFile})`);
    const genOptions = serveGenerationOptions(opts, guard?.options, planesFile?.planes);
    const pipeline = new ConfigPipeline(genOptions);
    const cache = new SnapshotCache();
    const proxies = new Proxies();
    const counters = controlPlaneCounters();
    const streamLog = new StreamLog(log, settings.logRate);
    stack.push(() => streamLog.stop());
    const distributor = new ConfigDistributor(pipeline, cache, proxies, distributorEvents(counters, streamLog));
    stack.push(() => distributor.stop());

    // Node IPs beyond what proxies report: from their pods (Kubernetes) and their nodes' agents.
    const learnedIps = new LearnedIps(distributor, proxies);
    const podIps = new PodIpLearning((affects) => learnedIps.refresh(affects), podIpEvents(counters, streamLog));
    const agentIps = new AgentIpLearning((nodeIds) => learnedIps.refreshNodes(nodeIds), proxies, settings.agents, agentEvents(log, counters, streamLog));
    stack.push(() => agentIps.stop());
    learnedIps.add(podIps);
    learnedIps.add(agentIps);
    if (planesFile) {
      const watch = watchPlanesFile(opts.planesFile!, planesFile.text, (p) => distributor.planesChanged(p, performance.now()), log);
      stack.push(() => watch.close());
    }
    const sources = registry.sources();
    const store = new RegistryStore(sources, storeEvents(log, counters, distributor), settings.onInvalid);
    // Pushed before start: sources that started before one failed are stopped too.
    stack.push(() => store.stop());
    await store.start();
    const kubernetes = kubernetesSourceOf(sources);
    if (kubernetes) {
      const off = kubernetes.onPods((pods) => podIps.setPods(pods));
      stack.push(() => void off());
    }

    const xds = await listening("xDS server", settings.xdsHost, settings.xdsPort, "--xds-host, --xds-port", () => startXdsServer({
      host: settings.xdsHost, port: settings.xdsPort, cache, limits,
      callbacks: xdsCallbacks({ limits, trustDomain: settings.trustDomain, pipeline, proxies, distributor, podIps, learnedIps, counters, streamLog }),
      agents: agentCallbacks(agentIps, counters, streamLog),
      ...(opts.sendBudget ? { sendBudget: opts.sendBudget } : {}),
      ...(security.credentials ? { credentials: security.credentials } : {}),
    }));
    // Ends every stream with UNAVAILABLE at once, so Envoys reconnect (to another replica).
    stack.push(() => xds.stop());

    const view = controlPlaneView({ store, proxies, pipeline, agents: agentIps, guard, metrics: controlPlaneMetrics(counters, { proxies, store, xds }) });
    const handler = createHandler(view, opts.token !== undefined ? { token: opts.token } : {});
    const http = settings.http && await listening("HTTP API", settings.http.host, settings.http.port, "--http-host, --http-port", () => serveHandler(handler, settings.http!));
    if (http) stack.push(() => http.close());

    log(startedLine(xds, security.mode, http?.url, genOptions.legacySingleIp));
    return {
      xds: { host: xds.host, port: xds.port },
      ...(guard?.server ? { guardModule: { host: guard.server.host, port: guard.server.port, scheme: guard.server.scheme } } : {}),
      ...(http ? { httpUrl: http.url } : {}),
      store, cache, view,
      openStreams: () => xds.openStreams(),
      cachedGenerations: () => pipeline.cachedConfigs(),
      stop: () => stack.unwind(),
    };
  } catch (err) {
    // The start's error is the one to report; the stops' own errors would hide it.
    await stack.unwind().catch(() => {});
    throw err;
  }
}
