// How Envoy gets the loop guard module, without Envoy: serve's choice of delivery from its flags, the
// ECDS code source and the cluster generation builds for each, and configs keyed by the address a
// proxy reached the control plane at when the module is served on a wildcard address. The encoder
// accepts every resource (Envoy accepts them in test/envoy/guard-remote.test.ts and the netns test).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { guardDelivery } from "../../control/guard-wasm/delivery.ts";
import { generate } from "../../control/generation/generate.ts";
import { generationOptions, type RemoteGuardModule } from "../../control/generation/options.ts";
import { ConfigPipeline } from "../../control/pipeline/config-pipeline.ts";
import { Encoder } from "../../control/xds/cache/encode.ts";
import { Snapshot, Packer } from "../../control/xds/cache/snapshot.ts";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { proxyIdentity } from "../../control/identity/proxy.ts";
import { generateBootstrap } from "../../envoy/bootstrap.ts";
import { registryOf, sidecar } from "../support/registry.ts";

const SEED = registryOf(readFileSync(join(PROJECT_ROOT, "examples", "registry", "seed.yaml"), "utf8"));
const PROXY = sidecar("192.168.10.63", "192.168.10.63,10.75.8.101");
const SHA = "ab".repeat(32);
const DIST = "/srv/multiplane/dist/loop-guard.wasm";
const encoder = new Encoder();

const withRemote = (remote?: RemoteGuardModule) => generationOptions({ loopGuard: { wasmPath: DIST, mode: "enforce", ...(remote ? { remote } : {}) } });
const vmCode = (r: ReturnType<typeof generate>) => (r.extensionConfigs[0] as any).typed_config.config.vm_config.code;
const guardCluster = (r: ReturnType<typeof generate>) => r.clusters.find((c) => c.name === "multiplane-guard-wasm") as any;
const packs = (r: ReturnType<typeof generate>) => Snapshot.fromResources(r, new Packer(encoder));

test("delivery: loopback xDS reads the file; any other xDS host serves it on 15013; flags choose otherwise", () => {
  const d = (f: Partial<Parameters<typeof guardDelivery>[0]>) => guardDelivery({ xdsHost: "127.0.0.1", defaultPath: DIST, ...f });
  assert.equal(d({}), { kind: "local", path: DIST });
  assert.equal(d({ xdsHost: "::1" }), { kind: "local", path: DIST });
  assert.equal(d({ xdsHost: "192.168.10.1" }), { kind: "serve", host: "192.168.10.1", port: 15013 });
  assert.equal(d({ xdsHost: "0.0.0.0" }), { kind: "serve", host: "0.0.0.0", port: 15013 });
  assert.equal(d({ port: 0 }), { kind: "serve", host: "127.0.0.1", port: 0 });
  assert.equal(d({ xdsHost: "192.168.10.1", path: "/opt/mp/loop-guard.wasm" }), { kind: "local", path: "/opt/mp/loop-guard.wasm" });
  assert.equal(d({ url: "https://cdn.example/lg.wasm" }), { kind: "url", url: "https://cdn.example/lg.wasm" });
  assert.throws(() => d({ url: "ftp://x/y" }), /expected an http:\/\/ or https:\/\/ URL/);
  assert.throws(() => d({ url: "not a url" }), /is not a URL/);
  assert.throws(() => d({ url: "http://x/y", port: 1 }), /--guard-wasm-url and --guard-wasm-port contradict each other/);
});

test("local: today's code source, no extra cluster", () => {
  const r = generate(PROXY, SEED, withRemote());
  assert.equal(vmCode(r), { local: { filename: DIST } });
  assert.is(guardCluster(r), undefined);
});

