// The gRPC server: envoy.service.discovery.v3.AggregatedDiscoveryService, both flavours, and the node
// agents' reports (agent-stream.ts) on the same port, under the same TLS.
// It only routes streams; the protocols live in sotw.ts and delta.ts (on stream.ts's skeleton), the data in the cache.
import * as grpc from "@grpc/grpc-js";
import type { SnapshotCache } from "../cache/cache.ts";
import { agentService } from "./agent-protocol.ts";
import { handleAgentStream, type AgentCall, type AgentCallbacks } from "./agent-stream.ts";
import type { XdsCallbacks } from "./callbacks.ts";
import { DEFAULT_XDS_LIMITS, type XdsLimits } from "./limits.ts";
import { DEFAULT_SEND_BUDGET, SendBudget, type SendBudgetOptions } from "./send-budget.ts";
import { adsServiceDefinition } from "../cache/protos.ts";
import { handleDeltaStream } from "./delta.ts";
import { connectionInterceptor } from "./peer.ts";
import { handleSotwStream } from "./sotw.ts";
import type { DeltaDiscoveryRequest, DiscoveryRequest } from "./requests.ts";
import type { AdsCall, StreamEnv } from "./stream.ts";
import { hostPort } from "../../common/host-port.ts";

export interface XdsServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  cache: SnapshotCache;
  callbacks?: XdsCallbacks;
  /** Node agents' reports (agent-protocol.ts) are taken on the same port when given. */
  agents?: AgentCallbacks;
  /** TLS (control/tls/); default plaintext. */
  credentials?: grpc.ServerCredentials;
  /** Overrides of DEFAULT_XDS_LIMITS. */
  limits?: Partial<XdsLimits>;
  /** Overrides of DEFAULT_SEND_BUDGET: bytes of responses on their way over all streams. */
  sendBudget?: Partial<SendBudgetOptions>;
}

export interface XdsServer {
  host: string;
  port: number;
  /** Open streams, for debug and leak checks. */
  openStreams(): number;
  /** Bytes of responses on their way over all streams, and streams waiting to build theirs (send-budget.ts). */
  sending(): { bytes: number; waiting: number };
  stop(): Promise<void>;
}

export async function startXdsServer(opts: XdsServerOptions): Promise<XdsServer> {
  const callbacks = opts.callbacks ?? {};
  const limits: XdsLimits = { ...DEFAULT_XDS_LIMITS, ...opts.limits };
  const budget = new SendBudget({ ...DEFAULT_SEND_BUDGET, ...opts.sendBudget });
  const env: StreamEnv = { cache: opts.cache, callbacks, limits, budget };
  const service = adsServiceDefinition()["envoy.service.discovery.v3.AggregatedDiscoveryService"] as grpc.ServiceDefinition;
  // Responses are bytes already, built around each resource's shared encoding (../cache/framing.ts).
  for (const method of Object.values(service) as grpc.MethodDefinition<unknown, Buffer>[]) method.responseSerialize = (v: Buffer) => v;
  const server = new grpc.Server({
    // Pings every 30 s, answered within 10 s (Istio's pilot does the same): a peer whose host died
    // without closing its connection is noticed, its streams closed; a node agent's report then starts to expire.
    "grpc.keepalive_time_ms": 30_000, "grpc.keepalive_timeout_ms": 10_000,
    "grpc.keepalive_permit_without_calls": 1, "grpc.max_receive_message_length": limits.maxRequestBytes, "grpc.enable_channelz": 0,
    interceptors: [connectionInterceptor],
  });
  let nextStreamId = 0;
  // Proxy streams and agent streams, kept apart: openStreams() counts proxies.
  const open = new Set<grpc.ServerDuplexStream<unknown, unknown>>();
  const openAgents = new Set<grpc.ServerDuplexStream<unknown, unknown>>();
  const track = (call: grpc.ServerDuplexStream<unknown, unknown>, set = open) => {
    set.add(call);
    const done = () => set.delete(call);
    call.on("close", done);
    call.on("cancelled", done);
    call.on("error", done);
  };
  server.addService(service, {
    StreamAggregatedResources(call: AdsCall<DiscoveryRequest>) {
      track(call);
      handleSotwStream(call, ++nextStreamId, env);
    },
    DeltaAggregatedResources(call: AdsCall<DeltaDiscoveryRequest>) {
      track(call);
      handleDeltaStream(call, ++nextStreamId, env);
    },
  });
  const agents = opts.agents;
  if (agents) {
    let nextAgentId = 0;
    server.addService(agentService, {
      ReportAddresses(call: AgentCall) {
        track(call, openAgents);
        handleAgentStream(call, ++nextAgentId, agents, limits);
      },
    });
  }
  const port = await new Promise<number>((resolve, reject) => {
    const addr = hostPort(opts.host, opts.port);
    server.bindAsync(addr, opts.credentials ?? grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(new Error(`xDS server cannot listen on ${addr}: ${err.message}`)) : resolve(p)));
  });
  return {
    host: opts.host,
    port,
    openStreams: () => open.size,
    sending: () => ({ bytes: budget.bytesOnTheirWay, waiting: budget.streamsWaiting }),
    stop: () => new Promise<void>((resolve) => {
      // Streams end with UNAVAILABLE, so Envoys reconnect (to another replica) at once; a graceful
      // shutdown alone would wait for streams that never end by themselves.
      budget.close();
      for (const call of [...open, ...openAgents]) call.emit("error", { code: grpc.status.UNAVAILABLE, details: "the control plane is shutting down" });
      server.tryShutdown(() => resolve());
      setTimeout(() => { server.forceShutdown(); resolve(); }, 2000).unref();
    }),
  };
}
