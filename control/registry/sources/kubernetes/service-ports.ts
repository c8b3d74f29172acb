// A Service's spec.ports as ServiceEntry ports: protocol as Istio decides it (protocol.ts), a name for
// the one port Kubernetes lets go unnamed, and the target port kept as written: a number is every
// endpoint's port (ServicePort.targetPort), a name is looked up per pod (EndpointSlices carry the result).
import type { V1Service } from "@kubernetes/client-node";
import type { ServicePort } from "../../model.ts";
import { isDns1123Label } from "../../istio/syntax.ts";
import { servicePortProtocol } from "./protocol.ts";

export interface KubernetesPort {
  port: ServicePort;
  /** The name as Kubernetes has it ("" for a Service's only port): what EndpointSlice ports are matched on. */
  kubernetesName: string;
  /** spec.ports[].targetPort when it names a container port rather than giving a number. */
  targetPortName?: string;
}

export function servicePorts(service: V1Service): { ports: KubernetesPort[]; warnings: string[] } {
  const ports: KubernetesPort[] = [];
  const warnings: string[] = [];
  const list = Array.isArray(service.spec?.ports) ? service.spec.ports : [];
  const numbers = new Set<number>();
  const names = new Set<string>();
  list.forEach((p, i) => {
    const at = `spec.ports[${i}]`;
    const number = p?.port;
    if (typeof number !== "number" || !Number.isInteger(number) || number < 1 || number > 65535) return void warnings.push(`${at}: port ${JSON.stringify(number)} is not a port number 1..65535; left out`);
    const kubernetesName = typeof p.name === "string" ? p.name : "";
    // Kubernetes lets a Service's only port go unnamed; ServiceEntry ports (and endpoints' port maps) need a name.
    const name = kubernetesName || `port-${number}`;
    if (!isDns1123Label(name)) return void warnings.push(`${at}: name ${JSON.stringify(name)} is not a DNS-1123 label; left out`);
    const protocol = servicePortProtocol(p);
    if (!protocol.ok) return void warnings.push(`${at} (${name}, ${number}): ${protocol.reason}; left out`);
    if (numbers.has(number) || names.has(name)) return void warnings.push(`${at} (${name}, ${number}): another port has this ${numbers.has(number) ? "number" : "name"}; left out`);
    numbers.add(number);
    names.add(name);
    const target = p.targetPort;
    const targetPort = typeof target === "number" && Number.isInteger(target) && target >= 1 && target <= 65535 ? target : undefined;
    const targetPortName = typeof target === "string" && target !== "" ? target : undefined;
    ports.push({
      port: { number, name, protocol: protocol.protocol, ...(targetPort !== undefined ? { targetPort } : {}) },
      kubernetesName,
      ...(targetPortName !== undefined ? { targetPortName } : {}),
    });
  });
  return { ports, warnings };
}
