// The loop guard network filter (wasm/, built to dist/loop-guard.wasm), delivered by ECDS: every
// guarded chain carries the same small reference, and the proxy's node IPs travel once, in the
// TypedExtensionConfig named LOOP_GUARD. A node-IP change then pushes one resource, not every
// listener, and listeners stay identical across proxies (packed once, shared).
import { encodeOnce, typedConfig } from "./envoy-objects.ts";
import type { Filter, TypedExtensionConfig, Wasm } from "./envoy-types.ts";
import type { LoopGuardOptions } from "./options.ts";

export const LOOP_GUARD = "loop_guard";
const WASM_NETWORK_FILTER = "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm";


/** The filter as chains list it: one frozen object in every guarded chain, so it is encoded once. */
export const LOOP_GUARD_FILTER: Filter = encodeOnce<Filter>({
  name: LOOP_GUARD,
  // No default config: until ECDS delivers the guard, Envoy keeps the listener warming rather than
  // serving it unguarded.
  config_discovery: { config_source: { ads: {}, resource_api_version: "V3" }, type_urls: [WASM_NETWORK_FILTER] },
});

/** The ECDS resource: the wasm module and its plugin configuration with this proxy's node IPs. */
export function loopGuardExtensionConfig(nodeIps: string[], guard: LoopGuardOptions): TypedExtensionConfig {
  return {
    name: LOOP_GUARD,
    typed_config: typedConfig<Wasm>(WASM_NETWORK_FILTER, {
      config: {
        name: LOOP_GUARD,
        root_id: LOOP_GUARD,
        configuration: {
          "@type": "type.googleapis.com/google.protobuf.StringValue",
          value: JSON.stringify({ node_ips: nodeIps, mode: guard.mode }),
        },
        vm_config: { vm_id: LOOP_GUARD, runtime: "envoy.wasm.runtime.v8", code: { local: { filename: guard.wasmPath } } },
      },
    }),
  };
}
