// Memory a test process holds, measured after full collections. V8 collects lazily: after a few hundred
// 1 MB request bodies the heap can hold hundreds of MB of garbage (RSS +500 MB seen) that one collection
// frees, so RSS or an uncollected heap says little about what a control plane retains.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** JS heap plus ArrayBuffers still reachable after two full collections. */
export function retainedBytes(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** The JS heap alone still reachable after two full collections. */
export function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}
