// Host calls, bound by hand. @solo-io/proxy-runtime 0.1.8 wraps them in CHECK_RESULT, which
// aborts (and so kills) the VM on any non-Ok result such as a missing property or header; its
// shared-data wrappers pass wrong pointers and its proxy_set_buffer_status is bound to the wrong
// host name. Here every call returns its WasmResult (or null) and never aborts.
import * as imports from "@solo-io/proxy-runtime/imports";

export const OK: u32 = 0;

// Out-parameters the host writes: a pointer it allocated through our exported malloc, and a size.
const outPtr = new ArrayBuffer(sizeof<usize>());
const outLen = new ArrayBuffer(sizeof<usize>());
const outU32 = new ArrayBuffer(8);

/** The bytes of the last successful get*: valid until releaseResult(). */
export let resultPtr: usize = 0;
export let resultLen: i32 = 0;
/** The CAS of the last successful getSharedData. */
export let sharedCas: u32 = 0;
/**
 * Whether the last get*String found its value (they return "" otherwise). Strings are never
 * nullable here: assemblyscript 0.17 double-releases `s === null ? "" : s!` (a refcount bug
 * that aborts the VM), so this module keeps nullable strings away from the filter code.
 */
export let found: bool = false;

function takeResult(): void {
  resultPtr = load<usize>(changetype<usize>(outPtr));
  resultLen = <i32>load<usize>(changetype<usize>(outLen));
}

/** Frees a buffer the host allocated (malloc exports a retained ArrayBuffer). */
export function releaseResult(): void {
  if (resultPtr != 0) __release(resultPtr);
  resultPtr = 0;
  resultLen = 0;
}

function resultString(): string {
  const s = String.UTF8.decodeUnsafe(resultPtr, resultLen);
  releaseResult();
  return s;
}

/** A property path: tokens joined by NUL ("node\0metadata\0INSTANCE_IPS"). */
export function propertyPath(tokens: Array<string>): ArrayBuffer {
  return String.UTF8.encode(tokens.join("\0"));
}

/** proxy_get_property into resultPtr/resultLen; false (nothing to release) when absent. */
export function getProperty(path: ArrayBuffer): bool {
  store<usize>(changetype<usize>(outPtr), 0);
  store<usize>(changetype<usize>(outLen), 0);
  if (imports.proxy_get_property(changetype<usize>(path), path.byteLength,
    changetype<usize>(outPtr), changetype<usize>(outLen)) != OK) return false;
  takeResult();
  return true;
}

export function getPropertyString(path: ArrayBuffer): string {
  found = getProperty(path);
  return found ? resultString() : "";
}

/** An int64 property (8 bytes, little endian); `otherwise` when absent or not 8 bytes. */
export function getPropertyInt(path: ArrayBuffer, otherwise: i64): i64 {
  if (!getProperty(path)) return otherwise;
  const v = resultLen == 8 ? load<i64>(resultPtr) : otherwise;
  releaseResult();
  return v;
}

// Metrics. proxy-wasm metric types: counter 0, gauge 1, histogram 2. Envoy never hands out
// id 0 (ids carry the type in their low two bits and start at 4 + type).
const METRIC_COUNTER: i32 = 0;
const METRIC_GAUGE: i32 = 1;

function defineMetric(type: i32, name: string): u32 {
  const buf = String.UTF8.encode(name);
  const out = changetype<usize>(outU32);
  if (imports.proxy_define_metric(type, changetype<usize>(buf), buf.byteLength, out) != OK) return 0;
  return load<u32>(out);
}
export function defineCounter(name: string): u32 { return defineMetric(METRIC_COUNTER, name); }
export function defineGauge(name: string): u32 { return defineMetric(METRIC_GAUGE, name); }

export function incrementMetric(id: u32, by: i64): void {
  if (id != 0) imports.proxy_increment_metric(id, by);
}

/** Sets a gauge (Envoy: proxy_record_metric on a gauge is set()). */
export function setMetric(id: u32, value: u64): void {
  if (id != 0) imports.proxy_record_metric(id, value);
}

// Plugin configuration. (The SDK's RootContext.onConfigure passes the size as a pointer.)
const BUFFER_PLUGIN_CONFIGURATION: i32 = 7;

/** The plugin configuration as text; "" when there is none. */
export function pluginConfiguration(size: u32): string {
  if (size == 0) return "";
  store<usize>(changetype<usize>(outPtr), 0);
  store<usize>(changetype<usize>(outLen), 0);
  if (imports.proxy_get_buffer_bytes(BUFFER_PLUGIN_CONFIGURATION, 0, size,
    changetype<usize>(outPtr), changetype<usize>(outLen)) != OK) return "";
  takeResult();
  return resultString();
}

// Shared data (one store per vm_id, shared by every worker thread's VM).

