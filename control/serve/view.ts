// The HTTP API's view of a running control plane (http/view.ts): what it reads of the parts, and the
// registry writes it hands to the store.
import type { GuardSetup } from "../guard-wasm/setup.ts";
import type { ControlPlaneView } from "../http/view.ts";
import type { AgentIpLearning } from "../pipeline/agent-ips.ts";
import type { ConfigPipeline } from "../pipeline/config-pipeline.ts";
import type { Proxies } from "../pipeline/proxies.ts";
import type { ServiceEntry } from "../registry/model.ts";
import type { RegistryStore } from "../registry/store.ts";
import type { MetricsRegistry } from "./metrics.ts";
import { readiness } from "./readiness.ts";

export function controlPlaneView(parts: { store: RegistryStore; proxies: Proxies; pipeline: ConfigPipeline; agents: AgentIpLearning; guard: GuardSetup | undefined; metrics: MetricsRegistry }): ControlPlaneView {
  const { store, proxies, pipeline, agents, guard, metrics } = parts;
  return {
    readiness: () => readiness(store.status()),
    registryStatus: () => store.status(),
    proxies: () => proxies.status().map((p) => ({
      ...p,
      ...(guard ? { connections: p.connections?.map((c) => ({ ...c, guardModule: guard.status(c.remoteAddress, c.via) })) } : {}),
    })),
    agentReports: () => agents.list(),
    // By node id: its oldest stream (/debug/proxies lists every stream of an id).
    configDump: (id) => proxies.forNode(id)[0]?.config?.resources(),
    decisions: (id) => {
      const r = proxies.forNode(id)[0];
      return r && pipeline.decisions(r.identity);
    },
    metricsText: () => metrics.render(),
    serviceEntries: () => store.registry.resources.filter((x): x is ServiceEntry => x.kind === "ServiceEntry"),
    serviceEntry(namespace, name) {
      const entry = store.registry.resources.find((x): x is ServiceEntry => x.kind === "ServiceEntry" && x.namespace === namespace && x.name === name);
      const etag = entry && store.etag(entry);
      return entry && etag ? { entry, etag } : undefined;
    },
    write: (w) => store.write(w),
    confirmHeld: async () => ({ confirmed: await store.confirmHeld(), services: store.registry.services.length }),
  };
}
