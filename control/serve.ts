// `multiplane serve`: registry -> per-proxy generation -> snapshot cache -> xDS, plus the HTTP API.
// The proxy's identity (node.id and INSTANCE_IPS) comes from its first xDS request. Every push and
// every NACK is logged on one line. Signals are the CLI's business; this returns stop().
import { existsSync } from "node:fs";
import { LOOP_GUARD_WASM } from "../envoy/paths.ts";
import { decide } from "./generation/decisions.ts";
import { generate, type GeneratedResources } from "./generation/generate.ts";
import { nodeIpsOf } from "./generation/node-ips.ts";
import { DEFAULT_VIRTUAL_LISTENER, generationOptions, type GenerationOptions, type LoopGuardOptions, type VirtualListenerOptions } from "./generation/options.ts";
import { createHandler } from "./http/handler.ts";
import { serveHandler, type HttpServer } from "./http/node-adapter.ts";
import type { ControlPlaneView } from "./http/view.ts";
import { proxyIdentity } from "./identity/proxy.ts";
import { controlPlaneMetrics } from "./metrics.ts";
import { Proxies, shortType, type ProxyRecord } from "./proxies.ts";
import type { Registry, ServiceEntry } from "./registry/model.ts";
import { RegistryStore } from "./registry/store.ts";
import { SnapshotCache } from "./xds/cache.ts";
import type { XdsCallbacks } from "./xds/callbacks.ts";
import { startXdsServer, type XdsServer } from "./xds/server.ts";
import { Snapshot } from "./xds/snapshot.ts";

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