test("served by the control plane over mutual TLS: remote source with sha256 and retries, a STATIC cluster using the bootstrap's xDS secrets", () => {
  const r = generate(PROXY, SEED, withRemote({ sha256: SHA, from: { kind: "control-plane", host: "192.168.10.1", port: 15013, tls: "mtls", path: "/loop-guard.wasm" } }));
  assert.equal(vmCode(r), {
    remote: {
      http_uri: { uri: "https://192.168.10.1:15013/loop-guard.wasm", cluster: "multiplane-guard-wasm", timeout: { seconds: 10, nanos: 0 } },
      sha256: SHA,
      retry_policy: { retry_back_off: { base_interval: { seconds: 1, nanos: 0 }, max_interval: { seconds: 15, nanos: 0 } }, num_retries: { value: 20 } },
    },
  });
  const c = guardCluster(r);
  assert.is(c.type, "STATIC");
  assert.equal(c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: "192.168.10.1", port_value: 15013 });
  assert.equal(c.transport_socket.typed_config.common_tls_context, {
    validation_context_sds_secret_config: { name: "multiplane-xds-ca" },
    tls_certificate_sds_secret_configs: [{ name: "multiplane-xds-cert" }],
  });
  packs(r);
});

test("a proxy whose bootstrap lists its SDS files (MULTIPLANE_XDS_SECRETS): the cluster names the same secrets with the same sds_config", () => {
  const remote: RemoteGuardModule = { sha256: SHA, from: { kind: "control-plane", host: "192.168.10.1", port: 15013, tls: "mtls", path: "/loop-guard.wasm" } };
  const withSds = (ca: string, cert?: string) => proxyIdentity({ id: PROXY.id, metadata: { INSTANCE_IPS: "192.168.10.63,10.75.8.101", MULTIPLANE_XDS_SECRETS: { ca, ...(cert ? { cert } : {}) } } });
  const sdsConfig = (path: string) => ({ path_config_source: { path }, resource_api_version: "V3" });
  const n1 = withSds("/etc/mp/envoy.xds-ca.json", "/etc/mp/envoy.xds-cert.json");
  const r = generate(n1, SEED, withRemote(remote));
  assert.equal(guardCluster(r).transport_socket.typed_config.common_tls_context, {
    validation_context_sds_secret_config: { name: "multiplane-xds-ca", sds_config: sdsConfig("/etc/mp/envoy.xds-ca.json") },
    tls_certificate_sds_secret_configs: [{ name: "multiplane-xds-cert", sds_config: sdsConfig("/etc/mp/envoy.xds-cert.json") }],
  });
  packs(r);
  // Server-only TLS names the CA alone; a module from another URL names no secret at all.
  const tlsOnly = guardCluster(generate(n1, SEED, withRemote({ ...remote, from: { ...remote.from, tls: "tls" } as RemoteGuardModule["from"] })));
  assert.equal(tlsOnly.transport_socket.typed_config.common_tls_context, { validation_context_sds_secret_config: { name: "multiplane-xds-ca", sds_config: sdsConfig("/etc/mp/envoy.xds-ca.json") } });
  const url = guardCluster(generate(n1, SEED, withRemote({ sha256: SHA, from: { kind: "url", url: "https://modules.example/lg.wasm" } })));
  assert.not.ok("common_tls_context" in url.transport_socket.typed_config);
  // The bootstrap's xDS cluster and the guard's refer to the secrets identically (so Envoy shares them).
  const tls = { caFile: "/etc/mp/ca.pem", certFile: "/etc/mp/n1.pem", keyFile: "/etc/mp/n1-key.pem", sds: { ca: "/etc/mp/envoy.xds-ca.json", cert: "/etc/mp/envoy.xds-cert.json" } };
  const b = generateBootstrap({ nodeId: PROXY.id, instanceIps: [], xds: { host: "192.168.10.1", port: 15010 }, tls }) as any;
  const xdsTls = b.static_resources.clusters[0].transport_socket.typed_config.common_tls_context;
  assert.equal(xdsTls.tls_certificate_sds_secret_configs, guardCluster(r).transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs);
  assert.equal(xdsTls.combined_validation_context.validation_context_sds_secret_config, guardCluster(r).transport_socket.typed_config.common_tls_context.validation_context_sds_secret_config);
  assert.equal(proxyIdentity(b.node).xdsSecrets, tls.sds, "the bootstrap's metadata is what the control plane reads");

  // Configs are kept per SDS paths: proxies with the same paths share one, other paths get their own;
  // proxies without the key (older bootstraps) keep name-only references.
  const p = new ConfigPipeline(withRemote(remote), encoder);
  p.setRegistry(SEED);
  const n1again = withSds("/etc/mp/envoy.xds-ca.json", "/etc/mp/envoy.xds-cert.json");
  const other = withSds("/srv/envoy/b.xds-ca.json", "/srv/envoy/b.xds-cert.json");
  for (const x of [n1, n1again, other, PROXY]) p.retain(x);
  assert.is(p.configFor(n1), p.configFor(n1again));
  assert.is.not(p.configFor(n1), p.configFor(other));
  assert.is.not(p.configFor(n1), p.configFor(PROXY));
  assert.is(p.cachedConfigs(), 3);
  const clusterOf = (x: typeof PROXY) => (generate(x, SEED, withRemote(remote)).clusters.find((c) => c.name === "multiplane-guard-wasm") as any).transport_socket.typed_config.common_tls_context;
  assert.equal(clusterOf(other).validation_context_sds_secret_config.sds_config, sdsConfig("/srv/envoy/b.xds-ca.json"));
  assert.equal(clusterOf(PROXY).validation_context_sds_secret_config, { name: "multiplane-xds-ca" });
  // Without a module fetched over TLS the paths do not split configs.
  const local = new ConfigPipeline(withRemote(), encoder);
  local.setRegistry(SEED);
  for (const x of [n1, other]) local.retain(x);
  assert.is(local.configFor(n1), local.configFor(other));
});

