// What the running parts report, turned into log lines and metrics: the registry store's events, the
// distributor's, and the xDS server's callbacks, which also admit each stream and keep the proxy
// records. Every line serve() logs is worded here.
import * as grpc from "@grpc/grpc-js";
import { admit } from "../authz/admission.ts";
import type { AgentPeer } from "../authz/agent-claims.ts";
import { peerIdentityOf } from "../authz/peer-identity.ts";
import { capList, clip } from "../common/clip.ts";
import { checkInstanceIps, type IdentityLimits } from "../identity/instance-ips.ts";
import { proxyIdentity } from "../identity/proxy.ts";
import { RateLimitedLog, type LogRate } from "../log/rate-limited-log.ts";
import type { ConfigPipeline } from "../pipeline/config-pipeline.ts";
import type { ConfigDistributor, DistributorEvents } from "../pipeline/distributor.ts";
import type { AgentEvents, AgentIpLearning } from "../pipeline/agent-ips.ts";
import type { LearnedIps } from "../pipeline/learned-ips.ts";
import type { PodIpEvents, PodIpLearning } from "../pipeline/pod-ips.ts";
import { shortType, type Proxies } from "../pipeline/proxies.ts";
import { formatError } from "../registry/model.ts";
import type { StoreEvents } from "../registry/store.ts";
import type { AgentCallbacks, AgentSession } from "../xds/server/agent-stream.ts";
import type { XdsCallbacks } from "../xds/server/callbacks.ts";
import { invalid, statusName, type XdsLimits } from "../xds/server/limits.ts";
import type { ControlPlaneCounters } from "./metrics.ts";
import { heldUntil } from "./readiness.ts";

/** Logged once per distinct problem; the set is bounded so hostile node ids cannot grow it. */
const MAX_REMEMBERED_PROBLEMS = 10_000;

/** Lines a client can provoke: stream events counted per proxy, refusals per peer address; values a client chose are clipped. */
export class StreamLog {
  private readonly limited: RateLimitedLog;
  constructor(log: (line: string) => void, rate: LogRate) {
    this.limited = new RateLimitedLog(log, rate);
  }
  proxy(id: string, line: string): void {
    this.limited.line(`proxy=${clip(id, 200)}`, line);
  }
  peer(peer: string, line: string): void {
    this.limited.line(`peer=${peer}`, line);
  }
  /** Reports what is still suppressed. */
  stop(): void {
    this.limited.stop();
  }
}

export function storeEvents(log: (line: string) => void, counters: ControlPlaneCounters, distributor: ConfigDistributor): StoreEvents {
  // Before the first version there is no last good registry to keep serving: proxies get nothing yet.
  let serving = false;
  const fallback = () => (serving ? "last good registry keeps serving" : "no registry yet: no proxy gets a configuration until it loads");
  return {
    changed(next, version) {
      serving = true;
      log(`registry v${version}: ${next.services.length} services from ${next.resources.length} resources`);
      for (const w of capList(next.warnings.map(formatError))) log(`registry warning: ${w}`);
      distributor.registryChanged(next, performance.now());
    },
    rejected(source, errors) {
      counters.rejections.inc({ source });
      // Capped like API answers: a 1 MB body or file of errors must not become megabytes of log.
      log(`registry ${source === "files" ? "reload" : `${source} update`} rejected, ${fallback()}:\n  ${capList(errors).join("\n  ")}`);
    },
    warned(_source, warnings) {
      for (const w of capList(warnings)) log(`registry warning: ${w}`);
    },
    held(_source, held) {
      log(`registry reload held back, ${fallback()}: ${capList(held.reasons).join("; ")}; ${heldUntil(held)}`);
    },
    skipped(_source, errors) {
      for (const e of errors) log(`registry: left out (--on-invalid skip): ${e}`);
    },
  };
}

export function distributorEvents(counters: ControlPlaneCounters, streamLog: StreamLog): DistributorEvents {
  return {
    generated: (seconds) => counters.generation.observe(seconds),
    failed: (id, streamId, err) => streamLog.proxy(id, `error: generation for proxy ${clip(id, 200)} stream=${streamId} failed, keeping its last config: ${clip(err.message)}`),
  };
}

