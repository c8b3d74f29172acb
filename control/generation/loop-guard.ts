// The loop guard (wasm/, built to dist/loop-guard.wasm), delivered by ECDS: its network filter
// (before tcp_proxy) and its HTTP filter (before the router, in HTTP connection managers). Every
// guarded chain carries the same small reference, and the proxy's node IPs travel once per filter
// kind, in the TypedExtensionConfigs named LOOP_GUARD and LOOP_GUARD_HTTP. A node-IP change then
// pushes one or two resources, not every listener, and listeners and route configurations stay
// identical across proxies (packed once, shared).
//
// The module itself is a file on the Envoy host (local), or fetched over HTTP(S) (remote) through the
// cluster GUARD_WASM_CLUSTER that this config supplies: from the control plane's own module server, or
// any URL. A remote module is pinned by its sha256, which travels over xDS.
import { isIP } from "node:net";
import { duration, encodeOnce, socketAddress, typedConfig } from "./envoy-objects.ts";
import type { AsyncDataSource, Cluster, Filter, HttpFilter, HttpWasm, TypedExtensionConfig, UpstreamTlsContext, Wasm } from "./envoy-types.ts";
import type { LoopGuardOptions, RemoteGuardModule } from "./options.ts";
import type { XdsSdsPaths } from "../identity/xds-secrets.ts";
import { xdsCaReference, xdsCertReference } from "./sds-secrets.ts";
import { hostPort } from "../common/host-port.ts";

/** The network filter's ECDS name and root id; also the vm_id of both filters (one VM, one shared-data table). */
export const LOOP_GUARD = "loop_guard";
/** The HTTP filter's ECDS name and root id. */
export const LOOP_GUARD_HTTP = "loop_guard_http";
export const GUARD_WASM_CLUSTER = "multiplane-guard-wasm";
const WASM_NETWORK_FILTER = "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm";
const WASM_HTTP_FILTER = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
/**
 * How long one fetch may take, and how Envoy retries a failed one: backing off from 1 s to 15 s, about
 * four minutes in all. Meanwhile the guarded listeners stay warming; after that Envoy gives up (the
 * guard then fails closed) until its config changes or it restarts. It does not NACK either way.
 */
const FETCH_TIMEOUT_MS = 10_000;
const FETCH_RETRIES = 20;
const FETCH_BACKOFF_MS = { base: 1000, max: 15_000 };

/** The filter as chains list it: one frozen object in every guarded chain, so it is encoded once. */
export const LOOP_GUARD_FILTER: Filter = encodeOnce<Filter>({
  name: LOOP_GUARD,
  // No default config: until ECDS delivers the guard, Envoy keeps the listener warming rather than
  // serving it unguarded.
  config_discovery: { config_source: { ads: {}, resource_api_version: "V3" }, type_urls: [WASM_NETWORK_FILTER] },
});

/** The HTTP filter as connection managers list it, before the router; warming until ECDS delivers it, like the network filter. */
export const LOOP_GUARD_HTTP_FILTER: HttpFilter = encodeOnce<HttpFilter>({
  name: LOOP_GUARD_HTTP,
  config_discovery: { config_source: { ads: {}, resource_api_version: "V3" }, type_urls: [WASM_HTTP_FILTER] },
});

/** Whether the module's address is the one each proxy's xDS connection arrived at (so configs depend on it). */
export function guardFetchDependsOnConnection(guard: LoopGuardOptions | undefined): boolean {
  return guard?.remote?.from.kind === "control-plane" && guard.remote.from.host === undefined;
}

/** Whether the module's cluster names the proxy's xDS secrets (so configs depend on where its SDS files are). */
export function guardFetchUsesXdsSecrets(guard: LoopGuardOptions | undefined): boolean {
  return guard?.remote?.from.kind === "control-plane" && guard.remote.from.tls !== "none";
}

/**
 * Where Envoy fetches the module from: URL, and the endpoint and TLS of the cluster that reaches it.
 * `secrets`: the proxy's SDS files for the xDS secrets (node metadata), undefined for static secrets.
 */
