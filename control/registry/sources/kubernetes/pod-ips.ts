// Every IP a pod answers on: its cluster network's (status.podIPs) and each secondary network's (the
// network-status annotation). A proxy in the pod may be told any of them as its node IPs; this says
// which are the pod's, and where each was read, so a mismatch can be explained.
import type { V1Pod } from "@kubernetes/client-node";
import { quote } from "../../../common/clip.ts";
import { isUnspecified, parseIp } from "../../../identity/ip.ts";
import { podNetworkStatus, type NetworkStatusCache } from "./network-status.ts";
import { objectName } from "./objects.ts";

export type PodIpSource = "status.podIPs" | `network-status:${string}`;

export interface PodIps {
  /** Canonical, without duplicates: status.podIPs first, then the annotation's networks in the order written. */
  ips: string[];
  /** Where each IP was read; an IP read in several places is listed once per place. */
  sources: { ip: string; from: PodIpSource }[];
  warnings: string[];
}

export function podIps(pod: V1Pod, parsed?: NetworkStatusCache): PodIps {
  const ips: string[] = [];
  const sources: PodIps["sources"] = [];
  const warnings: string[] = [];
  const seen = new Set<string>();
  const add = (ip: string, from: PodIpSource) => {
    if (!sources.some((s) => s.ip === ip && s.from === from)) sources.push({ ip, from });
    if (!seen.has(ip)) {
      seen.add(ip);
      ips.push(ip);
    }
  };
  // podIPs holds podIP as its first item; podIP alone is what an older API server or a partial object gives.
  const statusIps = pod.status?.podIPs?.length ? pod.status.podIPs.map((p) => p?.ip) : pod.status?.podIP ? [pod.status.podIP] : [];
  statusIps.forEach((raw, i) => {
    const parsed = typeof raw === "string" ? parseIp(raw) : undefined;
    if (parsed?.ok && !isUnspecified(parsed.ip)) add(parsed.ip, "status.podIPs");
    else warnings.push(`pod ${objectName(pod.metadata)}: status.podIPs[${i}]: ${typeof raw === "string" ? `${quote(raw, 80)} is not a host's IP address` : "no ip"}; left out`);
  });
  const status = podNetworkStatus(pod, parsed);
  for (const w of status.warnings) warnings.push(w);
  for (const network of status.networks) {
    const from: PodIpSource = `network-status:${network.name}${network.interface ? `/${network.interface}` : ""}`;
    for (const ip of network.ips) add(ip, from);
  }
  return { ips, sources, warnings };
}
