// Delta (incremental) ADS: per type, the stream remembers which version of each resource the proxy
// has, and a response carries only resources whose content hash changed plus the names removed.
// Subscriptions follow the xDS spec: a type's first request with no names (or "*") is a wildcard;
// EDS names its clusters. Kept apart from sotw.ts on purpose (as go-control-plane does). Responses go
// out through a SendQueue: at most one per type on its way, built from the newest snapshot.
import type * as grpc from "@grpc/grpc-js";
import type { SnapshotCache } from "./cache.ts";
import type { StreamInfo, XdsCallbacks } from "./callbacks.ts";
import { checkDeltaRequest, errorDetailOf, exhausted, type Refusal, type XdsLimits } from "./limits.ts";
import { openStream, refuse } from "./open-stream.ts";
import { SendQueue } from "./send-queue.ts";

interface TypeState {
  wildcard: boolean;
  names: Set<string>;
  /** name -> the version (content hash) the proxy holds, as far as we know. */
  known: Map<string, string>;
  /** The type has been answered at least once (Envoy waits for a first response to finish init). */
  answered: boolean;
}

interface InFlight {
  typeUrl: string;
  version: string;
  sentAt: number;
  count: number;
}

/** Responses awaiting an ACK are remembered by nonce; an Envoy that never answers cannot grow this past the cap. */
const MAX_IN_FLIGHT = 64;

export function handleDeltaStream(
  call: grpc.ServerDuplexStream<any, any>,
  streamId: number,
  cache: SnapshotCache,
  callbacks: XdsCallbacks,
  limits: XdsLimits,
): void {
  const types = new Map<string, TypeState>();
  const inFlight = new Map<string, InFlight>();
  let info: StreamInfo | undefined;
  let unwatch: (() => void) | undefined;
  let nonceCounter = 0;
  let closed = false;

  // Built when the stream can take it (send-queue.ts): the difference between what the proxy holds and
  // the newest snapshot, so changes made while a response was on its way are merged into the next one.
  const build = (typeUrl: string) => {
    const state = types.get(typeUrl);
    const typeSnap = info && cache.get(info.node.id)?.get(typeUrl);
    if (!state || !typeSnap || !info) return undefined;
    const resources: { name: string; version: string; resource: unknown }[] = [];
    const removed: string[] = [];
    const wanted = state.wildcard ? typeSnap.resources.keys() : state.names.values();
    for (const name of wanted) {
      const r = typeSnap.resources.get(name);
      if (r && state.known.get(name) !== r.hash) {
        resources.push({ name, version: r.hash, resource: r.any });
        state.known.set(name, r.hash);
      }
    }
    for (const name of state.known.keys()) {
      const stillWanted = state.wildcard || state.names.has(name);
      if (!typeSnap.resources.has(name) || !stillWanted) {
        if (stillWanted) removed.push(name); // gone from the snapshot; unsubscribed ones need no word
        state.known.delete(name);
      }
    }
    if (resources.length === 0 && removed.length === 0 && state.answered) return undefined;
    state.answered = true;
    const nonce = String(++nonceCounter);
    inFlight.set(nonce, { typeUrl, version: typeSnap.version, sentAt: performance.now(), count: resources.length });
    if (inFlight.size > MAX_IN_FLIGHT) inFlight.delete(inFlight.keys().next().value!);
    callbacks.onPush?.({ ...info, typeUrl, version: typeSnap.version, nonce, resourceCount: resources.length });
    return { system_version_info: typeSnap.version, type_url: typeUrl, nonce, resources, removed_resources: removed };
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
    inFlight.clear();
    if (info) callbacks.onStreamClosed?.(info);
  };

  const end = (refusal: Refusal) => {
    refuse(call, callbacks, { streamId, protocol: "delta", ...(info ? { nodeId: info.node.id } : {}) }, refusal);
    close();
  };

  call.on("data", (req: any) => {
    if (closed) return;
    const tooBig = checkDeltaRequest(req, limits);
    if (tooBig) return end(tooBig);
    if (!info) {
      const opened = openStream(req, streamId, "delta", cache, callbacks, limits, pushAll);
      if ("refusal" in opened) return end(opened.refusal);
      ({ info, unwatch } = opened);
    }
    const typeUrl: string = req.type_url ?? "";
    const nonce: string = req.response_nonce ?? "";
    if (nonce !== "") {
      const sent = inFlight.get(nonce);
      inFlight.delete(nonce);
      if (sent) {
        // The type of the response the nonce names, not the request's: a client cannot invent types for metrics.
        const ack = { ...info, typeUrl: sent.typeUrl, version: sent.version, nonce, resourceCount: sent.count, latencyMs: performance.now() - sent.sentAt };
        const errorDetail = errorDetailOf(req, limits);
        if (errorDetail !== undefined) callbacks.onNack?.({ ...ack, errorDetail });
        else callbacks.onAck?.(ack);
      }
    }

    const subscribe: string[] = req.resource_names_subscribe ?? [];
    const unsubscribe: string[] = req.resource_names_unsubscribe ?? [];
    let state = types.get(typeUrl);
    const first = !state;
    if (!state) {
      if (types.size >= limits.maxTypesPerStream) return end(exhausted(`the stream asks for more than ${limits.maxTypesPerStream} resource types, the limit per stream`));
      // Legacy wildcard: a type's first request naming nothing subscribes to everything.
      types.set(typeUrl, (state = { wildcard: subscribe.length === 0, names: new Set(), known: new Map(), answered: false }));
      for (const [name, version] of Object.entries<string>(req.initial_resource_versions ?? {})) state.known.set(name, version);
    }
    for (const name of subscribe) {
      if (name === "*") state.wildcard = true;
      else state.names.add(name);
    }
    for (const name of unsubscribe) {
      if (name === "*") state.wildcard = false;
      else state.names.delete(name);
    }
    if (state.names.size > limits.maxSubscribedNames) {
      return end(exhausted(`the stream subscribes to ${state.names.size} resources of one type, over the limit of ${limits.maxSubscribedNames}`));
    }
    // ACKs change nothing; a first request or a subscription change may need an answer.
    if (first || subscribe.length > 0 || unsubscribe.length > 0) queue.request(typeUrl);
  });
  call.on("end", () => { close(); call.end(); });
  call.on("error", close);
  call.on("close", close);
  call.on("cancelled", close);
}
