// The table of learned self addresses as it is stored in shared data: one record per address,
// 32 bytes little endian: the address (hi, lo), when it was last seen and when it expires (the
// host's clock, nanoseconds). Expiry is stored rather than derived so that filters with
// different learned_ttl_seconds agree on which entries are live. Pure (no host calls), so
// wasm/harness tests it with made-up times.

export const RECORD: i32 = 32;
/** Bounds the table (2 KiB) whatever the traffic: a node has a handful of addresses. */
export const MAX_ENTRIES: i32 = 64;
const SECOND: u64 = 1_000_000_000;

// @ts-ignore: decorator
@inline function field(p: usize, i: i32, f: i32): u64 { return load<u64>(p + <usize>(i * RECORD + f * 8)); }
export function entryHi(p: usize, i: i32): u64 { return field(p, i, 0); }
export function entryLo(p: usize, i: i32): u64 { return field(p, i, 1); }
export function lastSeen(p: usize, i: i32): u64 { return field(p, i, 2); }
export function expiresAt(p: usize, i: i32): u64 { return field(p, i, 3); }

export function entries(len: i32): i32 { return len / RECORD; }

export function isLive(p: usize, i: i32, now: u64): bool { return now < expiresAt(p, i); }

/** The entry of (hi, lo) in the table at [p, p + len), live or not; -1 when absent. */
export function indexOf(p: usize, len: i32, hi: u64, lo: u64): i32 {
  const n = entries(len);
  for (let i = 0; i < n; i++) if (entryHi(p, i) == hi && entryLo(p, i) == lo) return i;
  return -1;
}

export function countLive(p: usize, len: i32, now: u64): i32 {
  let live = 0;
  const n = entries(len);
  for (let i = 0; i < n; i++) if (isLive(p, i, now)) live++;
  return live;
}

/**
 * Whether a hit at `now` is worth a write: it would move entry i's expiry by at least a second
 * (a tenth of the TTL when that is shorter). A burst of hits on a busy address writes shared
 * data at most once a second instead of once per connection.
 */
export function worthRefreshing(p: usize, i: i32, now: u64, ttl: u64): bool {
  const step = min(SECOND, ttl / 10);
  return now + ttl >= expiresAt(p, i) + step;
}

function put(out: usize, n: i32, hi: u64, lo: u64, seen: u64, expires: u64): void {
  const q = out + <usize>(n * RECORD);
  store<u64>(q, hi);
  store<u64>(q, lo, 8);
  store<u64>(q, seen, 16);
  store<u64>(q, expires, 24);
}

/**
 * Writes to `out` (room for MAX_ENTRIES records) the table at [p, p + len) without its expired
 * entries and, when `touch`, with (hi, lo) seen at `now`: its expiry extended to now + ttl (never
 * shortened), or the address added, in place of the entry expiring first when the table is full.
 * Returns the new length in bytes.
 */
export function rewrite(p: usize, len: i32, now: u64, out: usize, touch: bool, hi: u64, lo: u64, ttl: u64): i32 {
  const n = entries(len);
  let kept = 0;
  let touched = false;
  for (let i = 0; i < n && kept < MAX_ENTRIES; i++) {
    if (!isLive(p, i, now)) continue;
    const h = entryHi(p, i), l = entryLo(p, i);
    if (touch && h == hi && l == lo) {
      put(out, kept, h, l, now, max(expiresAt(p, i), now + ttl));
      touched = true;
    } else {
      put(out, kept, h, l, lastSeen(p, i), expiresAt(p, i));
    }
    kept++;
  }
  if (touch && !touched) {
    let slot = kept;
    if (kept == MAX_ENTRIES) {
      slot = 0;
      for (let i = 1; i < kept; i++) if (expiresAt(out, i) < expiresAt(out, slot)) slot = i;
    } else {
      kept++;
    }
    put(out, slot, hi, lo, now, now + ttl);
  }
  return kept * RECORD;
}
