// `multiplane serve`: the wiring of registry sources -> store -> config pipeline -> snapshot cache ->
// xDS, plus the HTTP API. The proxy's identity (node.id and INSTANCE_IPS) comes from its first xDS
// request. Every push and every NACK is logged on one line. Signals are the CLI's business; this
// returns stop().
import { existsSync } from "node:fs";
import { LOOP_GUARD_WASM } from "../envoy/paths.ts";
import { DEFAULT_VIRTUAL_LISTENER, generationOptions, type GenerationOptions, type LoopGuardOptions, type VirtualListenerOptions } from "./generation/options.ts";
import { createHandler } from "./http/handler.ts";
import { serveHandler, type HttpServer } from "./http/node-adapter.ts";
import type { ControlPlaneView } from "./http/view.ts";
import { checkInstanceIps, DEFAULT_IDENTITY_LIMITS, type IdentityLimits } from "./identity/instance-ips.ts";
import { proxyIdentity } from "./identity/proxy.ts";
import { clip } from "./log/clip.ts";
import { DEFAULT_LOG_RATE, RateLimitedLog, type LogRate } from "./log/rate-limited-log.ts";
import { controlPlaneMetrics } from "./metrics.ts";
import { ConfigPipeline } from "./pipeline/config-pipeline.ts";
import { ConfigDistributor } from "./pipeline/distributor.ts";
import { Proxies, shortType } from "./proxies.ts";
import { ApiSource } from "./registry/api-source.ts";
import { FileSource } from "./registry/file-source.ts";
import type { ServiceEntry } from "./registry/model.ts";
import type { RegistrySource } from "./registry/source.ts";
import { RegistryStore } from "./registry/store.ts";
import { SnapshotCache } from "./xds/cache.ts";
import type { XdsCallbacks } from "./xds/callbacks.ts";
import { DEFAULT_XDS_LIMITS, invalid, statusName, type XdsLimits } from "./xds/limits.ts";
import { startXdsServer, type XdsServer } from "./xds/server.ts";

export interface ServeOptions {
  /** A registry file or directory, watched for changes. Undefined: start empty (HTTP API only). */
  registry?: string;
  /** xDS (gRPC) listen address. Default 127.0.0.1:15010; port 0 picks a free one. */
  xdsHost?: string;
  xdsPort?: number;
  /** HTTP API listen address. Default 127.0.0.1:15014; port 0 picks a free one; false: no HTTP API. */
  httpHost?: string;
  httpPort?: number | false;
  /** Bearer token that PUT/DELETE of ServiceEntries require; undefined disables writes. */
  token?: string;
  /** Istio 1.0 behaviour: only node.id's IP counts (reproduces the seed's loop). */
  legacySingleIp?: boolean;
  /** The loop guard filter: default dist/loop-guard.wasm in enforce mode; false leaves it out. */
  loopGuard?: Partial<LoopGuardOptions> | false;
  /** The virtual listener: default 0.0.0.0:15001 with the original_dst hand-off. */
  virtualListener?: Partial<VirtualListenerOptions>;
  connectTimeoutMs?: number;
  /** Overrides of what one xDS client may send (DEFAULT_XDS_LIMITS, DEFAULT_IDENTITY_LIMITS). */
  limits?: Partial<XdsLimits & IdentityLimits>;
  /** Log lines per proxy (stream events) and per peer address (refused streams); default DEFAULT_LOG_RATE. */
  logRate?: Partial<LogRate>;
  /** One line per event; default console.log. */
  log?: (line: string) => void;
}

