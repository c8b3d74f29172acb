// HTTP filter, root id "loop_guard_http": the same detection per request, plus hop marking.
// On OUTBOUND listeners it appends this node's id (xds.node.id) to the x-multiplane-hops request
// header; a request whose header already carries that id, or that is self-destined, gets a local
// reply 508 Loop Detected (RFC 5842) with a one-line body and the hops it crossed, this node last,
// in an x-multiplane-hops response header (which each earlier hop relays to the client). Every other
// request passes untouched.
// A request without the header (the first hop, most requests) costs host calls only, no string: the
// counter, the listener direction (not with all_listeners, as the control plane configures it: it puts
// this filter on outbound listeners only), one header lookup, the connection's id (its addresses are
// read on its first request only, addresses.ts), the learned lookup, and the header added from the
// node id's bytes kept since onConfigure.
import {
  getPropertyString, propertyPath, getRequestHeader, addRequestHeader, removeRequestHeader, sendLocalReply,
  releaseResult,
} from "./host";
import { GuardRoot, Layer, layerName } from "./guard";
import { connectionAddresses } from "./addresses";
import { count, connectionsChecked } from "./metrics";
import { hasHop } from "./hops";

const HOPS = String.UTF8.encode("x-multiplane-hops");
// Read through the request attribute, which joins repeated header lines with ","
// (proxy_get_header_map_value returns the first line only).
const HOPS_ATTRIBUTE = propertyPath("request\0headers\0x-multiplane-hops");
const CONTINUE: u32 = 0;
const STOP_ITERATION: u32 = 1;

export function onRequestHeaders(root: GuardRoot): u32 {
  count(connectionsChecked);
  if (!root.checks()) return CONTINUE;
  // The cheap lookup tells whether there is a header at all; only then read every line of it.
  const hasHeader = getRequestHeader(HOPS);
  let hops = "";
  if (hasHeader) {
    releaseResult();
    hops = getPropertyString(HOPS_ATTRIBUTE);
  }
  const id = root.nodeId;
  let layer = connectionAddresses() ? root.verdict() : Layer.None;
  if (layer == Layer.None && hasHeader && id.length > 0 && hasHop(hops, id)) layer = Layer.Hops;
  if (layer != Layer.None && root.report(layer, "request")) {
    const crossed = hasHeader && hops.length > 0 ? (id.length > 0 ? hops + "," + id : hops) : id;
    sendLocalReply(508, "loop_guard_loop_detected",
      "508 Loop Detected: multiplane loop guard on node " + id + " (" + layerName(layer) + ")\n",
      crossed.length > 0 ? "x-multiplane-hops" : "", crossed);
    return STOP_ITERATION;
  }
  if (id.length > 0) {
    if (!hasHeader) addRequestHeader(HOPS, root.nodeIdBytes);
    else {
      // One line with every hop (replace would rewrite only the first of repeated lines).
      removeRequestHeader(HOPS);
      addRequestHeader(HOPS, String.UTF8.encode(hops + "," + id));
    }
  }
  return CONTINUE;
}
