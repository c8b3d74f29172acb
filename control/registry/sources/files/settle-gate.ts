// Holds a suspicious reload back until the files have stayed unchanged for a settle period: a partial
// write is followed by the rest of the write (a different text, which ends the hold), while a real
// removal stays as it is and applies once the period has passed. Any change restarts the clock. A
// reload that needs a confirmation has no clock: it applies when confirm() is called while the files
// are still as they were when it was held.
import type { HeldChange } from "../../source.ts";

interface Held {
  texts: ReadonlyMap<string, string>;
  notice: HeldChange;
  timer?: NodeJS.Timeout;
  /** The settle period has passed with these texts unchanged, or the change was confirmed. */
  due: boolean;
}

export class SettleGate {
  private held?: Held;

  /**
   * @param onHeld told when a reload is held (again, with a new clock, when the texts change)
   * @param recheck re-reads the files when the period has passed; the read decides through pass()
   */
  constructor(private readonly settleMs: number, private readonly onHeld: (held: HeldChange) => void, private readonly recheck: () => void) {}

  /**
   * For a reload with `reasons` against it: true once the same texts have been seen for the whole
   * settle period or, when it needs a confirmation (`confirm`), once it was confirmed.
   */
  pass(texts: ReadonlyMap<string, string>, reasons: string[], confirm = false): boolean {
    if (this.held && sameTexts(this.held.texts, texts)) return this.held.due;
    this.release();
    const since = Date.now();
    const held: Held = {
      texts,
      notice: { reasons, since: new Date(since).toISOString(), ...(confirm ? {} : { appliesAt: new Date(since + this.settleMs).toISOString() }) },
      due: false,
    };
    if (!confirm) {
      held.timer = setTimeout(() => {
        held.due = true;
        this.recheck();
      }, this.settleMs);
      held.timer.unref();
    }
    this.held = held;
    this.onHeld(held.notice);
    return false;
  }

  /** The held reload that waits for a confirmation is to apply: true if there was one. */
  confirm(): boolean {
    if (!this.held || this.held.notice.appliesAt !== undefined) return false;
    this.held.due = true;
    return true;
  }

  /** Forgets the held reload: a later one applied, failed, or the source stopped. */
  release(): void {
    if (this.held?.timer) clearTimeout(this.held.timer);
    this.held = undefined;
  }
}

function sameTexts(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [file, text] of a) if (b.get(file) !== text) return false;
  return true;
}
