// State-of-the-world ADS: one stream carries every type; each type has its own version and nonce.
// A response is sent when the node's snapshot version for a type differs from what this stream
// last sent (or the subscribed names changed), or from what Envoy says it holds when it opens the
// stream; an ACK or NACK is matched to its response by nonce, the type's latest. The stream around
// this (limits, opening, sending, closing) is stream.ts.
import { checkSotwRequest } from "./limits.ts";
import { TYPE_URL } from "../cache/protos.ts";
import { sotwResponse } from "../cache/framing.ts";
import type { DiscoveryRequest } from "./requests.ts";
import { versionOfNames, type PackedResource } from "../cache/snapshot.ts";
import { AdsStream, serveAdsStream, type AdsCall, type ResponseInput, type StreamEnv } from "./stream.ts";

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

export function handleSotwStream(call: AdsCall<DiscoveryRequest>, streamId: number, env: StreamEnv): void {
  serveAdsStream(call, streamId, env, { protocol: "sotw", check: checkSotwRequest, open: (opened) => new SotwStream(opened) });
}

class SotwStream extends AdsStream<DiscoveryRequest, SotwSubscription> {
  receive(req: DiscoveryRequest): void {
    const typeUrl = req.type_url ?? "";
    let state = this.subscriptions.get(typeUrl);
    if (!state) {
      state = { names: new Set() };
      if (!this.addSubscription(typeUrl, state)) return;
    }
    const nonce = req.response_nonce ?? "";
    if (nonce !== "") {
      if (nonce !== state.sentNonce) return; // answers an older response: superseded, ignore
      this.reportAnswer(req, {
        typeUrl, version: req.version_info ?? "", nonce,
        resourceCount: state.sentCount ?? 0, latencyMs: performance.now() - (state.sentAt ?? performance.now()),
      }, state.sentVersion ?? "");
    }
    state.names = new Set(req.resource_names ?? []);
    if (nonce === "") state.held = req.version_info || undefined;
    // A fresh request (no nonce: first, or Envoy reconnected) always gets an answer once a snapshot exists.
    this.send(typeUrl, nonce === "");
  }

  // From the newest snapshot when the stream can take it: a slow reader gets the latest version.
  protected respond({ typeUrl, sub: state, snapshot, typeSnap, force }: ResponseInput<SotwSubscription>): Buffer | undefined {
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
      this.reportCurrent(typeUrl, held, typeSnap, all ? undefined : state.names);
      return undefined;
    }
    if (!force && state.sentVersion === version && sameSet(state.sentFor, state.names)) return undefined;
    const entries: Buffer[] = [];
    let count = 0;
    const shared = snapshot.shared.get(typeUrl);
    if (all || (shared && state.names.size >= shared.resources.size && [...shared.resources.keys()].every((n) => state.names.has(n)))) {
      // Every shared resource: the layer's pre-built block, then the proxy's bound and own ones (named ones only if asked for).
      if (shared) { entries.push(shared.sotwBlock); count += shared.resources.size; }
      const bound = snapshot.bound(typeUrl);
      if (bound && all) { for (const e of bound.sotwEntries()) entries.push(e); count += bound.resources.size; }
      for (const r of bound && !all ? bound.resources.values() : []) {
        if (state.names.has(r.name)) { entries.push(r.sotwEntry); count++; }
      }
      for (const r of snapshot.own.get(typeUrl)?.resources.values() ?? []) {
        if (all || state.names.has(r.name)) { entries.push(r.sotwEntry); count++; }
      }
    } else {
      for (const n of state.names) {
        const r: PackedResource | undefined = typeSnap.resources.get(n);
        if (r) { entries.push(r.sotwEntry); count++; }
      }
    }
    const nonce = this.nextNonce();
    state.sentVersion = version;
    state.sentNonce = nonce;
    state.sentAt = performance.now();
    state.sentCount = count;
    state.sentFor = state.names;
    this.reportPush({ typeUrl, version, nonce, resourceCount: count });
    return sotwResponse(version, typeUrl, nonce, entries);
  }
}
