// What the HTTP API needs from the control plane: read-only views plus the registry's write calls.
// serve/serve.ts implements it; tests can implement it without any xDS.
import type { Decision } from "../generation/decisions.ts";
import type { GeneratedResources } from "../generation/generate.ts";
import type { ServiceEntry } from "../registry/model.ts";
import type { RegistryWrite, WriteOutcome } from "../registry/source.ts";
import type { StoreStatus } from "../registry/store.ts";

export interface TypeState {
  /**
   * "ACK": Envoy applied `version` (or held it already when it opened the stream: then `nonce` is "",
   * nothing was sent); "NACK": it refused the last push and keeps `ackedVersion`; "PENDING": sent, no answer yet.
   */
  state: "ACK" | "NACK" | "PENDING";
  sentVersion: string;
  ackedVersion?: string;
  nonce: string;
  resources: number;
  errorDetail?: string;
  updatedAt: string;
}

export interface ProxyStatus {
  id: string;
  nodeIdIp?: string;
  instanceIps: string[];
  /** The IPs decisions use (only node.id's in legacy mode). */
  nodeIps: string[];
  problems: string[];
  streams: { streamId: number; protocol: "sotw" | "delta" }[];
  connectedAt: string;
  /** By short type name: lds, cds, eds, rds, ecds. */
  types: Record<string, TypeState>;
  /** Every open stream claiming this node id, each with its own config; the fields above are the oldest's. */
  connections?: ConnectionStatus[];
  /** Why its streams disagree (e.g. two Envoys with the same node id and different node IPs). */
  warnings?: string[];
}

export interface GuardModuleStatus {
  /** A file on the Envoy host, or a URL Envoy fetches (and checks against sha256). */
  source: "file" | "url";
  location: string;
  sha256?: string;
  /** When this control plane serves the module: its last answer to the proxy's address, or false if it never fetched it. */
  fetched?: { at: string; status: number } | false;
  /** For another server's URL: the control plane's own fetch of it ("ok", or what is wrong). */
  check?: string;
}

export interface ConnectionStatus {
  streamId: number;
  protocol: "sotw" | "delta";
  nodeIdIp?: string;
  instanceIps: string[];
  nodeIps: string[];
  /** What the client certificate proved (mutual TLS): its SPIFFE id, or its subject. */
  peerIdentity?: string;
  /** The control plane address the stream arrived at. */
  via?: string;
  /** The proxy's address as the control plane sees it. */
  remoteAddress?: string;
  /** Where this proxy's loop guard module comes from and, when fetched, whether that worked as far as the control plane can tell. */
  guardModule?: GuardModuleStatus;
  /** How it disagrees with another stream of the same node id. */
  warning?: string;
  connectedAt: string;
  types: Record<string, TypeState>;
}

export interface ControlPlaneView {
  /** Not ready: why. Ready: remarks worth knowing (e.g. documents left out), usually none. */
  readiness(): { ready: boolean; reasons: string[] };
  registryStatus(): StoreStatus;
  proxies(): ProxyStatus[];
  configDump(proxyId: string): GeneratedResources | undefined;
  decisions(proxyId: string): Decision[] | undefined;
  metricsText(): string;
  serviceEntries(): ServiceEntry[];
  /** One ServiceEntry that is serving, with its ETag (what If-Match names on a later write). */
  serviceEntry(namespace: string, name: string): { entry: ServiceEntry; etag: string } | undefined;
  /** PUT/DELETE of a registry entry: applied only if the whole registry still builds with it. */
  write(w: RegistryWrite): Promise<WriteOutcome>;
}
