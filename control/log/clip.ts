// Values a client chose (node ids, error details, addresses) are echoed into log lines only in part,
// so one request cannot write more than a few hundred bytes per value.

/** The default number of characters a log line echoes of one value. */
export const ECHO_CHARS = 300;

/** `s` cut to `max` characters, with a marker saying how much was cut; never splits a surrogate pair. */
export function clip(s: string, max = ECHO_CHARS): string {
  if (s.length <= max) return s;
  const keep = /[\uD800-\uDBFF]/.test(s[max - 1]!) ? max - 1 : max;
  return `${s.slice(0, keep)}… [${s.length - keep} more characters]`;
}
