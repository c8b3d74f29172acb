// The registry sources the options choose: etcd, which holds the files' part and the HTTP API's writes
// at once, shared by every replica; or the files (when given) and the HTTP API's directory; and
// Kubernetes beside either, when asked for.
import { isEtcdUrl, parseEtcdUrl, type EtcdLocation } from "../registry/sources/etcd/etcd-layout.ts";
import { EtcdSource } from "../registry/sources/etcd/etcd-source.ts";
import { ApiSource } from "../registry/sources/api/api-source.ts";
import { FileSource } from "../registry/sources/files/file-source.ts";
import { KubernetesSource } from "../registry/sources/kubernetes/kubernetes-source.ts";
import type { RegistrySource } from "../registry/source.ts";
import type { ServeOptions } from "./options.ts";

export interface RegistryChoice {
  /** Set when the registry is in etcd (every replica shares it). */
  etcd?: EtcdLocation;
  /** Makes the sources; apart from the choice because an etcd source opens a client. */
  sources(): RegistrySource[];
}

/** The Kubernetes source among `sources`, when there is one (its pods give proxies node IPs). */
export const kubernetesSourceOf = (sources: readonly RegistrySource[]) => sources.find((s): s is KubernetesSource => s instanceof KubernetesSource);

/** Throws, before anything is made, when the options contradict each other. */
export function chooseRegistry(opts: ServeOptions): RegistryChoice {
  const etcd = opts.registry !== undefined && isEtcdUrl(opts.registry) ? parseEtcdUrl(opts.registry) : undefined;
  if (etcd) {
    if (opts.apiDir !== undefined) throw new Error("apiDir: an etcd registry stores the HTTP API's writes itself");
    return { etcd, sources: () => [new EtcdSource(etcd), ...kubernetes(opts)] };
  }
  const fileOptions = {
    ...(opts.maxRemovalShare !== undefined ? { maxRemovalShare: opts.maxRemovalShare } : {}),
    ...(opts.settleSeconds !== undefined ? { settleMs: opts.settleSeconds * 1000 } : {}),
    ...(opts.acceptRemovals !== undefined ? { acceptRemovals: opts.acceptRemovals } : {}),
  };
  const registry = opts.registry;
  return { sources: () => [...(registry !== undefined ? [new FileSource(registry, fileOptions)] : []), ...kubernetes(opts), new ApiSource(opts.apiDir)] };
}

const kubernetes = (opts: ServeOptions): RegistrySource[] => (opts.kubernetes ? [new KubernetesSource({ ...(opts.log ? { log: opts.log } : {}), ...opts.kubernetes })] : []);
