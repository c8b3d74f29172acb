// One node agent's stream (agent-protocol.ts): every report is checked, handed to the control plane,
// and answered; a malformed one ends the stream with INVALID_ARGUMENT naming what is wrong. What the
// reports mean (trust, expiry, which proxies change) is the pipeline's business, not the transport's.
import * as grpc from "@grpc/grpc-js";
import { parseAgentReport, type AgentAnswer, type AgentLimits, type AgentReport } from "./agent-protocol.ts";
import { peerOf, type StreamPeer } from "./peer.ts";

export interface AgentSession {
  /** Numbers agent streams of this server, apart from proxy streams. */
  agentId: number;
  peer: StreamPeer;
}

export interface AgentCallbacks {
  /** A well-formed report; what comes back is the agent's answer. */
  onAgentReport(session: AgentSession, report: AgentReport): AgentAnswer;
  /** A report that was not well-formed: the stream ends with this reason. */
  onAgentRefused?(session: AgentSession, reason: string): void;
  /** The stream ended, however (the agent went away, or was refused). */
  onAgentClosed(session: AgentSession): void;
}

export type AgentCall = grpc.ServerDuplexStream<unknown, AgentAnswer>;

export function handleAgentStream(call: AgentCall, agentId: number, callbacks: AgentCallbacks, limits: AgentLimits): void {
  const session: AgentSession = { agentId, peer: peerOf(call as grpc.ServerDuplexStream<unknown, unknown>) };
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    callbacks.onAgentClosed(session);
  };
  call.on("data", (message: unknown) => {
    if (closed) return;
    const parsed = parseAgentReport(message, limits);
    if (!parsed.ok) {
      callbacks.onAgentRefused?.(session, parsed.reason);
      call.emit("error", { code: grpc.status.INVALID_ARGUMENT, details: `node agent report refused: ${parsed.reason}` });
      return close();
    }
    call.write(callbacks.onAgentReport(session, parsed.report));
  });
  call.on("end", () => {
    close();
    call.end();
  });
  call.on("cancelled", close);
  call.on("error", close);
  call.on("close", close);
}
