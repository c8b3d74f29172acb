// Kubernetes Services as ServiceEntries, as Istio models them: host, cluster IPs, ports with Istio's
// protocol rules, endpoints from EndpointSlices (ready ones; terminating ones left out), or from the
// pods' addresses on a secondary network (the seed's pod a-1 on default/data-net).
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { V1EndpointSlice, V1Node, V1Pod, V1Service, V1ServicePort } from "@kubernetes/client-node";
import { buildRegistry } from "../../control/registry/build.ts";
import { formatError, type ServiceEntry } from "../../control/registry/model.ts";
import { NETWORK_STATUS_ANNOTATION } from "../../control/registry/sources/kubernetes/network-status.ts";
import { servicePortProtocol } from "../../control/registry/sources/kubernetes/protocol.ts";
import { kubernetesResources, type KubernetesState } from "../../control/registry/sources/kubernetes/registry.ts";
import { SERVICE_NETWORK_ANNOTATION } from "../../control/registry/sources/kubernetes/service-network.ts";

const service = (name: string, spec: V1Service["spec"], annotations?: Record<string, string>, namespace = "default"): V1Service => ({
  metadata: { name, namespace, ...(annotations ? { annotations } : {}) }, spec,
});

const slice = (service: string, name: string, addressType: string, ports: { name?: string; port: number }[], endpoints: V1EndpointSlice["endpoints"], namespace = "default"): V1EndpointSlice => ({
  metadata: { name, namespace, labels: { "kubernetes.io/service-name": service } }, addressType, ports, endpoints,
});

const pod = (name: string, labels: Record<string, string>, opts: { ip?: string; networkStatus?: unknown; phase?: string; ready?: boolean; deleting?: boolean; node?: string; containerPorts?: { name: string; containerPort: number }[]; namespace?: string } = {}): V1Pod => ({
  metadata: {
    name, namespace: opts.namespace ?? "default", labels,
    // A string is the annotation's text as written; anything else is written as JSON.
    ...(opts.networkStatus !== undefined ? { annotations: { [NETWORK_STATUS_ANNOTATION]: typeof opts.networkStatus === "string" ? opts.networkStatus : JSON.stringify(opts.networkStatus) } } : {}),
    ...(opts.deleting ? { deletionTimestamp: new Date(0) } : {}),
  },
  spec: { containers: [{ name: "app", ...(opts.containerPorts ? { ports: opts.containerPorts } : {}) }], ...(opts.node ? { nodeName: opts.node } : {}) },
  status: {
    phase: opts.phase ?? "Running",
    ...(opts.ip ? { podIP: opts.ip, podIPs: [{ ip: opts.ip }] } : {}),
    conditions: [{ type: "Ready", status: opts.ready === false ? "False" : "True" }],
  },
});

const translate = (state: Partial<KubernetesState>, clusterDomain?: string) =>
  kubernetesResources({ services: [], endpointSlices: [], pods: [], ...state }, clusterDomain ? { clusterDomain } : {});

const only = (state: Partial<KubernetesState>): ServiceEntry => {
  const r = translate(state);
  assert.equal(r.errors.map(formatError), []);
  assert.is(r.resources.length, 1);
  return r.resources[0] as ServiceEntry;
};

/** The seed: pod a-1, eth0 192.168.10.63 on the cluster network, net1 10.75.8.101 on default/data-net. */
const SEED_POD = pod("a-1", { app: "a" }, {
  ip: "192.168.10.63",
  networkStatus: [
    { name: "kindnet", interface: "eth0", ips: ["192.168.10.63"], mac: "0a:58:c0:a8:0a:3f", default: true, dns: {} },
    { name: "default/data-net", interface: "net1", ips: ["10.75.8.101"], mac: "62:1e:9a:7c:00:01", dns: {} },
  ],
});
const SEED_SERVICE = service("a", { selector: { app: "a" }, clusterIP: "10.96.0.10", clusterIPs: ["10.96.0.10"], ports: [{ name: "http", port: 9080, targetPort: 9080, protocol: "TCP" }] }, { [SERVICE_NETWORK_ANNOTATION]: "data-net" });
/** What the EndpointSlice controller writes for it: the cluster network's address, which the service network replaces. */
const SEED_SLICE = slice("a", "a-abcde", "IPv4", [{ name: "http", port: 9080 }], [{ addresses: ["192.168.10.63"], conditions: { ready: true }, targetRef: { kind: "Pod", name: "a-1", namespace: "default" } }]);

