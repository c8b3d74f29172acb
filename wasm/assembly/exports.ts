// The ABI entry points (proxy-wasm 0.2.0) Envoy calls, dispatching to our root and stream
// contexts. We export only what the guard uses, because Envoy skips callbacks a module does not
// export: a connection costs proxy_on_context_create, proxy_on_new_connection and
// proxy_on_delete, not a wasm call per data chunk and close event. This replaces the SDK's
// dispatch, which builds several debug strings (joining every live context id) per context.
import { Context, FilterStatusValues, FilterHeadersStatusValues } from "@solo-io/proxy-runtime";
import { getPropertyString, propertyPath, logError } from "./host";
import { GuardRoot } from "./guard";
import { clip } from "./clip";

export { malloc } from "@solo-io/proxy-runtime/malloc"; // the host allocates returned values with it

export function proxy_abi_version_0_2_0(): void {}

type RootFactory = (context_id: u32) => GuardRoot;
const factories = new Map<string, RootFactory>();
const roots = new Map<u32, GuardRoot>();
const streams = new Map<u32, Context>();
const ROOT_ID = propertyPath(["plugin_root_id"]);

export function registerRoot(rootId: string, factory: RootFactory): void {
  factories.set(rootId, factory);
}

export function proxy_on_context_create(context_id: u32, root_context_id: u32): void {
  if (root_context_id == 0) {
    const rootId = getPropertyString(ROOT_ID);
    if (factories.has(rootId)) roots.set(context_id, factories.get(rootId)(context_id));
    else logError("loop guard: unknown root_id \"" + clip(rootId) + "\" (this module serves loop_guard and loop_guard_http)");
  } else if (roots.has(root_context_id)) {
    streams.set(context_id, roots.get(root_context_id).createContext(context_id));
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

export function proxy_on_new_connection(context_id: u32): u32 {
  if (!streams.has(context_id)) return FilterStatusValues.Continue;
  return streams.get(context_id).onNewConnection();
}

export function proxy_on_request_headers(context_id: u32, headers: u32, end_of_stream: u32): u32 {
  if (!streams.has(context_id)) return FilterHeadersStatusValues.Continue;
  return streams.get(context_id).onRequestHeaders(headers, end_of_stream != 0);
}

export function proxy_on_delete(context_id: u32): void {
  if (streams.has(context_id)) streams.delete(context_id);
  else if (roots.has(context_id)) roots.delete(context_id);
}
