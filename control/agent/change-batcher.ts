// A burst of change notices (`ip monitor` prints a line per address, so adding 20 addresses is 20 lines)
// as one asynchronous re-read: `batchMs` after the burst goes quiet, but no later than `maxBatchMs` after
// its first notice (control/common/coalescer.ts). Never two re-reads at once: notices that arrive during
// one are answered by another right after it, since it may have read the state before they happened.
import { Coalescer } from "../common/coalescer.ts";

export interface BatchTiming {
  batchMs: number;
  maxBatchMs: number;
}

export class ChangeBatcher {
  private readonly coalescer: Coalescer;
  private running?: Promise<void>;
  private again = false;
  private stopped = false;

  /** `run` reports its own failures; a rejection is ignored (the next notice runs it again). */
  constructor(private readonly run: () => Promise<void>, timing: BatchTiming) {
    this.coalescer = new Coalescer(() => this.start(), { quietMs: timing.batchMs, maxWaitMs: timing.maxBatchMs });
  }

  /** Something changed: a run follows, batched with the notices around it. */
  notice(): void {
    this.coalescer.poke();
  }

  /** No further runs; resolves once a run in progress has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.coalescer.stop();
    await this.running;
  }

  private start(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    // Cleared in a callback, not at drain's end: a run that throws before its first await would end drain
    // before this assignment. Nothing else can run in between (start() is only called from a timer).
    this.running = this.drain().then(() => { this.running = undefined; });
  }

  private async drain(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.run();
      } catch {
        // see the constructor
      }
    } while (this.again && !this.stopped);
  }
}
