// HTTP ports (Istio's HTTP, HTTP2, HTTP_PROXY, GRPC, GRPC-Web): an HTTP connection manager in place of
// tcp_proxy, with its routes from RDS (outbound) or inline (inbound), and HTTP/2 to the upstream where
// the protocol needs it (HTTP2, GRPC, GRPC-Web), as Istio builds them.
import { deepFreeze } from "../common/deep-freeze.ts";
import type { Protocol } from "../registry/model.ts";
import { duration, encodeOnce, typedConfig } from "./envoy-objects.ts";
import type { Cluster, Filter, HttpConnectionManager, HttpFilter, HttpProtocolOptions, Route, RouteConfiguration, Router } from "./envoy-types.ts";

export { isHttpProtocol } from "../registry/istio/syntax.ts";

const HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/** Istio's HTTP/2 protocols: the upstream speaks HTTP/2 (h2c), whatever the client spoke. */
export const isHttp2Protocol = (p: Protocol) => p === "HTTP2" || p === "GRPC" || p === "GRPC-Web";

/** The last HTTP filter of every connection manager. */
export const ROUTER_FILTER: HttpFilter = encodeOnce<HttpFilter>({
  name: "envoy.filters.http.router",
  typed_config: typedConfig<Router>("type.googleapis.com/envoy.extensions.filters.http.router.v3.Router", {}),
});

const RDS_SOURCE = deepFreeze({ ads: {}, resource_api_version: "V3" } as const);
// WebSocket upgrades pass, as they did when every port was proxied at L4.
const UPGRADES: HttpConnectionManager["upgrade_configs"] = deepFreeze([{ upgrade_type: "websocket" }]);

/** `routes`: the name of a route configuration served by RDS, or one given inline. */
export function httpConnectionManager(statPrefix: string, routes: string | RouteConfiguration, filters: readonly HttpFilter[]): Filter {
  return {
    name: "envoy.filters.network.http_connection_manager",
    typed_config: typedConfig<HttpConnectionManager>(HCM, {
      stat_prefix: statPrefix,
      codec_type: "AUTO", // HTTP/1.1 or HTTP/2 (gRPC clients speak h2c with prior knowledge)
      ...(typeof routes === "string" ? { rds: { config_source: RDS_SOURCE, route_config_name: routes } } : { route_config: routes }),
      http_filters: [...filters, ROUTER_FILTER],
      upgrade_configs: UPGRADES,
    }),
  };
}

/**
 * A virtual host's one route: every path to `cluster`, with no route timeout (Envoy's default of
 * 15 s would cut gRPC streams and long polls that passed untouched at L4; Istio disables it too).
 */
export function routeTo(name: string, cluster: string, split?: readonly { name: string; weight: number }[]): Route {
  const upstream = split && split.length > 1 ? { weighted_clusters: { clusters: split.map((w) => ({ name: w.name, weight: { value: w.weight } })) } } : { cluster };
  return { name, match: { prefix: "/" }, route: { ...upstream, timeout: duration(0) } };
}

/** Upstream HTTP/2 for HTTP2 and gRPC ports (Envoy's typed_extension_protocol_options). */
export const HTTP2_UPSTREAM: NonNullable<Cluster["typed_extension_protocol_options"]> = deepFreeze({
  [HTTP_PROTOCOL_OPTIONS]: encodeOnce(typedConfig<HttpProtocolOptions>(`type.googleapis.com/${HTTP_PROTOCOL_OPTIONS}`, {
    explicit_http_config: { http2_protocol_options: {} },
  })),
});

/**
 * PassthroughCluster's: the upstream speaks what the client spoke, so HTTP/2 and gRPC to a host no
 * route names pass through as they came (tcp_proxy ignores this).
 */
export const DOWNSTREAM_PROTOCOL_UPSTREAM: NonNullable<Cluster["typed_extension_protocol_options"]> = deepFreeze({
  [HTTP_PROTOCOL_OPTIONS]: encodeOnce(typedConfig<HttpProtocolOptions>(`type.googleapis.com/${HTTP_PROTOCOL_OPTIONS}`, {
    use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} },
  })),
});

/** The protocol options a cluster for `protocol` carries, if any. */
export const upstreamProtocolOptions = (protocol: Protocol): Pick<Cluster, "typed_extension_protocol_options"> =>
  isHttp2Protocol(protocol) ? { typed_extension_protocol_options: HTTP2_UPSTREAM } : {};
