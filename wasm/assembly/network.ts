// Network-filter ABI entry points (proxy-wasm 0.2.x). @solo-io/proxy-runtime 0.1.8 exports
// none of them, so Envoy would see an HTTP-only module; they dispatch to the SDK's Context.
import { getContext } from "@solo-io/proxy-runtime/runtime";

export function proxy_on_new_connection(context_id: u32): u32 {
  return getContext(context_id).onNewConnection() as u32;
}
export function proxy_on_downstream_data(context_id: u32, data_size: u32, end_of_stream: u32): u32 {
  return getContext(context_id).onDownstreamData(data_size, end_of_stream != 0) as u32;
}
export function proxy_on_upstream_data(context_id: u32, data_size: u32, end_of_stream: u32): u32 {
  return getContext(context_id).onUpstreamData(data_size, end_of_stream != 0) as u32;
}
export function proxy_on_downstream_connection_close(context_id: u32, peer_type: u32): void {
  getContext(context_id).onDownstreamConnectionClose(peer_type);
}
export function proxy_on_upstream_connection_close(context_id: u32, peer_type: u32): void {
  getContext(context_id).onUpstreamConnectionClose(peer_type);
}
