// What the HTTP API needs from the control plane: read-only views plus the registry's write calls.
// serve/view.ts implements it; tests can implement it without any xDS.
import type { Decision } from "../generation/decisions.ts";
import type { Resources } from "../generation/generate.ts";
import type { ServiceEntry } from "../registry/model.ts";
import type { RegistryWrite, WriteOutcome } from "../registry/source.ts";
import type { StoreStatus } from "../registry/store.ts";
import type { AgentReportView } from "../pipeline/agent-ips.ts";
import type { ProxyStatus } from "../pipeline/proxies.ts";

export interface ControlPlaneView {
  /** Not ready: why. Ready: remarks worth knowing (e.g. documents left out), usually none. */
  readiness(): { ready: boolean; reasons: string[] };
  registryStatus(): StoreStatus;
  proxies(): ProxyStatus[];
  /** The node agents' standing reports, by node id. */
  agentReports(): AgentReportView[];
  configDump(proxyId: string): Resources | undefined;
  decisions(proxyId: string): Decision[] | undefined;
  metricsText(): string;
  serviceEntries(): ServiceEntry[];
  /** One ServiceEntry that is serving, with its ETag (what If-Match names on a later write). */
  serviceEntry(namespace: string, name: string): { entry: ServiceEntry; etag: string } | undefined;
  /** PUT/DELETE of a registry entry: applied only if the whole registry still builds with it. */
  write(w: RegistryWrite): Promise<WriteOutcome>;
  /** Applies the registry changes held back waiting for a confirmation (removing every service): which, and the services serving after. */
  confirmHeld(): Promise<{ confirmed: { source: string; reasons: string[] }[]; services: number }>;
}