test("the seed: Service a on network data-net has pod a-1's net1 address as its endpoint, on 9080", () => {
  const r = translate({ services: [SEED_SERVICE], endpointSlices: [SEED_SLICE], pods: [SEED_POD] });
  assert.equal(r.errors, []);
  assert.equal(r.warnings, []);
  assert.equal(r.resources, [{
    kind: "ServiceEntry", namespace: "default", name: "svc:a",
    hosts: ["a.default.svc.cluster.local"], addresses: ["10.96.0.10"],
    ports: [{ number: 9080, name: "http", protocol: "HTTP", targetPort: 9080 }],
    endpoints: [{ address: "10.75.8.101", addressType: "ip", ports: { http: 9080 }, labels: { app: "a" } }],
    resolution: "STATIC", location: "MESH_INTERNAL", exportTo: [],
    origin: { file: "kubernetes: Service default/a", line: 0 },
  }]);
  const built = buildRegistry(r.resources);
  assert.ok(built.ok, built.ok ? "" : built.errors.map(formatError).join("\n"));
  assert.equal(built.registry.services.map((s) => [s.host, s.entry, s.exportTo]), [["a.default.svc.cluster.local", "default/svc:a", ["*"]]]);
});

test("EndpointSlices: ready and unset-ready endpoints serve; not ready and terminating do not; addresses are deduplicated across slices", () => {
  const svc = service("web", { selector: { app: "web" }, clusterIPs: ["10.96.0.20", "FD00::0:20"], ports: [{ name: "http-api", port: 80, targetPort: "web" }] });
  const ports = [{ name: "http-api", port: 8080 }];
  const se = only({
    services: [svc],
    pods: [pod("web-1", { app: "web", version: "v1" }, { node: "n1" })],
    nodes: [{ metadata: { name: "n1", labels: { "topology.kubernetes.io/region": "eu", "topology.kubernetes.io/zone": "eu-1" } } } satisfies V1Node],
    endpointSlices: [
      slice("web", "web-b", "IPv4", ports, [
        { addresses: ["10.0.0.1"], conditions: { ready: true }, targetRef: { kind: "Pod", name: "web-1" }, nodeName: "n1", zone: "eu-1" },
        { addresses: ["10.0.0.2"], conditions: {} },
        { addresses: ["10.0.0.3"], conditions: { ready: false } },
        { addresses: ["10.0.0.4"], conditions: { ready: false, serving: true, terminating: true } },
        { addresses: ["10.0.0.5"], conditions: { ready: false, serving: false, terminating: true } },
        { addresses: ["10.0.0.6"], zone: "us-2" },
      ]),
      // The same pod again (moving between slices), and one for an unrelated Service.
      slice("web", "web-a", "IPv4", ports, [{ addresses: ["10.0.0.1"], conditions: { ready: true } }]),
      slice("other", "other-a", "IPv4", ports, [{ addresses: ["10.9.9.9"] }]),
      slice("web", "web-v6", "IPv6", ports, [{ addresses: ["FD00:0:0::7"], conditions: { ready: true } }]),
    ],
  });
  assert.equal(se.addresses, ["10.96.0.20", "fd00::20"]);
  assert.equal(se.ports, [{ number: 80, name: "http-api", protocol: "HTTP" }]);
  assert.equal(se.endpoints, [
    // web-a (read first) lists it bare; web-b fills in its pod's labels and its node's locality.
    { address: "10.0.0.1", addressType: "ip", ports: { "http-api": 8080 }, labels: { app: "web", version: "v1" }, locality: "eu/eu-1" },
    { address: "10.0.0.2", addressType: "ip", ports: { "http-api": 8080 }, labels: {} },
    { address: "10.0.0.6", addressType: "ip", ports: { "http-api": 8080 }, labels: {}, locality: "/us-2" },
    { address: "fd00::7", addressType: "ip", ports: { "http-api": 8080 }, labels: {} },
  ]);
});

