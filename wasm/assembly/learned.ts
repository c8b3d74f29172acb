// The learned layer: addresses proven to be this node's own because a connection came from
// and went to the same IP (the kernel picks the destination as source when a host connects
// to one of its own addresses). Kept in proxy-wasm shared data, one key per address, so every
// worker thread's VM and every later connection sees them.
import { getSharedData, setSharedString, releaseResult, OK } from "./host";
import { formatIp } from "./ip";

const PREFIX = "loop_guard.learned/";
// The key is PREFIX + 32 hex digits of the address, rebuilt in place: no allocation per lookup.
const key = String.UTF8.encode(PREFIX + "00000000000000000000000000000000");
const HEX_DIGITS = String.UTF8.encode("0123456789abcdef");

function fillKey(hi: u64, lo: u64): ArrayBuffer {
  const k = changetype<usize>(key) + PREFIX.length;
  const hex = changetype<usize>(HEX_DIGITS);
  for (let i = 0; i < 16; i++) {
    store<u8>(k + i, load<u8>(hex + <usize>((hi >>> (<u64>(60 - 4 * i))) & 15)));
    store<u8>(k + 16 + i, load<u8>(hex + <usize>((lo >>> (<u64>(60 - 4 * i))) & 15)));
  }
  return key;
}

export function isLearned(hi: u64, lo: u64): bool {
  if (getSharedData(fillKey(hi, lo)) != OK) return false;
  releaseResult();
  return true;
}

/** Records the address; the value is its text form, for whoever inspects shared data. */
export function learn(hi: u64, lo: u64): bool {
  return setSharedString(fillKey(hi, lo), formatIp(hi, lo)) == OK;
}
