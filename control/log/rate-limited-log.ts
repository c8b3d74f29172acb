// Log lines counted per source (a proxy, a peer address): at most `lines` per `intervalMs` from one
// source, then one line saying how many more were suppressed. A client that provokes a line per
// request (a NACK storm, a stream of refused requests) fills the log at a bounded rate, and the
// sources remembered are bounded too: past maxSources, new ones share one budget.

export interface LogRate {
  /** Lines one source may write per interval. */
  lines: number;
  intervalMs: number;
  /** Sources counted separately; the rest share one budget. */
  maxSources: number;
}

export const DEFAULT_LOG_RATE: Readonly<LogRate> = Object.freeze({ lines: 20, intervalMs: 10_000, maxSources: 10_000 });

/** The shared budget of sources past maxSources. */
const OTHER_SOURCES = "other sources";

interface Window {
  startedAt: number;
  written: number;
  suppressed: number;
}

export class RateLimitedLog {
  private readonly windows = new Map<string, Window>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly out: (line: string) => void,
    private readonly rate: LogRate = DEFAULT_LOG_RATE,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Writes `line` unless `source` has used up its lines for the current interval. */
  line(source: string, line: string): void {
    const t = this.now();
    let key = source;
    let w = this.windows.get(key);
    if (w && t - w.startedAt >= this.rate.intervalMs) {
      this.close(key, w);
      w = undefined;
    }
    if (!w) {
      if (this.windows.size >= this.rate.maxSources) {
        key = OTHER_SOURCES;
        w = this.windows.get(key);
      }
      if (!w) {
        w = { startedAt: t, written: 0, suppressed: 0 };
        this.windows.set(key, w);
        this.startSweeping();
      }
    }
    if (w.written < this.rate.lines) {
      w.written++;
      this.out(line);
    } else {
      w.suppressed++;
    }
  }

  /** Reports what is still suppressed and stops the timer. */
  stop(): void {
    for (const [key, w] of this.windows) this.close(key, w);
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private close(key: string, w: Window): void {
    this.windows.delete(key);
    if (w.suppressed > 0) {
      this.out(`${key}: ${w.suppressed} more log lines suppressed (at most ${this.rate.lines} per ${this.rate.intervalMs / 1000} s per source)`);
    }
  }

  /** Ends the windows that are over, so a source that went quiet still gets its "suppressed" line. */
  private startSweeping(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      const t = this.now();
      for (const [key, w] of this.windows) if (t - w.startedAt >= this.rate.intervalMs) this.close(key, w);
      if (this.windows.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    }, this.rate.intervalMs);
    this.timer.unref();
  }
}
