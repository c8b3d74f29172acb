// Delta (incremental) ADS: a response carries only resources the proxy does not have in this
// version, plus the names removed. Subscriptions follow the xDS spec: a type's first request with no
// names (or "*") is a wildcard; EDS names its clusters. The protocol is kept apart from sotw.ts on
// purpose (as go-control-plane does); the stream around it (limits, opening, sending, closing) is stream.ts.
//
// What a proxy holds is tracked in two parts, after the snapshot's layers: for the part every proxy
// shares, only which shared layer the proxy is in step with (the layer computes what changed since an
// older one once, for all streams); for its own small layer, each resource's version. A registry
// change then costs each stream the changed resources, not a walk over the whole mesh. A response is
// built from the newest snapshot when the stream can take it, so changes made meanwhile are merged
// into the next one.
import { checkDeltaRequest, exhausted } from "./limits.ts";
import { deltaResponse } from "../cache/framing.ts";
import type { DeltaDiscoveryRequest } from "./requests.ts";
import type { BoundType, PackedResource, PackedType } from "../cache/snapshot.ts";
import { AdsStream, serveAdsStream, type AdsCall, type ResponseInput, type StreamEnv } from "./stream.ts";

interface Subscription {
  wildcard: boolean;
  /** Names asked for, as the snapshot spells them (one string shared by all streams). */
  names: Set<string>;
  /** Names subscribed since the last response: the proxy has none of them. */
  fresh: Set<string>;
  /** The shared layer's type the proxy holds every wanted resource of; undefined before the first answer. */
  sharedInStep?: PackedType;
  /** Likewise for the shared resources it gets with its own bytes appended (a cluster's source address). */
  boundInStep?: BoundType;
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

export function handleDeltaStream(call: AdsCall<DeltaDiscoveryRequest>, streamId: number, env: StreamEnv): void {
  serveAdsStream(call, streamId, env, { protocol: "delta", check: checkDeltaRequest, open: (opened) => new DeltaStream(opened) });
}

class DeltaStream extends AdsStream<DeltaDiscoveryRequest, Subscription> {
  private readonly inFlight = new Map<string, InFlight>();

  receive(req: DeltaDiscoveryRequest): void {
    const typeUrl = req.type_url ?? "";
    const nonce = req.response_nonce ?? "";
    if (nonce !== "") {
      const sent = this.inFlight.get(nonce);
      this.inFlight.delete(nonce);
      if (sent) {
        // The type of the response the nonce names, not the request's: a client cannot invent types for metrics.
        this.reportAnswer(req, { typeUrl: sent.typeUrl, version: sent.version, nonce, resourceCount: sent.count, latencyMs: performance.now() - sent.sentAt });
      }
    }

    const subscribe = req.resource_names_subscribe ?? [];
    const unsubscribe = req.resource_names_unsubscribe ?? [];
    const resources = this.snapshot()?.get(typeUrl)?.resources;
    let sub = this.subscriptions.get(typeUrl);
    const first = !sub;
    if (!sub) {
      // Legacy wildcard: a type's first request naming nothing subscribes to everything.
      sub = { wildcard: subscribe.length === 0, names: new Set(), fresh: new Set(), ownKnown: new Map(), answered: false };
      if (!this.addSubscription(typeUrl, sub)) return;
      const initial = Object.entries(req.initial_resource_versions ?? {});
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
        if (!sub.wildcard && !first) { sub.sharedInStep = undefined; sub.boundInStep = undefined; }
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
    const { maxSubscribedNames } = this.env.limits;
    if (sub.names.size > maxSubscribedNames) {
      return this.end(exhausted(`the stream subscribes to ${sub.names.size} resources of one type, over the limit of ${maxSubscribedNames}`));
    }
    // ACKs change nothing; a first request or a subscription change may need an answer.
    if (first || changed) this.send(typeUrl);
  }

  /** What the proxy lacks of the type in the newest snapshot, as a response; undefined when nothing. */
  protected respond({ typeUrl, sub, snapshot, typeSnap }: ResponseInput<Subscription>): Buffer | undefined {
    const shared = snapshot.shared.get(typeUrl);
    const own = snapshot.own.get(typeUrl);
    const bound = snapshot.bound(typeUrl);
    const wanted = (name: string) => sub.wildcard || sub.names.has(name);
    /** A name one part no longer has may have moved to another (a proxy that gained a plane's IP). */
    const held = (name: string) => shared?.resources.has(name) || bound?.resources.has(name) || own?.resources.has(name);
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
        for (const name of changes.removed) if (wanted(name) && !held(name)) removed.push(name);
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
    // The bound part, likewise: what changed since the bound resources the proxy is in step with.
    if (sub.boundInStep !== bound) {
      if (sub.boundInStep && bound) {
        const changes = bound.changesSince(sub.boundInStep);
        for (const r of changes.updated) if (wanted(r.name)) out.set(r.name, r);
        for (const name of changes.removed) if (wanted(name) && !held(name)) removed.push(name);
      } else if (bound) {
        for (const [name, r] of bound.resources) if (wanted(name) && sub.initial?.get(name) !== r.hash) out.set(name, r);
      } else {
        for (const name of sub.boundInStep!.resources.keys()) if (wanted(name) && !held(name)) removed.push(name);
      }
      sub.boundInStep = bound;
    }
    // Names subscribed since the last answer were not wanted before: the proxy has none of them.
    for (const name of sharedBlock ? [] : sub.fresh) {
      const r = shared?.resources.get(name) ?? bound?.resources.get(name);
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
      if (wanted(name) && !held(name)) removed.push(name);
    }
    // What the proxy said it had on reconnecting and this version no longer has.
    const resumed = sub.initial !== undefined;
    for (const name of sub.initial?.keys() ?? []) if (wanted(name) && !typeSnap.resources.has(name)) removed.push(name);
    sub.initial = undefined;

    if (!sharedBlock && out.size === 0 && removed.length === 0 && sub.answered) {
      if (resumed) this.reportCurrent(typeUrl, typeSnap.version, typeSnap, sub.wildcard ? undefined : sub.names);
      return undefined;
    }
    sub.answered = true;
    const nonce = this.nextNonce();
    const count = out.size + (sharedBlock ? shared!.resources.size : 0);
    this.inFlight.set(nonce, { typeUrl, version: typeSnap.version, sentAt: performance.now(), count });
    if (this.inFlight.size > MAX_IN_FLIGHT) this.inFlight.delete(this.inFlight.keys().next().value!);
    const entries: Buffer[] = sharedBlock ? [sharedBlock] : [];
    for (const r of out.values()) entries.push(r.deltaEntry);
    this.reportPush({ typeUrl, version: typeSnap.version, nonce, resourceCount: count });
    return deltaResponse(typeSnap.version, typeUrl, nonce, entries, removed);
  }

  override close(): void {
    super.close();
    this.inFlight.clear();
  }
}