test("an endpoint's pod gives its labels, and its node the locality", () => {
  const se = only({
    services: [service("web", { ports: [{ name: "http", port: 80 }] })],
    pods: [pod("web-1", { app: "web", version: "v1" }, { node: "n1" }), pod("web-2", { app: "web", "istio-locality": "r.z.s" })],
    nodes: [{ metadata: { name: "n1", labels: { "topology.kubernetes.io/region": "eu", "topology.kubernetes.io/zone": "eu-1", "topology.istio.io/subzone": "rack1" } } }],
    endpointSlices: [slice("web", "web-a", "IPv4", [{ name: "http", port: 80 }], [
      { addresses: ["10.0.0.1"], targetRef: { kind: "Pod", name: "web-1", namespace: "default" }, nodeName: "n1" },
      { addresses: ["10.0.0.2"], targetRef: { kind: "Pod", name: "web-2", namespace: "default" }, zone: "ignored" },
    ])],
  });
  assert.equal(se.endpoints.map((e) => [e.address, e.labels, e.locality]), [
    ["10.0.0.1", { app: "web", version: "v1" }, "eu/eu-1/rack1"],
    ["10.0.0.2", { app: "web", "istio-locality": "r.z.s" }, "r/z/s"],
  ]);
});

test("publishNotReadyAddresses: every address serves", () => {
  const se = only({
    services: [service("db", { publishNotReadyAddresses: true, clusterIP: "None", ports: [{ name: "tcp", port: 5432 }] })],
    endpointSlices: [slice("db", "db-a", "IPv4", [{ name: "tcp", port: 5432 }], [{ addresses: ["10.0.0.1"], conditions: { ready: false } }])],
  });
  assert.equal(se.endpoints.map((e) => e.address), ["10.0.0.1"]);
});

test("headless: no addresses (the endpoints' IPs select it), still STATIC with its endpoints", () => {
  const se = only({
    services: [service("h", { clusterIP: "None", clusterIPs: ["None"], ports: [{ name: "tcp-db", port: 5432 }] })],
    endpointSlices: [slice("h", "h-a", "IPv4", [{ name: "tcp-db", port: 5432 }], [{ addresses: ["10.0.0.1"] }, { addresses: ["10.0.0.2"] }])],
  });
  assert.equal(se.addresses, []);
  assert.is(se.resolution, "STATIC");
  assert.equal(se.endpoints.map((e) => e.address), ["10.0.0.1", "10.0.0.2"]);
  const built = buildRegistry([se]);
  assert.ok(built.ok);
});

test("protocol: appProtocol first, else the port name's prefix, as Istio decides it", () => {
  const cases: [Partial<V1ServicePort>, string][] = [
    [{ name: "http" }, "HTTP"], [{ name: "http-foo" }, "HTTP"], [{ name: "HTTP-Foo" }, "HTTP"], [{ name: "http2" }, "HTTP2"],
    [{ name: "grpc" }, "GRPC"], [{ name: "grpc-web" }, "GRPC-Web"], [{ name: "grpc-web-x" }, "GRPC-Web"], [{ name: "grpc-x" }, "GRPC"],
    [{ name: "tcp" }, "TCP"], [{ name: "tls-x" }, "TLS"], [{ name: "https" }, "HTTPS"], [{ name: "mongo" }, "Mongo"],
    [{ name: "redis-cache" }, "Redis"], [{ name: "mysql" }, "MySQL"],
    [{ name: "httpfoo" }, ""], [{ name: "web" }, ""], [{}, ""], [{ name: "db", port: 3306 }, "TCP"], [{ port: 53 }, "TCP"],
    [{ name: "http", appProtocol: "https" }, "HTTPS"], [{ name: "tcp", appProtocol: "HTTP2" }, "HTTP2"],
    [{ name: "http", appProtocol: "kubernetes.io/h2c" }, "HTTP2"], [{ appProtocol: "kubernetes.io/ws" }, "HTTP"],
    [{ appProtocol: "kubernetes.io/wss" }, "HTTPS"], [{ appProtocol: "grpc-web" }, "GRPC-Web"],
    // An appProtocol Istio does not know still wins over the name: the protocol is left to sniffing.
    [{ name: "http", appProtocol: "example.com/custom" }, ""],
  ];
  for (const [p, expected] of cases) {
    const r = servicePortProtocol({ port: 8080, ...p });
    assert.equal(r, { ok: true, protocol: expected }, JSON.stringify(p));
  }
  for (const p of [{ name: "dns", protocol: "UDP" }, { name: "udp-dns" }, { name: "x", appProtocol: "udp" }, { name: "sctp", protocol: "SCTP" }]) {
    const r = servicePortProtocol({ port: 53, ...p });
    assert.ok(!r.ok && r.reason.includes("not proxied"), JSON.stringify(p));
  }
});

