// Entry point of dist/loop-guard.wasm: the SDK's exports plus the network-filter
// entry points the SDK lacks.
export * from "@solo-io/proxy-runtime/proxy";
export * from "./network";
import { RootContext, Context, registerRootContext, FilterStatusValues } from "@solo-io/proxy-runtime";
import { defineCounter, incrementMetric, pluginConfiguration } from "./host";

class LoopGuardRoot extends RootContext {
  connectionsChecked: u32 = defineCounter("loop_guard.connections_checked");
  onConfigure(configuration_size: u32): bool {
    pluginConfiguration(configuration_size);
    return true;
  }
  createContext(context_id: u32): Context {
    return new LoopGuardConnection(context_id, this);
  }
}

class LoopGuardConnection extends Context {
  onNewConnection(): FilterStatusValues {
    incrementMetric((this.root_context as LoopGuardRoot).connectionsChecked, 1);
    return FilterStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => new LoopGuardRoot(context_id) as RootContext, "loop_guard");
