// Bytes of responses on their way, across every stream of one xDS server. When a thousand proxies
// connect to a large mesh at once, each first answer is megabytes; built and handed to grpc-js all
// together they would sit in memory side by side (gigabytes) while the connections drain them. The
// budget lets a stream build its next response only while the bytes on their way are under the
// limit; the others wait and go as bytes are sent. A stream that stops reading cannot hold the
// budget: its bytes are let go after `stallMs` (its send queue still bounds what it keeps: one
// response per type). 64 MiB: with 1,000 proxies connecting to a 10,000-service mesh it held the
// control plane at 846 MB where 256 MiB gave 1.56 GB, and connecting took no longer.
//
// Waiting streams are woken connection by connection in turn (../../common/fair-queue.ts): the
// budget fills with the bytes of whoever reads slowest, and in the order of arrival a proxy on a
// connection that drains at once (a new Envoy starting, a healthy one asking again) waited behind
// every response of a connect storm: 2.8 s with 1,000 proxies of a 400-service mesh on 8
// connections (bench:load). In turn, it waits for one response per busy connection.
import { FairQueue } from "../../common/fair-queue.ts";

export interface SendBudgetOptions {
  /** Bytes of built responses not yet taken by the connections, over all streams. */
  maxBytes: number;
  /** A response not sent within this time no longer counts against the budget. */
  stallMs: number;
}

/** Longest run of waking streams before the event loop gets a turn (as the distributor's slices). */
const SLICE_MS = 10;

export const DEFAULT_SEND_BUDGET: Readonly<SendBudgetOptions> = Object.freeze({ maxBytes: 64 * 2 ** 20, stallMs: 5000 });

export class SendBudget {
  private onTheirWay = 0;
  /** Streams waiting to build, by connection. */
  private readonly waiting = new FairQueue<() => void>();
  private closed = false;
  private wakeScheduled = false;

  constructor(readonly options: SendBudgetOptions = DEFAULT_SEND_BUDGET) {}

  /** Whether a stream on `connection` may build a response now; if not, `resume` is called once when it may. */
  admit(resume: () => void, connection: string): boolean {
    if (this.closed) return false;
    // While woken streams wait for their slice, a newcomer queues too rather than go before them.
    if (this.onTheirWay < this.options.maxBytes && !this.wakeScheduled) return true;
    this.waiting.add(resume, connection);
    return false;
  }

  /** The server is stopping: nothing is built any more (each closing stream gave back bytes that woke another to build for nobody). */
  close(): void {
    this.closed = true;
    this.waiting.clear();
  }

  /** A closed stream waits no more. */
  forget(resume: () => void): void {
    this.waiting.delete(resume);
  }

  /** Counts `bytes` as on their way; the returned function gives them back (once; by itself after stallMs). */
  hold(bytes: number): () => void {
    this.onTheirWay += bytes;
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      clearTimeout(timer);
      this.onTheirWay -= bytes;
      this.wake();
    };
    const timer = setTimeout(release, this.options.stallMs);
    timer.unref();
    return release;
  }

  /** Bytes counted now (for /metrics and tests). */
  get bytesOnTheirWay(): number {
    return this.onTheirWay;
  }

  /** Streams waiting now. */
  get streamsWaiting(): number {
    return this.waiting.size;
  }

  /**
   * Wakes waiting streams, a connection at a time, while under the limit, for at most SLICE_MS: each
   * builds and copies a response of up to megabytes, and one sent response can make room for many
   * (110 ms of building in one go was seen in a connect storm). The rest go after the event loop's turn.
   */
  private wake(): void {
    if (this.wakeScheduled) return;
    const until = performance.now() + SLICE_MS;
    while (!this.closed && this.onTheirWay < this.options.maxBytes) {
      if (performance.now() >= until) {
        this.wakeScheduled = true;
        setImmediate(() => { this.wakeScheduled = false; this.wake(); });
        return;
      }
      const resume = this.waiting.shift();
      if (!resume) return;
      resume(); // builds (and holds) synchronously, so the loop sees what it took
    }
  }
}
