// The current connection's destination and whether its source is that same address (the kernel
// picks the destination as source when a host connects to one of its own addresses). Envoy charges
// about 5 us per property read, so the HTTP filter, which runs per request, remembers them per
// connection: a keep-alive connection carries many requests, its addresses never change, and its
// connection.id (about 4 us) replaces two address reads. The table is direct-mapped by that id (Envoy
// numbers connections once per process, so an entry is never wrong, only evicted) and per VM.
import { getProperty, getPropertyInt, propertyPath, releaseResult, resultPtr, resultLen } from "./host";
import { parseAddress, ipHi, ipLo, ipPort } from "./ip";

export const DESTINATION = propertyPath("destination\0address");
export const SOURCE = propertyPath("source\0address");
const CONNECTION_ID = propertyPath("connection\0id");

/** What the last read found: the destination (IPv4 mapped), its port (-1: none), source == destination. */
export let destinationHi: u64 = 0;
export let destinationLo: u64 = 0;
export let destinationPort: i32 = -1;
export let selfSourced: bool = false;

/** Reads both addresses; false when there is no parsable destination (nothing to decide on). */
export function readAddresses(): bool {
  if (!getProperty(DESTINATION)) return false;
  const parsed = parseAddress(resultPtr, resultLen);
  releaseResult();
  if (!parsed) return false;
  destinationHi = ipHi; destinationLo = ipLo; destinationPort = ipPort;
  selfSourced = false;
  if (getProperty(SOURCE)) {
    selfSourced = parseAddress(resultPtr, resultLen) && ipHi == destinationHi && ipLo == destinationLo;
    releaseResult();
  }
  return true;
}

// Slot: connection id + 1 (0: empty), destination hi and lo, port, source == destination.
const SLOTS: u64 = 256;
const SLOT_BYTES: usize = 32;
const table = new ArrayBuffer(<i32>(SLOTS * SLOT_BYTES));

/** readAddresses() for the current connection, from the table when this connection was read before. */
export function connectionAddresses(): bool {
  const id = getPropertyInt(CONNECTION_ID, -1);
  if (id < 0) return readAddresses();
  const slot = changetype<usize>(table) + <usize>((<u64>id % SLOTS) * SLOT_BYTES);
  const key = <u64>id + 1;
  if (load<u64>(slot) == key) {
    destinationHi = load<u64>(slot, 8);
    destinationLo = load<u64>(slot, 16);
    destinationPort = load<i32>(slot, 24);
    selfSourced = load<i32>(slot, 28) != 0;
    return true;
  }
  if (!readAddresses()) return false;
  store<u64>(slot, key);
  store<u64>(slot, destinationHi, 8);
  store<u64>(slot, destinationLo, 16);
  store<i32>(slot, destinationPort, 24);
  store<i32>(slot, selfSourced ? 1 : 0, 28);
  return true;
}