test("ports: UDP left out with a warning, the only port named when unnamed, a numeric targetPort kept", () => {
  const r = translate({ services: [service("dns", { clusterIP: "10.96.0.53", ports: [{ name: "dns", port: 53, protocol: "UDP" }, { name: "dns-tcp", port: 53, protocol: "TCP", targetPort: 5353 }] }), service("one", { clusterIP: "10.96.0.1", ports: [{ port: 80, targetPort: 8080 }] })] });
  assert.equal(r.errors, []);
  const [dns, one] = r.resources as ServiceEntry[];
  assert.equal(dns!.ports, [{ number: 53, name: "dns-tcp", protocol: "TCP", targetPort: 5353 }]);
  assert.equal(one!.ports, [{ number: 80, name: "port-80", protocol: "", targetPort: 8080 }]);
  assert.equal(r.warnings.map(formatError), ["kubernetes: Service default/dns:0: spec.ports[0] (dns, 53): protocol UDP is not proxied (sidecars carry TCP only); left out"]);
});

test("an unnamed port's EndpointSlice port (no name) maps to the name it is given", () => {
  const se = only({
    services: [service("one", { clusterIP: "10.96.0.1", ports: [{ port: 80, targetPort: "web" }] })],
    endpointSlices: [slice("one", "one-a", "IPv4", [{ port: 8080 }], [{ addresses: ["10.0.0.1"] }])],
  });
  assert.equal(se.endpoints[0]!.ports, { "port-80": 8080 });
});

test("a named targetPort an endpoint's slice does not carry: a warning saying which port it gets", () => {
  const r = translate({
    services: [service("web", { ports: [{ name: "http", port: 80, targetPort: "web" }, { name: "tcp-admin", port: 9000, targetPort: "admin" }] })],
    endpointSlices: [slice("web", "web-a", "IPv4", [{ name: "http", port: 8080 }], [{ addresses: ["10.0.0.1"] }])],
  });
  assert.equal(r.warnings.map((w) => w.reason), ['service port tcp-admin (9000) has targetPort "admin", and 1 endpoint (10.0.0.1) have no such port in their EndpointSlice: they get port 9000']);
});

test("bad slices and addresses are warned about and left out", () => {
  const r = translate({
    services: [service("web", { ports: [{ name: "http", port: 80 }] })],
    endpointSlices: [
      slice("web", "web-f", "FQDN", [{ name: "http", port: 80 }], [{ addresses: ["example.com"] }]),
      slice("web", "web-a", "IPv4", [{ name: "http", port: 80 }], [{ addresses: ["10.0.0.256", "10.0.0.1"] }]),
    ],
  });
  assert.equal((r.resources[0] as ServiceEntry).endpoints.map((e) => e.address), ["10.0.0.1"]);
  assert.equal(r.warnings.map((w) => w.reason), [
    '"10.0.0.256" is not a host\'s IP address; left out',
    'addressType "FQDN" is not served (IPv4 and IPv6 are; Istio skips FQDN slices too); left out',
  ].map((x, i) => `EndpointSlice default/${i === 0 ? "web-a: address " : "web-f: "}${x}`));
});

