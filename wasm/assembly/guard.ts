// What both filters share: configuration handling, the self set (config, node metadata,
// learned) and the verdict on one connection's destination and source.
import {
  getPropertyString, getPropertyInt, propertyPath, pluginConfiguration, found, getSharedString, setSharedString,
  setTickPeriod, logInfo, logWarn, logError,
} from "./host";
import { parseIpString, ipHi, ipLo, inCidr, formatIp } from "./ip";
import { DESTINATION, SOURCE, destinationHi, destinationLo, destinationPort, selfSourced } from "./addresses";
import { GuardConfig, Net, parseConfig, configError } from "./config";
import { learnSelf, matchLearned, sweep } from "./learned";
import { clip } from "./clip";
import { shouldLog } from "./lograte";
import { defineMetrics, count, configErrors, selfDestined, selfLearned, shortCircuited, observed } from "./metrics";
import { decimal } from "./decimal";

export enum Layer { None, Config, Metadata, Learned, SourceIsDestination, Hops }

export function layerName(layer: Layer): string {
  switch (layer) {
    case Layer.Config: return "configuration";
    case Layer.Metadata: return "node metadata INSTANCE_IPS";
    case Layer.Learned: return "learned address";
    case Layer.SourceIsDestination: return "source == destination";
    case Layer.Hops: return "x-multiplane-hops";
    default: return "none";
  }
}

// Envoy 1.40 serves node and listener attributes under "xds"; older releases at the top level.
const DIRECTION = propertyPath("xds\0listener_direction");
const DIRECTION_LEGACY = propertyPath("listener_direction");
const INSTANCE_IPS = propertyPath("xds\0node\0metadata\0INSTANCE_IPS");
const INSTANCE_IPS_LEGACY = propertyPath("node\0metadata\0INSTANCE_IPS");
const NODE_ID = propertyPath("xds\0node\0id");
const NODE_ID_LEGACY = propertyPath("node\0id");
const PLUGIN_NAME = propertyPath("plugin_name");
const OUTBOUND: i64 = 2;
// How often each root context sweeps expired learned addresses and refreshes the gauge.
const SWEEP_MS: u32 = 1000;

function inList(list: Array<Net>, hi: u64, lo: u64): bool {
  for (let i = 0; i < list.length; i++) {
    const n = unchecked(list[i]);
    if (inCidr(hi, lo, n.hi, n.lo, n.bits)) return true;
  }
  return false;
}

/** One root context: a filter configuration (network or HTTP, by root id) in one VM. */
export class GuardRoot {
  config: GuardConfig = new GuardConfig();
  metadataIps: Array<Net> = [];
  nodeId: string = "";
  /** nodeId as UTF-8, what the HTTP filter appends to x-multiplane-hops. */
  nodeIdBytes: ArrayBuffer = new ArrayBuffer(0);

  /** `http`: the HTTP filter's root (loop_guard_http), else the network filter's (loop_guard). */
  constructor(public rootId: string, public http: bool) {}

  onConfigure(size: u32): bool {
    defineMetrics();
    const rootId = this.rootId;
    const who = "loop_guard[" + rootId + "]";
    // Envoy configures a plugin in several VMs (main thread, each worker) of one vm_id; they share
    // proxy-wasm shared data, where this plugin (name + root id) keeps its last good configuration
    // and its last rejected one, so a configuration is logged and counted once, not once per VM.
    const plugin = getPropertyString(PLUGIN_NAME) + "/" + rootId;
    const lastGoodKey = String.UTF8.encode("loop_guard.config/" + plugin);
    const rejectedKey = String.UTF8.encode("loop_guard.rejected/" + plugin);
    const text = pluginConfiguration(size);
    const parsed = parseConfig(text);
    if (configError.length == 0) {
      this.config = parsed;
      const previous = getSharedString(lastGoodKey);
      if (!found || previous != text) {
        setSharedString(lastGoodKey, text);
        logInfo(who + ": configured: " + parsed.describe());
      }
      setSharedString(rejectedKey, "");
    } else {
      const problem = configError;
      const seen = getSharedString(rejectedKey) == text && found;
      const fallback = parseConfig(getSharedString(lastGoodKey));
      const haveGood = found && configError.length == 0;
      this.config = haveGood ? fallback : new GuardConfig();
      if (!seen) {
        setSharedString(rejectedKey, text);
        count(configErrors);
        logError(who + ": invalid configuration: " + problem + (haveGood
          ? "; keeping the last good configuration: " + fallback.describe()
          : "; no good configuration yet: running with node metadata INSTANCE_IPS and learned addresses only (mode=enforce)"));
      }
    }

    this.metadataIps = [];
    let ipList = getPropertyString(INSTANCE_IPS);
    if (!found) ipList = getPropertyString(INSTANCE_IPS_LEGACY);
    for (let start = 0; start < ipList.length;) {
      let end = ipList.indexOf(",", start);
      if (end < 0) end = ipList.length;
      const ip = ipList.substring(start, end).trim();
      start = end + 1;
      if (ip.length == 0) continue;
      if (parseIpString(ip)) this.metadataIps.push(new Net(ipHi, ipLo, 128, ip));
      else logWarn(who + ": ignoring \"" + clip(ip) + "\" in node metadata INSTANCE_IPS: not an IP address");
    }
    this.nodeId = getPropertyString(NODE_ID);
    if (!found) this.nodeId = getPropertyString(NODE_ID_LEGACY);
    this.nodeIdBytes = String.UTF8.encode(this.nodeId);
    setTickPeriod(SWEEP_MS);
    return true; // never false: Envoy would reject the listener, and bad config must not take traffic down
  }

