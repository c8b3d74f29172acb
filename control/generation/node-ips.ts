// Which IPs count as "this node" for a proxy: all of them (the fix), or only node.id's (Istio 1.0).
import type { ProxyIdentity } from "../identity/proxy.ts";

export interface NodeIps {
  ips: string[];
  /** "node IP 2 of 2 (from INSTANCE_IPS)". */
  describe(ip: string): string | undefined;
}

export function nodeIpsOf(proxy: ProxyIdentity, legacySingleIp: boolean): NodeIps {
  const ips = legacySingleIp ? (proxy.nodeIdIp ? [proxy.nodeIdIp] : []) : proxy.nodeIps;
  const index = new Map(ips.map((ip, i) => [ip, i]));
  return {
    ips,
    describe(ip) {
      const i = index.get(ip);
      if (i === undefined) return undefined;
      // What the proxy reported at its start counts only while no agent reports the node's set instead.
      const reported = legacySingleIp || proxy.replacedBy === undefined;
      const from = [
        ip === proxy.nodeIdIp && reported ? "node.id" : "", proxy.instanceIps.includes(ip) && reported ? "INSTANCE_IPS" : "",
        ...proxy.learned.filter((l) => l.ip === ip).map((l) => (l.at ? `${l.from}, reported ${l.at}` : l.from)),
      ].filter(Boolean).join(" and ");
      return `node IP ${i + 1} of ${ips.length} (from ${from})`;
    },
  };
}