export async function serve(opts: ServeOptions = {}): Promise<ControlPlane> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const guard: LoopGuardOptions | undefined = opts.loopGuard === false ? undefined : {
    wasmPath: opts.loopGuard?.wasmPath ?? LOOP_GUARD_WASM, mode: opts.loopGuard?.mode ?? "enforce",
  };
  if (guard && !existsSync(guard.wasmPath)) log(`warning: loop guard ${guard.wasmPath} does not exist; Envoy will reject the listeners until it does (npm run build:wasm)`);
  const genOptions: GenerationOptions = generationOptions({
    legacySingleIp: opts.legacySingleIp ?? false,
    virtualListener: { ...DEFAULT_VIRTUAL_LISTENER, ...opts.virtualListener },
    ...(guard ? { loopGuard: guard } : {}),
    ...(opts.connectTimeoutMs ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
  });

  const cache = new SnapshotCache();
  const proxies = new Proxies();
  const loggedProblems = new Set<string>();
  let registry: Registry = { services: [], resources: [] };
  // Proxies with the same effective node IPs get the same resources: generate once per registry version.
  let generated = new Map<string, { resources: GeneratedResources; snapshot: Snapshot }>();
  // How many connected proxies share each node-IP set: a set nobody uses any more is forgotten.
  const keyOf = (r: ProxyRecord) => r.nodeIps.join(",");
  const users = new Map<string, number>();
  const retain = (key: string) => users.set(key, (users.get(key) ?? 0) + 1);
  const release = (key: string) => {
    const n = (users.get(key) ?? 1) - 1;
    if (n > 0) return void users.set(key, n);
    users.delete(key);
    generated.delete(key);
  };

  const metrics = controlPlaneMetrics({
    connectedProxies: () => proxies.size,
    streams: () => Object.entries(proxies.streamCounts()).map(([protocol, n]) => [{ protocol }, n]),
    services: () => registry.services.length,
    reloads: () => store.snapshotStatus().reloads,
  });

  /** Generates the proxy's resources and hands them to the cache, which pushes what changed. */
  const update = (r: ProxyRecord, triggeredAt: number) => {
    if (proxies.get(r.identity.id) !== r) return; // disconnected meanwhile: store nothing for it
    const key = keyOf(r);
    let entry = generated.get(key);
    if (!entry) {
      const t0 = performance.now();
      try {
        const resources = generate(r.identity, registry, genOptions);
        entry = { resources, snapshot: Snapshot.fromResources(resources) };
      } catch (err) {
        // A generation bug must not take the control plane down: the proxy keeps its last snapshot.
        log(`error: generation for proxy ${r.identity.id} failed, keeping its last config: ${(err as Error).message}`);
        return;
      }
      metrics.generation.observe((performance.now() - t0) / 1000);
      generated.set(key, entry);
    }
    r.resources = entry.resources;
    r.triggeredAt = triggeredAt;
    if (cache.get(r.identity.id) !== entry.snapshot) cache.set(r.identity.id, entry.snapshot);
  };

  // A registry change reaches every proxy; the loop yields now and then so the pushes already made
  // are written, and new streams and HTTP requests are served, while the rest are generated.
  // A newer change abandons an older round: its proxies get the newer registry anyway.
  let round = 0;
  const updateAll = async (triggeredAt: number) => {
    const mine = ++round;
    let n = 0;
    for (const r of proxies.all()) {
      if (mine !== round) return;
      update(r, triggeredAt);
      if (++n % 25 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  };

  const store = new RegistryStore(opts.registry, {
    changed(next, version) {
      const t0 = performance.now();
      registry = next;
      generated = new Map();
      log(`registry v${version}: ${next.services.length} services from ${next.resources.length} resources`);
      void updateAll(t0);
    },
    rejected(source, errors) {
      metrics.rejections.inc({ source });
      log(`registry ${source === "files" ? "reload" : "request"} rejected, last good registry keeps serving:\n  ${errors.join("\n  ")}`);
    },
    warned(warnings) {
      for (const w of warnings) log(`registry warning: ${w}`);
    },
  });

  const callbacks: XdsCallbacks = {
    onStreamOpen(info) {
      const identity = proxyIdentity(info.node);
      for (const p of identity.problems) {
        if (loggedProblems.size > 10_000) loggedProblems.clear();
        if (!loggedProblems.has(p)) { loggedProblems.add(p); log(`warning: ${p}`); }
      }
      const known = proxies.get(identity.id);
      const previousKey = known && keyOf(known);
      const r = proxies.open(identity, nodeIpsOf(identity, genOptions.legacySingleIp).ips, info.streamId, info.protocol);
      if (previousKey !== keyOf(r)) {
        if (previousKey !== undefined) release(previousKey);
        retain(keyOf(r));
      }
      log(`connect proxy=${identity.id} stream=${info.streamId} protocol=${info.protocol} node_ips=${r.nodeIps.join(",") || "none"}`);
      update(r, performance.now());
    },
    onStreamClosed(info) {
      const r = proxies.get(info.node.id);
      if (r && proxies.close(info.node.id, info.streamId)) {
        cache.delete(info.node.id);
        release(keyOf(r));
      }
      log(`disconnect proxy=${info.node.id} stream=${info.streamId}`);
    },
    onPush(info) {
      proxies.pushed(info.node.id, info.typeUrl, info.version, info.nonce, info.resourceCount);
      const type = shortType(info.typeUrl);
      metrics.pushes.inc({ type });
      const r = proxies.get(info.node.id);
      if (r?.triggeredAt !== undefined) metrics.pushLatency.observe((performance.now() - r.triggeredAt) / 1000, { type });
      log(`push proxy=${info.node.id} stream=${info.streamId} type=${type} version=${info.version} nonce=${info.nonce} resources=${info.resourceCount}`);
    },
    onAck(info) {
      proxies.answered(info.node.id, info.typeUrl, info.nonce, info.version);
      metrics.acks.inc({ type: shortType(info.typeUrl) });
    },
    onNack(info) {
      proxies.answered(info.node.id, info.typeUrl, info.nonce, info.version, info.errorDetail);
      metrics.nacks.inc({ type: shortType(info.typeUrl) });
      log(`NACK proxy=${info.node.id} stream=${info.streamId} type=${shortType(info.typeUrl)} version=${info.version} nonce=${info.nonce} error=${JSON.stringify(info.errorDetail)}`);
    },
  };

  await store.start();
  let xds: XdsServer | undefined;
  let http: HttpServer | undefined;
  try {
    xds = await startXdsServer({ host: opts.xdsHost ?? "127.0.0.1", port: opts.xdsPort ?? 15010, cache, callbacks });
    const view: ControlPlaneView = {
      readiness() {
        const reasons: string[] = [];
        const s = store.snapshotStatus();
        if (!s.loaded) reasons.push(`registry not loaded${s.lastErrors.length ? `: ${s.lastErrors.join("; ")}` : ""}`);
        return { ready: reasons.length === 0, reasons };
      },
      registryStatus: () => store.snapshotStatus(),
      proxies: () => proxies.status(),
      configDump: (id) => proxies.get(id)?.resources,
      decisions: (id) => {
        const r = proxies.get(id);
        return r && decide(r.identity, registry, genOptions);
      },
      metricsText: () => metrics.registry.render(),
      serviceEntries: () => registry.resources.filter((x): x is ServiceEntry => x.kind === "ServiceEntry"),
      putServiceEntry: (ns, name, body) => store.putServiceEntry(ns, name, body),
      deleteServiceEntry: (ns, name) => store.deleteServiceEntry(ns, name),
    };
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
      cachedGenerations: () => generated.size,
      async stop() {
        round++;
        store.stop();
        await Promise.all([http?.close(), xdsServer.stop()]);
      },
    };
  } catch (err) {
    store.stop();
    await xds?.stop();
    throw err;
  }
}
