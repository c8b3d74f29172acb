// `multiplane serve`: the wiring of registry sources -> store -> config pipeline -> snapshot cache ->
// xDS, plus the HTTP API. The proxy's identity (node.id and INSTANCE_IPS) comes from its first xDS
// request. Every push and every NACK is logged on one line. Signals are the CLI's business; this
// returns stop().
import * as grpc from "@grpc/grpc-js";
import { createHandler } from "../http/handler.ts";
import { serveHandler, type HttpServer } from "../http/node-adapter.ts";
import { capList, clip } from "../common/clip.ts";
import type { ControlPlaneView } from "../http/view.ts";
import { checkInstanceIps } from "../identity/instance-ips.ts";
import { proxyIdentity } from "../identity/proxy.ts";
import { RateLimitedLog } from "../log/rate-limited-log.ts";
import { controlPlaneMetrics } from "./metrics.ts";
import { loopGuardFlags, serveGenerationOptions, serveSettings, type ServeOptions } from "./options.ts";
import { heldUntil, readiness } from "./readiness.ts";
import { chooseRegistry } from "./sources.ts";
import { ConfigPipeline } from "../pipeline/config-pipeline.ts";
import { ConfigDistributor } from "../pipeline/distributor.ts";
import { Proxies, shortType } from "../pipeline/proxies.ts";
import { admit } from "../authz/admission.ts";
import { peerIdentityOf } from "../authz/peer-identity.ts";
import { formatError, type ServiceEntry } from "../registry/model.ts";
import { RegistryStore } from "../registry/store.ts";
import { SnapshotCache } from "../xds/cache/cache.ts";
import type { XdsCallbacks } from "../xds/server/callbacks.ts";
import { invalid, statusName } from "../xds/server/limits.ts";
import { startXdsServer, type XdsServer } from "../xds/server/grpc-server.ts";
import { xdsSecurity } from "../tls/xds-security.ts";
import { setUpLoopGuard, type GuardSetup } from "../guard-wasm/setup.ts";

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

/** Logged once per distinct problem; the set is bounded so hostile node ids cannot grow it. */
const MAX_REMEMBERED_PROBLEMS = 10_000;

