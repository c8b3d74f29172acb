// A cluster's state as multiplane's resources: Istio's ServiceEntries and WorkloadEntries from the API
// are accepted or refused exactly as the same documents in a registry file are (same reasons, only the
// place differs), an invalid object is refused alone, and the answer does not depend on listing order.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import type { V1Service } from "@kubernetes/client-node";
import { buildRegistry } from "../../control/registry/build.ts";
import { formatError, type Resource } from "../../control/registry/model.ts";
import { parseRegistryText } from "../../control/registry/istio/parse.ts";
import { istioResource } from "../../control/registry/sources/kubernetes/istio-objects.ts";
import { kubernetesResources } from "../../control/registry/sources/kubernetes/registry.ts";
import { PROJECT_ROOT } from "../../envoy/paths.ts";

const FIXTURES = join(PROJECT_ROOT, "test", "fixtures", "istio");
const documents = (file: string) => readFileSync(join(FIXTURES, file), "utf8").split(/^---$/m).filter((d) => /^kind:/m.test(d));
const withoutOrigin = (r: Resource) => ({ ...r, origin: undefined });

/** What the API server hands over for a document: its object, with the fields the server adds. */
const asApiObject = (doc: string) => {
  const o = parse(doc) as { kind: "ServiceEntry" | "WorkloadEntry"; metadata?: { name?: string; namespace?: string } };
  return { ...o, metadata: { namespace: "default", ...o.metadata, uid: "0b0e", resourceVersion: "42", generation: 1, creationTimestamp: "2026-01-01T00:00:00Z" } };
};

test("every document Istio refuses is refused from the API with the very reasons a registry file gives", () => {
  for (const doc of documents("invalid.yaml")) {
    const fromFile = parseRegistryText(doc, "invalid.yaml");
    const object = asApiObject(doc);
    const fromApi = istioResource(object, object.kind);
    assert.is(fromApi.resource, undefined, doc);
    assert.equal(fromApi.errors.map((e) => e.reason), fromFile.errors.map((e) => e.reason), doc);
    assert.equal(fromApi.warnings.map((e) => e.reason), fromFile.warnings.map((e) => e.reason), doc);
    for (const e of fromApi.errors) assert.equal({ file: e.file, line: e.line }, { file: `kubernetes: ${object.kind} ${object.metadata.namespace}/${object.metadata.name}`, line: 0 });
  }
});

test("every document Istio accepts is the same resource from the API, with the same warnings", () => {
  for (const doc of documents("valid.yaml")) {
    const fromFile = parseRegistryText(doc, "valid.yaml");
    const object = asApiObject(doc);
    const fromApi = istioResource(object, object.kind);
    assert.equal(fromApi.errors, [], doc);
    assert.equal(withoutOrigin(fromApi.resource!), withoutOrigin(fromFile.resources[0]!), doc);
    assert.equal(fromApi.warnings.map((e) => e.reason), fromFile.warnings.map((e) => e.reason), doc);
  }
});

const BAD_PORT = `apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata:
  name: payments
  namespace: shop
spec:
  hosts: [payments.example.com]
  resolution: DNS
  ports:
  - {number: 443, name: https, protocol: HTTPZ}
`;

test("an invalid ServiceEntry from the API: the file registry's error text, under the object's name; only it is left out", () => {
  const fromFile = parseRegistryText(BAD_PORT, "registry.yaml").errors.map(formatError);
  assert.equal(fromFile, ["registry.yaml:10:32: unsupported protocol: HTTPZ"]);
  const good = { apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: "ok", namespace: "shop" }, spec: { hosts: ["ok.example.com"], resolution: "DNS", ports: [{ number: 443, name: "tls", protocol: "TLS" }] } };
  const workload = { apiVersion: "networking.istio.io/v1alpha3", kind: "WorkloadEntry", metadata: { name: "vm-1", namespace: "shop", labels: { app: "vm" } }, spec: { address: "10.1.0.1" } };
  const r = kubernetesResources({ services: [], endpointSlices: [], pods: [], serviceEntries: [parse(BAD_PORT), good], workloadEntries: [workload] });
  assert.equal(r.errors.map(formatError), ["kubernetes: ServiceEntry shop/payments:0: unsupported protocol: HTTPZ"]);
  assert.is(r.invalidDocuments, 1);
  assert.equal(r.resources.map((x) => `${x.kind} ${x.namespace}/${x.name}`), ["ServiceEntry shop/ok", "WorkloadEntry shop/vm-1"]);
  assert.equal(r.resources[1]!.origin, { file: "kubernetes: WorkloadEntry shop/vm-1", line: 0 });
});

