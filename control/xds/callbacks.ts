// What the transport reports to the rest of the control plane (wiring, logs, metrics).
import type { XdsNode } from "./node.ts";

export interface StreamInfo {
  streamId: number;
  node: XdsNode;
  protocol: "sotw" | "delta";
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
  /** The stream's first request arrived (its node is known); the snapshot for node.id should exist soon. */
  onStreamOpen?(info: StreamInfo): void;
  onStreamClosed?(info: StreamInfo): void;
  onPush?(info: PushInfo): void;
  onAck?(info: AckInfo): void;
  onNack?(info: NackInfo): void;
}
