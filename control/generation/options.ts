// Everything generation depends on besides the proxy and the registry. Plain data: generation reads
// no files, so the loop guard's wasm path is given here, not looked up.
import { NO_PLANES, type Planes } from "../planes/plane.ts";
import type { MeshNetwork } from "../registry/model.ts";

export type { MeshNetwork } from "../registry/model.ts";

export interface VirtualListenerOptions {
  address: string;
  port: number;
  /**
   * How the virtual listener learns a connection's original destination before handing it off:
   * "original_dst" reads it from iptables' REDIRECT (SO_ORIGINAL_DST), as in production;
   * "proxy_protocol" takes it from a PROXY protocol header, so tests and demos can exercise the
   * hand-off on loopback without iptables.
   */
  handoff: "original_dst" | "proxy_protocol";
}

export interface LoopGuardOptions {
  /** The module as a file on the Envoy host (dist/loop-guard.wasm when Envoy runs beside the control plane); used unless `remote` is set. */
  wasmPath: string;
  mode: "enforce" | "observe";
  /** Envoy fetches the module over HTTP(S) instead, and checks it against its sha256. */
  remote?: RemoteGuardModule;
}

export interface RemoteGuardModule {
  /** Hex SHA-256 of the module: Envoy refuses other bytes. */
  sha256: string;
  from: GuardModuleServer | { kind: "url"; url: string };
}

/** The control plane's own module server (control/guard-wasm/). */
export interface GuardModuleServer {
  kind: "control-plane";
  /** Its address; undefined: the address each proxy's xDS connection arrived at (a wildcard xDS host). */
  host?: string;
  port: number;
  /** "tls": verified against the bootstrap's xDS CA; "mtls": and Envoy presents its xDS certificate. */
  tls: "none" | "tls" | "mtls";
  path: string;
}

export interface GenerationOptions {
  /** Istio 1.0's behaviour: only the IP inside node.id is a node IP (reproduces the seed's loop). */
  legacySingleIp: boolean;
  virtualListener: VirtualListenerOptions;
  /** The loop guard goes first in every outbound chain; undefined leaves it out. */
  loopGuard?: LoopGuardOptions;
  connectTimeoutMs: number;
  /** Istio's meshNetworks (`serve --mesh-networks`); empty: one flat network, every endpoint reached directly. */
  meshNetworks: readonly MeshNetwork[];
  /** `serve --planes`: source address, DSCP, isolation, timeouts and limits per plane; NO_PLANES: none. */
  planes: Planes;
  /** Istio's root namespace: its Sidecar without workloadSelector applies to namespaces without their own. */
  rootNamespace: string;
}

/** Istio's default meshConfig.rootNamespace. */
export const DEFAULT_ROOT_NAMESPACE = "istio-system";

export const DEFAULT_VIRTUAL_LISTENER: VirtualListenerOptions = { address: "0.0.0.0", port: 15001, handoff: "original_dst" };

export function generationOptions(over: Partial<GenerationOptions> = {}): GenerationOptions {
  return { legacySingleIp: false, virtualListener: DEFAULT_VIRTUAL_LISTENER, connectTimeoutMs: 1000, meshNetworks: [], planes: NO_PLANES, rootNamespace: DEFAULT_ROOT_NAMESPACE, ...over };
}
