// Configuration text in log lines is clipped: a plugin configuration (or node metadata, node id,
// root id) can be megabytes, and echoing it would flood Envoy's log on every bad update.
import { decimal } from "./decimal";

export const CLIP_BYTES: i32 = 200;

/**
 * `s` when its UTF-8 form is at most `max` bytes; otherwise its longest prefix of at most `max`
 * bytes that ends on a whole character, followed by "…(N more bytes)".
 */
export function clip(s: string, max: i32 = CLIP_BYTES): string {
  const total = String.UTF8.byteLength(s);
  if (total <= max) return s;
  // Count the way String.UTF8 encodes: a surrogate pair is 4 bytes, a lone surrogate 3.
  let bytes = 0, i = 0;
  const n = s.length;
  while (i < n) {
    const c = s.charCodeAt(i);
    let size = 3, units = 1;
    if (c < 0x80) size = 1;
    else if (c < 0x800) size = 2;
    else if ((c & 0xfc00) == 0xd800 && i + 1 < n && (s.charCodeAt(i + 1) & 0xfc00) == 0xdc00) { size = 4; units = 2; }
    if (bytes + size > max) break;
    bytes += size;
    i += units;
  }
  return s.substring(0, i) + "…(" + decimal(total - bytes) + " more bytes)";
}