export interface ControlPlane {
  xds: { host: string; port: number };
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

/** Logged once per distinct problem; the set is bounded so hostile node ids cannot grow it. */
const MAX_REMEMBERED_PROBLEMS = 10_000;

export async function serve(opts: ServeOptions = {}): Promise<ControlPlane> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const limits = { ...DEFAULT_XDS_LIMITS, ...DEFAULT_IDENTITY_LIMITS, ...opts.limits };
  // Stream events are counted per proxy, refusals per peer address; values a client chose are clipped.
  const limited = new RateLimitedLog(log, { ...DEFAULT_LOG_RATE, ...opts.logRate });
  const proxyLog = (id: string, line: string) => limited.line(`proxy=${clip(id, 200)}`, line);
  const genOptions = serveGenerationOptions(opts, log);
  const cache = new SnapshotCache();
  const proxies = new Proxies();
  const pipeline = new ConfigPipeline(genOptions);
  const loggedProblems = new Set<string>();

  const sources: RegistrySource[] = [...(opts.registry !== undefined ? [new FileSource(opts.registry)] : []), new ApiSource()];
  const store: RegistryStore = new RegistryStore(sources, {
    changed(next, version) {
      log(`registry v${version}: ${next.services.length} services from ${next.resources.length} resources`);
      distributor.registryChanged(next, performance.now());
    },
    rejected(source, errors) {
      metrics.rejections.inc({ source });
      log(`registry ${source === "files" ? "reload" : `${source} update`} rejected, last good registry keeps serving:\n  ${errors.join("\n  ")}`);
    },
    warned(_source, warnings) {
      for (const w of warnings) log(`registry warning: ${w}`);
    },
  });

  const metrics = controlPlaneMetrics({
    connectedProxies: () => proxies.size,
    streams: () => Object.entries(proxies.streamCounts()).map(([protocol, n]) => [{ protocol }, n]),
    services: () => store.registry.services.length,
    reloads: () => store.status().reloads,
  });

  const distributor = new ConfigDistributor(pipeline, cache, proxies, {
    generated: (seconds) => metrics.generation.observe(seconds),
    failed: (id, err) => proxyLog(id, `error: generation for proxy ${clip(id, 200)} failed, keeping its last config: ${clip(err.message)}`),
  });

  const callbacks: XdsCallbacks = {
    onStreamOpen(info) {
      const tooMany = checkInstanceIps(info.node.metadata.INSTANCE_IPS, limits);
      if (tooMany) return invalid(tooMany);
      const identity = proxyIdentity(info.node);
      for (const p of identity.problems) {
        if (loggedProblems.size > MAX_REMEMBERED_PROBLEMS) loggedProblems.clear();
        if (!loggedProblems.has(p)) { loggedProblems.add(p); proxyLog(identity.id, `warning: ${clip(p)}`); }
      }
      const r = distributor.open(identity, info.streamId, info.protocol);
      proxyLog(identity.id, `connect proxy=${clip(identity.id, 200)} stream=${info.streamId} protocol=${info.protocol} node_ips=${clip(r.nodeIps.join(",")) || "none"}`);
    },
    onRefused(info) {
      limited.line(`peer=${info.peer}`, `refused peer=${info.peer} stream=${info.streamId} protocol=${info.protocol}${info.nodeId !== undefined ? ` proxy=${clip(info.nodeId, 200)}` : ""} status=${statusName(info.refusal.code)} reason=${JSON.stringify(clip(info.refusal.details))}`);
    },
    onStreamClosed(info) {
      distributor.close(info.node.id, info.streamId);
      proxyLog(info.node.id, `disconnect proxy=${clip(info.node.id, 200)} stream=${info.streamId}`);
    },
    onPush(info) {
      proxies.pushed(info.node.id, info.typeUrl, info.version, info.nonce, info.resourceCount);
      const type = shortType(info.typeUrl);
      metrics.pushes.inc({ type });
      const r = proxies.get(info.node.id);
      if (r?.triggeredAt !== undefined) metrics.pushLatency.observe((performance.now() - r.triggeredAt) / 1000, { type });
      proxyLog(info.node.id, `push proxy=${clip(info.node.id, 200)} stream=${info.streamId} type=${type} version=${info.version} nonce=${info.nonce} resources=${info.resourceCount}`);
    },
    onAck(info) {
      proxies.answered(info.node.id, info.typeUrl, info.nonce, info.version);
      metrics.acks.inc({ type: shortType(info.typeUrl) });
    },
    onNack(info) {
      proxies.answered(info.node.id, info.typeUrl, info.nonce, info.version, info.errorDetail);
      metrics.nacks.inc({ type: shortType(info.typeUrl) });
      proxyLog(info.node.id, `NACK proxy=${clip(info.node.id, 200)} stream=${info.streamId} type=${shortType(info.typeUrl)} version=${info.version} nonce=${info.nonce} error=${JSON.stringify(clip(info.errorDetail))}`);
    },
  };