export function podIpEvents(counters: ControlPlaneCounters, streamLog: StreamLog): PodIpEvents {
  return {
    refused(id, streamId, reason) {
      counters.podIpRefusals.inc();
      streamLog.proxy(id, `warning: proxy=${clip(id, 200)} stream=${streamId}: ${clip(reason)}`);
    },
  };
}

export function agentEvents(log: (line: string) => void, counters: ControlPlaneCounters, streamLog: StreamLog): AgentEvents {
  return {
    refused(agent, reason, kind) {
      counters.agentRefusals.inc({ kind });
      streamLog.peer(agent, `warning: ${agent}: refused: ${clip(reason)}`);
    },
    reported(agent, report, accepted) {
      counters.agentReports.inc();
      streamLog.peer(agent, `${agent} reports node_ips=${clip(accepted.join(",")) || "none"} for ${clip(report.nodeIds.join(","), 400)}`);
    },
    expired(agent, nodeIds) {
      log(`${agent} went away and its report expired: ${clip(nodeIds.join(","), 400)} back to the node IPs their proxies reported`);
    },
  };
}

/** The agent as its connection identifies it (its certificate under mutual TLS), and how logs and /debug name it. */
function agentOf(s: AgentSession): { peer: AgentPeer; name: string } {
  const certificate = s.peer.certificate && peerIdentityOf(s.peer.certificate);
  return {
    peer: certificate ? { mutualTls: true, certificate } : { mutualTls: false },
    name: `node agent ${s.peer.remoteAddress ?? "unknown"}${certificate ? ` (${certificate.display})` : ""}`,
  };
}

export function agentCallbacks(agentIps: AgentIpLearning, counters: ControlPlaneCounters, streamLog: StreamLog): AgentCallbacks {
  return {
    onAgentReport(session, report) {
      const { peer, name } = agentOf(session);
      return agentIps.report({ agentId: session.agentId, name }, peer, report);
    },
    onAgentRefused(session, reason) {
      counters.agentRefusals.inc({ kind: "report" });
      const { name } = agentOf(session);
      streamLog.peer(name, `warning: ${name}: report refused: ${clip(reason)}`);
    },
    onAgentClosed(session) {
      agentIps.gone(session.agentId);
    },
  };
}

export interface StreamParts {
  limits: XdsLimits & IdentityLimits;
  trustDomain: string;
  pipeline: ConfigPipeline;
  proxies: Proxies;
  distributor: ConfigDistributor;
  podIps: PodIpLearning;
  learnedIps: LearnedIps;
  counters: ControlPlaneCounters;
  streamLog: StreamLog;
}

