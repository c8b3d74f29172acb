// What the transport reports to the rest of the control plane (wiring, logs, metrics).
import type { XdsNode } from "./node.ts";
import type { StreamPeer } from "./peer.ts";

export interface StreamInfo {
  streamId: number;
  node: XdsNode;
  protocol: "sotw" | "delta";
  peer: StreamPeer;
}

/** onStreamOpen's answer to a stream it will not serve: the stream ends with PERMISSION_DENIED and this reason. */
export interface StreamRefusal {
  reason: string;
}

export interface PushInfo extends StreamInfo {
  typeUrl: string;
  version: string;
  nonce: string;
  resourceCount: number;
}

export interface AckInfo extends PushInfo {
  /** Time from sending the response to receiving Envoy's ACK or NACK. */
  latencyMs: number;
}

export interface NackInfo extends AckInfo {
  errorDetail: string;
}

export interface XdsCallbacks {
  /** The stream's first request arrived (its node is known); the stream's snapshot should exist soon, or the stream is refused. */
  onStreamOpen?(info: StreamInfo): StreamRefusal | void;
  onStreamClosed?(info: StreamInfo): void;
  onPush?(info: PushInfo): void;
  onAck?(info: AckInfo): void;
  onNack?(info: NackInfo): void;
}
