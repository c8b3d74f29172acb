// Delays between attempts after failures: doubling from `initialMs` up to `maxMs`, each one drawn at
// random from its upper half ("equal jitter"). Many control-plane replicas that lost the same API
// server then come back spread out instead of all at once, yet none waits much less than planned.

export interface BackoffTiming {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffTiming> = Object.freeze({ initialMs: 200, maxMs: 30_000 });

export class Backoff {
  private ceilingMs: number;

  constructor(private readonly timing: BackoffTiming = DEFAULT_BACKOFF, private readonly random: () => number = Math.random) {
    this.ceilingMs = timing.initialMs;
  }

  /** The delay before the next attempt; each call doubles the one after. */
  next(): number {
    const ceiling = this.ceilingMs;
    this.ceilingMs = Math.min(this.timing.maxMs, ceiling * 2);
    return Math.round(ceiling / 2 + this.random() * (ceiling / 2));
  }

  /** After a success: the next failure waits `initialMs` again. */
  reset(): void {
    this.ceilingMs = this.timing.initialMs;
  }
}
