// Network filter, root id "loop_guard": closes a self-destined connection before tcp_proxy
// connects upstream (enforce), or counts it and lets it through (observe). Every connection is
// examined (and can teach the learned layer); only on OUTBOUND listeners, or on any listener with
// all_listeners, does a match count and act. The healthy path costs four host calls: the counter,
// destination, source and the learned-address lookup.
import { closeDownstream } from "./host";
import { GuardRoot, Layer } from "./guard";
import { readAddresses } from "./addresses";
import { count, connectionsChecked } from "./metrics";

const CONTINUE: u32 = 0;
// Keeps the filters after us (tcp_proxy) from ever seeing the connection.
const STOP_ITERATION: u32 = 1;

export function onNewConnection(root: GuardRoot): u32 {
  count(connectionsChecked);
  const layer = readAddresses() ? root.verdict() : Layer.None;
  if (layer == Layer.None || !root.checks()) return CONTINUE;
  if (!root.report(layer, "connection")) return CONTINUE; // observe
  closeDownstream();
  return STOP_ITERATION;
}
