// The six counters, defined once per VM with proxy_define_metric (lazily: host calls are not
// allowed while the module starts). Envoy shows them in /stats and /stats/prometheus prefixed
// "wasmcustom." (wasmcustom_loop_guard_... in Prometheus).
import { defineCounter, incrementMetric } from "./host";

export let connectionsChecked: u32 = 0;
export let selfDestined: u32 = 0;
export let selfLearned: u32 = 0;
export let shortCircuited: u32 = 0;
export let observed: u32 = 0;
export let configErrors: u32 = 0;
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
}

export function count(id: u32): void {
  incrementMetric(id, 1);
}
