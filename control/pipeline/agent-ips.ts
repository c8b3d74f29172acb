// Node IPs from node agents (`multiplane agent`): an agent on a node reports the node's current
// addresses for the proxies it names (by node id). While a report stands, its set is the proxy's node IPs
// in place of what the proxy reported at its start (node.id's IP and INSTANCE_IPS are a snapshot of
// that moment; the agent reads the kernel now), so an address the node lost stops being local too.
// Pod IPs from Kubernetes are still added. The newest report for a node id wins. When its agent goes
// away, a report stands until the expiry, then the proxy's own set applies again.
// What an agent may claim is authz/agent-claims.ts's judgement.
import { agentMayNotReportFor, judgeAgentIps, type AgentPeer, type AgentTrust } from "../authz/agent-claims.ts";
import type { ProxyIdentity } from "../identity/proxy.ts";
import type { Learned, LearnedIpSource } from "./learned-ips.ts";
import type { Proxies } from "./proxies.ts";

/** What an agent says (xds/server/agent-protocol.ts carries it): the node's whole current set, for these proxies. */
export interface AgentReport {
  /** node.id of each proxy the agent reports for (its Envoys' --node-id). */
  nodeIds: string[];
  /** The node's current IPs, canonical (the agent's filter: no loopback, no link-local). */
  ips: string[];
}

export interface AgentAnswer {
  /** The IPs the control plane takes as this node's, for the proxies below. */
  accepted: string[];
  /** IPs this agent may not claim. */
  refused: { ip: string; reason: string }[];
  /** Per node id: open proxy streams that took the report, and those that refused it (not on this agent's node). */
  nodes: { nodeId: string; applied: number; refused: { reason: string }[] }[];
}

export interface AgentEvents {
  /** IPs refused from a report, or a proxy the agent may not report for: logged and counted. */
  refused?(agent: string, reason: string, kind: "ip" | "proxy"): void;
  /** A report was taken. */
  reported?(agent: string, report: AgentReport, accepted: readonly string[]): void;
  /** An agent's reports expired: its proxies are back to their own node IPs. */
  expired?(agent: string, nodeIds: readonly string[]): void;
}

export interface AgentOptions {
  trust: AgentTrust;
  /** How long a report stands after its agent went away. */
  expiryMs: number;
}

/** Who reported, as /debug and logs name it: "node agent 1 (certificate …, 10.0.0.5)". */
export interface AgentName {
  agentId: number;
  name: string;
}

interface NodeReport {
  agent: AgentName;
  peer: AgentPeer;
  ips: readonly string[];
  at: string;
  /** Set once its agent went away. */
  expiry?: NodeJS.Timeout;
  expiresAt?: string;
}

/** A standing report, for /debug. */
export interface AgentReportView {
  nodeId: string;
  agent: string;
  ips: readonly string[];
  reportedAt: string;
  /** When it lapses (its agent went away), else absent. */
  expiresAt?: string;
}

export class AgentIpLearning implements LearnedIpSource {
  /** node id -> the report that stands for it. */
  private readonly reports = new Map<string, NodeReport>();
  /**
   * "agentId proxyId" pairs whose refusal was reported already: once per agent and proxy, however often
   * the proxy reconnects; at most the node ids of the agent's reports (64 a report).
   */
  private readonly refusedProxies = new Set<string>();

  constructor(
    /** How the streams of these node ids get their node IPs again (LearnedIps.refreshNodes). */
    private readonly refresh: (nodeIds: Iterable<string>) => void,
    private readonly proxies: Proxies,
    private readonly options: AgentOptions,
    private readonly events: AgentEvents = {},
  ) {}

  report(agent: AgentName, peer: AgentPeer, report: AgentReport): AgentAnswer {
    const claimed = judgeAgentIps(peer, report.ips, this.options.trust);
    for (const r of claimed.refused) this.events.refused?.(agent.name, r.reason, "ip");
    // Every IP refused: nothing this agent says about the node can be used, so nothing changes.
    const usable = claimed.accepted.length > 0 || report.ips.length === 0;
    if (usable) {
      const at = new Date().toISOString();
      for (const nodeId of report.nodeIds) {
        const before = this.reports.get(nodeId);
        if (before?.expiry) clearTimeout(before.expiry);
        this.reports.set(nodeId, { agent, peer, ips: claimed.accepted, at });
      }
      this.refresh(report.nodeIds);
      this.events.reported?.(agent.name, report, claimed.accepted);
    }
    return {
      accepted: usable ? claimed.accepted : [],
      refused: claimed.refused,
      nodes: report.nodeIds.map((nodeId) => {
        const streams = this.proxies.forNode(nodeId);
        const refused = streams.map((r) => agentMayNotReportFor(peer, r.identity)).filter((x): x is string => x !== undefined);
        return { nodeId, applied: usable ? streams.length - refused.length : 0, refused: refused.map((reason) => ({ reason })) };
      }),
    };
  }

  /** The agent's stream ended: its reports stand until the expiry. */
  gone(agentId: number): void {
    const expiresAt = new Date(Date.now() + this.options.expiryMs).toISOString();
    for (const [nodeId, r] of this.reports) {
      if (r.agent.agentId !== agentId || r.expiry) continue;
      r.expiresAt = expiresAt;
      r.expiry = setTimeout(() => this.expire(nodeId, r), this.options.expiryMs);
      r.expiry.unref();
    }
    for (const key of this.refusedProxies) if (key.startsWith(`${agentId} `)) this.refusedProxies.delete(key);
  }

  ipsFor(proxy: ProxyIdentity): Learned | undefined {
    const r = this.reports.get(proxy.id);
    if (!r) return undefined;
    const refusal = agentMayNotReportFor(r.peer, proxy);
    if (refusal) {
      const key = `${r.agent.agentId} ${proxy.id}`;
      if (!this.refusedProxies.has(key)) {
        this.refusedProxies.add(key);
        this.events.refused?.(r.agent.name, refusal, "proxy");
      }
      return undefined;
    }
    return { ips: r.ips.map((ip) => ({ ip, from: r.agent.name, at: r.at })), replaces: r.agent.name };
  }

  /** The standing reports, by node id. */
  list(): AgentReportView[] {
    return [...this.reports].map(([nodeId, r]) => ({
      nodeId, agent: r.agent.name, ips: r.ips, reportedAt: r.at, ...(r.expiresAt ? { expiresAt: r.expiresAt } : {}),
    }));
  }

  /** Clears the expiry timers. */
  stop(): void {
    for (const r of this.reports.values()) if (r.expiry) clearTimeout(r.expiry);
  }

  private expire(nodeId: string, r: NodeReport): void {
    if (this.reports.get(nodeId) !== r) return;
    this.reports.delete(nodeId);
    this.refresh([nodeId]);
    this.events.expired?.(r.agent.name, [nodeId]);
  }
}