export function xdsCallbacks({ limits, trustDomain, pipeline, proxies, distributor, podIps, learnedIps, counters, streamLog }: StreamParts): XdsCallbacks {
  const loggedProblems = new Set<string>();
  return {
    // Admission: INSTANCE_IPS within limits, then what a client certificate proves and the streams
    // already open for the node id (authz/admission.ts) decide; identity problems are logged either way.
    onStreamOpen(info) {
      const tooMany = checkInstanceIps(info.node.metadata.INSTANCE_IPS, limits);
      if (tooMany) return invalid(tooMany);
      const reported = proxyIdentity(info.node);
      for (const p of reported.problems) {
        if (loggedProblems.size > MAX_REMEMBERED_PROBLEMS) loggedProblems.clear();
        if (!loggedProblems.has(p)) { loggedProblems.add(p); streamLog.proxy(reported.id, `warning: ${clip(p)}`); }
      }
      const peer = info.peer.certificate ? peerIdentityOf(info.peer.certificate) : undefined;
      // Its pod's IPs (Kubernetes), when its certificate may claim them, and its node agent's report:
      // judged with them, like another stream of its node id.
      podIps.connected(info.streamId, peer?.spiffe, peer !== undefined);
      const identity = learnedIps.learn(reported, info.streamId);
      const admission = admit({ proxy: identity, streamId: info.streamId, nodeIps: pipeline.nodeIps(identity), ...(peer ? { peer } : {}), open: proxies.forNode(identity.id), policy: { trustDomain } });
      if (!admission.ok) {
        podIps.forget(info.streamId);
        // Logged (per peer, rate-limited) by onRefused, as every refused stream is.
        counters.refusals.inc({ reason: admission.kind });
        return { code: grpc.status.PERMISSION_DENIED, details: admission.reason };
      }
      const { peerIdentity, warning } = admission;
      const r = distributor.open(identity, info.streamId, info.protocol, { connection: info.peer.connection, peerIdentity, via: info.peer.localAddress, remoteAddress: info.peer.remoteAddress, warning });
      streamLog.proxy(identity.id, `connect proxy=${clip(identity.id, 200)} stream=${info.streamId} protocol=${info.protocol} node_ips=${clip(r.nodeIps.join(",")) || "none"}${peerIdentity ? ` peer=${clip(peerIdentity, 200)}` : ""}`);
      if (warning) streamLog.proxy(identity.id, `warning: stream=${info.streamId}: ${clip(warning)}`);
    },
    onRefused(info) {
      streamLog.peer(info.peer, `refused peer=${info.peer} stream=${info.streamId} protocol=${info.protocol}${info.nodeId !== undefined ? ` proxy=${clip(info.nodeId, 200)}` : ""} status=${statusName(info.refusal.code)} reason=${JSON.stringify(clip(info.refusal.details))}`);
    },
    onStreamClosed(info) {
      distributor.close(info.streamId);
      podIps.forget(info.streamId);
      streamLog.proxy(info.node.id, `disconnect proxy=${clip(info.node.id, 200)} stream=${info.streamId}`);
    },
    onPush(info) {
      proxies.pushed(info.streamId, info.typeUrl, info.version, info.nonce, info.resourceCount);
      const type = shortType(info.typeUrl);
      counters.pushes.inc({ type });
      const r = proxies.get(info.streamId);
      if (r?.triggeredAt !== undefined) counters.pushLatency.observe((performance.now() - r.triggeredAt) / 1000, { type });
      streamLog.proxy(info.node.id, `push proxy=${clip(info.node.id, 200)} stream=${info.streamId} type=${type} version=${info.version} nonce=${info.nonce} resources=${info.resourceCount}`);
    },
    onCurrent(info) {
      proxies.current(info.streamId, info.typeUrl, info.version, info.resourceCount);
      streamLog.proxy(info.node.id, `held proxy=${clip(info.node.id, 200)} stream=${info.streamId} type=${shortType(info.typeUrl)} version=${info.version} resources=${info.resourceCount} (current already: nothing sent)`);
    },
    onAck(info) {
      proxies.answered(info.streamId, info.typeUrl, info.nonce, info.version);
      counters.acks.inc({ type: shortType(info.typeUrl) });
    },
    onNack(info) {
      proxies.answered(info.streamId, info.typeUrl, info.nonce, info.version, info.errorDetail);
      counters.nacks.inc({ type: shortType(info.typeUrl) });
      streamLog.proxy(info.node.id, `NACK proxy=${clip(info.node.id, 200)} stream=${info.streamId} type=${shortType(info.typeUrl)} version=${info.version} nonce=${info.nonce} error=${JSON.stringify(clip(info.errorDetail))}`);
    },
  };
}

/** With etcd, Envoys fail over between replicas; a module URL that differs per replica makes them fetch it again. */
export const GUARD_PER_REPLICA_WARNING = "warning: loop guard module: each replica serves it at its own address, so Envoys that fail over between replicas are sent a new module URL; give every replica the same --guard-wasm-url or --guard-wasm-path";

export function startedLine(xds: { host: string; port: number }, security: string, httpUrl: string | undefined, legacySingleIp: boolean): string {
  return `xDS on ${xds.host}:${xds.port} (${security})${httpUrl ? `, HTTP API on ${httpUrl}` : ""}${legacySingleIp ? " (legacy single-IP mode)" : ""}`;
}
