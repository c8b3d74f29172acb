// Benchmark reference (not shipped): the smallest network and HTTP filter Envoy will run, doing
// nothing. bench:guard runs it as scenarios (d) and (h) to separate Envoy's own cost of calling any
// wasm filter from the loop guard's logic.
export { malloc } from "@solo-io/proxy-runtime/malloc";
export function proxy_abi_version_0_2_0(): void {}
export function proxy_on_context_create(context_id: u32, root_context_id: u32): void {}
export function proxy_on_vm_start(root_context_id: u32, size: u32): u32 { return 1; }
export function proxy_on_configure(root_context_id: u32, size: u32): u32 { return 1; }
export function proxy_on_new_connection(context_id: u32): u32 { return 0; }
export function proxy_on_request_headers(context_id: u32, headers: u32, end_of_stream: u32): u32 { return 0; }
