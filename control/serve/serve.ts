// `multiplane serve`: the wiring of registry sources -> store -> config pipeline -> snapshot cache ->
// xDS, plus the HTTP API. The proxy's identity (node.id and INSTANCE_IPS) comes from its first xDS
// request. Every push and every NACK is logged on one line (events.ts). Signals are the CLI's
// business; this returns stop(). Each part is made after the parts it reads.
import { setUpLoopGuard, type GuardSetup } from "../guard-wasm/setup.ts";
import { createHandler } from "../http/handler.ts";
import { serveHandler, type HttpServer } from "../http/node-adapter.ts";
import type { ControlPlaneView } from "../http/view.ts";
import { ConfigPipeline } from "../pipeline/config-pipeline.ts";
import { ConfigDistributor } from "../pipeline/distributor.ts";
import { Proxies } from "../pipeline/proxies.ts";
import { RegistryStore } from "../registry/store.ts";
import { xdsSecurity } from "../tls/xds-security.ts";
import { SnapshotCache } from "../xds/cache/cache.ts";
import { startXdsServer, type XdsServer } from "../xds/server/grpc-server.ts";
import { distributorEvents, GUARD_PER_REPLICA_WARNING, startedLine, storeEvents, StreamLog, xdsCallbacks } from "./events.ts";
import { controlPlaneCounters, controlPlaneMetrics } from "./metrics.ts";
import { loopGuardFlags, serveGenerationOptions, serveSettings, type ServeOptions } from "./options.ts";
import { chooseRegistry } from "./sources.ts";
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
  const security = xdsSecurity(settings.xdsHost, settings.xdsPort, opts.tls, opts.insecureXds ?? false, log);
  let guard: GuardSetup | undefined;
  try {
    const guardFlags = loopGuardFlags(opts, settings.xdsHost, security.certs);
    guard = guardFlags && await setUpLoopGuard(guardFlags, log);
  } catch (err) {
    security.stop();
    throw err;
  }
  if (registry.etcd && guard?.server) log(GUARD_PER_REPLICA_WARNING);

  const genOptions = serveGenerationOptions(opts, guard?.options);
  const pipeline = new ConfigPipeline(genOptions);
  const cache = new SnapshotCache();
  const proxies = new Proxies();
  const counters = controlPlaneCounters();
  const streamLog = new StreamLog(log, settings.logRate);
  const distributor = new ConfigDistributor(pipeline, cache, proxies, distributorEvents(counters, streamLog));

  const store = new RegistryStore(registry.sources(), storeEvents(log, counters, distributor), settings.onInvalid);
  // Sources that started before one failed are stopped too: their watches would feed a plane that never ran.
  await store.start().catch(async (err) => { store.stop(); security.stop(); await guard?.close(); throw err; });
  let xds: XdsServer | undefined;
  let http: HttpServer | undefined;
  try {
    xds = await startXdsServer({
      host: settings.xdsHost, port: settings.xdsPort, cache, limits,
      callbacks: xdsCallbacks({ limits, trustDomain: settings.trustDomain, pipeline, proxies, distributor, counters, streamLog }),
      ...(opts.sendBudget ? { sendBudget: opts.sendBudget } : {}),
      ...(security.credentials ? { credentials: security.credentials } : {}),
    });
    const xdsServer = xds;
    const view = controlPlaneView({ store, proxies, pipeline, guard, metrics: controlPlaneMetrics(counters, { proxies, store, xds: xdsServer }) });
    if (settings.http) http = await serveHandler(createHandler(view, opts.token !== undefined ? { token: opts.token } : {}), settings.http);
    log(startedLine(xdsServer, security.mode, http?.url, genOptions.legacySingleIp));
    return {
      xds: { host: xdsServer.host, port: xdsServer.port },
      ...(guard?.server ? { guardModule: { host: guard.server.host, port: guard.server.port, scheme: guard.server.scheme } } : {}),
      ...(http ? { httpUrl: http.url } : {}),
      store, cache, view,
      openStreams: () => xdsServer.openStreams(),
      cachedGenerations: () => pipeline.cachedConfigs(),
      async stop() {
        distributor.stop();
        streamLog.stop();
        store.stop();
        security.stop();
        await Promise.all([http?.close(), xdsServer.stop(), guard?.close()]);
      },
    };
  } catch (err) {
    streamLog.stop();
    store.stop();
    security.stop();
    await Promise.all([xds?.stop(), guard?.close()]);
    throw err;
  }
}
