// Who a connected Envoy is and which IPs its node has: the input to inbound/outbound decisions.
import { parseInstanceIps } from "./instance-ips.ts";
import { parseNodeId, type NodeId } from "./node-id.ts";
import type { XdsNode } from "../xds/node.ts";

export interface ProxyIdentity {
  id: string;
  nodeId: NodeId;
  /** The IP inside node.id (Istio form), the only one Istio 1.0 used. */
  nodeIdIp?: string;
  /** From node.metadata.INSTANCE_IPS. */
  instanceIps: string[];
  /** node.id's IP first, then INSTANCE_IPS; canonical and deduplicated. */
  nodeIps: string[];
  /** Ignored input, one message each: the caller logs them once. */
  problems: string[];
  metadata: Record<string, unknown>;
}

/** The xDS node (control/xds/node.ts), of which identity reads the id and the metadata. */
export function proxyIdentity(node: Partial<Pick<XdsNode, "id" | "metadata">>): ProxyIdentity {
  const id = node.id ?? "";
  const metadata = node.metadata ?? {};
  const nodeId = parseNodeId(id);
  const problems: string[] = [];
  if (nodeId.form === "istio" && nodeId.invalidIp !== undefined) {
    problems.push(`node.id ${JSON.stringify(id)}: ${JSON.stringify(nodeId.invalidIp)} is not an IP address; ignored`);
  }
  const instance = parseInstanceIps(metadata.INSTANCE_IPS);
  for (const bad of instance.invalid) problems.push(`node ${JSON.stringify(id)} INSTANCE_IPS: ${bad.reason}; ignored`);
  const nodeIdIp = nodeId.form === "istio" ? nodeId.ip : undefined;
  const nodeIps = [...new Set([...(nodeIdIp ? [nodeIdIp] : []), ...instance.ips])];
  return { id, nodeId, ...(nodeIdIp ? { nodeIdIp } : {}), instanceIps: instance.ips, nodeIps, problems, metadata };
}
