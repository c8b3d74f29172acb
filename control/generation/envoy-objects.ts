// Small builders for Envoy API objects in protobufjs object form (snake_case, enums as strings,
// wrappers as {value}, nested Any as {"@type": ...}).
import { deepFreeze } from "../common/deep-freeze.ts";
import type { Address, CidrRange, Duration, Filter, ListenerFilter, TcpProxy } from "./envoy-types.ts";

/** A typed_config Any whose body is checked against its message type `T`. */
export const typedConfig = <T extends object>(typeUrl: string, body: T) => ({ "@type": typeUrl, ...body });

/**
 * A constant that appears in many resources: frozen, and marked so the encoder (control/xds/cache/encode.ts,
 * which reads the same registered symbol) encodes it once instead of in every resource.
 */
export function encodeOnce<T extends object>(o: T): T {
  Object.defineProperty(o, Symbol.for("multiplane.encode-once"), { value: true });
  return deepFreeze(o);
}

export const socketAddress = (address: string, port: number): Address => ({ socket_address: { address, port_value: port } });

export const duration = (ms: number): Duration => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 });

/** To `cluster`, or spread over `split` (by weight; one entry: to that cluster), with `cluster` as the stats prefix. */
export function tcpProxy(cluster: string, split?: readonly { name: string; weight: number }[]): Filter {
  const upstream = !split ? { cluster } : split.length === 1 ? { cluster: split[0]!.name } : { weighted_clusters: { clusters: split.map((w) => ({ name: w.name, weight: w.weight })) } };
  return {
    name: "envoy.filters.network.tcp_proxy",
    typed_config: typedConfig<TcpProxy>("type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", { stat_prefix: cluster, ...upstream }),
  };
}

// These listener filters take an empty config, which encodes to zero bytes: the Any is written as
// type_url + empty value, so it packs without those filters' protos being loaded.
const LISTENER_FILTER_TYPES = {
  original_dst: "type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
  proxy_protocol: "type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol",
  tls_inspector: "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
} as const;

export function listenerFilter(kind: keyof typeof LISTENER_FILTER_TYPES): ListenerFilter {
  return { name: `envoy.filters.listener.${kind}`, typed_config: { type_url: LISTENER_FILTER_TYPES[kind], value: "" } };
}

/** One address or CIDR as a filter_chain_match prefix range. */
export function prefixRange(addressOrCidr: string): CidrRange {
  const slash = addressOrCidr.indexOf("/");
  if (slash < 0) return { address_prefix: addressOrCidr, prefix_len: { value: addressOrCidr.includes(":") ? 128 : 32 } };
  return { address_prefix: addressOrCidr.slice(0, slash), prefix_len: { value: Number(addressOrCidr.slice(slash + 1)) } };
}
