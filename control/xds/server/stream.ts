// The stream skeleton both ADS flavours share (as go-control-plane's pkg/server/stream serves its two):
// every request is checked against the limits, the first one opens the stream (open-stream.ts), a
// refusal ends it with a status, and whatever ends it closes it once. An open stream keeps one
// subscription per type URL (at most maxTypesPerStream), numbers its responses, sends them through a
// SendQueue (at most one per type on its way, built from the newest snapshot when the stream can take
// it) and reports pushes, ACKs and NACKs. sotw.ts and delta.ts say only what a subscription is, how a
// request changes it and how a response is built.
import type * as grpc from "@grpc/grpc-js";
import type { SnapshotCache } from "../cache/cache.ts";
import type { Snapshot, TypeSnapshot } from "../cache/snapshot.ts";
import type { AckInfo, PushInfo, StreamInfo, XdsCallbacks } from "./callbacks.ts";
import { errorDetailOf, exhausted, type Refusal, type XdsLimits } from "./limits.ts";
import { openStream, refuse } from "./open-stream.ts";
import type { AdsRequest } from "./requests.ts";
import type { SendBudget } from "./send-budget.ts";
import { SendQueue } from "./send-queue.ts";

/** Decoded requests in; responses out as bytes already encoded (../cache/framing.ts). */
export type AdsCall<Req extends AdsRequest> = grpc.ServerDuplexStream<Req, Buffer>;

/** What all streams of one server share. */
export interface StreamEnv {
  cache: SnapshotCache;
  callbacks: XdsCallbacks;
  limits: XdsLimits;
  budget: SendBudget;
}

/** A stream its first request has opened: what the flavour's AdsStream is made from. */
export interface OpenedStream<Req extends AdsRequest> {
  call: AdsCall<Req>;
  info: StreamInfo;
  unwatch: () => void;
  env: StreamEnv;
  /** Ends the stream with the refusal as its status, and closes it. */
  end: (refusal: Refusal) => void;
}

/** What makes a stream state-of-the-world or delta. */
export interface AdsFlavour<Req extends AdsRequest> {
  protocol: StreamInfo["protocol"];
  /** Bounds the request's fields (limits.ts) before anything reads them. */
  check(req: Req, limits: XdsLimits): Refusal | undefined;
  open(opened: OpenedStream<Req>): AdsStream<Req, unknown>;
}

/** What a type's response is built from: its subscription and the stream's newest snapshot. */
export interface ResponseInput<Sub> {
  typeUrl: string;
  sub: Sub;
  snapshot: Snapshot;
  typeSnap: TypeSnapshot;
  /** Answer even if nothing changed (SotW: a request without a nonce). */
  force: boolean;
}

/** Serves one ADS call from its first request to its end. */
export function serveAdsStream<Req extends AdsRequest>(call: AdsCall<Req>, streamId: number, env: StreamEnv, flavour: AdsFlavour<Req>): void {
  let stream: AdsStream<Req, unknown> | undefined;
  let closed = false;

  const close = () => {
    if (closed) return;
    closed = true;
    stream?.close();
  };

  const end = (refusal: Refusal, nodeId = stream?.info.node.id) => {
    refuse(call, env.callbacks, { streamId, protocol: flavour.protocol, ...(nodeId !== undefined ? { nodeId } : {}) }, refusal);
    close();
  };

  call.on("data", (req: Req) => {
    if (closed) return;
    const tooBig = flavour.check(req, env.limits);
    if (tooBig) return end(tooBig);
    if (!stream) {
      const opened = openStream(call, req, streamId, flavour.protocol, env.cache, env.callbacks, env.limits, () => stream?.pushAll());
      if ("refusal" in opened) return end(opened.refusal, opened.nodeId);
      stream = flavour.open({ call, ...opened, env, end });
    }
    stream.receive(req);
  });
  call.on("end", () => { close(); call.end(); });
  call.on("error", close);
  call.on("close", close);
  call.on("cancelled", close);
}

