// `multiplane serve`: the wiring of registry sources -> store -> config pipeline -> snapshot cache ->
// xDS, plus the HTTP API. The proxy's identity (node.id and INSTANCE_IPS) comes from its first xDS
// request. Every push and every NACK is logged on one line. Signals are the CLI's business; this
// returns stop().
import * as grpc from "@grpc/grpc-js";
import { LOOP_GUARD_WASM } from "../../envoy/paths.ts";
import { DEFAULT_VIRTUAL_LISTENER, generationOptions, type GenerationOptions, type LoopGuardOptions, type VirtualListenerOptions } from "../generation/options.ts";
import { createHandler } from "../http/handler.ts";
import { serveHandler, type HttpServer } from "../http/node-adapter.ts";
import { capList, clip } from "../common/clip.ts";
import type { ControlPlaneView } from "../http/view.ts";
import { checkInstanceIps, DEFAULT_IDENTITY_LIMITS, type IdentityLimits } from "../identity/instance-ips.ts";
import { proxyIdentity } from "../identity/proxy.ts";
import { DEFAULT_LOG_RATE, RateLimitedLog, type LogRate } from "../log/rate-limited-log.ts";
import { controlPlaneMetrics } from "./metrics.ts";
import { ConfigPipeline } from "../pipeline/config-pipeline.ts";
import { ConfigDistributor } from "../pipeline/distributor.ts";
import { Proxies, shortType } from "../pipeline/proxies.ts";
import { admit } from "../authz/admission.ts";
import { peerIdentityOf } from "../authz/peer-identity.ts";
import { ApiSource } from "../registry/sources/api/api-source.ts";
import { isEtcdUrl, parseEtcdUrl } from "../registry/sources/etcd/etcd-layout.ts";
import { EtcdSource } from "../registry/sources/etcd/etcd-source.ts";
import { FileSource } from "../registry/sources/files/file-source.ts";
import { formatError, type MeshNetwork, type ServiceEntry } from "../registry/model.ts";
import type { HeldChange, RegistrySource } from "../registry/source.ts";
import { RegistryStore, type OnInvalid } from "../registry/store.ts";
import { SnapshotCache } from "../xds/cache/cache.ts";
import type { XdsCallbacks } from "../xds/server/callbacks.ts";
import { DEFAULT_XDS_LIMITS, invalid, statusName, type XdsLimits } from "../xds/server/limits.ts";
import type { SendBudgetOptions } from "../xds/server/send-budget.ts";
import { startXdsServer, type XdsServer } from "../xds/server/grpc-server.ts";
import type { TlsFiles } from "../tls/cert-files.ts";
import { xdsSecurity } from "../tls/xds-security.ts";
import { setUpLoopGuard, type GuardSetup } from "../guard-wasm/setup.ts";

