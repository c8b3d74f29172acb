// Host calls, bound by hand. @solo-io/proxy-runtime 0.1.8 wraps them in CHECK_RESULT, which
// aborts (and so kills) the VM on any non-Ok result such as a missing property or header; its
// shared-data wrappers pass wrong pointers and its proxy_set_buffer_status is bound to the wrong
// host name. Here every call returns its WasmResult (or null) and never aborts. Only the SDK's
// import declarations and malloc are used: its contexts and dispatch would cost size and time.
import * as imports from "@solo-io/proxy-runtime/imports";
import { proc_exit } from "bindings/wasi_unstable";
import { decimal } from "./decimal";

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

/** A property path, its tokens separated by NUL: "node\0metadata\0INSTANCE_IPS". */
export function propertyPath(tokens: string): ArrayBuffer {
  return String.UTF8.encode(tokens);
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

/**
 * The first line of a request header into resultPtr/resultLen; false (nothing to release) when
 * the request has none. One host call, no allocation when absent.
 */
export function getRequestHeader(name: ArrayBuffer): bool {
  store<usize>(changetype<usize>(outPtr), 0);
  store<usize>(changetype<usize>(outLen), 0);
  if (imports.proxy_get_header_map_value(REQUEST_HEADERS, changetype<usize>(name), name.byteLength,
    changetype<usize>(outPtr), changetype<usize>(outLen)) != OK) return false;
  takeResult();
  return true;
}

export function addRequestHeader(name: ArrayBuffer, value: ArrayBuffer): u32 {
  return imports.proxy_add_header_map_value(REQUEST_HEADERS, changetype<usize>(name), name.byteLength,
    changetype<usize>(value), value.byteLength);
}

export function removeRequestHeader(name: ArrayBuffer): u32 {
  return imports.proxy_remove_header_map_value(REQUEST_HEADERS, changetype<usize>(name), name.byteLength);
}

/** Header pairs as the host reads them: count, the sizes (key, value)*, then key\0value\0 for each. */
function headerPairs(kv: Array<string>): ArrayBuffer {
  const bytes = new Array<ArrayBuffer>(kv.length);
  let size = 4 + 4 * kv.length;
  for (let i = 0; i < kv.length; i++) {
    const b = String.UTF8.encode(unchecked(kv[i]));
    unchecked(bytes[i] = b);
    size += b.byteLength + 1;
  }
  const pairs = new ArrayBuffer(size);
  const p = changetype<usize>(pairs);
  store<u32>(p, kv.length / 2);
  let at = p + 4 + 4 * kv.length;
  for (let i = 0; i < kv.length; i++) {
    const b = unchecked(bytes[i]);
    store<u32>(p + 4 + 4 * i, b.byteLength);
    memory.copy(at, changetype<usize>(b), b.byteLength);
    at += b.byteLength + 1; // the \0 is already there (zeroed buffer)
  }
  return pairs;
}

/** A local reply with a text/plain body, and one more header when `name` is not empty. */
export function sendLocalReply(status: u32, details: string, body: string, name: string = "", value: string = ""): u32 {
  const d = String.UTF8.encode(details);
  const b = String.UTF8.encode(body);
  const pairs = headerPairs(name.length > 0 ? ["content-type", "text/plain", name, value] : ["content-type", "text/plain"]);
  return imports.proxy_send_local_response(status, changetype<usize>(d), d.byteLength,
    changetype<usize>(b), b.byteLength, changetype<usize>(pairs), pairs.byteLength, <u32>-1 /* not gRPC */);
}

const LOG_INFO: i32 = 2, LOG_WARN: i32 = 3, LOG_ERROR: i32 = 4, LOG_CRITICAL: i32 = 5;

function logAt(level: i32, message: string): void {
  const b = String.UTF8.encode(message);
  imports.proxy_log(<usize>level, changetype<usize>(b), b.byteLength);
}
export function logInfo(message: string): void { logAt(LOG_INFO, message); }
export function logWarn(message: string): void { logAt(LOG_WARN, message); }
export function logError(message: string): void { logAt(LOG_ERROR, message); }

/** The module's abort (the build's --use abort=): logs what failed at critical level, then ends the VM. */
export function abort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  logAt(LOG_CRITICAL, "loop guard aborted: " + (message !== null ? message : "") +
    (fileName !== null ? " at " + fileName + ":" + decimal(line) + ":" + decimal(column) : ""));
  proc_exit(255);
}