/** An open stream: the part of the skeleton that knows the proxy. */
export abstract class AdsStream<Req extends AdsRequest, Sub> {
  readonly info: StreamInfo;
  /** Per type URL, what the proxy subscribed to. */
  protected readonly subscriptions = new Map<string, Sub>();
  protected readonly env: StreamEnv;
  protected readonly end: (refusal: Refusal) => void;
  private readonly unwatch: () => void;
  private readonly queue: SendQueue;
  private nonceCounter = 0;

  constructor(opened: OpenedStream<Req>) {
    this.info = opened.info;
    this.env = opened.env;
    this.end = opened.end;
    this.unwatch = opened.unwatch;
    this.queue = new SendQueue(opened.call, (typeUrl, force) => this.build(typeUrl, force), opened.env.budget);
  }

  /** A request of this stream, within the limits. */
  abstract receive(req: Req): void;

  /** The type's response, or undefined when the proxy needs none. */
  protected abstract respond(input: ResponseInput<Sub>): Buffer | undefined;

  /** A new snapshot: every subscribed type is looked at again. */
  pushAll(): void {
    for (const typeUrl of this.subscriptions.keys()) this.queue.request(typeUrl);
  }

  /** Called once, by whatever ends the stream. */
  close(): void {
    this.queue.close();
    this.unwatch();
    this.env.callbacks.onStreamClosed?.(this.info);
  }

  protected snapshot(): Snapshot | undefined {
    return this.env.cache.get(this.info.streamId);
  }

  /** Sends the type's response as soon as the stream can take it; `force` answers even an unchanged type. */
  protected send(typeUrl: string, force = false): void {
    this.queue.request(typeUrl, force);
  }

  /** Adds a type's subscription; false when that would be one type over the limit: the stream has ended. */
  protected addSubscription(typeUrl: string, sub: Sub): boolean {
    if (this.subscriptions.size >= this.env.limits.maxTypesPerStream) {
      this.end(exhausted(`the stream asks for more than ${this.env.limits.maxTypesPerStream} resource types, the limit per stream`));
      return false;
    }
    this.subscriptions.set(typeUrl, sub);
    return true;
  }

  /** Nonces count up per stream, over all types: one names one response. */
  protected nextNonce(): string {
    return String(++this.nonceCounter);
  }

  protected reportPush(push: Omit<PushInfo, keyof StreamInfo>): void {
    this.env.callbacks.onPush?.({ ...this.info, ...push });
  }

  /** A type the proxy holds at `version` already: `wanted` are the names it subscribed to, none for all of them. */
  protected reportCurrent(typeUrl: string, version: string, typeSnap: TypeSnapshot, wanted?: ReadonlySet<string>): void {
    const resourceCount = wanted ? [...wanted].filter((n) => typeSnap.resources.has(n)).length : typeSnap.resources.size;
    this.env.callbacks.onCurrent?.({ ...this.info, typeUrl, version, resourceCount });
  }

  /** Envoy's answer to a response: a NACK, of `rejectedVersion`, when it carries error_detail; otherwise an ACK. */
  protected reportAnswer(req: Req, ack: Omit<AckInfo, keyof StreamInfo>, rejectedVersion = ack.version): void {
    const errorDetail = errorDetailOf(req, this.env.limits);
    if (errorDetail !== undefined) this.env.callbacks.onNack?.({ ...this.info, ...ack, version: rejectedVersion, errorDetail });
    else this.env.callbacks.onAck?.({ ...this.info, ...ack });
  }

  private build(typeUrl: string, force: boolean): Buffer | undefined {
    const sub = this.subscriptions.get(typeUrl);
    const snapshot = this.snapshot();
    const typeSnap = snapshot?.get(typeUrl);
    if (sub === undefined || !snapshot || !typeSnap) return undefined;
    return this.respond({ typeUrl, sub, snapshot, typeSnap, force });
  }
}
