// Network filter, root id "loop_guard": closes a self-destined connection before tcp_proxy
// connects upstream (enforce), or counts it and lets it through (observe). Every connection is
// examined (and can teach the learned layer); only on OUTBOUND listeners, or on any listener with
// all_listeners, does a match count and act. The healthy path costs three host calls: destination,
// source, and the learned-address lookup.
import { Context, FilterStatusValues } from "@solo-io/proxy-runtime";
import { closeDownstream } from "./host";
import { GuardRoot, Layer } from "./guard";
import { count, connectionsChecked } from "./metrics";

export class NetworkGuardRoot extends GuardRoot {
  createContext(context_id: u32): Context {
    return new NetworkGuard(context_id, this);
  }
}

class NetworkGuard extends Context {
  onNewConnection(): FilterStatusValues {
    const root = changetype<GuardRoot>(this.root_context);
    count(connectionsChecked);
    const layer = root.inspect();
    if (layer == Layer.None || !root.checks()) return FilterStatusValues.Continue;
    if (!root.report(layer, "connection")) return FilterStatusValues.Continue; // observe
    closeDownstream();
    // StopIteration keeps the filters after us (tcp_proxy) from ever seeing the connection.
    return FilterStatusValues.StopIteration;
  }
}

