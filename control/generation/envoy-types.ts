// The Envoy resource types generation builds, generated from Envoy's .proto files by `npm install`
// (scripts/generate-types.ts). Input forms: snake_case fields, enums by name, wrappers as {value},
// nested Any as {"@type": ...}: what the encoder takes.
export type { Listener } from "../../.envoy-types/envoy/config/listener/v3/Listener.ts";
export type { FilterChain } from "../../.envoy-types/envoy/config/listener/v3/FilterChain.ts";
export type { Filter } from "../../.envoy-types/envoy/config/listener/v3/Filter.ts";
export type { ListenerFilter } from "../../.envoy-types/envoy/config/listener/v3/ListenerFilter.ts";
export type { CidrRange } from "../../.envoy-types/envoy/config/core/v3/CidrRange.ts";
export type { Address } from "../../.envoy-types/envoy/config/core/v3/Address.ts";
export type { TypedExtensionConfig } from "../../.envoy-types/envoy/config/core/v3/TypedExtensionConfig.ts";
export type { Cluster } from "../../.envoy-types/envoy/config/cluster/v3/Cluster.ts";
export type { ClusterLoadAssignment } from "../../.envoy-types/envoy/config/endpoint/v3/ClusterLoadAssignment.ts";
export type { Duration } from "../../.envoy-types/google/protobuf/Duration.ts";
export type { TcpProxy } from "../../.envoy-types/envoy/extensions/filters/network/tcp_proxy/v3/TcpProxy.ts";
export type { Wasm } from "../../.envoy-types/envoy/extensions/filters/network/wasm/v3/Wasm.ts";
export type { UpstreamTlsContext } from "../../.envoy-types/envoy/extensions/transport_sockets/tls/v3/UpstreamTlsContext.ts";
export type { AsyncDataSource } from "../../.envoy-types/envoy/config/core/v3/AsyncDataSource.ts";
export type { FilterConfig as SniDynamicForwardProxy } from "../../.envoy-types/envoy/extensions/filters/network/sni_dynamic_forward_proxy/v3/FilterConfig.ts";
export type { ClusterConfig as DynamicForwardProxyCluster } from "../../.envoy-types/envoy/extensions/clusters/dynamic_forward_proxy/v3/ClusterConfig.ts";
export type { DnsCacheConfig } from "../../.envoy-types/envoy/extensions/common/dynamic_forward_proxy/v3/DnsCacheConfig.ts";
export type { HttpConnectionManager } from "../../.envoy-types/envoy/extensions/filters/network/http_connection_manager/v3/HttpConnectionManager.ts";
export type { HttpFilter } from "../../.envoy-types/envoy/extensions/filters/network/http_connection_manager/v3/HttpFilter.ts";
export type { RouteConfiguration } from "../../.envoy-types/envoy/config/route/v3/RouteConfiguration.ts";
export type { VirtualHost } from "../../.envoy-types/envoy/config/route/v3/VirtualHost.ts";
export type { Route } from "../../.envoy-types/envoy/config/route/v3/Route.ts";
export type { HttpProtocolOptions } from "../../.envoy-types/envoy/extensions/upstreams/http/v3/HttpProtocolOptions.ts";
export type { Wasm as HttpWasm } from "../../.envoy-types/envoy/extensions/filters/http/wasm/v3/Wasm.ts";
export type { Router } from "../../.envoy-types/envoy/extensions/filters/http/router/v3/Router.ts";
