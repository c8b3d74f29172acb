// The six counters and the gauge, defined once per VM with proxy_define_metric (lazily: host
// calls are not allowed while the module starts). Envoy shows them in /stats prefixed
// "wasmcustom." and in /stats/prometheus without it (loop_guard_...). Every VM defining a name
// gets the same Envoy stat, so the counters sum over worker threads and the gauge is one value.
import { defineCounter, defineGauge, incrementMetric } from "./host";

export let connectionsChecked: u32 = 0;
export let selfDestined: u32 = 0;
export let selfLearned: u32 = 0;
export let shortCircuited: u32 = 0;
export let observed: u32 = 0;
export let configErrors: u32 = 0;
/** Gauge: live (unexpired) learned self addresses, set from the shared table (learned.ts). */
export let learnedAddresses: u32 = 0;
let defined = false;

export function defineMetrics(): void {
  if (defined) return;
  defined = true;
  connectionsChecked = defineCounter("loop_guard.connections_checked");
  selfDestined = defineCounter("loop_guard.self_destined");
  selfLearned = defineCounter("loop_guard.self_learned");
  shortCircuited = defineCounter("loop_guard.short_circuited");
  observed = defineCounter("loop_guard.observed");
  configErrors = defineCounter("loop_guard.config_errors");
  learnedAddresses = defineGauge("loop_guard.learned_addresses");
}

export function count(id: u32): void {
  incrementMetric(id, 1);
}
