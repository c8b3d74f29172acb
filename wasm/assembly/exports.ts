// The ABI entry points (proxy-wasm 0.2.0) Envoy calls. We export only what the guard uses, because
// Envoy skips callbacks a module does not export: a connection costs proxy_on_context_create,
// proxy_on_new_connection and proxy_on_delete, a request the same with proxy_on_request_headers;
// no wasm call per data chunk, header block or close event. A stream needs no state of its own, so
// none is allocated: each stream id maps to its root context, which does the work.
import { getPropertyString, propertyPath, logError } from "./host";
import { GuardRoot } from "./guard";
import { onNewConnection } from "./guard_network";
import { onRequestHeaders } from "./guard_http";
import { clip } from "./clip";

export { malloc } from "@solo-io/proxy-runtime/malloc"; // the host allocates returned values with it

/** The root ids this module serves: the network filter and the HTTP filter. */
const NETWORK_ROOT = "loop_guard";
const HTTP_ROOT = "loop_guard_http";
const CONTINUE: u32 = 0;

export function proxy_abi_version_0_2_0(): void {}

const ROOT_ID = propertyPath("plugin_root_id");
const roots = new Map<u32, GuardRoot>();
const streams = new Map<u32, GuardRoot>();

export function proxy_on_context_create(context_id: u32, root_context_id: u32): void {
  if (root_context_id == 0) {
    const rootId = getPropertyString(ROOT_ID);
    if (rootId == NETWORK_ROOT || rootId == HTTP_ROOT) roots.set(context_id, new GuardRoot(rootId, rootId == HTTP_ROOT));
    else logError("loop guard: unknown root_id \"" + clip(rootId) + "\" (this module serves " + NETWORK_ROOT + " and " + HTTP_ROOT + ")");
  } else if (roots.has(root_context_id)) {
    streams.set(context_id, roots.get(root_context_id));
  }
}

export function proxy_on_vm_start(root_context_id: u32, vm_configuration_size: u32): u32 {
  return 1;
}

/** 0 only for an unknown root id, so Envoy rejects that filter instead of running it unguarded. */
export function proxy_on_configure(root_context_id: u32, configuration_size: u32): u32 {
  if (!roots.has(root_context_id)) return 0;
  return roots.get(root_context_id).onConfigure(configuration_size) ? 1 : 0;
}

/** Each root context's timer (set in onConfigure): sweeps expired learned addresses. */
export function proxy_on_tick(root_context_id: u32): void {
  if (roots.has(root_context_id)) roots.get(root_context_id).onTick();
}

// Each filter runs under its own root id only: the other kind's callback (a root id given to the wrong
// filter type) lets the traffic continue, as it did with the SDK's default callbacks.
export function proxy_on_new_connection(context_id: u32): u32 {
  if (!streams.has(context_id)) return CONTINUE;
  const root = streams.get(context_id);
  return root.http ? CONTINUE : onNewConnection(root);
}

export function proxy_on_request_headers(context_id: u32, headers: u32, end_of_stream: u32): u32 {
  if (!streams.has(context_id)) return CONTINUE;
  const root = streams.get(context_id);
  return root.http ? onRequestHeaders(root) : CONTINUE;
}

export function proxy_on_delete(context_id: u32): void {
  if (!streams.delete(context_id)) roots.delete(context_id);
}