test("cluster domain: configurable, checked", () => {
  const r = translate({ services: [service("a", { ports: [{ name: "http", port: 80 }] }, undefined, "prod")] }, "corp.example.");
  assert.equal((r.resources[0] as ServiceEntry).hosts, ["a.prod.svc.corp.example"]);
  assert.throws(() => translate({}, "bad_domain"), /cluster domain "bad_domain"/);
});

test("exportTo annotation: a comma list as Istio reads it; values Istio would never match refuse the Service", () => {
  const withExport = (v: string) => translate({ services: [service("a", { ports: [{ name: "http", port: 80 }] }, { "networking.istio.io/exportTo": v })] });
  assert.equal((withExport(" ., istio-system ,.,").resources[0] as ServiceEntry).exportTo, [".", "istio-system"]);
  assert.equal((withExport("~").resources[0] as ServiceEntry).exportTo, ["~"]);
  for (const [v, reason] of [["a b", 'exportTo "a b": only ., *, ~ or a valid DNS 1123 label is allowed'], ["*,x", "cannot have both public (*) and non-public exportTo values for a resource"], ["~,x", "cannot export service entry to no one (~) and someone"]]) {
    const r = withExport(v!);
    assert.equal(r.resources, [], v);
    assert.is(r.invalidDocuments, 1);
    assert.equal(r.errors.map(formatError), [`kubernetes: Service default/a:0: annotation networking.istio.io/exportTo: ${reason}`]);
  }
});

test("ExternalName Services are not served: a warning, no resource, no error", () => {
  const r = translate({ services: [service("ext", { type: "ExternalName", externalName: "example.com" })] });
  assert.equal(r.resources, []);
  assert.equal(r.errors, []);
  assert.match(r.warnings[0]!.reason, /ExternalName/);
});

test("partial objects: a Service without a name is refused, missing fields are no crash", () => {
  const r = translate({ services: [{ metadata: { namespace: "default" } }, { metadata: { name: "bare", namespace: "default" } }], endpointSlices: [{ metadata: { namespace: "default", labels: { "kubernetes.io/service-name": "bare" } }, addressType: "IPv4", endpoints: [{ addresses: ["10.0.0.1"] }, null as never] }], pods: [{}] });
  assert.equal(r.errors.map(formatError), ["kubernetes: Service default/?:0: Service default/?: metadata.name and metadata.namespace are required"]);
  assert.equal(r.resources.map((x) => x.name), ["svc:bare"]);
  const badName = translate({ services: [service("bad_name", { ports: [{ name: "http", port: 80 }] })] });
  assert.equal(badName.resources, []);
  assert.match(badName.errors[0]!.reason, /^Service default\/bad_name: host domain name "bad_name\.default\.svc\.cluster\.local" invalid/);
});

