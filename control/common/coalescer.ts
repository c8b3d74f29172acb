// Turns a burst of notices into one call: `fn` runs `quietMs` after the last poke(), but never later
// than `maxWaitMs` after the first poke of the burst, so a steady stream of changes (pods churning, a
// log file rewritten beside registry files) is still reported several times a second instead of never.

export interface CoalesceTiming {
  quietMs: number;
  maxWaitMs: number;
}

export class Coalescer {
  private timer?: NodeJS.Timeout;
  private firstPokeAt = 0;
  private stopped = false;

  constructor(private readonly fn: () => void, private readonly timing: CoalesceTiming) {}

  poke(): void {
    if (this.stopped) return;
    const now = Date.now();
    if (this.timer === undefined) this.firstPokeAt = now;
    else clearTimeout(this.timer);
    const due = Math.min(now + this.timing.quietMs, this.firstPokeAt + this.timing.maxWaitMs);
    this.timer = setTimeout(() => this.fire(), Math.max(0, due - now));
  }

  /** Runs a pending call now (none pending: nothing happens). */
  flush(): void {
    if (this.timer !== undefined) this.fire();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private fire(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.stopped) this.fn();
  }
}
