// The loop guard network filter (wasm/, built to dist/loop-guard.wasm): told the node's IPs so it can
// refuse connections whose original destination is this node.
import type { LoopGuardOptions } from "./options.ts";

export function loopGuardFilter(nodeIps: string[], guard: LoopGuardOptions): object {
  return {
    name: "envoy.filters.network.wasm",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
      config: {
        name: "loop_guard",
        root_id: "loop_guard",
        configuration: {
          "@type": "type.googleapis.com/google.protobuf.StringValue",
          value: JSON.stringify({ node_ips: nodeIps, mode: guard.mode }),
        },
        vm_config: { vm_id: "loop_guard", runtime: "envoy.wasm.runtime.v8", code: { local: { filename: guard.wasmPath } } },
      },
    },
  };
}