test("service network: selected pods that serve, their IPs on that network, target ports resolved per pod", () => {
  const onNet = (ip: string, name = "default/data-net") => [{ name: "kindnet", interface: "eth0", ips: ["192.168.0.1"], default: true }, { name, interface: "net1", ips: [ip] }];
  const r = translate({
    services: [service("b", {
      selector: { app: "b" }, clusterIP: "10.96.0.11",
      ports: [{ name: "http", port: 80, targetPort: "web" }, { name: "tcp", port: 9000 }],
    }, { [SERVICE_NETWORK_ANNOTATION]: "default/data-net" })],
    endpointSlices: [slice("b", "b-a", "IPv4", [{ name: "http", port: 8080 }], [{ addresses: ["192.168.0.1"] }])],
    pods: [
      pod("b-1", { app: "b" }, { networkStatus: onNet("10.75.8.1"), containerPorts: [{ name: "web", containerPort: 8080 }] }),
      pod("b-2", { app: "b" }, { networkStatus: [{ name: "data-net", interface: "net1", ips: ["10.75.8.2", "fd00::2"] }], containerPorts: [{ name: "web", containerPort: 8081 }] }),
      pod("b-3", { app: "b" }, { networkStatus: onNet("10.75.8.3"), deleting: true }),
      pod("b-4", { app: "b" }, { networkStatus: onNet("10.75.8.4"), ready: false }),
      pod("b-5", { app: "b" }, { networkStatus: onNet("10.75.8.5"), phase: "Succeeded" }),
      pod("b-6", { app: "b" }, { networkStatus: onNet("10.75.8.6", "default/other-net"), containerPorts: [{ name: "web", containerPort: 8080 }] }),
      pod("b-7", { app: "b" }, { networkStatus: onNet("10.75.8.7"), containerPorts: [] }),
      pod("b-8", { app: "b" }, { networkStatus: "[not json" }),
      pod("c-1", { app: "c" }, { networkStatus: onNet("10.75.8.9") }),
      pod("b-9", { app: "b" }, { networkStatus: onNet("10.75.8.10"), namespace: "other" }),
    ],
  });
  assert.equal(r.errors, []);
  const se = r.resources[0] as ServiceEntry;
  assert.equal(se.addresses, ["10.96.0.11"]);
  assert.equal(se.endpoints.map((e) => [e.address, e.ports]), [
    ["10.75.8.1", { http: 8080, tcp: 9000 }],
    ["10.75.8.2", { http: 8081, tcp: 9000 }],
    ["10.75.8.7", { tcp: 9000 }],
    ["fd00::2", { http: 8081, tcp: 9000 }],
  ]);
  // The pod's own problem once, under the pod; what it means for the Service, under the Service.
  assert.is(r.warnings[0]!.file, "kubernetes: Pod default/b-8");
  assert.equal(r.warnings.slice(1).map(formatError), [
    `kubernetes: Service default/b:0: pod default/b-6 is selected but has no network default/data-net in its ${NETWORK_STATUS_ANNOTATION} annotation; left out`,
    'kubernetes: Service default/b:0: pod default/b-7 has no container port named "web" (targetPort of service port http): it gets port 80',
    `kubernetes: Service default/b:0: pod default/b-8 is selected but has no network default/data-net in its ${NETWORK_STATUS_ANNOTATION} annotation; left out`,
  ]);
  assert.match(r.warnings[0]!.reason, new RegExp(`^pod default/b-8: annotation ${NETWORK_STATUS_ANNOTATION}: is not JSON .*; ignored$`));
});

test("service network without a selector: a warning, no endpoints (not the EndpointSlices)", () => {
  const r = translate({
    services: [service("n", { clusterIP: "10.96.0.12", ports: [{ name: "http", port: 80 }] }, { [SERVICE_NETWORK_ANNOTATION]: "data-net" })],
    endpointSlices: [slice("n", "n-a", "IPv4", [{ name: "http", port: 80 }], [{ addresses: ["10.0.0.1"] }])],
  });
  assert.equal((r.resources[0] as ServiceEntry).endpoints, []);
  assert.equal(r.warnings.map((w) => w.reason), [`annotation ${SERVICE_NETWORK_ANNOTATION} (default/data-net) needs spec.selector to find the pods on that network; the Service has none, so it has no endpoints`]);
});

test("service network named wrongly: the Service is refused rather than served on its cluster network", () => {
  for (const v of ["a/b/c", "Data_Net", "", "/x"]) {
    const r = translate({ services: [service("n", { selector: { app: "n" }, ports: [{ name: "http", port: 80 }] }, { [SERVICE_NETWORK_ANNOTATION]: v })] });
    assert.equal(r.resources, [], v);
    assert.match(r.errors[0]!.reason, /is not NAME or NAMESPACE\/NAME of a NetworkAttachmentDefinition/);
  }
});

test("a pod selected by two Services on its network: its annotation's problems are said once", () => {
  const bad = pod("p", { app: "x" }, { networkStatus: [{ name: 5 }] });
  const mk = (n: string) => service(n, { selector: { app: "x" }, ports: [{ name: "http", port: 80 }] }, { [SERVICE_NETWORK_ANNOTATION]: "data-net" });
  const r = translate({ services: [mk("s1"), mk("s2")], pods: [bad] });
  assert.equal(r.warnings.filter((w) => w.file === "kubernetes: Pod default/p").length, 1);
});

test.run();
