// State-of-the-world ADS: one stream carries every type; each type has its own version and nonce.
// A response is sent when the node's snapshot version for a type differs from what this stream
// last sent (or the subscribed names changed); an ACK or NACK is matched to its response by nonce.
// Responses go out through a SendQueue: at most one per type on its way, built from the newest snapshot.
import type * as grpc from "@grpc/grpc-js";
import type { SnapshotCache } from "./cache.ts";
import type { XdsCallbacks, StreamInfo } from "./callbacks.ts";
import { checkSotwRequest, errorDetailOf, exhausted, type Refusal, type XdsLimits } from "./limits.ts";
import { openStream, refuse } from "./open-stream.ts";
import { TYPE_URL } from "./protos.ts";
import { SendQueue } from "./send-queue.ts";

interface TypeState {
  /** Resource names Envoy asked for; empty = wildcard (all). */
  names: Set<string>;
  sentVersion?: string;
  sentNonce?: string;
  sentAt?: number;
  sentCount?: number;
  sentNames?: string;
}

/** EDS and ECDS are never wildcard: Envoy names the resources it wants. */
const NAMED_TYPES = new Set<string>([TYPE_URL.endpoint, TYPE_URL.extensionConfig]);

export function handleSotwStream(
  call: grpc.ServerDuplexStream<any, any>,
  streamId: number,
  cache: SnapshotCache,
  callbacks: XdsCallbacks,
  limits: XdsLimits,
): void {
  const types = new Map<string, TypeState>();
  let info: StreamInfo | undefined;
  let unwatch: (() => void) | undefined;
  let nonceCounter = 0;
  let closed = false;

  // Built when the stream can take it (send-queue.ts), from the newest snapshot: a slow reader gets the latest version.
  const build = (typeUrl: string, force: boolean) => {
    const state = types.get(typeUrl);
    const typeSnap = info && cache.get(info.node.id)?.get(typeUrl);
    if (!state || !typeSnap || !info) return undefined;
    const wanted = state.names.size === 0 || !NAMED_TYPES.has(typeUrl)
      ? [...typeSnap.resources.values()]
      : [...state.names].flatMap((n) => typeSnap.resources.get(n) ?? []);
    const sentNames = wanted.map((r) => r.name).sort().join(",");
    if (!force && state.sentVersion === typeSnap.version && state.sentNames === sentNames) return undefined;
    const nonce = String(++nonceCounter);
    state.sentVersion = typeSnap.version;
    state.sentNonce = nonce;
    state.sentAt = performance.now();
    state.sentCount = wanted.length;
    state.sentNames = sentNames;
    callbacks.onPush?.({ ...info, typeUrl, version: typeSnap.version, nonce, resourceCount: wanted.length });
    return { version_info: typeSnap.version, type_url: typeUrl, nonce, resources: wanted.map((r) => r.any) };
  };
  const queue = new SendQueue(call, build);

  const pushAll = () => {
    for (const typeUrl of types.keys()) queue.request(typeUrl);
  };

  const close = () => {
    if (closed) return;
    closed = true;
    queue.close();
    unwatch?.();
    if (info) callbacks.onStreamClosed?.(info);
  };

  const end = (refusal: Refusal) => {
    refuse(call, callbacks, { streamId, protocol: "sotw", ...(info ? { nodeId: info.node.id } : {}) }, refusal);
    close();
  };

  call.on("data", (req: any) => {
    if (closed) return;
    const tooBig = checkSotwRequest(req, limits);
    if (tooBig) return end(tooBig);
    if (!info) {
      const opened = openStream(req, streamId, "sotw", cache, callbacks, limits, pushAll);
      if ("refusal" in opened) return end(opened.refusal);
      ({ info, unwatch } = opened);
    }
    const typeUrl: string = req.type_url ?? "";
    let state = types.get(typeUrl);
    if (!state) {
      if (types.size >= limits.maxTypesPerStream) return end(exhausted(`the stream asks for more than ${limits.maxTypesPerStream} resource types, the limit per stream`));
      types.set(typeUrl, (state = { names: new Set() }));
    }
    const nonce: string = req.response_nonce ?? "";
    if (nonce !== "") {
      if (nonce !== state.sentNonce) return; // answers an older response: superseded, ignore
      const ack = {
        ...info, typeUrl, version: req.version_info ?? "", nonce,
        resourceCount: state.sentCount ?? 0, latencyMs: performance.now() - (state.sentAt ?? performance.now()),
      };
      const errorDetail = errorDetailOf(req, limits);
      if (errorDetail !== undefined) callbacks.onNack?.({ ...ack, version: state.sentVersion ?? "", errorDetail });
      else callbacks.onAck?.(ack);
    }
    state.names = new Set<string>(req.resource_names ?? []);
    // A fresh request (no nonce: first, or Envoy reconnected) always gets an answer once a snapshot exists.
    queue.request(typeUrl, nonce === "");
  });
  call.on("end", () => { close(); call.end(); });
  call.on("error", close);
  call.on("close", close);
  call.on("cancelled", close);
}
