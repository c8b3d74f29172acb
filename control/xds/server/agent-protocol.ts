// What a node agent and the control plane say to each other, on the xDS port (same TLS, same
// authorization of the peer): one bidirectional stream, JSON in gRPC frames. Each report carries the
// node's whole current address set for the proxies it names, so a lost or repeated report cannot
// leave a stale half; each answer says what was taken and what was refused, and why.
import type * as grpc from "@grpc/grpc-js";
import { normaliseIp } from "../../identity/ip.ts";
import { quote } from "../../common/clip.ts";
import type { AgentReport } from "../../pipeline/agent-ips.ts";
import { checkLength } from "./limits.ts";

/** How much of a bad field name or address an error echoes. */
const ECHO_CHARS = 64;

export const AGENT_REPORT_PATH = "/multiplane.agent.v1.NodeAgent/ReportAddresses";

export interface AgentLimits {
  /** Node ids one agent may report for. */
  maxAgentNodeIds: number;
  /** IPs in one report. */
  maxAgentIps: number;
  maxNodeIdBytes: number;
}

export type { AgentAnswer, AgentReport } from "../../pipeline/agent-ips.ts";

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const parse = (b: Buffer): unknown => {
  try {
    return JSON.parse(b.toString("utf8"));
  } catch (err) {
    // A message that is not JSON reaches the handler as this marker: it answers INVALID_ARGUMENT.
    return { notJson: (err as Error).message };
  }
};

/** The method as grpc-js's Server.addService and makeGenericClientConstructor take it. */
export const agentService: grpc.ServiceDefinition = {
  ReportAddresses: {
    path: AGENT_REPORT_PATH, requestStream: true, responseStream: true, originalName: "reportAddresses",
    requestSerialize: json, requestDeserialize: parse, responseSerialize: json, responseDeserialize: parse,
  },
};

/** A message as received: a report, or the reason it is not one. */
export function parseAgentReport(message: unknown, limits: AgentLimits): { ok: true; report: AgentReport } | { ok: false; reason: string } {
  const fail = (reason: string) => ({ ok: false as const, reason });
  if (typeof message !== "object" || message === null || Array.isArray(message)) return fail("a report must be a JSON object {nodeIds, ips}");
  const m = message as Record<string, unknown>;
  if (typeof m.notJson === "string" && Object.keys(m).length === 1) return fail(`a report must be JSON: ${m.notJson}`);
  const unknown = Object.keys(m).filter((k) => k !== "nodeIds" && k !== "ips");
  if (unknown.length > 0) return fail(`unknown field ${quote(unknown[0]!, ECHO_CHARS)} (a report has nodeIds and ips)`);
  if (!Array.isArray(m.nodeIds) || m.nodeIds.length === 0) return fail("nodeIds must be a non-empty list of node ids");
  if (m.nodeIds.length > limits.maxAgentNodeIds) return fail(`nodeIds lists ${m.nodeIds.length} node ids, over the limit of ${limits.maxAgentNodeIds}`);
  if (!Array.isArray(m.ips)) return fail("ips must be a list of IP addresses");
  if (m.ips.length > limits.maxAgentIps) return fail(`ips lists ${m.ips.length} addresses, over the limit of ${limits.maxAgentIps}`);
  const nodeIds: string[] = [];
  for (const id of m.nodeIds) {
    if (typeof id !== "string" || id === "") return fail("every node id must be a non-empty string");
    const tooLong = checkLength("a node id", id, limits.maxNodeIdBytes);
    if (tooLong) return fail(tooLong.details);
    if (!nodeIds.includes(id)) nodeIds.push(id);
  }
  const ips: string[] = [];
  for (const entry of m.ips) {
    const ip = typeof entry === "string" && entry.length <= 64 ? normaliseIp(entry) : undefined;
    if (ip === undefined) return fail(`${quote(typeof entry === "string" ? entry : JSON.stringify(entry) ?? String(entry), ECHO_CHARS)} in ips is not an IP address`);
    if (!ips.includes(ip)) ips.push(ip);
  }
  return { ok: true, report: { nodeIds, ips } };
}
