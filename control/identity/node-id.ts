// Istio's node.id: `<type>~<ip>~<name>.<namespace>~<namespace>.svc.cluster.local`. The IP in it is the
// only one Istio 1.0 knew about; any id of another shape is kept as an opaque name.
import { parseIp } from "./ip.ts";

const PROXY_TYPES: ReadonlySet<string> = new Set(["sidecar", "router", "ingress"]);

export type NodeId =
  | { form: "istio"; type: string; ip?: string; invalidIp?: string; name: string; namespace: string; domain: string }
  | { form: "opaque" };

export function parseNodeId(id: string): NodeId {
  const parts = id.split("~");
  if (parts.length !== 4 || !PROXY_TYPES.has(parts[0]!)) return { form: "opaque" };
  const [type, ipText, workload, domain] = parts as [string, string, string, string];
  const dot = workload.lastIndexOf(".");
  const name = dot > 0 ? workload.slice(0, dot) : workload;
  const namespace = dot > 0 ? workload.slice(dot + 1) : domain.split(".")[0] ?? "";
  const ip = parseIp(ipText);
  return ip.ok
    ? { form: "istio", type, ip: ip.ip, name, namespace, domain }
    : { form: "istio", type, invalidIp: ipText, name, namespace, domain };
}
