// Benchmark probe (not shipped): an HTTP filter that makes some of the host calls the HTTP guard makes
// on a healthy request, and nothing else, with the guard's own bindings and dispatch. Its plugin
// configuration names the calls, comma-separated (none: dispatch only):
//   count        proxy_increment_metric on a counter
//   direction    get_property xds.listener_direction (8 bytes)
//   header       get_header_map_value x-multiplane-hops (absent)
//   destination  get_property destination.address
//   source       get_property source.address
//   shared       get_shared_data of an absent key (the learned-address lookup)
//   add          add_header_map_value x-multiplane-hops
//   connection   get_property connection.id (8 bytes; not a guard call: what a per-connection cache costs)
// `npm run bench:guard` with BENCH_GUARD_PROFILE=1 runs one listener per call and one with all of them:
// what each costs Envoy's worker, and the floor of the guard's design.
import {
  propertyPath, getProperty, releaseResult, getRequestHeader, addRequestHeader, getSharedData, pluginConfiguration,
  defineCounter, incrementMetric, OK,
} from "../assembly/host";

export { malloc } from "@solo-io/proxy-runtime/malloc";

const COUNT = 1, DIRECTION = 2, HEADER = 4, DESTINATION = 8, SOURCE = 16, SHARED = 32, ADD = 64, CONNECTION = 128;
const NAMES = ["count", "direction", "header", "destination", "source", "shared", "add", "connection"];
const CONNECTION_PATH = propertyPath("connection\0id");
const DIRECTION_PATH = propertyPath("xds\0listener_direction");
const DESTINATION_PATH = propertyPath("destination\0address");
const SOURCE_PATH = propertyPath("source\0address");
const HOPS = String.UTF8.encode("x-multiplane-hops");
const SHARED_KEY = String.UTF8.encode("probe.absent");
const VALUE = String.UTF8.encode("sidecar~10.75.8.101~bench-1.default~default.svc.cluster.local");

const steps = new Map<u32, u32>(); // root context -> its calls
const streams = new Map<u32, u32>(); // stream -> its calls
let counter: u32 = 0;

export function proxy_abi_version_0_2_0(): void {}
export function proxy_on_vm_start(root_context_id: u32, size: u32): u32 { return 1; }

export function proxy_on_context_create(context_id: u32, root_context_id: u32): void {
  if (root_context_id != 0 && steps.has(root_context_id)) streams.set(context_id, steps.get(root_context_id));
}

export function proxy_on_configure(root_context_id: u32, size: u32): u32 {
  if (counter == 0) counter = defineCounter("probe.requests");
  const names = pluginConfiguration(size).split(",");
  let mask: u32 = 0;
  for (let i = 0; i < names.length; i++) {
    const at = NAMES.indexOf(names[i].trim());
    if (at >= 0) mask |= 1 << at;
    else if (names[i].trim().length > 0) return 0; // a misspelt step must not measure nothing
  }
  steps.set(root_context_id, mask);
  return 1;
}

function read(path: ArrayBuffer): void {
  if (getProperty(path)) releaseResult();
}

export function proxy_on_request_headers(context_id: u32, headers: u32, end_of_stream: u32): u32 {
  if (!streams.has(context_id)) return 0;
  const mask = streams.get(context_id);
  if (mask & COUNT) incrementMetric(counter, 1);
  if (mask & DIRECTION) read(DIRECTION_PATH);
  if (mask & HEADER) { if (getRequestHeader(HOPS)) releaseResult(); }
  if (mask & DESTINATION) read(DESTINATION_PATH);
  if (mask & SOURCE) read(SOURCE_PATH);
  if (mask & SHARED) { if (getSharedData(SHARED_KEY) == OK) releaseResult(); }
  if (mask & ADD) addRequestHeader(HOPS, VALUE);
  if (mask & CONNECTION) read(CONNECTION_PATH);
  return 0;
}

export function proxy_on_delete(context_id: u32): void {
  if (!streams.delete(context_id)) steps.delete(context_id);
}
