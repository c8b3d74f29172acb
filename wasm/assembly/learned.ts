// The learned layer: addresses proven to be this node's own because a connection came from
// and went to the same IP (the kernel picks the destination as source when a host connects
// to one of its own addresses). An address can move to another node, so each one expires
// learned_ttl_seconds after its last hit. All of them live in one shared-data table
// (learned_table.ts), so every worker thread's VM sees them and the gauge can count them; it
// is rewritten with compare-and-swap, dropping expired entries each time.
import {
  getSharedData, setSharedData, releaseResult, resultPtr, resultLen, sharedCas, nowNanos, setMetric,
  logInfo, OK,
} from "./host";
import { formatIp } from "./ip";
import {
  RECORD, MAX_ENTRIES, entries, entryHi, entryLo, lastSeen, isLive, indexOf, countLive,
  worthRefreshing, rewrite,
} from "./learned_table";
import { learnedAddresses } from "./metrics";
import { decimal } from "./decimal";

const KEY = String.UTF8.encode("loop_guard.learned");
const table = new ArrayBuffer(MAX_ENTRIES * RECORD);
// Compare-and-swap retries; contention needs several threads rewriting in the same instant.
const ATTEMPTS = 8;

/**
 * Stores the rewrite of the table read at [p, p + len) (see rewrite()) if nobody wrote it since
 * (`cas`; 0 writes unconditionally). On success sets the gauge and logs the entries it dropped.
 */
function store(p: usize, len: i32, cas: u32, now: u64, touch: bool, hi: u64, lo: u64, ttl: u64): u32 {
  const out = changetype<usize>(table);
  const newLen = rewrite(p, len, now, out, touch, hi, lo, ttl);
  const r = setSharedData(KEY, out, newLen, cas);
  if (r != OK) return r;
  setMetric(learnedAddresses, <u64>entries(newLen));
  const n = entries(len);
  for (let i = 0; i < n; i++) {
    if (isLive(p, i, now)) continue;
    logInfo("loop_guard: learned self address " + formatIp(entryHi(p, i), entryLo(p, i)) +
      " expired (last seen " + decimal(<i64>((now - lastSeen(p, i)) / 1_000_000_000)) + " s ago)");
  }
  return OK;
}

/**
 * Records that a connection came from (hi, lo) to itself: adds the address or extends its
 * expiry to now + ttl. Returns true when it was not a live learned address before.
 */
export function learnSelf(hi: u64, lo: u64, ttl: u64): bool {
  let learned = false;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const exists = getSharedData(KEY) == OK;
    const p = exists ? resultPtr : 0, len = exists ? resultLen : 0, cas = exists ? sharedCas : 0;
    const now = nowNanos();
    const i = indexOf(p, len, hi, lo);
    const known = i >= 0 && isLive(p, i, now);
    // (Release only what this get returned: after a miss, resultPtr may be the caller's.)
    if (known && !worthRefreshing(p, i, now, ttl)) { if (exists) releaseResult(); break; }
    const r = store(p, len, cas, now, true, hi, lo, ttl);
    if (exists) releaseResult();
    if (r == OK && !known) learned = true;
    // Creating the table (cas 0) cannot detect a thread creating it at the same time: read it
    // again, and add the address once more if the other write replaced ours.
    if (r == OK && exists) break;
  }
  return learned;
}

/** Whether (hi, lo) is a live learned address. A hit extends its expiry; an expired entry is dropped. */
export function matchLearned(hi: u64, lo: u64, ttl: u64): bool {
  if (getSharedData(KEY) != OK) return false;
  const p = resultPtr, len = resultLen, cas = sharedCas;
  const i = indexOf(p, len, hi, lo);
  if (i < 0) { releaseResult(); return false; }
  const now = nowNanos();
  const live = isLive(p, i, now);
  // One attempt: a lost compare-and-swap means another thread rewrote the table just now, and
  // the next hit tries again.
  if (!live || worthRefreshing(p, i, now, ttl)) store(p, len, cas, now, live, hi, lo, ttl);
  releaseResult();
  return live;
}

/** Drops expired entries and sets the gauge to the number of live ones (from the timer). */
export function sweep(): void {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    if (getSharedData(KEY) != OK) { setMetric(learnedAddresses, 0); return; }
    const p = resultPtr, len = resultLen, cas = sharedCas;
    const now = nowNanos();
    const live = countLive(p, len, now);
    if (live == entries(len)) {
      releaseResult();
      setMetric(learnedAddresses, <u64>live);
      return;
    }
    const r = store(p, len, cas, now, false, 0, 0, 0);
    releaseResult();
    if (r == OK) return;
  }
}
