// Envoy bootstrap: who this proxy is (node id and every node IP), where its control plane is
// (ADS over gRPC, optionally over TLS or mutual TLS), and an admin listener that only the host itself
// can reach. Under TLS, also the filesystem SDS files through which Envoy reloads a rotated CA or
// certificate (control/generation/sds-secrets.ts).
import { chmodSync, renameSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { basename, dirname, join, resolve } from "node:path";
import { XDS_CA_SECRET, XDS_CERT_SECRET } from "../control/generation/names.ts";
import { xdsCaReference, xdsCertReference } from "../control/generation/sds-secrets.ts";
import { XDS_SECRETS_METADATA, type XdsSdsPaths } from "../control/identity/xds-secrets.ts";
import { interfaceIps } from "./interface-ips.ts";

export interface HostPort {
  host: string;
  port: number;
}

export interface BootstrapOptions {
  nodeId: string;
  /** Node IPs for metadata INSTANCE_IPS; undefined = this host's interface IPs; [] = omit the key (an old, single-IP proxy). */
  instanceIps?: string[];
  /** The control plane; several addresses (replicas) are the endpoints of one xDS cluster. */
  xds: HostPort | HostPort[];
  admin?: HostPort;
  cluster?: string;
  /** xDS over TLS: verify the control plane against this CA; with cert and key, present them (mutual TLS). */
  tls?: XdsTlsOptions;
  /** The workload's labels, reported as Istio's node metadata LABELS (Sidecar workloadSelectors match them). */
  labels?: Record<string, string>;
}

export interface XdsTlsOptions {
  /** PEM file of the CA that signed the control plane's certificate. */
  caFile: string;
  /** This proxy's certificate and key (PEM files), for mutual TLS. */
  certFile?: string;
  keyFile?: string;
  /** The name or IP the control plane's certificate must carry; default the xDS host (needed when replicas are on several hosts). */
  san?: string;
  /**
   * Where the SDS files that deliver the CA and the certificate are (writeXdsSdsFiles writes them):
   * Envoy then reloads the PEM files when they are replaced. Without: static secrets, read once at start.
   */
  sds?: XdsSdsPaths;
}

const SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

export const DEFAULT_ADMIN: HostPort = { host: "127.0.0.1", port: 15000 };
const XDS_CLUSTER = "xds-grpc";
/**
 * With replicas, a lost stream is re-opened soon (Envoy's default first retry is 0.5-1 s), and the
 * cluster's round robin sends the retry to another replica.
 */
const FAILOVER_RETRY = { retry_back_off: { base_interval: "0.1s", max_interval: "1s" } };

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
  const metadata: Record<string, unknown> = {};
  if (ips.length > 0) metadata.INSTANCE_IPS = ips.join(",");
  if (opts.labels && Object.keys(opts.labels).length > 0) metadata.LABELS = opts.labels;
  const sds = opts.tls?.sds && checkedSdsPaths(opts.tls);
  // The paths, for the clusters the control plane sends (the loop guard module's) to name the same secrets.
  if (sds) metadata[XDS_SECRETS_METADATA] = sds;
  const xds = Array.isArray(opts.xds) ? opts.xds : [opts.xds];
  if (xds.length === 0) throw new Error("bootstrap: no xDS address");
  // A STATIC cluster takes only IPs (Envoy refuses a name: "malformed IP address"); with a name Envoy
  // resolves every address and keeps them current, preferring IPv4 (a name such as localhost has both,
  // and a control plane on 127.0.0.1 refuses ::1).
  const byName = xds.some((x) => isIP(x.host) === 0);
  return {
    node: { id: opts.nodeId, cluster: opts.cluster ?? "multiplane", metadata },
    admin: { address: { socket_address: { address: admin.host, port_value: admin.port } } },
    dynamic_resources: {
      ads_config: {
        api_type: "GRPC",
        transport_api_version: "V3",
        grpc_services: [{ envoy_grpc: { cluster_name: XDS_CLUSTER, ...(xds.length > 1 ? { retry_policy: FAILOVER_RETRY } : {}) } }],
        set_node_on_first_message_only: true,
      },
      lds_config: { ads: {}, resource_api_version: "V3" },
      cds_config: { ads: {}, resource_api_version: "V3" },
    },
    static_resources: {
      ...(opts.tls && !sds ? { secrets: xdsSecrets(opts.tls) } : {}),
      clusters: [{
        name: XDS_CLUSTER,
        type: byName ? "STRICT_DNS" : "STATIC",
        ...(byName ? { dns_lookup_family: "V4_PREFERRED" } : {}),
        connect_timeout: "1s",
        typed_extension_protocol_options: {
          "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            explicit_http_config: { http2_protocol_options: {} },
          },
        },
        load_assignment: {
          cluster_name: XDS_CLUSTER,
          endpoints: [{ lb_endpoints: xds.map((x) => ({ endpoint: { address: { socket_address: { address: x.host, port_value: x.port } } } })) }],
        },
        ...(opts.tls ? { transport_socket: xdsTransportSocket(opts.tls, xdsTlsHost(opts.tls, xds)) } : {}),
      }],
    },
  };
}

