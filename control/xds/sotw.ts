// State-of-the-world ADS: one stream carries every type; each type has its own version and nonce.
// A response is sent when the node's snapshot version for a type differs from what this stream
// last sent (or the subscribed names changed); an ACK or NACK is matched to its response by nonce.
import type * as grpc from "@grpc/grpc-js";
import type { SnapshotCache } from "./cache.ts";
import type { XdsCallbacks, StreamInfo } from "./callbacks.ts";
import { openStream } from "./open-stream.ts";
import { TYPE_URL } from "./protos.ts";
import { sotwResponse } from "./responses.ts";
import type { PackedResource, Snapshot } from "./snapshot.ts";

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
}

const sameSet = (a: ReadonlySet<string> | undefined, b: ReadonlySet<string>) => a !== undefined && a.size === b.size && [...b].every((x) => a.has(x));

/** EDS and ECDS are never wildcard: Envoy names the resources it wants. */
const NAMED_TYPES: ReadonlySet<string> = new Set([TYPE_URL.endpoint, TYPE_URL.extensionConfig]);

export function handleSotwStream(
  call: grpc.ServerDuplexStream<any, any>,
  streamId: number,
  cache: SnapshotCache,
  callbacks: XdsCallbacks,
): void {
  const types = new Map<string, SotwSubscription>();
  let info: StreamInfo | undefined;
  let unwatch: (() => void) | undefined;
  let nonceCounter = 0;
  let closed = false;

  const send = (typeUrl: string, state: SotwSubscription, snapshot: Snapshot, force: boolean) => {
    const typeSnap = snapshot.get(typeUrl);
    if (!typeSnap || !info) return;
    if (!force && state.sentVersion === typeSnap.version && sameSet(state.sentFor, state.names)) return;
    const entries: Buffer[] = [];
    let count = 0;
    const shared = snapshot.shared.get(typeUrl);
    const all = state.names.size === 0 || !NAMED_TYPES.has(typeUrl);
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
    state.sentVersion = typeSnap.version;
    state.sentNonce = nonce;
    state.sentAt = performance.now();
    state.sentCount = count;
    state.sentFor = state.names;
    call.write(sotwResponse(typeSnap.version, typeUrl, nonce, entries));
    callbacks.onPush?.({ ...info, typeUrl, version: typeSnap.version, nonce, resourceCount: count });
  };

  const pushAll = (snapshot: Snapshot) => {
    for (const [typeUrl, state] of types) send(typeUrl, state, snapshot, false);
  };

  const close = () => {
    if (closed) return;
    closed = true;
    unwatch?.();
    if (info) callbacks.onStreamClosed?.(info);
  };

  call.on("data", (req: any) => {
    if (closed) return;
    if (!info) {
      const opened = openStream(call, req, streamId, "sotw", cache, callbacks, pushAll);
      if (!opened) return close();
      ({ info, unwatch } = opened);
    }
    const typeUrl: string = req.type_url ?? "";
    let state = types.get(typeUrl);
    if (!state) types.set(typeUrl, (state = { names: new Set() }));
    const nonce: string = req.response_nonce ?? "";
    if (nonce !== "") {
      if (nonce !== state.sentNonce) return; // answers an older response: superseded, ignore
      const ack = {
        ...info, typeUrl, version: req.version_info ?? "", nonce,
        resourceCount: state.sentCount ?? 0, latencyMs: performance.now() - (state.sentAt ?? performance.now()),
      };
      if (req.error_detail) callbacks.onNack?.({ ...ack, version: state.sentVersion ?? "", errorDetail: String(req.error_detail.message ?? "") });
      else callbacks.onAck?.(ack);
    }
    state.names = new Set<string>(req.resource_names ?? []);
    const snapshot = cache.get(info.streamId);
    // A fresh request (no nonce: first, or Envoy reconnected) always gets an answer once a snapshot exists.
    if (snapshot) send(typeUrl, state, snapshot, nonce === "");
  });
  call.on("end", () => { close(); call.end(); });
  call.on("error", close);
  call.on("close", close);
  call.on("cancelled", close);
}
