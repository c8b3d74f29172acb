// A ServiceEntry as the Istio document it stands for: what a GET of one entry answers, so that it can
// be edited and PUT back (kubectl's read-modify-write). Istio's defaults that the parser filled in are
// written out; fields multiplane does not read (and warned about when they were loaded) are not kept.
// Parsing the document gives back the same entry (test/unit/istio-document.test.ts).
import type { Endpoint, ServiceEntry } from "../model.ts";
import { LOCAL_PORTS_ANNOTATION } from "./local-ports.ts";

export const ISTIO_API_VERSION = "networking.istio.io/v1";

export interface ServiceEntryDocument {
  apiVersion: typeof ISTIO_API_VERSION;
  kind: "ServiceEntry";
  metadata: { name: string; namespace: string; annotations?: Record<string, string> };
  spec: Record<string, unknown>;
}

export function serviceEntryDocument(e: ServiceEntry): ServiceEntryDocument {
  const localPorts = e.localPorts && Object.keys(e.localPorts).length > 0
    ? { annotations: { [LOCAL_PORTS_ANNOTATION]: Object.entries(e.localPorts).map(([name, port]) => `${name}=${port}`).join(",") } }
    : {};
  return {
    apiVersion: ISTIO_API_VERSION,
    kind: "ServiceEntry",
    metadata: { name: e.name, namespace: e.namespace, ...localPorts },
    spec: {
      hosts: e.hosts,
      ...(e.addresses.length > 0 ? { addresses: e.addresses } : {}),
      ports: e.ports.map((p) => ({ number: p.number, name: p.name, ...(p.protocol ? { protocol: p.protocol } : {}), ...(p.targetPort !== undefined ? { targetPort: p.targetPort } : {}) })),
      location: e.location,
      resolution: e.resolution,
      ...(e.endpoints.length > 0 ? { endpoints: e.endpoints.map(workloadSpec) } : {}),
      ...(e.workloadSelector ? { workloadSelector: { labels: e.workloadSelector } } : {}),
      ...(e.exportTo.length > 0 ? { exportTo: e.exportTo } : {}),
    },
  };
}

/** An endpoint as Istio's WorkloadEntry spec writes it (an inline endpoint has the same fields). */
function workloadSpec(ep: Endpoint): Record<string, unknown> {
  return {
    ...(ep.address !== "" ? { address: ep.address } : {}),
    ...(Object.keys(ep.ports).length > 0 ? { ports: ep.ports } : {}),
    ...(Object.keys(ep.labels).length > 0 ? { labels: ep.labels } : {}),
    ...(ep.network !== undefined ? { network: ep.network } : {}),
    ...(ep.locality !== undefined ? { locality: ep.locality } : {}),
    ...(ep.weight !== undefined ? { weight: ep.weight } : {}),
  };
}
