// What serve() is told (cmd/cli.ts maps the flags onto it), what it assumes for what it is not told,
// and what it derives from them for the loop guard's setup and for generation.
import { LOOP_GUARD_WASM } from "../../envoy/paths.ts";
import { DEFAULT_VIRTUAL_LISTENER, generationOptions, type GenerationOptions, type LoopGuardOptions, type VirtualListenerOptions } from "../generation/options.ts";
import type { setUpLoopGuard } from "../guard-wasm/setup.ts";
import { DEFAULT_IDENTITY_LIMITS, type IdentityLimits } from "../identity/instance-ips.ts";
import type { Cidr } from "../identity/ip.ts";
import { DEFAULT_LOG_RATE, type LogRate } from "../log/rate-limited-log.ts";
import type { MeshNetwork } from "../registry/model.ts";
import type { Planes } from "../planes/plane.ts";
import type { AgentOptions } from "../pipeline/agent-ips.ts";
import type { OnInvalid } from "../registry/store.ts";
import type { KubernetesSourceOptions } from "../registry/sources/kubernetes/kubernetes-source.ts";
import type { CertificateFiles, TlsFiles } from "../tls/cert-files.ts";
import { DEFAULT_XDS_LIMITS, type XdsLimits } from "../xds/server/limits.ts";
import type { SendBudgetOptions } from "../xds/server/send-budget.ts";

export interface ServeOptions {
  /**
   * A registry file or directory, or etcd://HOST:PORT[,HOST:PORT...]/PREFIX (which also stores the HTTP
   * API's writes, shared by every replica); watched for changes. Undefined: start empty (HTTP API only).
   */
  registry?: string;
  /**
   * Also read the registry from Kubernetes (Services with their EndpointSlices or secondary-network pods,
   * Istio's ServiceEntries, WorkloadEntries and Sidecars), and proxies' node IPs from their pods. `kubeconfig`: a
   * file; else KUBECONFIG, else the pod's service account. `namespaces`: only these (default all).
   */
  kubernetes?: KubernetesSourceOptions;
  /** xDS (gRPC) listen address. Default 127.0.0.1:15010; port 0 picks a free one. */
  xdsHost?: string;
  xdsPort?: number;
  /** HTTP API listen address. Default 127.0.0.1:15014; port 0 picks a free one; false: no HTTP API. */
  httpHost?: string;
  httpPort?: number | false;
  /** Bearer token that PUT/DELETE of ServiceEntries require; undefined disables writes. */
  token?: string;
  /** Where ServiceEntries written over the HTTP API are stored (one file each) and read back at start; undefined refuses writes. Not with etcd, which stores them itself. */
  apiDir?: string;
  /** A registry reload removing more than this share (0..1) of the services is held until stable; one removing all is held until confirmed. Default 1. */
  maxRemovalShare?: number;
  /** How long a held reload must stay unchanged before it applies. Default 10. */
  settleSeconds?: number;
  /** Apply every registry reload at once, even one that empties the registry. */
  acceptRemovals?: boolean;
  /** Istio 1.0 behaviour: only node.id's IP counts (reproduces the seed's loop). */
  legacySingleIp?: boolean;
  /** The loop guard filter, in enforce mode by default; false leaves it out. wasmPath: a file on the Envoy hosts (--guard-wasm-path). */
  loopGuard?: Partial<Pick<LoopGuardOptions, "wasmPath" | "mode">> | false;
  /** Envoy fetches the module from this URL (which must serve dist/loop-guard.wasm's bytes). */
  guardWasmUrl?: string;
  /** Serve the module on the xDS host at this port (0: a free one) for Envoy to fetch. Default: only when xDS is not on loopback, port 15013. */
  guardWasmPort?: number;
  /** The virtual listener: default 0.0.0.0:15001 with the original_dst hand-off. */
  virtualListener?: Partial<VirtualListenerOptions>;
  connectTimeoutMs?: number;
  /** Serve xDS over TLS with these files (mutual TLS when clientCaFile is set); reloaded when they change. */
  tls?: TlsFiles;
  /** Allow plaintext xDS on an address other than loopback (logged as a warning at start). */
  insecureXds?: boolean;
  /** Under mutual TLS, client certificates' SPIFFE ids must be in this trust domain. Default cluster.local. */
  trustDomain?: string;
  /** Istio's meshNetworks (networks, their fromCidr ranges and gateways): split-horizon endpoints. */
  meshNetworks?: MeshNetwork[];
  /** The planes file (`--planes`): read at start, watched; source address, DSCP, isolation, timeouts and limits per plane. */
  planesFile?: string;
  /** Istio's root namespace, whose Sidecar without workloadSelector is the mesh's default. Default istio-system. */
  rootNamespace?: string;
  /** Invalid registry documents: refuse the whole change ("reject", default) or leave them out ("skip"). */
  onInvalid?: OnInvalid;
  /** Overrides of what one xDS client may send (DEFAULT_XDS_LIMITS, DEFAULT_IDENTITY_LIMITS). */
  limits?: Partial<XdsLimits & IdentityLimits>;
  /** Log lines per proxy (stream events) and per peer address (refused streams); default DEFAULT_LOG_RATE. */
  logRate?: Partial<LogRate>;
  /** Bytes of responses on their way over all streams before streams wait to build theirs (DEFAULT_SEND_BUDGET). */
  sendBudget?: Partial<SendBudgetOptions>;
  /** Node agents (`multiplane agent`): addresses any agent proven by mutual TLS may claim beside its certificate's IP SANs (floating VIPs). */
  agentFloatingIps?: Cidr[];
  /** How long an agent's report stands after the agent went away (then the proxy's own node IPs apply again). Default 60. */
  agentExpirySeconds?: number;
  /** One line per event; default console.log. */
  log?: (line: string) => void;
}

