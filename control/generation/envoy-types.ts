// The Envoy resource types generation builds, generated from Envoy's .proto files by `npm install`
// (scripts/generate-types.ts). Input forms: snake_case fields, enums by name, wrappers as {value},
// nested Any as {"@type": ...}: what the encoder takes.
import type { Listener } from "../../.envoy-types/envoy/config/listener/v3/Listener.ts";
import type { FilterChain } from "../../.envoy-types/envoy/config/listener/v3/FilterChain.ts";
import type { Filter } from "../../.envoy-types/envoy/config/listener/v3/Filter.ts";
import type { ListenerFilter } from "../../.envoy-types/envoy/config/listener/v3/ListenerFilter.ts";
import type { CidrRange } from "../../.envoy-types/envoy/config/core/v3/CidrRange.ts";
import type { Address } from "../../.envoy-types/envoy/config/core/v3/Address.ts";
import type { TypedExtensionConfig } from "../../.envoy-types/envoy/config/core/v3/TypedExtensionConfig.ts";
import type { Cluster } from "../../.envoy-types/envoy/config/cluster/v3/Cluster.ts";
import type { ClusterLoadAssignment } from "../../.envoy-types/envoy/config/endpoint/v3/ClusterLoadAssignment.ts";
import type { Duration } from "../../.envoy-types/google/protobuf/Duration.ts";
import type { TcpProxy } from "../../.envoy-types/envoy/extensions/filters/network/tcp_proxy/v3/TcpProxy.ts";
import type { Wasm } from "../../.envoy-types/envoy/extensions/filters/network/wasm/v3/Wasm.ts";
import type { UpstreamTlsContext } from "../../.envoy-types/envoy/extensions/transport_sockets/tls/v3/UpstreamTlsContext.ts";
import type { AsyncDataSource } from "../../.envoy-types/envoy/config/core/v3/AsyncDataSource.ts";
import type { FilterConfig as SniDynamicForwardProxy } from "../../.envoy-types/envoy/extensions/filters/network/sni_dynamic_forward_proxy/v3/FilterConfig.ts";
import type { ClusterConfig as DynamicForwardProxyCluster } from "../../.envoy-types/envoy/extensions/clusters/dynamic_forward_proxy/v3/ClusterConfig.ts";
import type { DnsCacheConfig } from "../../.envoy-types/envoy/extensions/common/dynamic_forward_proxy/v3/DnsCacheConfig.ts";
import type { HttpConnectionManager } from "../../.envoy-types/envoy/extensions/filters/network/http_connection_manager/v3/HttpConnectionManager.ts";
import type { HttpFilter } from "../../.envoy-types/envoy/extensions/filters/network/http_connection_manager/v3/HttpFilter.ts";
import type { RouteConfiguration } from "../../.envoy-types/envoy/config/route/v3/RouteConfiguration.ts";
import type { VirtualHost } from "../../.envoy-types/envoy/config/route/v3/VirtualHost.ts";
import type { Route } from "../../.envoy-types/envoy/config/route/v3/Route.ts";
import type { HttpProtocolOptions } from "../../.envoy-types/envoy/extensions/upstreams/http/v3/HttpProtocolOptions.ts";
import type { Wasm as HttpWasm } from "../../.envoy-types/envoy/extensions/filters/http/wasm/v3/Wasm.ts";
import type { Router } from "../../.envoy-types/envoy/extensions/filters/http/router/v3/Router.ts";

export type {
  Listener, FilterChain, Filter, ListenerFilter, CidrRange, Address, TypedExtensionConfig, Cluster,
  ClusterLoadAssignment, Duration, TcpProxy, Wasm, UpstreamTlsContext, AsyncDataSource,
  SniDynamicForwardProxy, DynamicForwardProxyCluster, DnsCacheConfig, HttpConnectionManager, HttpFilter,
  RouteConfiguration, VirtualHost, Route, HttpProtocolOptions, HttpWasm, Router,
};
