// Istio's meshNetworks (`serve --mesh-networks FILE`): which network each endpoint is on (its own
// `network`, or a fromCidr range) and each network's gateways, through which proxies of other
// networks reach it. YAML or JSON text in, networks and file:line problems out; no I/O.
import { parseCidr, parseIp } from "../../identity/ip.ts";
import type { MeshNetwork, RegistryError } from "../model.ts";
import { readSingleDocument } from "./parse.ts";
import { pathName, Reader, type Path } from "./reader.ts";

export interface MeshNetworksResult {
  networks: MeshNetwork[];
  errors: RegistryError[];
  warnings: RegistryError[];
}

export function parseMeshNetworks(text: string, file: string): MeshNetworksResult {
  const { value, at, syntaxErrors } = readSingleDocument(text, file);
  if (syntaxErrors.length > 0) return { networks: [], errors: syntaxErrors, warnings: [] };
  const r = new Reader();
  const networks: MeshNetwork[] = [];
  // Istio's shape is {networks: {...}}; a ConfigMap's `meshNetworks:` key holding it is accepted too.
  const root = r.obj(value, [], true);
  const base: Path = root && "meshNetworks" in root ? ["meshNetworks"] : [];
  const top = root && (base.length ? r.obj(root.meshNetworks, base, true) : root);
  if (top) r.known(top, base, ["networks"]);
  const nets = top && r.obj(top.networks, [...base, "networks"], true);
  for (const [name, value] of Object.entries(nets ?? {})) {
    const na = [...base, "networks", name];
    const n = r.obj(value, na, true);
    if (!n) continue;
    r.known(n, na, ["endpoints", "gateways"]);
    const net: MeshNetwork = { name, fromCidrs: [], gateways: [] };
    r.list(n.endpoints, [...na, "endpoints"], false)?.forEach((e, i) => {
      const ea = [...na, "endpoints", i];
      const o = r.obj(e, ea, true);
      if (!o) return;
      r.known(o, ea, ["fromCidr", "fromRegistry"]);
      if ((o.fromCidr === undefined) === (o.fromRegistry === undefined)) return void r.fail(ea, `${pathName(ea)} needs exactly one of fromCidr and fromRegistry`);
      const registry = r.str(o.fromRegistry, [...ea, "fromRegistry"], false);
      if (registry !== undefined) r.warn([...ea, "fromRegistry"], `fromRegistry ${registry} is ignored: multiplane has one registry; endpoints join network ${name} by their own network field or by fromCidr`);
      const cidr = r.str(o.fromCidr, [...ea, "fromCidr"], false);
      if (cidr === undefined) return;
      const c = parseCidr(cidr);
      if (!c.ok) return void r.fail([...ea, "fromCidr"], `fromCidr ${cidr} is not a valid CIDR block (${c.reason})`);
      net.fromCidrs.push(`${c.cidr.address}/${c.cidr.prefixLen}`);
    });
    r.list(n.gateways, [...na, "gateways"], false)?.forEach((g, i) => {
      const ga = [...na, "gateways", i];
      const o = r.obj(g, ga, true);
      if (!o) return;
      r.known(o, ga, ["address", "registryServiceName", "port", "locality"]);
      const port = r.port(o.port, [...ga, "port"], true);
      const locality = r.str(o.locality, [...ga, "locality"], false) || undefined;
      if (o.registryServiceName !== undefined) {
        return void r.fail([...ga, "registryServiceName"], "registryServiceName gateways are not supported: Istio reads the address of a Kubernetes LoadBalancer service, and multiplane has no Kubernetes registry; give the gateway's address");
      }
      const address = r.str(o.address, [...ga, "address"], true);
      if (address === undefined) return;
      const ip = parseIp(address);
      if (!ip.ok) return void r.fail([...ga, "address"], `gateway address ${JSON.stringify(address)} must be an IP: multiplane does not resolve gateway hostnames (Istio does with RESOLVE_HOSTNAME_GATEWAYS)`);
      if (port !== undefined) net.gateways.push({ address: ip.ip, port, ...(locality ? { locality } : {}) });
    });
    networks.push(net);
  }
  return {
    networks: networks.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    errors: r.issues.map((i) => at(i.path, i.reason)),
    warnings: r.warnings.map((w) => at(w.path, w.reason)),
  };
}

