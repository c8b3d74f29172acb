// proxy + registry + options -> the proxy's listeners, clusters and endpoints, in Istio 1.0's sidecar
// layout. Pure: same input, same output, no I/O.
import type { ProxyIdentity } from "../identity/proxy.ts";
import type { Registry } from "../registry/model.ts";
import { duration, listenerFilter, prefixRange, socketAddress, tcpProxy } from "./envoy-objects.ts";
import { inboundInstances } from "./inbound.ts";
import { Interner } from "./intern.ts";
import { LOOP_GUARD_FILTER, loopGuardExtensionConfig } from "./loop-guard.ts";
import { BLACKHOLE_CLUSTER, outboundListenerName, PASSTHROUGH_CLUSTER, VIRTUAL_LISTENER } from "./names.ts";
import { nodeIpsOf } from "./node-ips.ts";
import type { GenerationOptions } from "./options.ts";
import { outboundPlan, type OutboundPlan } from "./outbound.ts";

/**
 * Same shape as control/xds/snapshot.ts Resources, in protobufjs object form. Order is deterministic:
 * listeners by name; clusters fixed ones, outbound (registry order), inbound; endpoints registry order.
 */
export interface GeneratedResources {
  listeners: object[];
  clusters: object[];
  endpoints: object[];
  /** ECDS: the loop guard's configuration with this proxy's node IPs (empty without the guard). */
  extensionConfigs: object[];
}

/** The part every proxy shares: virtual and outbound listeners, fixed and outbound clusters. */
interface SharedPart {
  listeners: object[];
  clusters: object[];
}

// Memoised per outbound plan (itself per registry) and options, so proxies share the very objects
// and the snapshot packs them once.
const sharedParts = new WeakMap<OutboundPlan, Map<string, SharedPart>>();
const interned = new Interner();

function sharedPart(plan: OutboundPlan, options: GenerationOptions): SharedPart {
  const vl = options.virtualListener;
  const key = `${vl.address}|${vl.port}|${vl.handoff}|${options.loopGuard ? "guard" : "none"}|${options.connectTimeoutMs}`;
  let byKey = sharedParts.get(plan);
  if (!byKey) sharedParts.set(plan, (byKey = new Map()));
  let part = byKey.get(key);
  if (!part) {
    byKey.set(key, (part = buildSharedPart(plan, options, key)));
    interned.nextRound();
  }
  return part;
}

/** `optionsKey` names everything besides the plan that the listeners depend on. */
function buildSharedPart(plan: OutboundPlan, options: GenerationOptions, optionsKey: string): SharedPart {
  const timeout = duration(options.connectTimeoutMs);
  const guarded = (tcp: object) => (options.loopGuard ? [LOOP_GUARD_FILTER, tcp] : [tcp]);
  const passthrough = { name: PASSTHROUGH_CLUSTER, filters: guarded(tcpProxy(PASSTHROUGH_CLUSTER)) };
  const vl = options.virtualListener;

  const listeners: object[] = [{
    name: VIRTUAL_LISTENER,
    address: socketAddress(vl.address, vl.port),
    use_original_dst: { value: true },
    listener_filters: [listenerFilter(vl.handoff)],
    filter_chains: [passthrough],
  }];
  // Outbound: one listener per service port; services sharing a port are told apart by destination IP.
  for (const port of plan.ports) {
    if (port.port === vl.port) continue; // the virtual listener's own port: see decisions
    // The chains' keys determine every chain (destinations depend on the chains before them too).
    let key = `${optionsKey}|${port.port}`;
    for (const c of port.chains) key += `|${c.key}`;
    const live = port.chains.filter((c) => c.destinations.length > 0);
    listeners.push(interned.get(key, () => ({
      name: outboundListenerName(port.port),
      address: socketAddress("0.0.0.0", port.port),
      ...(port.ipv6 ? { additional_addresses: [{ address: socketAddress("::", port.port) }] } : {}),
      bind_to_port: { value: false },
      traffic_direction: "OUTBOUND",
      filter_chains: live.map((c) => ({ name: c.cluster, filter_chain_match: { prefix_ranges: c.destinations.map(prefixRange) }, filters: guarded(tcpProxy(c.cluster)) })),
      // Other destinations on this port were handed here by the virtual listener: pass them through too.
      default_filter_chain: passthrough,
    })));
  }
  const clusters: object[] = [
    { name: PASSTHROUGH_CLUSTER, type: "ORIGINAL_DST", lb_policy: "CLUSTER_PROVIDED", connect_timeout: timeout },
    { name: BLACKHOLE_CLUSTER, type: "STATIC", connect_timeout: timeout },
    ...plan.clusters,
  ];
  return { listeners, clusters };
}

export function generate(proxy: ProxyIdentity, registry: Registry, options: GenerationOptions): GeneratedResources {
  const nodeIps = nodeIpsOf(proxy, options.legacySingleIp).ips;
  const timeout = duration(options.connectTimeoutMs);
  const vl = options.virtualListener;
  const plan = outboundPlan(registry, options.connectTimeoutMs);
  const shared = sharedPart(plan, options);
  const listeners = shared.listeners.slice();
  const clusters = shared.clusters.slice();

  // Inbound: service instances on this node's IPs, delivered to the local process.
  const inboundClusters = new Set<string>();
  for (const inst of inboundInstances(registry, new Set(nodeIps), vl.port)) {
    if (inst.conflict || inst.repeat) continue;
    listeners.push({
      name: inst.listener,
      address: socketAddress(inst.address, inst.listenerPort),
      bind_to_port: { value: false },
      traffic_direction: "INBOUND",
      filter_chains: [{ filters: [tcpProxy(inst.cluster)] }],
    });
    if (inboundClusters.has(inst.cluster)) continue;
    inboundClusters.add(inst.cluster);
    clusters.push({
      name: inst.cluster,
      type: "STATIC",
      connect_timeout: timeout,
      load_assignment: {
        cluster_name: inst.cluster,
        endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress("127.0.0.1", inst.localPort) } }] }],
      },
    });
  }

  const name = (o: object) => (o as { name: string }).name;
  listeners.sort((a, b) => (name(a) < name(b) ? -1 : 1));
  const extensionConfigs = options.loopGuard ? [loopGuardExtensionConfig(nodeIps, options.loopGuard)] : [];
  return { listeners, clusters, endpoints: plan.endpoints.slice(), extensionConfigs };
}
