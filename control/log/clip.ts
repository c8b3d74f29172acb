// Values a client chose (node ids, error details, addresses) are echoed into log lines only in part,
// so one request cannot write more than a few hundred bytes per value.
import { clipText } from "../common/clip.ts";

/** The default number of characters a log line echoes of one value. */
export const ECHO_CHARS = 300;

/** `s` cut to `max` characters (clipText's marker; never splits a surrogate pair). */
export const clip = (s: string, max = ECHO_CHARS): string => clipText(s, max);
