// A ControlPlaneView with no xDS, files or npm packages behind it, so the HTTP handler can be served on
// its own, e.g. by Deno (test/integration/http-deno.test.ts). Two ServiceEntries "from a file" and one connected
// proxy; PUT and DELETE change its state. Bodies are JSON ServiceEntries, checked just enough to refuse
// bad ones with one detail per problem, like the real registry. Only type imports, so nothing of the
// control plane runs here.
import type { Decision } from "../../control/generation/decisions.ts";
import type { Resources } from "../../control/generation/generate.ts";
import type { ControlPlaneView } from "../../control/http/view.ts";
import type { ProxyStatus } from "../../control/pipeline/proxies.ts";
import type { Registry, Service, ServiceEntry } from "../../control/registry/model.ts";
import type { RegistryProblem, WriteOutcome } from "../../control/registry/source.ts";
import type { StoreStatus } from "../../control/registry/store.ts";

export const FIXTURE_PROXY = "sidecar~192.168.10.63~a-1.default~default.svc.cluster.local";
const NODE_IPS = ["192.168.10.63", "10.75.8.101"];

const fileEntry = (name: string, address: string, line: number): ServiceEntry => ({
  kind: "ServiceEntry", namespace: "default", name, hosts: [`${name}.default.svc.cluster.local`], addresses: [],
  ports: [{ number: 9080, name: "http", protocol: "HTTP" }], endpoints: [{ address, addressType: "ip", ports: {}, labels: {} }],
  resolution: "STATIC", location: "MESH_INTERNAL", exportTo: [], origin: { file: "fixture.yaml", line },
});