  const view: ControlPlaneView = {
    readiness() {
      const s = store.status();
      const reasons = s.sources.flatMap((src) => [
        ...(src.loaded ? [] : [`registry not loaded${src.refused.length ? `: ${src.refused.join("; ")}` : ""}`]),
        ...(src.loaded && src.refused.length ? [`${src.name}: last update refused, the last good registry keeps serving: ${src.refused.join("; ")}`] : []),
      ]);
      return { ready: reasons.length === 0, reasons };
    },
    registryStatus: () => store.status(),
    proxies: () => proxies.status(),
    configDump: (id) => proxies.get(id)?.resources,
    decisions: (id) => {
      const r = proxies.get(id);
      return r && pipeline.decisions(r.identity);
    },
    metricsText: () => metrics.registry.render(),
    serviceEntries: () => store.registry.resources.filter((x): x is ServiceEntry => x.kind === "ServiceEntry"),
    write: (w) => store.write(w),
  };

  await store.start();
  let xds: XdsServer | undefined;
  let http: HttpServer | undefined;
  try {
    xds = await startXdsServer({ host: opts.xdsHost ?? "127.0.0.1", port: opts.xdsPort ?? 15010, cache, callbacks, limits });
    if (opts.httpPort !== false) {
      http = await serveHandler(createHandler(view, opts.token !== undefined ? { token: opts.token } : {}), { host: opts.httpHost ?? "127.0.0.1", port: opts.httpPort ?? 15014 });
    }
    const xdsServer = xds;
    log(`xDS on ${xdsServer.host}:${xdsServer.port}${http ? `, HTTP API on ${http.url}` : ""}${genOptions.legacySingleIp ? " (legacy single-IP mode)" : ""}`);
    return {
      xds: { host: xdsServer.host, port: xdsServer.port },
      ...(http ? { httpUrl: http.url } : {}),
      store, cache, view,
      openStreams: () => xdsServer.openStreams(),
      cachedGenerations: () => pipeline.cachedConfigs(),
      async stop() {
        distributor.stop();
        limited.stop();
        store.stop();
        await Promise.all([http?.close(), xdsServer.stop()]);
      },
    };
  } catch (err) {
    limited.stop();
    store.stop();
    await xds?.stop();
    throw err;
  }
}

function serveGenerationOptions(opts: ServeOptions, log: (line: string) => void): GenerationOptions {
  const guard: LoopGuardOptions | undefined = opts.loopGuard === false ? undefined : {
    wasmPath: opts.loopGuard?.wasmPath ?? LOOP_GUARD_WASM, mode: opts.loopGuard?.mode ?? "enforce",
  };
  if (guard && !existsSync(guard.wasmPath)) log(`warning: loop guard ${guard.wasmPath} does not exist; Envoy will reject the listeners until it does (npm run build:wasm)`);
  return generationOptions({
    legacySingleIp: opts.legacySingleIp ?? false,
    virtualListener: { ...DEFAULT_VIRTUAL_LISTENER, ...opts.virtualListener },
    ...(guard ? { loopGuard: guard } : {}),
    ...(opts.connectTimeoutMs ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
  });
}
