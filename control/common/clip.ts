// The one place text is clipped. Values a client or an input chose (node ids, error details, registry
// errors) are echoed only in part wherever they are kept, logged or answered, and lists that an input
// can make as long as it likes are capped: the first items, each clipped, then one "and N more" line.
// Capping an already capped list keeps the true count: its "and N more" line is folded into the new one.

/** What a log line echoes of one value, by default. */
export const ECHO_CHARS = 300;
/** Items of a capped list (errors, warnings), by default: HTTP answers and log lines. */
export const MAX_ITEMS = 20;
/** Characters of one item of a capped list, by default. */
export const MAX_ITEM_CHARS = 500;

const MORE = /^and (\d+) more$/;

export const moreLine = (n: number): string => `and ${n} more`;

/** `s` cut to `max` characters, with a marker saying how much was cut; never splits a surrogate pair. */
export function clip(s: string, max = ECHO_CHARS): string {
  if (s.length <= max) return s;
  const keep = /[\uD800-\uDBFF]/.test(s[max - 1]!) ? max - 1 : max;
  return `${s.slice(0, keep)}… [${s.length - keep} more characters]`;
}

/** `s` as a JSON string, cut to `max` characters and followed by its length when cut: how reports quote a client's value. */
export function quote(s: string, max: number): string {
  return JSON.stringify(s.length <= max ? s : `${s.slice(0, max)}…`) + (s.length > max ? ` (${s.length} characters)` : "");
}

/** At most `max` items, each clipped to `maxChars`, then "and N more" if anything was left out. */
export function capList(items: readonly string[], max = MAX_ITEMS, maxChars = MAX_ITEM_CHARS): string[] {
  let real = items.length;
  let folded = 0;
  const last = real > 0 ? MORE.exec(items[real - 1]!) : null;
  if (last) {
    folded = Number(last[1]);
    real--;
  }
  const out: string[] = [];
  for (let i = 0; i < real && i < max; i++) out.push(clip(items[i]!, maxChars));
  const more = folded + Math.max(0, real - max);
  if (more > 0) out.push(moreLine(more));
  return out;
}
