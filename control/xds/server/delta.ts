// Delta (incremental) ADS: a response carries only resources the proxy does not have in this
// version, plus the names removed. Subscriptions follow the xDS spec: a type's first request with no
// names (or "*") is a wildcard; EDS names its clusters. Kept apart from sotw.ts on purpose (as
// go-control-plane does).
//
// What a proxy holds is tracked in two parts, after the snapshot's layers: for the part every proxy
// shares, only which shared layer the proxy is in step with (the layer computes what changed since an
// older one once, for all streams); for its own small layer, each resource's version. A registry
// change then costs each stream the changed resources, not a walk over the whole mesh. Responses go
// out through a SendQueue: at most one per type on its way, built from the newest snapshot when the
// stream can take it, so changes made meanwhile are merged into the next one.
import type * as grpc from "@grpc/grpc-js";
import type { SnapshotCache } from "../cache/cache.ts";
import type { StreamInfo, XdsCallbacks } from "./callbacks.ts";
import { checkDeltaRequest, errorDetailOf, exhausted, type Refusal, type XdsLimits } from "./limits.ts";
import { openStream, refuse } from "./open-stream.ts";
import { deltaResponse } from "../cache/framing.ts";
import type { SendBudget } from "./send-budget.ts";
import { SendQueue } from "./send-queue.ts";
import type { DeltaDiscoveryRequest } from "./requests.ts";
import type { PackedResource, PackedType } from "../cache/snapshot.ts";