/**
 * The secrets: the CA (XDS_CA_SECRET) and, for mutual TLS, the certificate and key (XDS_CERT_SECRET),
 * by absolute paths.
 */
function xdsSecrets(tls: XdsTlsOptions): { name: string; [field: string]: unknown }[] {
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) throw new Error("bootstrap: a certificate needs its key and a key its certificate");
  return [
    { name: XDS_CA_SECRET, validation_context: { trusted_ca: { filename: resolve(tls.caFile) } } },
    ...(tls.certFile && tls.keyFile
      ? [{ name: XDS_CERT_SECRET, tls_certificate: { certificate_chain: { filename: resolve(tls.certFile) }, private_key: { filename: resolve(tls.keyFile) } } }]
      : []),
  ];
}

/** tls.sds, checked: absolute paths, a certificate's SDS file exactly when there is a certificate. */
function checkedSdsPaths(tls: XdsTlsOptions): XdsSdsPaths {
  const sds = tls.sds!;
  if ((sds.cert === undefined) !== (tls.certFile === undefined)) throw new Error("bootstrap: the certificate's SDS file is needed exactly when there is a certificate");
  for (const p of [sds.ca, sds.cert]) if (p !== undefined && resolve(p) !== p) throw new Error(`bootstrap: SDS file path ${JSON.stringify(p)} is not absolute`);
  return { ca: sds.ca, ...(sds.cert ? { cert: sds.cert } : {}) };
}

/**
 * Where `multiplane bootstrap --out FILE` puts the SDS files: next to FILE, named after it without
 * ".json" (envoy.json: envoy.xds-ca.json, and with a certificate envoy.xds-cert.json). Absolute.
 */
export function sdsPathsNextTo(bootstrapFile: string, withCert: boolean): XdsSdsPaths {
  const out = resolve(bootstrapFile);
  const stem = join(dirname(out), basename(out).replace(/\.json$/, ""));
  return { ca: `${stem}.xds-ca.json`, ...(withCert ? { cert: `${stem}.xds-cert.json` } : {}) };
}

/** The SDS files tls.sds names, with their content: each one Secret naming the PEM files. */
export function xdsSdsFiles(tls: XdsTlsOptions): { path: string; text: string }[] {
  const sds = checkedSdsPaths(tls);
  const [ca, cert] = xdsSecrets(tls);
  return [
    { path: sds.ca, secret: ca! },
    ...(sds.cert && cert ? [{ path: sds.cert, secret: cert }] : []),
  ].map(({ path, secret }) => ({ path, text: JSON.stringify({ resources: [{ "@type": SECRET_TYPE, ...secret }] }, null, 2) + "\n" }));
}

/**
 * Writes the SDS files, each by a rename over the old one: an Envoy already running on them (the
 * bootstrap written again) reads a whole file, and picks up a change. Readable by all, whatever the
 * umask: they name files and hold no key, and Envoy's user must read them.
 */
export function writeXdsSdsFiles(tls: XdsTlsOptions): void {
  for (const f of xdsSdsFiles(tls)) {
    const tmp = `${f.path}.${process.pid}.tmp`;
    writeFileSync(tmp, f.text);
    chmodSync(tmp, 0o644);
    renameSync(tmp, f.path);
  }
}

/**
 * The host the TLS context is for (its SNI, and the SAN unless --xds-san names one). Replicas on
 * several hosts share one cluster, so one TLS context: their certificates need a name in common, the SAN.
 */
function xdsTlsHost(tls: XdsTlsOptions, xds: HostPort[]): string {
  const hosts = [...new Set(xds.map((x) => x.host))];
  if (hosts.length === 1) return hosts[0]!;
  if (tls.san === undefined) throw new Error(`bootstrap: the control-plane replicas are on several hosts (${hosts.join(", ")}): name the SAN their certificates share with --xds-san`);
  return tls.san;
}

/** TLS to the control plane: its certificate must chain to the CA and carry the expected name or IP. */
function xdsTransportSocket(tls: XdsTlsOptions, host: string): object {
  const san = tls.san ?? host;
  const sanType = isIP(san) ? "IP_ADDRESS" : "DNS";
  return {
    name: "envoy.transport_sockets.tls",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
      ...(isIP(host) ? {} : { sni: host }),
      common_tls_context: {
        alpn_protocols: ["h2"], // gRPC: the control plane's HTTP/2 server negotiates h2 by ALPN
        ...(tls.certFile ? { tls_certificate_sds_secret_configs: [xdsCertReference(tls.sds)] } : {}),
        combined_validation_context: {
          default_validation_context: { match_typed_subject_alt_names: [{ san_type: sanType, matcher: { exact: san } }] },
          validation_context_sds_secret_config: xdsCaReference(tls.sds),
        },
      },
    },
  };
}
