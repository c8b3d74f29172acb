// One warn line per destination per minute, across all worker threads: the time of the last
// line is kept in shared data and claimed with compare-and-swap, so a loop storm of thousands
// of connections a second writes one line a minute.
import { getSharedData, setSharedData, releaseResult, resultPtr, resultLen, sharedCas, nowNanos, OK } from "./host";

const MINUTE: u64 = 60_000_000_000;
const stamp = new ArrayBuffer(8);

export function shouldLog(destination: string): bool {
  const key = String.UTF8.encode("loop_guard.log/" + destination);
  const now = nowNanos();
  let cas: u32 = 0;
  if (getSharedData(key) == OK) {
    const last = resultLen == 8 ? load<u64>(resultPtr) : 0;
    releaseResult();
    if (now >= last && now - last < MINUTE) return false;
    cas = sharedCas;
  }
  store<u64>(changetype<usize>(stamp), now);
  return setSharedData(key, changetype<usize>(stamp), 8, cas) == OK;
}
