// The scoped mesh of bench/control.ts (Istio Sidecars): the 10,000 services of bench/mesh.ts spread
// over 100 namespaces (99 application namespaces and istio-system, which holds every thousandth
// service), each proxy in its own service's namespace, and one Sidecar in the root namespace that
// imports a proxy's own namespace and istio-system: about 110 services per proxy. Shared by the
// parent (registry files) and the clients (node ids), so both agree on who is where.

/** Service i's namespace. */
export const scopedNamespace = (i: number) => (i % 1000 === 999 ? "istio-system" : `ns-${i % 99}`);

/** The mesh-wide default Sidecar. */
export const SCOPED_SIDECAR_YAML = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: istio-system}
spec:
  egress: [{hosts: ["./*", "istio-system/*"]}]
`;

/** A service every proxy imports (in istio-system): the one the change moves, so every proxy must see it. */
export const SCOPED_MOVED_SERVICE = 999;
