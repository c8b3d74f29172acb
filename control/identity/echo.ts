// How identity reports quote a value a client sent: as JSON, cut to `max` characters with its length
// when cut, so a report never echoes more than a short prefix of a long value.

export function echoValue(s: string, max: number): string {
  return JSON.stringify(s.length <= max ? s : `${s.slice(0, max)}…`) + (s.length > max ? ` (${s.length} characters)` : "");
}