export function fixtureView(): ControlPlaneView {
  const entries = new Map<string, ServiceEntry>();
  for (const e of [fileEntry("service-a", "10.75.8.101", 1), fileEntry("service-b", "10.75.8.102", 12)]) entries.set(`${e.namespace}/${e.name}`, e);
  const status: StoreStatus = { loaded: true, version: 1, services: 2, resources: 2, reloads: 1, rejections: 0, lastErrors: [], sources: [{ name: "files", loaded: true, refused: [] }], warnings: [], leftOut: { documents: 0, errors: [] } };
  let rejections = 0;

  const registry = (): Registry => {
    const resources = [...entries.values()];
    const services: Service[] = resources.flatMap((e) => e.hosts.map((host) => ({
      entry: `${e.namespace}/${e.name}`, namespace: e.namespace, host, addresses: e.addresses, ports: e.ports, endpoints: e.endpoints,
      resolution: e.resolution, location: e.location, exportTo: ["*"], origin: e.origin,
    })));
    return { services: services.sort((a, b) => a.host.localeCompare(b.host)), resources, sidecars: [], warnings: [] };
  };
  const applied = (changed: boolean): WriteOutcome => {
    if (changed) status.version++;
    status.services = status.resources = entries.size;
    return { ok: true, registry: registry(), changed };
  };
  const refuse = (kind: RegistryProblem["kind"], errors: string[]): WriteOutcome => {
    rejections++;
    return { ok: false, problem: { kind, errors } };
  };
  const decisions = (): Decision[] => [...entries.values()].flatMap((e) => e.ports.flatMap((p) => e.endpoints.map((ep): Decision => {
    const at = NODE_IPS.indexOf(ep.address);
    const host = e.hosts[0]!;
    return at >= 0
      ? { entry: `${e.namespace}/${e.name}`, host, port: p.number, portName: p.name, address: ep.address, endpointPort: p.number, direction: "inbound",
          reason: `${ep.address} is node IP ${at + 1} of ${NODE_IPS.length}`, listener: `${ep.address}_${p.number}`, cluster: `inbound|${p.number}|${p.name}|${host}` }
      : { entry: `${e.namespace}/${e.name}`, host, port: p.number, portName: p.name, address: ep.address, endpointPort: p.number, direction: "outbound",
          reason: `${ep.address} is not one of the ${NODE_IPS.length} node IPs (${NODE_IPS.join(", ")})`, listener: `0.0.0.0_${p.number}`, cluster: `outbound|${p.number}||${host}` };
  })));

  return {
    readiness: () => ({ ready: true, reasons: [] }),
    registryStatus: () => ({ ...status }),
    agentReports: () => [],
    proxies: (): ProxyStatus[] => [{
      id: FIXTURE_PROXY, nodeIdIp: NODE_IPS[0], instanceIps: NODE_IPS, nodeIps: NODE_IPS, problems: [],
      streams: [{ streamId: 1, protocol: "sotw" }], connectedAt: "2026-01-01T00:00:00.000Z",
      types: { lds: { state: "ACK", sentVersion: `v${status.version}`, ackedVersion: `v${status.version}`, nonce: "1", resources: entries.size + 1, updatedAt: "2026-01-01T00:00:00.000Z" } },
    }],
    configDump: (id): Resources | undefined => id !== FIXTURE_PROXY ? undefined : {
      listeners: decisions().map((d) => ({ name: d.listener })), clusters: decisions().map((d) => ({ name: d.cluster })), endpoints: [], routes: [], extensionConfigs: [],
    },
    decisions: (id) => (id === FIXTURE_PROXY ? decisions() : undefined),
    metricsText: () => [
      "# TYPE multiplane_connected_proxies gauge", "multiplane_connected_proxies 1",
      "# TYPE multiplane_registry_services gauge", `multiplane_registry_services ${entries.size}`,
      "# TYPE multiplane_registry_rejections_total counter", `multiplane_registry_rejections_total{source="http-api"} ${rejections}`, "",
    ].join("\n"),
    serviceEntries: () => [...entries.values()],
    serviceEntry: (namespace, name) => {
      const entry = entries.get(`${namespace}/${name}`);
      return entry && { entry, etag: `"${JSON.stringify(entry).length}"` };
    },
    write: async (w) => (w.op === "put" ? put(w.namespace, w.name, w.body) : del(w.namespace, w.name)),
    confirmHeld: async () => ({ confirmed: [], services: registry().services.length }),
  };

  function put(namespace: string, name: string, body: string): WriteOutcome {
    const key = `${namespace}/${name}`;
    if (entries.get(key)?.origin.file === "fixture.yaml") return refuse("conflict", [`ServiceEntry ${key} is defined in fixture.yaml; edit that file instead`]);
    let doc: any;
    try {
      doc = JSON.parse(body);
    } catch (err) {
      return refuse("invalid", [`request body: not JSON: ${(err as Error).message}`]);
    }
    const errors: string[] = [];
    if (doc?.kind !== "ServiceEntry") errors.push(`request body: kind must be ServiceEntry, got ${JSON.stringify(doc?.kind)}`);
    if (doc?.metadata?.namespace !== namespace || doc?.metadata?.name !== name) errors.push(`request body: metadata does not match the path ${key}`);
    const hosts: unknown[] = Array.isArray(doc?.spec?.hosts) ? doc.spec.hosts : [];
    if (hosts.length === 0) errors.push("request body: spec.hosts must list at least one host");
    hosts.forEach((h, i) => { if (typeof h !== "string" || !/^[a-z0-9.-]{1,253}$/.test(h)) errors.push(`request body: spec.hosts[${i}]: ${JSON.stringify(h)} is not a DNS name`); });
    const ports: any[] = Array.isArray(doc?.spec?.ports) ? doc.spec.ports : [];
    ports.forEach((p, i) => { if (!Number.isInteger(p?.number) || p.number < 1 || p.number > 65535) errors.push(`request body: spec.ports[${i}].number must be a port number 1..65535, got ${JSON.stringify(p?.number)}`); });
    const addresses: unknown[] = (doc?.spec?.endpoints ?? []).map((ep: any) => ep?.address);
    if (errors.length > 0) return refuse("invalid", errors);
    const before = JSON.stringify(entries.get(key));
    entries.set(key, {
      kind: "ServiceEntry", namespace, name, hosts: hosts as string[], addresses: [],
      ports: ports.map((p) => ({ number: p.number, name: String(p.name ?? `port-${p.number}`), protocol: "TCP" })),
      endpoints: addresses.map((address) => ({ address: String(address), addressType: "ip" as const, ports: {}, labels: {} })),
      resolution: "STATIC", location: "MESH_INTERNAL", exportTo: [], origin: { file: "http-api", line: 1 },
    });
    return applied(JSON.stringify(entries.get(key)) !== before);
  }

  function del(namespace: string, name: string): WriteOutcome {
    const key = `${namespace}/${name}`;
    const e = entries.get(key);
    if (!e) return refuse("not-found", [`no ServiceEntry ${key} was added over HTTP`]);
    if (e.origin.file === "fixture.yaml") return refuse("conflict", [`ServiceEntry ${key} is defined in fixture.yaml; edit that file instead`]);
    entries.delete(key);
    return applied(true);
  }
}
