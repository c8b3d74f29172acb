// Registries for tests, from YAML text, and a proxy identity in Istio's form.
import { buildRegistry, BuildMemo } from "../../control/registry/build.ts";
import type { Registry, Resource } from "../../control/registry/model.ts";
import { formatError } from "../../control/registry/model.ts";
import { parseRegistryText } from "../../control/registry/istio/parse.ts";
import { proxyIdentity, type ProxyIdentity } from "../../control/identity/proxy.ts";

export function registryOf(yaml: string): Registry {
  const parsed = parseRegistryText(yaml, "test.yaml");
  if (parsed.errors.length > 0) throw new Error(parsed.errors.map(formatError).join("\n"));
  const built = buildRegistry(parsed.resources);
  if (!built.ok) throw new Error(built.errors.map(formatError).join("\n"));
  return built.registry;
}

export interface ServiceSpec {
  name: string;
  namespace?: string;
  host?: string;
  ports: { number: number; name: string; protocol?: string; targetPort?: number }[];
  endpoints: { address?: string; ports?: Record<string, number>; network?: string; weight?: number; locality?: string }[];
  addresses?: string[];
  /** Default STATIC; NONE and DYNAMIC_DNS leave endpoints out. */
  resolution?: "STATIC" | "DNS" | "DNS_ROUND_ROBIN" | "NONE" | "DYNAMIC_DNS";
  exportTo?: string[];
  /** Default MESH_INTERNAL. */
  location?: "MESH_INTERNAL" | "MESH_EXTERNAL";
}

/** A ServiceEntry document in YAML (JSON is YAML). */
export function serviceEntryYaml(s: ServiceSpec): string {
  const resolution = s.resolution ?? "STATIC";
  return JSON.stringify({
    apiVersion: "networking.istio.io/v1", kind: "ServiceEntry",
    metadata: { name: s.name, namespace: s.namespace ?? "default" },
    spec: {
      hosts: [s.host ?? `${s.name}.${s.namespace ?? "default"}.svc.cluster.local`], ports: s.ports,
      ...(s.addresses ? { addresses: s.addresses } : {}),
      resolution, location: s.location ?? "MESH_INTERNAL",
      ...(resolution === "NONE" || resolution === "DYNAMIC_DNS" ? {} : { endpoints: s.endpoints }),
      ...(s.exportTo ? { exportTo: s.exportTo } : {}),
    },
  }) + "\n---\n";
}

/** A Sidecar document in YAML; `spec` is the spec's YAML (flow style is handy: `{egress: [{hosts: ["./*"]}]}`). */
export function sidecarYaml(namespace: string, name: string, spec: string): string {
  return `apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec: ${spec}\n---\n`;
}

export function registryFrom(services: ServiceSpec[]): Registry {
  return registryOf(services.map(serviceEntryYaml).join(""));
}

/**
 * Registry versions as the store makes them: each document parsed once (the file source keeps
 * unchanged files' resources) and built with the previous builds' Service objects.
 */
export function registryVersions(): (documents: string[]) => Registry {
  const parsed = new Map<string, Resource[]>();
  const memo = new BuildMemo();
  return (documents) => {
    const resources = documents.flatMap((text) => {
      let r = parsed.get(text);
      if (!r) {
        const p = parseRegistryText(text, "test.yaml");
        if (p.errors.length > 0) throw new Error(p.errors.map(formatError).join("\n"));
        parsed.set(text, (r = p.resources));
      }
      return r;
    });
    const built = buildRegistry(resources, memo);
    if (!built.ok) throw new Error(built.errors.map(formatError).join("\n"));
    return built.registry;
  };
}

export function sidecar(nodeIdIp: string, instanceIps?: string): ProxyIdentity {
  return proxyIdentity({
    id: `sidecar~${nodeIdIp}~a-1.default~default.svc.cluster.local`,
    metadata: instanceIps === undefined ? {} : { INSTANCE_IPS: instanceIps },
  });
}

/** `n` invalid hosts in ServiceEntries of 5,000 hosts each (one document each, under the per-document limit); the second host is 300,000 characters long. */
export function badHostsText(n: number): string {
  const docs: string[] = [];
  for (let i = 0; i < n; i += 5_000) {
    const hosts = Array.from({ length: Math.min(5_000, n - i) }, (_, j) => (i + j === 1 ? `${"h".repeat(300_000)}_` : `BAD_${i + j}`));
    docs.push(JSON.stringify({ apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: `bad-${i}` }, spec: { hosts, ports: [{ number: 1, name: "p" }] } }));
  }
  return docs.join("\n---\n");
}
