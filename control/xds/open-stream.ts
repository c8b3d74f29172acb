// What both ADS flavours do with a stream's first request: it names the proxy.
import * as grpc from "@grpc/grpc-js";
import type { SnapshotCache } from "./cache.ts";
import type { StreamInfo, XdsCallbacks } from "./callbacks.ts";
import { nodeFromRequest } from "./node.ts";
import { peerOf } from "./peer.ts";
import type { Snapshot } from "./snapshot.ts";

/**
 * Records the proxy and watches its snapshot; a first request without node.id ends the stream with
 * INVALID_ARGUMENT, one that onStreamOpen refuses with PERMISSION_DENIED and its reason (undefined is
 * returned and the caller closes).
 */
export function openStream(
  call: grpc.ServerDuplexStream<any, any>, firstRequest: any, streamId: number, protocol: StreamInfo["protocol"],
  cache: SnapshotCache, callbacks: XdsCallbacks, onSnapshot: (s: Snapshot) => void,
): { info: StreamInfo; unwatch: () => void } | undefined {
  const info: StreamInfo = { streamId, node: nodeFromRequest(firstRequest.node), protocol, peer: peerOf(call) };
  if (info.node.id === "") {
    const message = protocol === "sotw" ? "DiscoveryRequest" : "DeltaDiscoveryRequest";
    call.emit("error", { code: grpc.status.INVALID_ARGUMENT, details: `the first ${message} must carry node.id` });
    return undefined;
  }
  const refused = callbacks.onStreamOpen?.(info);
  if (refused) {
    call.emit("error", { code: grpc.status.PERMISSION_DENIED, details: refused.reason });
    return undefined;
  }
  return { info, unwatch: cache.watch(streamId, onSnapshot) };
}
