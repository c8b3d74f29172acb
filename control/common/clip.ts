// Lists that an input can make as long as it likes (errors, warnings) are capped wherever they are kept,
// logged or answered: the first `max` items, each clipped, then one "and N more" line. Capping an
// already capped list keeps the true count: its "and N more" line is folded into the new one.

const MORE = /^and (\d+) more$/;

export const moreLine = (n: number): string => `and ${n} more`;

/** `s` cut to `maxChars`, with a marker saying how much was cut; never splits a surrogate pair. */
export function clipText(s: string, maxChars: number): string {
  if (s.length <= maxChars) return s;
  const keep = /[\uD800-\uDBFF]/.test(s[maxChars - 1]!) ? maxChars - 1 : maxChars;
  return `${s.slice(0, keep)}… [${s.length - keep} more characters]`;
}

/** At most `max` items, each clipped to `maxChars`, then "and N more" if anything was left out. */
export function capList(items: readonly string[], max: number, maxChars: number): string[] {
  let real = items.length;
  let folded = 0;
  const last = real > 0 ? MORE.exec(items[real - 1]!) : null;
  if (last) {
    folded = Number(last[1]);
    real--;
  }
  const out: string[] = [];
  for (let i = 0; i < real && i < max; i++) out.push(clipText(items[i]!, maxChars));
  const more = folded + Math.max(0, real - max);
  if (more > 0) out.push(moreLine(more));
  return out;
}
