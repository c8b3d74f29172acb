// Who a connected Envoy is and which IPs its node has: the input to inbound/outbound decisions.
import { parseInstanceIps } from "./instance-ips.ts";
import { parseNodeId, type NodeId } from "./node-id.ts";
import { parseXdsSecrets, XDS_SECRETS_METADATA, type XdsSdsPaths } from "./xds-secrets.ts";
import { quote } from "../common/clip.ts";

/** The proxy's xDS node as the transport hands it over: plain JSON, checked against the xDS limits. */
export interface XdsNode {
  id: string;
  cluster: string;
  /** node.metadata with google.protobuf.Struct unwrapped to plain JSON values. */
  metadata: Record<string, unknown>;
}

export interface ProxyIdentity {
  id: string;
  nodeId: NodeId;
  /** The IP inside node.id (Istio form), the only one Istio 1.0 used. */
  nodeIdIp?: string;
  /** From node.metadata.INSTANCE_IPS. */
  instanceIps: string[];
  /** node.id's IP first, then INSTANCE_IPS (unless replacedBy), then the learned ones; canonical and deduplicated. */
  nodeIps: string[];
  /** IPs the control plane learned for this proxy beyond what it reports (its pod in Kubernetes, its node's agent), each with where from. */
  learned: LearnedIp[];
  /** Who reports this node's current IPs in place of what the proxy reported at its start (its node agent), if anyone. */
  replacedBy?: string;
  /** Ignored input, one message each (at most MAX_PROBLEMS, then one "and N more"): the caller logs them once. */
  problems: string[];
  metadata: Record<string, unknown>;
  /** From node.metadata.MULTIPLANE_XDS_SECRETS: the filesystem SDS files of the xDS CA and certificate; undefined = static secrets. */
  xdsSecrets?: XdsSdsPaths;
  /** node.metadata.LABELS (Istio's: the workload's labels, which Sidecar workloadSelectors match); undefined: none given. */
  labels?: Readonly<Record<string, string>>;
}

/** A node IP the proxy did not report itself, and where it was learned ("Kubernetes pod default/a-1, network-status default/data-net (net1)"). */
export interface LearnedIp {
  ip: string;
  from: string;
  /** When it was last reported (ISO 8601), for sources that report over time. */
  at?: string;
}

/** Problems listed per proxy; the rest are counted. */
const MAX_PROBLEMS = 10;
/** How much of node.id and its IP part a problem echoes. */
const ECHO_CHARS = 200;
const echo = (s: string) => quote(s, ECHO_CHARS);

/** The xDS node (converted from the request by control/xds/server/node.ts), of which identity reads the id and the metadata. */
export function proxyIdentity(node: Partial<Pick<XdsNode, "id" | "metadata">>): ProxyIdentity {
  const id = node.id ?? "";
  const metadata = node.metadata ?? {};
  const nodeId = parseNodeId(id);
  const problems: string[] = [];
  if (nodeId.form === "istio" && nodeId.invalidIp !== undefined) {
    problems.push(`node.id ${echo(id)}: ${echo(nodeId.invalidIp)} is not an IP address; ignored`);
  }
  const instance = parseInstanceIps(metadata.INSTANCE_IPS);
  const listed = instance.invalid.slice(0, MAX_PROBLEMS);
  for (const bad of listed) problems.push(`node ${echo(id)} INSTANCE_IPS: ${bad.reason}; ignored`);
  const unlisted = instance.invalid.length - listed.length;
  if (unlisted > 0) problems.push(`node ${echo(id)} INSTANCE_IPS: and ${unlisted} more entries that are not IP addresses; ignored`);
  const secrets = parseXdsSecrets(metadata[XDS_SECRETS_METADATA]);
  if (secrets.problem) problems.push(`node ${echo(id)} ${XDS_SECRETS_METADATA}: ${secrets.problem}; ignored (the loop guard module's cluster names the bootstrap's static secrets)`);
  if (secrets.warning) problems.push(`node ${echo(id)} ${XDS_SECRETS_METADATA}: ${secrets.warning}`);
  const labels = readLabels(metadata.LABELS, (why) => problems.push(`node ${echo(id)} LABELS: ${why}; ignored`));
  const nodeIdIp = nodeId.form === "istio" ? nodeId.ip : undefined;
  const nodeIps = [...new Set([...(nodeIdIp ? [nodeIdIp] : []), ...instance.ips])];
  return {
    id, nodeId, ...(nodeIdIp ? { nodeIdIp } : {}), instanceIps: instance.ips, nodeIps, learned: [], problems, metadata,
    ...(secrets.paths ? { xdsSecrets: secrets.paths } : {}), ...(labels ? { labels } : {}),
  };
}

/** A map of strings; entries of other types are left out, each said once (at most MAX_PROBLEMS). */
function readLabels(v: unknown, problem: (why: string) => void): Record<string, string> | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "object" || v === null || Array.isArray(v)) return void problem(`expected a map of strings, got ${Array.isArray(v) ? "a list" : typeof v}`);
  const out: Record<string, string> = {};
  let bad = 0;
  for (const [k, value] of Object.entries(v)) {
    if (typeof value === "string") out[k] = value;
    else if (bad++ < MAX_PROBLEMS) problem(`${echo(k)} is not a string`);
  }
  return out;
}

/**
 * The same proxy with `learned` in place of what was learned before: its node IPs are what it reported
 * plus those, or only those when `replacedBy` names who reports the node's current set instead.
 */
export function withLearnedIps(proxy: ProxyIdentity, learned: readonly LearnedIp[], replacedBy?: string): ProxyIdentity {
  const reported = replacedBy !== undefined ? [] : [...(proxy.nodeIdIp ? [proxy.nodeIdIp] : []), ...proxy.instanceIps];
  const nodeIps = [...new Set([...reported, ...learned.map((l) => l.ip)])];
  const { replacedBy: _before, ...rest } = proxy;
  return { ...rest, nodeIps, learned: [...learned], ...(replacedBy !== undefined ? { replacedBy } : {}) };
}