test("objects listed without kind or apiVersion get the listed kind; a wrong kind is still refused", () => {
  const bare = { metadata: { name: "ok", namespace: "shop" }, spec: { hosts: ["ok.example.com"], resolution: "DNS", ports: [{ number: 443, name: "tls", protocol: "TLS" }] } };
  assert.ok(istioResource(bare, "ServiceEntry").resource);
  const wrong = istioResource({ ...bare, apiVersion: "networking.istio.io/v2" }, "ServiceEntry");
  assert.equal(wrong.errors.map((e) => e.reason), ["apiVersion networking.istio.io/v2 is not one of networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3"]);
  const skipped = istioResource({ ...bare, kind: "Gateway" }, "ServiceEntry");
  assert.equal(skipped.errors, []);
  assert.equal(skipped.warnings.map(formatError), ["kubernetes: Gateway shop/ok:0: kind Gateway is not ServiceEntry, WorkloadEntry or Sidecar; skipped"]);
  const notObject = istioResource("text", "WorkloadEntry");
  assert.equal(notObject.errors.map(formatError), ['kubernetes: WorkloadEntry ?/?:0: expected a Kubernetes-style object (apiVersion, kind, metadata, spec), got "text"']);
});

test("the same state listed in any order gives the same answer; Services, ServiceEntries and WorkloadEntries build together", () => {
  const services: V1Service[] = ["b", "a", "c"].map((n, i) => ({ metadata: { name: n, namespace: i === 2 ? "other" : "default" }, spec: { clusterIP: `10.96.0.${i + 1}`, ports: [{ name: "udp-x", port: 53 }, { name: "http", port: 80 }] } }));
  const entries = [{ apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: "a", namespace: "default" }, spec: { hosts: ["a.example.com"], resolution: "DNS", ports: [{ number: 80, name: "http", protocol: "HTTP" }] } }, parse(BAD_PORT)];
  const slices = [{ metadata: { name: "a-1", namespace: "default", labels: { "kubernetes.io/service-name": "a" } }, addressType: "IPv4", ports: [{ name: "http", port: 8080 }], endpoints: [{ addresses: ["10.0.0.2"] }, { addresses: ["10.0.0.1"] }] }];
  const one = kubernetesResources({ services, endpointSlices: slices, pods: [], serviceEntries: entries });
  const two = kubernetesResources({ services: [...services].reverse(), endpointSlices: slices, pods: [], serviceEntries: [...entries].reverse() });
  assert.equal(one, two);
  assert.equal(one.resources.map((r) => `${r.namespace}/${r.name}`), ["default/a", "default/svc:a", "default/svc:b", "other/svc:c"]);
  assert.equal(one.errors.map((e) => e.file), ["kubernetes: ServiceEntry shop/payments"]);
  assert.equal([...new Set(one.warnings.map((w) => w.file))], ["kubernetes: Service default/a", "kubernetes: Service default/b", "kubernetes: Service other/c", "kubernetes: ServiceEntry shop/payments"]);
  const built = buildRegistry(one.resources);
  assert.ok(built.ok, built.ok ? "" : built.errors.map(formatError).join("\n"));
});

test("errors and warnings are capped as a source's are; the rest are counted", () => {
  const services: V1Service[] = Array.from({ length: 150 }, (_, i) => ({ metadata: { name: `s${i}`, namespace: "default" }, spec: { ports: [{ name: "udp", port: 53, protocol: "UDP" }] } }));
  const r = kubernetesResources({ services, endpointSlices: [], pods: [] });
  // Each: its UDP port left out, and no TCP port left.
  assert.is(r.warnings.length, 100);
  assert.is(r.moreWarnings, 200);
  assert.is(r.resources.length, 150);
});

test.run();
