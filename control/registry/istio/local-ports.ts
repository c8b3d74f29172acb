// multiplane's one annotation, not Istio's: `multiplane.dev/local-ports: "http=19080,grpc=19090"` on a
// ServiceEntry says where the process behind the sidecar listens on 127.0.0.1 when that is not the port
// its instance receives (Istio expresses this with a Sidecar resource's ingress defaultEndpoint, a kind
// multiplane does not read). Only inbound delivery changes; what other proxies send to stays Istio's.
import type { ServicePort } from "../model.ts";
import { pathName, type Path, type Reader } from "./reader.ts";

export const LOCAL_PORTS_ANNOTATION = "multiplane.dev/local-ports";

export function readLocalPorts(r: Reader, value: string, at: Path, ports: readonly ServicePort[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of value.split(",").map((x) => x.trim()).filter(Boolean)) {
    const m = /^([^=\s]+)=(\d+)$/.exec(item);
    const port = m ? Number(m[2]) : NaN;
    if (!m || !(port >= 1 && port <= 65535)) r.fail(at, `${pathName(at)}: ${JSON.stringify(item)} is not <port name>=<port 1..65535>`);
    else if (!ports.some((p) => p.name === m[1])) r.fail(at, `${pathName(at)}: port ${m[1]} is not a port of spec.ports`);
    else out[m[1]!] = port;
  }
  return out;
}