  /** Without a tick, expired addresses would leave the table (and the gauge) only on the next hit. */
  onTick(): void {
    sweep();
  }

  /**
   * Whether the current connection's listener is checked: OUTBOUND, or any with all_listeners.
   * Read per connection/request: the listener direction is not available to the root context, and
   * one root context may serve several listeners (proxy-wasm keys root contexts by root id and
   * configuration). A property read costs Envoy about 5 us, so the network filter asks only
   * after a layer matched, and the control plane sets all_listeners on the HTTP filter it places on
   * outbound listeners only.
   */
  checks(): bool {
    if (this.config.allListeners) return true;
    let direction = getPropertyInt(DIRECTION, -1);
    if (direction < 0) direction = getPropertyInt(DIRECTION_LEGACY, 0);
    return direction == OUTBOUND;
  }

  allowed(port: i32): bool {
    const ports = this.config.allowPorts;
    for (let i = 0; i < ports.length; i++) if (unchecked(ports[i]) == port) return true;
    return false;
  }

  /**
   * The verdict on the current connection, whose addresses readAddresses() or connectionAddresses()
   * just read: which layer says its destination is this node (Layer.None: forward it). Learns the
   * destination when source == destination.
   */
  verdict(): Layer {
    const hi = destinationHi, lo = destinationLo;
    let layer = Layer.None;
    if (inList(this.config.nodeIps, hi, lo) || inList(this.config.cidrs, hi, lo)) layer = Layer.Config;
    else if (inList(this.metadataIps, hi, lo)) layer = Layer.Metadata;
    if (selfSourced) {
      if (layer == Layer.None) layer = Layer.SourceIsDestination;
      if (learnSelf(hi, lo, this.config.learnedTtlNanos())) {
        logWarn("loop_guard: learned self address " + formatIp(hi, lo) + " (a connection from " +
          getPropertyString(SOURCE) + " to " + getPropertyString(DESTINATION) +
          "; expires " + decimal(this.config.learnedTtlSeconds) + " s after its last hit)");
      }
    }
    if (layer == Layer.None && matchLearned(hi, lo, this.config.learnedTtlNanos())) layer = Layer.Learned;
    if (layer != Layer.None && this.allowed(destinationPort)) layer = Layer.None;
    return layer;
  }

  /** Counts a detection and logs it (rate limited); returns whether to stop the traffic. */
  report(layer: Layer, what: string): bool {
    if (layer == Layer.Config || layer == Layer.Metadata) count(selfDestined);
    else if (layer == Layer.Learned || layer == Layer.SourceIsDestination) count(selfLearned);
    const enforce = this.config.enforce;
    count(enforce ? shortCircuited : observed);
    const destination = getPropertyString(DESTINATION);
    if (shouldLog(destination)) {
      let why = "its destination is this node (matched: " + layerName(layer) + ")";
      if (layer == Layer.Hops) why = "x-multiplane-hops already carries this node's id \"" + clip(this.nodeId) + "\"";
      logWarn("loop_guard: " + what + " to " + destination + " from " + getPropertyString(SOURCE) +
        ": " + why + "; " + (enforce ? "short-circuited" : "forwarded anyway (mode=observe)") +
        " [at most one line per destination per minute]");
    }
    return enforce;
  }
}