interface Subscription {
  wildcard: boolean;
  /** Names asked for, as the snapshot spells them (one string shared by all streams). */
  names: Set<string>;
  /** Names subscribed since the last response: the proxy has none of them. */
  fresh: Set<string>;
  /** The shared layer's type the proxy holds every wanted resource of; undefined before the first answer. */
  sharedInStep?: PackedType;
  /** Versions the proxy holds of its own layer's resources. */
  ownKnown: Map<string, string>;
  /** Versions the proxy said it has when it (re)connected; used up by the first answer. */
  initial?: Map<string, string>;
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
  call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, Buffer>,
  streamId: number,
  cache: SnapshotCache,
  callbacks: XdsCallbacks,
  limits: XdsLimits,
  budget: SendBudget,
): void {
  const subs = new Map<string, Subscription>();
  const inFlight = new Map<string, InFlight>();
  let info: StreamInfo | undefined;
  let unwatch: (() => void) | undefined;
  let nonceCounter = 0;
  let closed = false;

  /** What the proxy lacks of `typeUrl` in the newest snapshot, as a response; undefined when nothing. */
  const build = (typeUrl: string): Buffer | undefined => {
    const sub = subs.get(typeUrl);
    const snapshot = info && cache.get(info.streamId);
    const typeSnap = snapshot?.get(typeUrl);
    if (!sub || !snapshot || !typeSnap || !info) return undefined;
    const shared = snapshot.shared.get(typeUrl);
    const own = snapshot.own.get(typeUrl);
    const wanted = (name: string) => sub.wildcard || sub.names.has(name);
    const out = new Map<string, PackedResource>();
    const removed: string[] = [];
    /** Set when the answer carries every shared resource: one pre-built block instead of entries. */
    let sharedBlock: Buffer | undefined;

    // The shared part: what changed since the layer the proxy is in step with, or everything wanted.
    if (sub.sharedInStep !== shared) {
      if (sub.sharedInStep) {
        // Also when this snapshot has no shared part of the type: then everything the proxy had from one is removed.
        const changes = snapshot.shared.changesSince(typeUrl, sub.sharedInStep);
        for (const r of changes.updated) if (wanted(r.name)) out.set(r.name, r);
        for (const name of changes.removed) if (wanted(name) && !own?.resources.has(name)) removed.push(name);
      } else if (shared && !sub.initial && (sub.wildcard || [...shared.resources.keys()].every((n) => sub.names.has(n)))) {
        sharedBlock = shared.deltaBlock;
      } else if (shared) {
        const names = sub.wildcard ? shared.resources.keys() : sub.names.values();
        for (const name of names) {
          const r = shared.resources.get(name);
          if (r && sub.initial?.get(name) !== r.hash) out.set(name, r);
        }
      }
      sub.sharedInStep = shared;
    }
    // Names subscribed since the last answer were not wanted before: the proxy has none of them.
    for (const name of sharedBlock ? [] : sub.fresh) {
      const r = shared?.resources.get(name);
      if (r && sub.initial?.get(name) !== r.hash) out.set(name, r);
    }
    sub.fresh.clear();
    // The proxy's own part: small, compared resource by resource.
    for (const [name, r] of own?.resources ?? []) {
      if (!wanted(name) || sub.ownKnown.get(name) === r.hash) continue;
      if (sub.initial?.get(name) !== r.hash) out.set(name, r);
      sub.ownKnown.set(name, r.hash);
    }
    for (const name of sub.ownKnown.keys()) {
      if (own?.resources.has(name) && wanted(name)) continue;
      sub.ownKnown.delete(name);
      if (wanted(name) && !shared?.resources.has(name)) removed.push(name);
    }
    // What the proxy said it had on reconnecting and this version no longer has.
    const resumed = sub.initial !== undefined;
    for (const name of sub.initial?.keys() ?? []) if (wanted(name) && !typeSnap.resources.has(name)) removed.push(name);
    sub.initial = undefined;

    if (!sharedBlock && out.size === 0 && removed.length === 0 && sub.answered) {
      if (resumed) {
        const held = sub.wildcard ? typeSnap.resources.size : [...sub.names].filter((n) => typeSnap.resources.has(n)).length;
        callbacks.onCurrent?.({ ...info, typeUrl, version: typeSnap.version, resourceCount: held });
      }
      return undefined;
    }
    sub.answered = true;
    const nonce = String(++nonceCounter);
    const count = out.size + (sharedBlock ? shared!.resources.size : 0);
    inFlight.set(nonce, { typeUrl, version: typeSnap.version, sentAt: performance.now(), count });
    if (inFlight.size > MAX_IN_FLIGHT) inFlight.delete(inFlight.keys().next().value!);
    const entries: Buffer[] = sharedBlock ? [sharedBlock] : [];
    for (const r of out.values()) entries.push(r.deltaEntry);
    callbacks.onPush?.({ ...info, typeUrl, version: typeSnap.version, nonce, resourceCount: count });
    return deltaResponse(typeSnap.version, typeUrl, nonce, entries, removed);
  };
  const queue = new SendQueue(call, build, budget);

  const pushAll = () => {
    for (const typeUrl of subs.keys()) queue.request(typeUrl);
  };

  const close = () => {
    if (closed) return;
    closed = true;
    queue.close();
    unwatch?.();
    inFlight.clear();
    if (info) callbacks.onStreamClosed?.(info);
  };

  const end = (refusal: Refusal, nodeId = info?.node.id) => {
    refuse(call, callbacks, { streamId, protocol: "delta", ...(nodeId !== undefined ? { nodeId } : {}) }, refusal);
    close();
  };

  call.on("data", (req: DeltaDiscoveryRequest) => {
    if (closed) return;
    const tooBig = checkDeltaRequest(req, limits);
    if (tooBig) return end(tooBig);
    if (!info) {
      const opened = openStream(call, req, streamId, "delta", cache, callbacks, limits, pushAll);
      if ("refusal" in opened) return end(opened.refusal, opened.nodeId);
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
    const resources = cache.get(info.streamId)?.get(typeUrl)?.resources;
    let sub = subs.get(typeUrl);
    const first = !sub;
    if (!sub) {
      if (subs.size >= limits.maxTypesPerStream) return end(exhausted(`the stream asks for more than ${limits.maxTypesPerStream} resource types, the limit per stream`));
      // Legacy wildcard: a type's first request naming nothing subscribes to everything.
      subs.set(typeUrl, (sub = { wildcard: subscribe.length === 0, names: new Set(), fresh: new Set(), ownKnown: new Map(), answered: false }));
      const initial = Object.entries<string>(req.initial_resource_versions ?? {});
      if (initial.length > 0) {
        sub.initial = new Map(initial);
        // Envoy re-opening its stream (it failed over from another replica, or this one restarted)
        // with resources it holds is initialised already: when they are all current, nothing is sent.
        sub.answered = true;
      }
    }
    let changed = false;
    for (const name of subscribe) {
      if (name === "*") {
        // Everything is wanted now, not only what was named: send the shared part afresh.
        if (!sub.wildcard && !first) sub.sharedInStep = undefined;
        sub.wildcard = true;
        changed = true;
        continue;
      }
      // Keep the snapshot's own string: thousands of names per stream, one copy for all streams.
      const canonical = resources?.get(name)?.name ?? name;
      if (!sub.names.has(canonical)) {
        sub.names.add(canonical);
        if (!first && !sub.wildcard) sub.fresh.add(canonical);
        changed = true;
      }
    }
    for (const name of unsubscribe) {
      changed = true;
      if (name === "*") sub.wildcard = false;
      else {
        sub.names.delete(name);
        sub.fresh.delete(name);
      }
    }
    if (sub.names.size > limits.maxSubscribedNames) {
      return end(exhausted(`the stream subscribes to ${sub.names.size} resources of one type, over the limit of ${limits.maxSubscribedNames}`));
    }
    // ACKs change nothing; a first request or a subscription change may need an answer.
    if (first || changed) queue.request(typeUrl);
  });
  call.on("end", () => { close(); call.end(); });
  call.on("error", close);
  call.on("close", close);
  call.on("cancelled", close);
}