export async function serve(opts: ServeOptions = {}): Promise<ControlPlane> {
  const settings = serveSettings(opts);
  const { log, limits } = settings;
  const registry = chooseRegistry(opts);
  const xdsHost = settings.xdsHost;
  const security = xdsSecurity(xdsHost, settings.xdsPort, opts.tls, opts.insecureXds ?? false, log);
  let guard: GuardSetup | undefined;
  try {
    const guardFlags = loopGuardFlags(opts, xdsHost, security.certs);
    guard = guardFlags && await setUpLoopGuard(guardFlags, log);
  } catch (err) {
    security.stop();
    throw err;
  }
  const loopGuard = guard;
  if (registry.etcd && guard?.server) log(`warning: loop guard module: each replica serves it at its own address, so Envoys that fail over between replicas are sent a new module URL; give every replica the same --guard-wasm-url or --guard-wasm-path`);
  const genOptions = serveGenerationOptions(opts, loopGuard?.options);
  // Stream events are counted per proxy, refusals per peer address; values a client chose are clipped.
  const limited = new RateLimitedLog(log, settings.logRate);
  const proxyLog = (id: string, line: string) => limited.line(`proxy=${clip(id, 200)}`, line);
  const cache = new SnapshotCache();
  const proxies = new Proxies();
  const pipeline = new ConfigPipeline(genOptions);
  const loggedProblems = new Set<string>();
  const trustDomain = settings.trustDomain;

  const store: RegistryStore = new RegistryStore(registry.sources(), {
    changed(next, version) {
      log(`registry v${version}: ${next.services.length} services from ${next.resources.length} resources`);
      for (const w of capList(next.warnings.map(formatError))) log(`registry warning: ${w}`);
      distributor.registryChanged(next, performance.now());
    },
    rejected(source, errors) {
      metrics.rejections.inc({ source });
      // Capped like API answers: a 1 MB body or file of errors must not become megabytes of log.
      log(`registry ${source === "files" ? "reload" : `${source} update`} rejected, last good registry keeps serving:\n  ${capList(errors).join("\n  ")}`);
    },
    warned(_source, warnings) {
      for (const w of capList(warnings)) log(`registry warning: ${w}`);
    },
    held(_source, held) {
      log(`registry reload held back, last good registry keeps serving: ${capList(held.reasons).join("; ")}; ${heldUntil(held)}`);
    },
    skipped(_source, errors) {
      for (const e of errors) log(`registry: left out (--on-invalid skip): ${e}`);
    },
  }, settings.onInvalid);

  const metrics = controlPlaneMetrics({
    connectedProxies: () => proxies.size,
    streams: () => Object.entries(proxies.streamCounts()).map(([protocol, n]) => [{ protocol }, n]),
    services: () => store.registry.services.length,
    reloads: () => store.status().reloads,
    heldChanges: () => store.status().sources.map((s) => [{ source: s.name }, s.held ? 1 : 0]),
    sendBytes: () => xds?.sending().bytes ?? 0,
    sendWaiting: () => xds?.sending().waiting ?? 0,
  });

  const distributor = new ConfigDistributor(pipeline, cache, proxies, {
    generated: (seconds) => metrics.generation.observe(seconds),
    failed: (id, streamId, err) => proxyLog(id, `error: generation for proxy ${clip(id, 200)} stream=${streamId} failed, keeping its last config: ${clip(err.message)}`),
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
      const peer = info.peer.certificate ? peerIdentityOf(info.peer.certificate) : undefined;
      const admission = admit({ proxy: identity, streamId: info.streamId, nodeIps: pipeline.nodeIps(identity), ...(peer ? { peer } : {}), open: proxies.forNode(identity.id), policy: { trustDomain } });
      if (!admission.ok) {
        // Logged (per peer, rate-limited) by onRefused, as every refused stream is.
        metrics.refusals.inc({ reason: admission.kind });
        return { code: grpc.status.PERMISSION_DENIED, details: admission.reason };
      }
      const { peerIdentity, warning } = admission;
      const r = distributor.open(identity, info.streamId, info.protocol, { peerIdentity, via: info.peer.localAddress, remoteAddress: info.peer.remoteAddress, warning });
      proxyLog(identity.id, `connect proxy=${clip(identity.id, 200)} stream=${info.streamId} protocol=${info.protocol} node_ips=${clip(r.nodeIps.join(",")) || "none"}${peerIdentity ? ` peer=${clip(peerIdentity, 200)}` : ""}`);
      if (warning) proxyLog(identity.id, `warning: stream=${info.streamId}: ${clip(warning)}`);
    },
    onRefused(info) {
      limited.line(`peer=${info.peer}`, `refused peer=${info.peer} stream=${info.streamId} protocol=${info.protocol}${info.nodeId !== undefined ? ` proxy=${clip(info.nodeId, 200)}` : ""} status=${statusName(info.refusal.code)} reason=${JSON.stringify(clip(info.refusal.details))}`);
    },
    onStreamClosed(info) {
      distributor.close(info.streamId);
      proxyLog(info.node.id, `disconnect proxy=${clip(info.node.id, 200)} stream=${info.streamId}`);
    },
    onPush(info) {
      proxies.pushed(info.streamId, info.typeUrl, info.version, info.nonce, info.resourceCount);
      const type = shortType(info.typeUrl);
      metrics.pushes.inc({ type });
      const r = proxies.get(info.streamId);
      if (r?.triggeredAt !== undefined) metrics.pushLatency.observe((performance.now() - r.triggeredAt) / 1000, { type });
      proxyLog(info.node.id, `push proxy=${clip(info.node.id, 200)} stream=${info.streamId} type=${type} version=${info.version} nonce=${info.nonce} resources=${info.resourceCount}`);
    },
    onCurrent(info) {
      proxies.current(info.streamId, info.typeUrl, info.version, info.resourceCount);
      proxyLog(info.node.id, `held proxy=${clip(info.node.id, 200)} stream=${info.streamId} type=${shortType(info.typeUrl)} version=${info.version} resources=${info.resourceCount} (current already: nothing sent)`);
    },
    onAck(info) {
      proxies.answered(info.streamId, info.typeUrl, info.nonce, info.version);
      metrics.acks.inc({ type: shortType(info.typeUrl) });
    },
    onNack(info) {
      proxies.answered(info.streamId, info.typeUrl, info.nonce, info.version, info.errorDetail);
      metrics.nacks.inc({ type: shortType(info.typeUrl) });
      proxyLog(info.node.id, `NACK proxy=${clip(info.node.id, 200)} stream=${info.streamId} type=${shortType(info.typeUrl)} version=${info.version} nonce=${info.nonce} error=${JSON.stringify(clip(info.errorDetail))}`);
    },
  };

  const view: ControlPlaneView = {
    readiness: () => readiness(store.status()),
    registryStatus: () => store.status(),
    proxies: () => proxies.status().map((p) => ({
      ...p,
      ...(loopGuard ? { connections: p.connections?.map((c) => ({ ...c, guardModule: loopGuard.status(c.remoteAddress, c.via) })) } : {}),
    })),
    // By node id: its oldest stream (/debug/proxies lists every stream of an id).
    configDump: (id) => proxies.forNode(id)[0]?.config?.resources(),
    decisions: (id) => {
      const r = proxies.forNode(id)[0];
      return r && pipeline.decisions(r.identity);
    },
    metricsText: () => metrics.registry.render(),
    serviceEntries: () => store.registry.resources.filter((x): x is ServiceEntry => x.kind === "ServiceEntry"),
    serviceEntry(namespace, name) {
      const entry = store.registry.resources.find((x): x is ServiceEntry => x.kind === "ServiceEntry" && x.namespace === namespace && x.name === name);
      const etag = entry && store.etag(entry);
      return entry && etag ? { entry, etag } : undefined;
    },
    write: (w) => store.write(w),
  };

  // Sources that started before one failed are stopped too: their watches would feed a plane that never ran.
  await store.start().catch(async (err) => { store.stop(); security.stop(); await guard?.close(); throw err; });
  let xds: XdsServer | undefined;
  let http: HttpServer | undefined;
  try {
    xds = await startXdsServer({ host: xdsHost, port: settings.xdsPort, cache, callbacks, limits, ...(opts.sendBudget ? { sendBudget: opts.sendBudget } : {}), ...(security.credentials ? { credentials: security.credentials } : {}) });
    if (settings.http) http = await serveHandler(createHandler(view, opts.token !== undefined ? { token: opts.token } : {}), settings.http);
    const xdsServer = xds;
    log(`xDS on ${xdsServer.host}:${xdsServer.port} (${security.mode})${http ? `, HTTP API on ${http.url}` : ""}${genOptions.legacySingleIp ? " (legacy single-IP mode)" : ""}`);
    return {
      xds: { host: xdsServer.host, port: xdsServer.port },
      ...(guard?.server ? { guardModule: { host: guard.server.host, port: guard.server.port, scheme: guard.server.scheme } } : {}),
      ...(http ? { httpUrl: http.url } : {}),
      store, cache, view,
      openStreams: () => xdsServer.openStreams(),
      cachedGenerations: () => pipeline.cachedConfigs(),
      async stop() {
        distributor.stop();
        limited.stop();
        store.stop();
        security.stop();
        await Promise.all([http?.close(), xdsServer.stop(), guard?.close()]);
      },
    };
  } catch (err) {
    limited.stop();
    store.stop();
    security.stop();
    await Promise.all([xds?.stop(), guard?.close()]);
    throw err;
  }
}
