// What both ADS flavours do with a stream's first request (it names the proxy) and with a request
// that breaks a limit (the stream ends with a status naming it).
import type * as grpc from "@grpc/grpc-js";
import type { SnapshotCache } from "../cache/cache.ts";
import type { StreamInfo, XdsCallbacks } from "./callbacks.ts";
import { invalid, type Refusal, type XdsLimits } from "./limits.ts";
import { nodeFromRequest } from "./node.ts";
import type { AdsRequest } from "./requests.ts";
import { peerOf } from "./peer.ts";
import type { Snapshot } from "../cache/snapshot.ts";

/** Ends the stream with the refusal as its status, and reports it. */
export function refuse(
  call: grpc.ServerDuplexStream<unknown, unknown>, callbacks: XdsCallbacks,
  stream: { streamId: number; protocol: StreamInfo["protocol"]; nodeId?: string }, refusal: Refusal,
): void {
  callbacks.onRefused?.({ ...stream, peer: peerOf(call).remoteAddress ?? "unknown", refusal });
  call.emit("error", { code: refusal.code, details: refusal.details });
}

/**
 * Records the proxy and watches its snapshot. A first request without node.id, with a node over the
 * limits, or one the control plane refuses (onStreamOpen) gets a Refusal back: the caller ends the stream.
 */
export function openStream(
  call: grpc.ServerDuplexStream<unknown, unknown>, firstRequest: AdsRequest, streamId: number, protocol: StreamInfo["protocol"],
  cache: SnapshotCache, callbacks: XdsCallbacks, limits: XdsLimits, onSnapshot: (s: Snapshot) => void,
): { info: StreamInfo; unwatch: () => void } | { refusal: Refusal; nodeId?: string } {
  const node = nodeFromRequest(firstRequest.node, limits);
  if ("refusal" in node) return node;
  if (node.node.id === "") {
    return { refusal: invalid(`the first ${protocol === "sotw" ? "DiscoveryRequest" : "DeltaDiscoveryRequest"} must carry node.id`) };
  }
  const info: StreamInfo = { streamId, node: node.node, protocol, peer: peerOf(call) };
  const refused = callbacks.onStreamOpen?.(info);
  if (refused) return { refusal: refused, nodeId: info.node.id };
  return { info, unwatch: cache.watch(streamId, onSnapshot) };
}
