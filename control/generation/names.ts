// Istio 1.0's resource names, which operators and the seed's captured traffic model know.

export const VIRTUAL_LISTENER = "virtual";
export const PASSTHROUGH_CLUSTER = "PassthroughCluster";
export const BLACKHOLE_CLUSTER = "BlackHoleCluster";

export const inboundListenerName = (ip: string, port: number) => `${ip}_${port}`;
export const outboundListenerName = (port: number) => `0.0.0.0_${port}`;
export const inboundClusterName = (port: number, portName: string, host: string) => `inbound|${port}|${portName}|${host}`;
/** `subset`: Istio's subset slot, which planes use for a port's per-plane clusters (`plane:NAME`). */
export const outboundClusterName = (port: number, host: string, subset = "") => `outbound|${port}|${subset}|${host}`;
/** RDS: an outbound HTTP port's route configuration, and a service's virtual host in it. */
export const outboundRouteName = (port: number) => String(port);
export const virtualHostName = (host: string, port: number) => `${host}:${port}`;
/** The virtual host for every Host no service claims: on to the original destination (Istio's ALLOW_ANY). */
export const ALLOW_ANY_VIRTUAL_HOST = "allow_any";
/** In its place under a Sidecar's REGISTRY_ONLY: every other Host is answered 502 (Istio's block_all). */
export const BLOCK_ALL_VIRTUAL_HOST = "block_all";
/** An inbound HTTP listener's inline route configuration (Istio 1.0's virtual host name). */
export const inboundVirtualHostName = (port: number) => `inbound|http|${port}`;

// Secrets that `multiplane bootstrap --xds-ca/--cert/--key` gives Envoy (filesystem SDS, or static
// secrets in older bootstraps: xds-secrets.ts). The xDS cluster uses them, and so does the cluster the
// control plane supplies for fetching the loop guard module from it.
export const XDS_CA_SECRET = "multiplane-xds-ca";
export const XDS_CERT_SECRET = "multiplane-xds-cert";
