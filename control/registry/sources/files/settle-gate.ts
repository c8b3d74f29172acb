// Holds a suspicious reload back until the files have stayed unchanged for a settle period: a partial
// write is followed by the rest of the write (a different text, which ends the hold), while a real
// removal stays as it is and applies once the period has passed. Any change restarts the clock.
import type { HeldChange } from "../../source.ts";

interface Held {
  texts: ReadonlyMap<string, string>;
  notice: HeldChange;
  timer: NodeJS.Timeout;
  /** The settle period has passed with these texts unchanged. */
  due: boolean;
}

export class SettleGate {
  private held?: Held;

  /**
   * @param onHeld told when a reload is held (again, with a new clock, when the texts change)
   * @param recheck re-reads the files when the period has passed; the read decides through pass()
   */
  constructor(private readonly settleMs: number, private readonly onHeld: (held: HeldChange) => void, private readonly recheck: () => void) {}

  /** For a reload with `reasons` against it: true once the same texts have been seen for the whole settle period. */
  pass(texts: ReadonlyMap<string, string>, reasons: string[]): boolean {
    if (this.held && sameTexts(this.held.texts, texts)) return this.held.due;
    this.release();
    const since = Date.now();
    const held: Held = {
      texts,
      notice: { reasons, since: new Date(since).toISOString(), appliesAt: new Date(since + this.settleMs).toISOString() },
      timer: setTimeout(() => {
        held.due = true;
        this.recheck();
      }, this.settleMs),
      due: false,
    };
    held.timer.unref();
    this.held = held;
    this.onHeld(held.notice);
    return false;
  }

  /** Forgets the held reload: a later one applied, failed, or the source stopped. */
  release(): void {
    if (this.held) clearTimeout(this.held.timer);
    this.held = undefined;
  }
}

function sameTexts(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [file, text] of a) if (b.get(file) !== text) return false;
  return true;
}
