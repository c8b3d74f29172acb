// Envoy's API, loaded at run time from the .proto files shipped inside @grpc/grpc-js-xds
// (deps/: envoy-api, xds, googleapis, protoc-gen-validate). Nothing is vendored.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import protobuf from "protobufjs";
import * as protoLoader from "@grpc/proto-loader";

const require = createRequire(import.meta.url);
const DEPS = join(dirname(require.resolve("@grpc/grpc-js-xds/package.json")), "deps");
export const INCLUDE_DIRS = ["envoy-api", "xds", "googleapis", "protoc-gen-validate"].map((d) => join(DEPS, d));

/** Every resource and extension type multiplane generates or decodes. */
export const RESOURCE_PROTOS = [
  "envoy/service/discovery/v3/ads.proto",
  "envoy/config/listener/v3/listener.proto",
  "envoy/config/cluster/v3/cluster.proto",
  "envoy/config/endpoint/v3/endpoint.proto",
  "envoy/config/route/v3/route.proto",
  "envoy/config/core/v3/extension.proto",
  "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto",
  "envoy/extensions/filters/network/sni_dynamic_forward_proxy/v3/sni_dynamic_forward_proxy.proto",
  "envoy/extensions/clusters/dynamic_forward_proxy/v3/cluster.proto",
  "envoy/extensions/filters/network/wasm/v3/wasm.proto",
  "envoy/extensions/filters/network/rbac/v3/rbac.proto",
  "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
  "envoy/extensions/filters/http/wasm/v3/wasm.proto",
  "envoy/extensions/filters/http/router/v3/router.proto",
  "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
  "envoy/extensions/transport_sockets/tls/v3/tls.proto",
  "google/protobuf/wrappers.proto",
];

export const TYPE_URL = {
  listener: "type.googleapis.com/envoy.config.listener.v3.Listener",
  cluster: "type.googleapis.com/envoy.config.cluster.v3.Cluster",
  endpoint: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
  /** RDS: the route configurations HTTP connection managers name (one per outbound HTTP port). */
  route: "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
  /** ECDS: filter configurations that listeners reference by name (the loop guard's, per proxy). */
  extensionConfig: "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
} as const;

/**
 * A protobufjs root holding every type above. Loading takes a few hundred ms, so the owner (a
 * control plane's encoder) loads it once and keeps it; nothing here caches it for the process.
 * `extra`: more of Envoy's .proto files (tests encode a bootstrap).
 */
export function loadEnvoyProtos(extra: readonly string[] = []): protobuf.Root {
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => {
    for (const dir of INCLUDE_DIRS) {
      const candidate = join(dir, target);
      try {
        require.resolve(candidate);
        return candidate;
      } catch { /* next include dir */ }
    }
    return target;
  };
  r.loadSync([...RESOURCE_PROTOS, ...extra], { keepCase: true });
  r.resolveAll();
  return r;
}

/** The ADS gRPC service definition, for @grpc/grpc-js. */
export function adsServiceDefinition(): protoLoader.PackageDefinition {
  return protoLoader.loadSync("envoy/service/discovery/v3/ads.proto", {
    keepCase: true, longs: String, enums: String, defaults: false, oneofs: true, includeDirs: INCLUDE_DIRS,
  });
}
