// State-of-the-world ADS: one stream carries every type; each type has its own version and nonce.
// A response is sent when the node's snapshot version for a type differs from what this stream
// last sent (or the subscribed names changed), or from what Envoy says it holds when it opens the
// stream; an ACK or NACK is matched to its response by nonce.
// Responses go out through a SendQueue: at most one per type on its way, built from the newest snapshot.
import type * as grpc from "@grpc/grpc-js";
import type { SnapshotCache } from "../cache/cache.ts";
import type { XdsCallbacks, StreamInfo } from "./callbacks.ts";
import { checkSotwRequest, errorDetailOf, exhausted, type Refusal, type XdsLimits } from "./limits.ts";
import { openStream, refuse } from "./open-stream.ts";
import { TYPE_URL } from "../cache/protos.ts";
import { sotwResponse } from "../cache/framing.ts";
import type { SendBudget } from "./send-budget.ts";
import { SendQueue } from "./send-queue.ts";
import type { DiscoveryRequest } from "./requests.ts";
import { versionOfNames, type PackedResource } from "../cache/snapshot.ts";

/** Per type: what the stream asked for and what it was last sent. */
interface SotwSubscription {
  /** Resource names Envoy asked for; empty = wildcard (all). */
  names: Set<string>;
  sentVersion?: string;
  sentNonce?: string;
  sentAt?: number;
  sentCount?: number;
  /** The names asked for when the last response was sent: a change of them is answered even if the version is the same. */
  sentFor?: Set<string>;
  /** The version Envoy said it holds when it opened the stream; used up by the first answer. */
  held?: string;
}

const sameSet = (a: ReadonlySet<string> | undefined, b: ReadonlySet<string>) => a !== undefined && a.size === b.size && [...b].every((x) => a.has(x));

/** EDS, RDS and ECDS are never wildcard: Envoy names the resources it wants. */
const NAMED_TYPES: ReadonlySet<string> = new Set([TYPE_URL.endpoint, TYPE_URL.route, TYPE_URL.extensionConfig]);

export function handleSotwStream(
  call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>,
  streamId: number,
  cache: SnapshotCache,
  callbacks: XdsCallbacks,
  limits: XdsLimits,
  budget: SendBudget,
): void {
  const types = new Map<string, SotwSubscription>();
  let info: StreamInfo | undefined;
  let unwatch: (() => void) | undefined;
  let nonceCounter = 0;
  let closed = false;

  // Built when the stream can take it (send-queue.ts), from the newest snapshot: a slow reader gets the latest version.
  const build = (typeUrl: string, force: boolean): Buffer | undefined => {
    const state = types.get(typeUrl);
    const snapshot = info && cache.get(info.streamId);
    const typeSnap = snapshot?.get(typeUrl);
    if (!state || !snapshot || !typeSnap || !info) return undefined;
    const held = state.held;
    state.held = undefined;
    const all = state.names.size === 0 || !NAMED_TYPES.has(typeUrl);
    // A named type's response is versioned by the names it carries, not by the type's whole set: the
    // version_info Envoy returns then says exactly what it holds. (A whole-set version let a re-opened
    // stream asking for clusters whose endpoints it never received pass as current: they stayed warming.)
    const version = all ? typeSnap.version : versionOfNames(typeSnap.resources, state.names);
    // Envoy re-opening its stream (it failed over from another replica, or this one restarted) already
    // holds this content: versions are content hashes, so the same version needs no response.
    if (held === version) {
      state.sentVersion = held;
      state.sentFor = state.names;
      const wanted = all ? typeSnap.resources.size : [...state.names].filter((n) => typeSnap.resources.has(n)).length;
      callbacks.onCurrent?.({ ...info, typeUrl, version: held, resourceCount: wanted });
      return undefined;
    }
    if (!force && state.sentVersion === version && sameSet(state.sentFor, state.names)) return undefined;
    const entries: Buffer[] = [];
    let count = 0;
    const shared = snapshot.shared.get(typeUrl);
    if (all || (shared && state.names.size >= shared.resources.size && [...shared.resources.keys()].every((n) => state.names.has(n)))) {
      // Every shared resource: the layer's pre-built block, then the proxy's own (named ones only if asked for).
      if (shared) { entries.push(shared.sotwBlock); count += shared.resources.size; }
      for (const r of snapshot.own.get(typeUrl)?.resources.values() ?? []) {
        if (all || state.names.has(r.name)) { entries.push(r.sotwEntry); count++; }
      }
    } else {
      for (const n of state.names) {
        const r: PackedResource | undefined = typeSnap.resources.get(n);
        if (r) { entries.push(r.sotwEntry); count++; }
      }
    }
    const nonce = String(++nonceCounter);
    state.sentVersion = version;
    state.sentNonce = nonce;
    state.sentAt = performance.now();
    state.sentCount = count;
    state.sentFor = state.names;
    callbacks.onPush?.({ ...info, typeUrl, version, nonce, resourceCount: count });
    return sotwResponse(version, typeUrl, nonce, entries);
  };
  const queue = new SendQueue(call, build, budget);

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

  const end = (refusal: Refusal, nodeId = info?.node.id) => {
    refuse(call, callbacks, { streamId, protocol: "sotw", ...(nodeId !== undefined ? { nodeId } : {}) }, refusal);
    close();
  };

  call.on("data", (req: DiscoveryRequest) => {
    if (closed) return;
    const tooBig = checkSotwRequest(req, limits);
    if (tooBig) return end(tooBig);
    if (!info) {
      const opened = openStream(call, req, streamId, "sotw", cache, callbacks, limits, pushAll);
      if ("refusal" in opened) return end(opened.refusal, opened.nodeId);
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
    if (nonce === "") state.held = req.version_info || undefined;
    // A fresh request (no nonce: first, or Envoy reconnected) always gets an answer once a snapshot exists.
    queue.request(typeUrl, nonce === "");
  });
  call.on("end", () => { close(); call.end(); });
  call.on("error", close);
  call.on("close", close);
  call.on("cancelled", close);
}
