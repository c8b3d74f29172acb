// Bytes of responses on their way, across every stream of one xDS server. When a thousand proxies
// connect to a large mesh at once, each first answer is megabytes; built and handed to grpc-js all
// together they would sit in memory side by side (gigabytes) while the connections drain them. The
// budget lets a stream build its next response only while the bytes on their way are under the
// limit; the others wait, in the order they came, and go as bytes are sent. A stream that stops
// reading cannot hold the budget: its bytes are let go after `stallMs` (its send queue still bounds
// what it keeps: one response per type). 64 MiB: with 1,000 proxies connecting to a 10,000-service
// mesh it held the control plane at 846 MB where 256 MiB gave 1.56 GB, and connecting took no longer.

export interface SendBudgetOptions {
  /** Bytes of built responses not yet taken by the connections, over all streams. */
  maxBytes: number;
  /** A response not sent within this time no longer counts against the budget. */
  stallMs: number;
}

export const DEFAULT_SEND_BUDGET: Readonly<SendBudgetOptions> = Object.freeze({ maxBytes: 64 * 2 ** 20, stallMs: 5000 });

export class SendBudget {
  private onTheirWay = 0;
  /** Streams waiting to build, in arrival order (a Set keeps it and drops repeats). */
  private readonly waiting = new Set<() => void>();

  constructor(readonly options: SendBudgetOptions = DEFAULT_SEND_BUDGET) {}

  /** Whether a stream may build a response now; if not, `resume` is called once when it may. */
  admit(resume: () => void): boolean {
    if (this.onTheirWay < this.options.maxBytes) return true;
    this.waiting.add(resume);
    return false;
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

  private wake(): void {
    for (const resume of this.waiting) {
      if (this.onTheirWay >= this.options.maxBytes) return;
      this.waiting.delete(resume);
      resume(); // builds (and holds) synchronously, so the loop sees what it took
    }
  }
}