test("served on a wildcard address: each proxy fetches from the address its xDS connection arrived at; plaintext has no transport socket", () => {
  const remote: RemoteGuardModule = { sha256: SHA, from: { kind: "control-plane", port: 15013, tls: "none", path: "/loop-guard.wasm" } };
  const r = generate(PROXY, SEED, withRemote(remote), "10.75.8.1");
  assert.is(vmCode(r).remote.http_uri.uri, "http://10.75.8.1:15013/loop-guard.wasm");
  assert.is(guardCluster(r).transport_socket, undefined);
  assert.throws(() => generate(PROXY, SEED, withRemote(remote)), /this proxy's is unknown/);
  // The pipeline keeps one config per (node IPs, address): two proxies reaching different addresses differ.
  const p = new ConfigPipeline(withRemote(remote), encoder);
  p.setRegistry(SEED);
  for (const via of ["10.75.8.1", "192.168.10.1"]) p.retain(PROXY, via);
  const a = p.configFor(PROXY, "10.75.8.1");
  const b = p.configFor(PROXY, "192.168.10.1");
  assert.is.not(a, b);
  assert.is(p.configFor(PROXY, "10.75.8.1"), a, "kept while used");
  assert.is(p.cachedConfigs(), 2);
  p.release(PROXY, "10.75.8.1");
  assert.is(p.cachedConfigs(), 1);
});

test("another server's https URL by name: a STRICT_DNS cluster with SNI (the sha256, not the server's certificate, vouches for the bytes)", () => {
  const r = generate(PROXY, SEED, withRemote({ sha256: SHA, from: { kind: "url", url: "https://modules.example:8443/lg.wasm" } }));
  assert.is(vmCode(r).remote.http_uri.uri, "https://modules.example:8443/lg.wasm");
  const c = guardCluster(r);
  assert.is(c.type, "STRICT_DNS");
  assert.equal(c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: "modules.example", port_value: 8443 });
  assert.equal(c.transport_socket.typed_config, { "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", sni: "modules.example" });
  const plain = guardCluster(generate(PROXY, SEED, withRemote({ sha256: SHA, from: { kind: "url", url: "http://10.0.0.5/lg.wasm" } })));
  assert.equal([plain.type, plain.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value, plain.transport_socket], ["STATIC", 80, undefined]);
  packs(r);
});

test.run();
