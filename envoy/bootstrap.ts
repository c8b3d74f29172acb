// Envoy bootstrap: who this proxy is (node id and every node IP), where its control plane is
// (ADS over gRPC), and an admin listener that only the host itself can reach.
import { interfaceIps } from "./node-ips.ts";

export interface HostPort {
  host: string;
  port: number;
}

export interface BootstrapOptions {
  nodeId: string;
  /** Node IPs for metadata INSTANCE_IPS; undefined = this host's interface IPs; [] = omit the key (an old, single-IP proxy). */
  instanceIps?: string[];
  xds: HostPort;
  admin?: HostPort;
  cluster?: string;
}

export const DEFAULT_ADMIN: HostPort = { host: "127.0.0.1", port: 15000 };
const XDS_CLUSTER = "xds-grpc";

export function parseHostPort(value: string, what: string): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port > 0 && port < 65536)) {
    throw new Error(`${what}: expected HOST:PORT (IPv6 as [::1]:PORT), got ${JSON.stringify(value)}`);
  }
  return { host: (m[1] ?? m[2])!, port };
}

export function generateBootstrap(opts: BootstrapOptions): Record<string, unknown> {
  const admin = opts.admin ?? DEFAULT_ADMIN;
  const ips = opts.instanceIps ?? interfaceIps();
  const metadata: Record<string, string> = {};
  if (ips.length > 0) metadata.INSTANCE_IPS = ips.join(",");
  return {
    node: { id: opts.nodeId, cluster: opts.cluster ?? "multiplane", metadata },
    admin: { address: { socket_address: { address: admin.host, port_value: admin.port } } },
    dynamic_resources: {
      ads_config: {
        api_type: "GRPC",
        transport_api_version: "V3",
        grpc_services: [{ envoy_grpc: { cluster_name: XDS_CLUSTER } }],
        set_node_on_first_message_only: true,
      },
      lds_config: { ads: {}, resource_api_version: "V3" },
      cds_config: { ads: {}, resource_api_version: "V3" },
    },
    static_resources: {
      clusters: [{
        name: XDS_CLUSTER,
        type: "STATIC",
        connect_timeout: "1s",
        typed_extension_protocol_options: {
          "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            explicit_http_config: { http2_protocol_options: {} },
          },
        },
        load_assignment: {
          cluster_name: XDS_CLUSTER,
          endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: opts.xds.host, port_value: opts.xds.port } } } }] }],
        },
      }],
    },
  };
}