/** The options more than one part reads, with their defaults filled in. */
export interface ServeSettings {
  log: (line: string) => void;
  xdsHost: string;
  xdsPort: number;
  /** Undefined: no HTTP API. */
  http?: { host: string; port: number };
  trustDomain: string;
  onInvalid: OnInvalid;
  limits: XdsLimits & IdentityLimits;
  logRate: LogRate;
  agents: AgentOptions;
}

export const DEFAULT_AGENT_EXPIRY_SECONDS = 60;

export function serveSettings(opts: ServeOptions): ServeSettings {
  return {
    log: opts.log ?? ((line: string) => console.log(line)),
    xdsHost: opts.xdsHost ?? "127.0.0.1",
    xdsPort: opts.xdsPort ?? 15010,
    ...(opts.httpPort !== false ? { http: { host: opts.httpHost ?? "127.0.0.1", port: opts.httpPort ?? 15014 } } : {}),
    trustDomain: opts.trustDomain ?? "cluster.local",
    onInvalid: opts.onInvalid ?? "reject",
    limits: { ...DEFAULT_XDS_LIMITS, ...DEFAULT_IDENTITY_LIMITS, ...opts.limits },
    logRate: { ...DEFAULT_LOG_RATE, ...opts.logRate },
    agents: { trust: { floating: opts.agentFloatingIps ?? [] }, expiryMs: (opts.agentExpirySeconds ?? DEFAULT_AGENT_EXPIRY_SECONDS) * 1000 },
  };
}

/** What the loop guard's setup is told; undefined when the filter is left out. */
export function loopGuardFlags(opts: ServeOptions, xdsHost: string, certs: CertificateFiles | undefined): Parameters<typeof setUpLoopGuard>[0] | undefined {
  if (opts.loopGuard === false) return undefined;
  return {
    xdsHost, mode: opts.loopGuard?.mode ?? "enforce", defaultPath: LOOP_GUARD_WASM,
    ...(opts.loopGuard?.wasmPath !== undefined ? { path: opts.loopGuard.wasmPath } : {}),
    ...(opts.guardWasmUrl !== undefined ? { url: opts.guardWasmUrl } : {}),
    ...(opts.guardWasmPort !== undefined ? { port: opts.guardWasmPort } : {}),
    ...(certs ? { certs } : {}),
  };
}

export function serveGenerationOptions(opts: ServeOptions, guard: LoopGuardOptions | undefined, planes?: Planes): GenerationOptions {
  return generationOptions({
    legacySingleIp: opts.legacySingleIp ?? false,
    virtualListener: { ...DEFAULT_VIRTUAL_LISTENER, ...opts.virtualListener },
    ...(guard ? { loopGuard: guard } : {}),
    ...(opts.connectTimeoutMs ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
    ...(opts.meshNetworks ? { meshNetworks: opts.meshNetworks } : {}),
    ...(planes ? { planes } : {}),
    ...(opts.rootNamespace ? { rootNamespace: opts.rootNamespace } : {}),
  });
}
