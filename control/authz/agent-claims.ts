// What a node agent may claim. Under mutual TLS its certificate identifies its node by the IP
// addresses it was issued for (IP SANs, as the proxies' certificates bind their node IPs): the agent
// may report those, plus the configured floating ranges (VIPs that move between nodes), and only for
// proxies on its node, meaning proxies that reported one of those addresses themselves. Without mutual
// TLS nobody is identified: agents are trusted as proxies are (plaintext only on loopback, or where
// --insecure-xds says so). Pure.
import { quote } from "../common/clip.ts";
import { cidrContains, type Cidr } from "../identity/ip.ts";
import type { ProxyIdentity } from "../identity/proxy.ts";
import type { PeerIdentity } from "./peer-identity.ts";

export interface AgentTrust {
  /** IPs any identified agent may claim, whatever its certificate (floating VIPs). */
  floating: readonly Cidr[];
}

/** The agent as its connection identifies it: its certificate under mutual TLS, else nothing. */
export type AgentPeer = { mutualTls: false } | { mutualTls: true; certificate: PeerIdentity };

export interface ClaimedIps {
  accepted: string[];
  refused: { ip: string; reason: string }[];
}

const showCidr = (c: Cidr) => `${c.address}/${c.prefixLen}`;

/** Splits a report's IPs into those this agent may claim and those it may not, with why. */
export function judgeAgentIps(agent: AgentPeer, ips: readonly string[], trust: AgentTrust): ClaimedIps {
  if (!agent.mutualTls) return { accepted: [...ips], refused: [] };
  const cert = agent.certificate;
  const out: ClaimedIps = { accepted: [], refused: [] };
  for (const ip of ips) {
    if (cert.ips.includes(ip) || trust.floating.some((c) => cidrContains(c, ip))) out.accepted.push(ip);
    else {
      const floating = trust.floating.length > 0 ? ` nor in the floating ranges ${trust.floating.map(showCidr).join(", ")}` : " (no floating ranges are configured)";
      out.refused.push({ ip, reason: `${ip} is not among certificate ${cert.display}'s IP addresses ${cert.ips.join(", ") || "(none)"}${floating}` });
    }
  }
  return out;
}

/** Why this agent's report must not change this proxy, or undefined when it may. */
export function agentMayNotReportFor(agent: AgentPeer, proxy: ProxyIdentity): string | undefined {
  if (!agent.mutualTls) return undefined;
  const cert = agent.certificate;
  const own = [...new Set([...(proxy.nodeIdIp ? [proxy.nodeIdIp] : []), ...proxy.instanceIps])];
  if (cert.ips.length === 0) return `certificate ${cert.display} names no IP addresses, so it proves no node`;
  if (own.some((ip) => cert.ips.includes(ip))) return undefined;
  return `proxy ${quote(proxy.id, 200)} is not on this agent's node: none of its own IPs ${own.join(", ") || "(none)"} is among certificate ${cert.display}'s IP addresses ${cert.ips.join(", ")}`;
}
