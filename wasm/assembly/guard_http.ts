// HTTP filter, root id "loop_guard_http": the same detection per request, plus hop marking.
// On OUTBOUND listeners it appends this node's id (xds.node.id) to the x-multiplane-hops request
// header; a request whose header already carries that id, or that is self-destined, gets a local
// reply 508 Loop Detected (RFC 5842) with a one-line body and the hops it crossed, this node last,
// in an x-multiplane-hops response header (which each earlier hop relays to the client). Every other
// request passes untouched.
import { Context, FilterHeadersStatusValues } from "@solo-io/proxy-runtime";
import { getPropertyString, propertyPath, addRequestHeader, removeRequestHeader, sendLocalReply, found } from "./host";
import { GuardRoot, Layer, layerName } from "./guard";
import { count, connectionsChecked } from "./metrics";
import { hasHop } from "./hops";

const HOPS = String.UTF8.encode("x-multiplane-hops");
// Read through the request attribute, which joins repeated header lines with ","
// (proxy_get_header_map_value returns the first line only).
const HOPS_ATTRIBUTE = propertyPath(["request", "headers", "x-multiplane-hops"]);

export class HttpGuardRoot extends GuardRoot {
  createContext(context_id: u32): Context {
    return new HttpGuard(context_id, this);
  }
}

class HttpGuard extends Context {
  onRequestHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const root = changetype<GuardRoot>(this.root_context);
    count(connectionsChecked);
    if (!root.checks()) return FilterHeadersStatusValues.Continue;
    const hops = getPropertyString(HOPS_ATTRIBUTE);
    const hasHeader = found;
    const id = root.nodeId;
    let layer = root.inspect();
    if (layer == Layer.None && hasHeader && id.length > 0 && hasHop(hops, id)) layer = Layer.Hops;
    if (layer != Layer.None && root.report(layer, "request")) {
      const crossed = hasHeader && hops.length > 0 ? (id.length > 0 ? hops + "," + id : hops) : id;
      sendLocalReply(508, "loop_guard_loop_detected",
        "508 Loop Detected: multiplane loop guard on node " + id + " (" + layerName(layer) + ")\n",
        crossed.length > 0 ? "x-multiplane-hops" : "", crossed);
      return FilterHeadersStatusValues.StopIteration;
    }
    if (id.length > 0) {
      // One line with every hop (replace would rewrite only the first of repeated lines).
      if (hasHeader) removeRequestHeader(HOPS);
      addRequestHeader(HOPS, hasHeader ? hops + "," + id : id);
    }
    return FilterHeadersStatusValues.Continue;
  }
}

