// Host calls the SDK does not wrap the way we need: its wrappers abort the VM on any
// non-Ok result, and a missing property or metric must never take Envoy's filter down.
import * as imports from "@solo-io/proxy-runtime/imports";

const METRIC_COUNTER: i32 = 0;
const scratchU32 = new ArrayBuffer(4);

export function defineCounter(name: string): u32 {
  const buf = String.UTF8.encode(name);
  const out = changetype<usize>(scratchU32);
  if (imports.proxy_define_metric(METRIC_COUNTER, changetype<usize>(buf), buf.byteLength, out) != 0) return 0;
  return load<u32>(out);
}

export function incrementMetric(id: u32, by: i64): void {
  if (id != 0) imports.proxy_increment_metric(id, by);
}

const BUFFER_PLUGIN_CONFIGURATION: i32 = 7;
const scratchPtr = new ArrayBuffer(sizeof<usize>());
const scratchSize = new ArrayBuffer(sizeof<usize>());

// The SDK's RootContext.onConfigure passes the size as a pointer (a bug in 0.1.8);
// this reads the plugin configuration ourselves. Returns "" when there is none.
export function pluginConfiguration(size: u32): string {
  if (size == 0) return "";
  const p = changetype<usize>(scratchPtr);
  const s = changetype<usize>(scratchSize);
  if (imports.proxy_get_buffer_bytes(BUFFER_PLUGIN_CONFIGURATION, 0, size, p, s) != 0) return "";
  const ptr = load<usize>(p);
  const len = load<usize>(s);
  const text = String.UTF8.decodeUnsafe(ptr, len);
  heap.free(ptr);
  return text;
}