/** proxy_get_shared_data into resultPtr/resultLen and sharedCas; returns the WasmResult. */
export function getSharedData(key: ArrayBuffer): u32 {
  store<usize>(changetype<usize>(outPtr), 0);
  store<usize>(changetype<usize>(outLen), 0);
  const r = imports.proxy_get_shared_data(changetype<usize>(key), key.byteLength,
    changetype<usize>(outPtr), changetype<usize>(outLen), changetype<usize>(outU32));
  if (r == OK) {
    takeResult();
    sharedCas = load<u32>(changetype<usize>(outU32));
  }
  return r;
}

export function getSharedString(key: ArrayBuffer): string {
  found = getSharedData(key) == OK;
  return found ? resultString() : "";
}

/** cas 0 writes unconditionally; otherwise fails (CasMismatch, 8) when someone wrote since that get. */
export function setSharedData(key: ArrayBuffer, valuePtr: usize, valueLen: i32, cas: u32): u32 {
  return imports.proxy_set_shared_data(changetype<usize>(key), key.byteLength, valuePtr, valueLen, cas);
}

export function setSharedString(key: ArrayBuffer, value: string): u32 {
  const b = String.UTF8.encode(value);
  return setSharedData(key, changetype<usize>(b), b.byteLength, 0);
}

// Time, connection, HTTP.

/** The host's wall clock (Envoy: the system time), nanoseconds; 0 if the call fails. */
export function nowNanos(): u64 {
  const out = changetype<usize>(outU32);
  if (imports.proxy_get_current_time_nanoseconds(out) != OK) return 0;
  return load<u64>(out);
}

/** Calls proxy_on_tick on the current root context every `ms` milliseconds (0: never). */
export function setTickPeriod(ms: u32): u32 {
  return imports.proxy_set_tick_period_milliseconds(ms);
}

const STREAM_DOWNSTREAM: i32 = 2;

/** Closes the downstream connection of the current network filter context. */
export function closeDownstream(): u32 {
  return imports.proxy_close_stream(STREAM_DOWNSTREAM);
}

const REQUEST_HEADERS: i32 = 0;

export function addRequestHeader(name: ArrayBuffer, value: string): u32 {
  const v = String.UTF8.encode(value);
  return imports.proxy_add_header_map_value(REQUEST_HEADERS, changetype<usize>(name), name.byteLength,
    changetype<usize>(v), v.byteLength);
}

export function removeRequestHeader(name: ArrayBuffer): u32 {
  return imports.proxy_remove_header_map_value(REQUEST_HEADERS, changetype<usize>(name), name.byteLength);
}

/** A local reply with a text/plain body, and one more header when `name` is not empty. */
export function sendLocalReply(status: u32, details: string, body: string, name: string = "", value: string = ""): u32 {
  const d = String.UTF8.encode(details);
  const b = String.UTF8.encode(body);
  // Header pairs: count, (key size, value size)*, then key\0value\0 for each.
  const keys = name.length > 0 ? ["content-type", name] : ["content-type"];
  const values = name.length > 0 ? ["text/plain", value] : ["text/plain"];
  const k = new Array<ArrayBuffer>(keys.length);
  const v = new Array<ArrayBuffer>(keys.length);
  let size = 4;
  for (let i = 0; i < keys.length; i++) {
    k[i] = String.UTF8.encode(keys[i]);
    v[i] = String.UTF8.encode(values[i]);
    size += 8 + k[i].byteLength + 1 + v[i].byteLength + 1;
  }
  const pairs = new ArrayBuffer(size);
  const p = changetype<usize>(pairs);
  store<u32>(p, keys.length);
  let at = p + 4 + 8 * keys.length;
  for (let i = 0; i < keys.length; i++) {
    store<u32>(p + 4 + 8 * i, k[i].byteLength);
    store<u32>(p + 8 + 8 * i, v[i].byteLength);
    memory.copy(at, changetype<usize>(k[i]), k[i].byteLength);
    at += k[i].byteLength + 1; // the \0 is already there (zeroed buffer)
    memory.copy(at, changetype<usize>(v[i]), v[i].byteLength);
    at += v[i].byteLength + 1;
  }
  return imports.proxy_send_local_response(status, changetype<usize>(d), d.byteLength,
    changetype<usize>(b), b.byteLength, p, pairs.byteLength, <u32>-1 /* not gRPC */);
}

const LOG_INFO: i32 = 2, LOG_WARN: i32 = 3, LOG_ERROR: i32 = 4;

function logAt(level: i32, message: string): void {
  const b = String.UTF8.encode(message);
  imports.proxy_log(<usize>level, changetype<usize>(b), b.byteLength);
}
export function logInfo(message: string): void { logAt(LOG_INFO, message); }
export function logWarn(message: string): void { logAt(LOG_WARN, message); }
export function logError(message: string): void { logAt(LOG_ERROR, message); }