function fetchTarget(remote: RemoteGuardModule, via: string | undefined, secrets?: XdsSdsPaths): { url: string; host: string; port: number; tls?: UpstreamTlsContext } {
  const from = remote.from;
  if (from.kind === "url") {
    const u = new URL(from.url);
    const host = u.hostname.replace(/^\[|\]$/g, "");
    const port = Number(u.port || (u.protocol === "https:" ? 443 : 80));
    // Any server: its certificate is not checked against a CA Envoy may not have; the sha256, which
    // comes over the authenticated xDS stream, is what makes the bytes trustworthy.
    return { url: from.url, host, port, ...(u.protocol === "https:" ? { tls: isIP(host) ? {} : { sni: host } } : {}) };
  }
  const host = from.host ?? via;
  if (!host) throw new Error("the loop guard module is served on the address each proxy's xDS connection arrived at, and this proxy's is unknown");
  const authority = hostPort(host, from.port);
  const tls: UpstreamTlsContext | undefined = from.tls === "none" ? undefined : {
    common_tls_context: {
      // The xDS CA (and, for mutual TLS, the xDS certificate) as the bootstrap's xDS cluster has them:
      // the same filesystem SDS files (so the same secrets, reloaded together), or its static secrets.
      validation_context_sds_secret_config: xdsCaReference(secrets),
      ...(from.tls === "mtls" ? { tls_certificate_sds_secret_configs: [xdsCertReference(secrets)] } : {}),
    },
    ...(isIP(host) ? {} : { sni: host }),
  };
  return { url: `${from.tls === "none" ? "http" : "https"}://${authority}${from.path}`, host, port: from.port, ...(tls ? { tls } : {}) };
}

/** The cluster Envoy fetches a remote module through; `secrets` as for fetchTarget. */
export function guardWasmCluster(remote: RemoteGuardModule, via: string | undefined, connectTimeoutMs: number, secrets?: XdsSdsPaths): Cluster {
  const t = fetchTarget(remote, via, secrets);
  return {
    name: GUARD_WASM_CLUSTER,
    type: isIP(t.host) ? "STATIC" : "STRICT_DNS",
    connect_timeout: duration(connectTimeoutMs),
    load_assignment: { cluster_name: GUARD_WASM_CLUSTER, endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(t.host, t.port) } }] }] },
    ...(t.tls ? { transport_socket: { name: "envoy.transport_sockets.tls", typed_config: typedConfig<UpstreamTlsContext>(UPSTREAM_TLS, t.tls) } } : {}),
  };
}

function moduleSource(guard: LoopGuardOptions, via: string | undefined): AsyncDataSource {
  if (!guard.remote) return { local: { filename: guard.wasmPath } };
  return {
    remote: {
      http_uri: { uri: fetchTarget(guard.remote, via).url, cluster: GUARD_WASM_CLUSTER, timeout: duration(FETCH_TIMEOUT_MS) },
      sha256: guard.remote.sha256,
      retry_policy: { retry_back_off: { base_interval: duration(FETCH_BACKOFF_MS.base), max_interval: duration(FETCH_BACKOFF_MS.max) }, num_retries: { value: FETCH_RETRIES } },
    },
  };
}

/**
 * The plugin under `rootId`: its configuration with this proxy's node IPs, in the one VM both filters share.
 * The HTTP filter sits in outbound connection managers only, so it is told to act wherever it runs
 * (all_listeners): otherwise it reads the listener's direction on every request, about 5 us of Envoy's
 * worker each. The network filter reads it only after a match, so it keeps its default.
 */
function plugin(rootId: string, nodeIps: string[], guard: LoopGuardOptions, via: string | undefined): Wasm {
  const configuration = rootId === LOOP_GUARD_HTTP ? { node_ips: nodeIps, mode: guard.mode, all_listeners: true } : { node_ips: nodeIps, mode: guard.mode };
  return {
    config: {
      name: rootId,
      root_id: rootId,
      configuration: {
        "@type": "type.googleapis.com/google.protobuf.StringValue",
        value: JSON.stringify(configuration),
      },
      vm_config: { vm_id: LOOP_GUARD, runtime: "envoy.wasm.runtime.v8", code: moduleSource(guard, via) },
    },
  };
}

/** The network filter's ECDS resource: the wasm module and its plugin configuration with this proxy's node IPs. */
export function loopGuardExtensionConfig(nodeIps: string[], guard: LoopGuardOptions, via?: string): TypedExtensionConfig {
  return { name: LOOP_GUARD, typed_config: typedConfig<Wasm>(WASM_NETWORK_FILTER, plugin(LOOP_GUARD, nodeIps, guard, via)) };
}

/** The HTTP filter's ECDS resource: the same module and configuration under root id loop_guard_http. */
export function loopGuardHttpExtensionConfig(nodeIps: string[], guard: LoopGuardOptions, via?: string): TypedExtensionConfig {
  return { name: LOOP_GUARD_HTTP, typed_config: typedConfig<HttpWasm>(WASM_HTTP_FILTER, plugin(LOOP_GUARD_HTTP, nodeIps, guard, via)) };
}
