// A log that says at most `perWindow` lines per window and then how many it held back, so a flood of
// identical events (a misconfigured or hostile client retrying) cannot flood the log. The events are
// still counted elsewhere (metrics).

export class LimitedLog {
  private windowStart = 0;
  private said = 0;
  private held = 0;

  constructor(private readonly log: (line: string) => void, private readonly what: string, private readonly perWindow = 10, private readonly windowMs = 60_000, private readonly now = () => Date.now()) {}

  line(text: string): void {
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      if (this.held > 0) this.log(`${this.held} more ${this.what} not logged in the last ${Math.round((t - this.windowStart) / 1000)} s`);
      this.windowStart = t;
      this.said = 0;
      this.held = 0;
    }
    if (this.said < this.perWindow) {
      this.said++;
      this.log(text);
    } else {
      this.held++;
    }
  }
}
