// Entry point of dist/loop-guard.wasm: two root contexts in one module,
//   loop_guard       network filter (envoy.filters.network.wasm)
//   loop_guard_http  HTTP filter (envoy.filters.http.wasm)
// and the ABI entry points that dispatch to them (exports.ts).
export * from "./exports";
import { registerRoot } from "./exports";
import { NetworkGuardRoot } from "./guard_network";
import { HttpGuardRoot } from "./guard_http";
import { GuardRoot } from "./guard";

registerRoot("loop_guard", (id: u32): GuardRoot => new NetworkGuardRoot(id));
registerRoot("loop_guard_http", (id: u32): GuardRoot => new HttpGuardRoot(id));