export interface ServeOptions {
  /**
   * A registry file or directory, or etcd://HOST:PORT[,HOST:PORT...]/PREFIX (which also stores the HTTP
   * API's writes, shared by every replica); watched for changes. Undefined: start empty (HTTP API only).
   */
  registry?: string;
  /** xDS (gRPC) listen address. Default 127.0.0.1:15010; port 0 picks a free one. */
  xdsHost?: string;
  xdsPort?: number;
  /** HTTP API listen address. Default 127.0.0.1:15014; port 0 picks a free one; false: no HTTP API. */
  httpHost?: string;
  httpPort?: number | false;
  /** Bearer token that PUT/DELETE of ServiceEntries require; undefined disables writes. */
  token?: string;
  /** Where ServiceEntries written over the HTTP API are stored (one file each) and read back at start; undefined refuses writes. Not with etcd, which stores them itself. */
  apiDir?: string;
  /** A registry reload removing more than this share (0..1) of the services is held until stable; removing all always is. Default 1. */
  maxRemovalShare?: number;
  /** How long a held reload must stay unchanged before it applies. Default 10. */
  settleSeconds?: number;
  /** Apply every registry reload at once, even one that empties the registry. */
  acceptRemovals?: boolean;
  /** Istio 1.0 behaviour: only node.id's IP counts (reproduces the seed's loop). */
  legacySingleIp?: boolean;
  /** The loop guard filter, in enforce mode by default; false leaves it out. wasmPath: a file on the Envoy hosts (--guard-wasm-path). */
  loopGuard?: Partial<Pick<LoopGuardOptions, "wasmPath" | "mode">> | false;
  /** Envoy fetches the module from this URL (which must serve dist/loop-guard.wasm's bytes). */
  guardWasmUrl?: string;
  /** Serve the module on the xDS host at this port (0: a free one) for Envoy to fetch. Default: only when xDS is not on loopback, port 15013. */
  guardWasmPort?: number;
  /** The virtual listener: default 0.0.0.0:15001 with the original_dst hand-off. */
  virtualListener?: Partial<VirtualListenerOptions>;
  connectTimeoutMs?: number;
  /** Serve xDS over TLS with these files (mutual TLS when clientCaFile is set); reloaded when they change. */
  tls?: TlsFiles;
  /** Allow plaintext xDS on an address other than loopback (logged as a warning at start). */
  insecureXds?: boolean;
  /** Under mutual TLS, client certificates' SPIFFE ids must be in this trust domain. Default cluster.local. */
  trustDomain?: string;
  /** Istio's meshNetworks (networks, their fromCidr ranges and gateways): split-horizon endpoints. */
  meshNetworks?: MeshNetwork[];
  /** Invalid registry documents: refuse the whole change ("reject", default) or leave them out ("skip"). */
  onInvalid?: OnInvalid;
  /** Overrides of what one xDS client may send (DEFAULT_XDS_LIMITS, DEFAULT_IDENTITY_LIMITS). */
  limits?: Partial<XdsLimits & IdentityLimits>;
  /** Log lines per proxy (stream events) and per peer address (refused streams); default DEFAULT_LOG_RATE. */
  logRate?: Partial<LogRate>;
  /** Bytes of responses on their way over all streams before streams wait to build theirs (DEFAULT_SEND_BUDGET). */
  sendBudget?: Partial<SendBudgetOptions>;
  /** One line per event; default console.log. */
  log?: (line: string) => void;
}

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
  const log = opts.log ?? ((line: string) => console.log(line));
  const etcd = opts.registry !== undefined && isEtcdUrl(opts.registry) ? parseEtcdUrl(opts.registry) : undefined;
  if (etcd && opts.apiDir !== undefined) throw new Error("apiDir: an etcd registry stores the HTTP API's writes itself");
  const xdsHost = opts.xdsHost ?? "127.0.0.1";
  const security = xdsSecurity(xdsHost, opts.xdsPort ?? 15010, opts.tls, opts.insecureXds ?? false, log);
  let guard: GuardSetup | undefined;
  try {
    guard = opts.loopGuard === false ? undefined : await setUpLoopGuard({
      xdsHost, mode: opts.loopGuard?.mode ?? "enforce", defaultPath: LOOP_GUARD_WASM,
      ...(opts.loopGuard?.wasmPath !== undefined ? { path: opts.loopGuard.wasmPath } : {}),
      ...(opts.guardWasmUrl !== undefined ? { url: opts.guardWasmUrl } : {}),
      ...(opts.guardWasmPort !== undefined ? { port: opts.guardWasmPort } : {}),
      ...(security.certs ? { certs: security.certs } : {}),
    }, log);
  } catch (err) {
    security.stop();
    throw err;
  }
  const loopGuard = guard;
  if (etcd && guard?.server) log(`warning: loop guard module: each replica serves it at its own address, so Envoys that fail over between replicas are sent a new module URL; give every replica the same --guard-wasm-url or --guard-wasm-path`);
  const genOptions = serveGenerationOptions(opts, loopGuard?.options);
  const limits = { ...DEFAULT_XDS_LIMITS, ...DEFAULT_IDENTITY_LIMITS, ...opts.limits };
  // Stream events are counted per proxy, refusals per peer address; values a client chose are clipped.
  const limited = new RateLimitedLog(log, { ...DEFAULT_LOG_RATE, ...opts.logRate });
  const proxyLog = (id: string, line: string) => limited.line(`proxy=${clip(id, 200)}`, line);
  const cache = new SnapshotCache();
  const proxies = new Proxies();
  const pipeline = new ConfigPipeline(genOptions);
  const loggedProblems = new Set<string>();
  const trustDomain = opts.trustDomain ?? "cluster.local";

  const fileOptions = {
    ...(opts.maxRemovalShare !== undefined ? { maxRemovalShare: opts.maxRemovalShare } : {}),
    ...(opts.settleSeconds !== undefined ? { settleMs: opts.settleSeconds * 1000 } : {}),
    ...(opts.acceptRemovals !== undefined ? { acceptRemovals: opts.acceptRemovals } : {}),
  };
  // etcd holds files' part and the API's part at once, shared by every replica.
  const sources: RegistrySource[] = etcd
    ? [new EtcdSource(etcd)]
    : [...(opts.registry !== undefined ? [new FileSource(opts.registry, fileOptions)] : []), new ApiSource(opts.apiDir)];
  const store: RegistryStore = new RegistryStore(sources, {
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
  }, opts.onInvalid ?? "reject");

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
    readiness() {
      const s = store.status();
      const reasons = s.sources.flatMap((src) => [
        ...(src.loaded ? [] : [`registry not loaded${src.refused.length ? `: ${src.refused.join("; ")}` : ""}`]),
        ...(src.loaded && src.refused.length ? [`${src.name}: last update refused, the last good registry keeps serving: ${src.refused.join("; ")}`] : []),
        ...(src.held ? [`${src.name}: a change is held back, the last good registry keeps serving: ${src.held.reasons.join("; ")}; ${heldUntil(src.held)}`] : []),
        ...(src.unavailable ? [`${src.name}: ${src.unavailable}`] : []),
      ]);
      // Skip mode serves without the invalid documents: ready, and says how many were left out.
      const notes = s.leftOut.documents > 0 ? [`${s.leftOut.documents} invalid document${s.leftOut.documents === 1 ? "" : "s"} left out (--on-invalid skip): ${s.leftOut.errors.join("; ")}`] : [];
      return reasons.length === 0 ? { ready: true, reasons: notes } : { ready: false, reasons };
    },
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
    xds = await startXdsServer({ host: xdsHost, port: opts.xdsPort ?? 15010, cache, callbacks, limits, ...(opts.sendBudget ? { sendBudget: opts.sendBudget } : {}), ...(security.credentials ? { credentials: security.credentials } : {}) });
    if (opts.httpPort !== false) {
      http = await serveHandler(createHandler(view, opts.token !== undefined ? { token: opts.token } : {}), { host: opts.httpHost ?? "127.0.0.1", port: opts.httpPort ?? 15014 });
    }
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

/** How a held reload ends, for logs and /readyz. */
function heldUntil(held: HeldChange): string {
  return `it applies if the files stay unchanged until ${held.appliesAt} (--settle-seconds), or at once with --accept-removals`;
}

function serveGenerationOptions(opts: ServeOptions, guard: LoopGuardOptions | undefined): GenerationOptions {
  return generationOptions({
    legacySingleIp: opts.legacySingleIp ?? false,
    virtualListener: { ...DEFAULT_VIRTUAL_LISTENER, ...opts.virtualListener },
    ...(guard ? { loopGuard: guard } : {}),
    ...(opts.connectTimeoutMs ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
    ...(opts.meshNetworks ? { meshNetworks: opts.meshNetworks } : {}),
  });
}
