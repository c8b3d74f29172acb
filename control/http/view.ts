// What the HTTP API needs from the control plane: read-only views plus the registry's write calls.
// serve.ts implements it; tests can implement it without any xDS.
import type { Decision } from "../generation/decisions.ts";
import type { GeneratedResources } from "../generation/generate.ts";
import type { ServiceEntry } from "../registry/model.ts";
import type { RegistryWrite, WriteOutcome } from "../registry/source.ts";
import type { StoreStatus } from "../registry/store.ts";

export interface TypeState {
  /** "ACK": Envoy applied `version`; "NACK": it refused the last push and keeps `ackedVersion`; "PENDING": sent, no answer yet. */
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
  /** By short type name: lds, cds, eds, ecds. */
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
  /** PUT/DELETE of a registry entry: applied only if the whole registry still builds with it. */
  write(w: RegistryWrite): Promise<WriteOutcome>;
}
