// Entry point of dist/loop-guard.wasm: two root contexts in one module,
//   loop_guard       network filter (envoy.filters.network.wasm), guard_network.ts
//   loop_guard_http  HTTP filter (envoy.filters.http.wasm), guard_http.ts
// and the ABI entry points that dispatch to them (exports.ts).
export * from "./exports";
