// What the transport reports to the rest of the control plane (wiring, logs, metrics).
import type { Refusal } from "./limits.ts";
import type { XdsNode } from "../../identity/proxy.ts";
import type { StreamPeer } from "./peer.ts";

export interface StreamInfo {
  streamId: number;
  node: XdsNode;
  protocol: "sotw" | "delta";
  peer: StreamPeer;
}

export interface PushInfo extends StreamInfo {
  typeUrl: string;
  version: string;
  nonce: string;
  resourceCount: number;
}

/** A type the proxy already holds at the current version (it said so when it opened the stream): nothing was sent. */
export interface CurrentInfo extends StreamInfo {
  typeUrl: string;
  version: string;
  resourceCount: number;
}

export interface AckInfo extends PushInfo {
  /** Time from sending the response to receiving Envoy's ACK or NACK. */
  latencyMs: number;
}

export interface NackInfo extends AckInfo {
  errorDetail: string;
}

export interface RefusedInfo {
  streamId: number;
  protocol: "sotw" | "delta";
  /** The client's address without its port ("127.0.0.1", "::1"): the source that log limits count by. */
  peer: string;
  /** node.id when the stream had been opened (within the limits) before the refusal. */
  nodeId?: string;
  refusal: Refusal;
}

export interface XdsCallbacks {
  /**
   * The stream's first request arrived (its node is known); the stream's snapshot should exist soon. A
   * Refusal ends the stream with that status instead (the proxy is not acceptable to the control plane).
   */
  onStreamOpen?(info: StreamInfo): Refusal | void;
  /** A stream was ended because a request broke a limit or was refused; the client gets `refusal` as its status. */
  onRefused?(info: RefusedInfo): void;
  onStreamClosed?(info: StreamInfo): void;
  onPush?(info: PushInfo): void;
  /** A re-opened stream's type needs no response: the proxy holds the current version already (nothing is sent). */
  onCurrent?(info: CurrentInfo): void;
  onAck?(info: AckInfo): void;
  onNack?(info: NackInfo): void;
}
