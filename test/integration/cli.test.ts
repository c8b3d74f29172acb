// The `multiplane` bin as users run it (dist/multiplane.js, built by npm install).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { parseServeArgs } from "../../control/cmd/cli.ts";
import { whenAvailable } from "../support/available.ts";
import { makeCa, makeLeaf, opensslUnavailableReason, type CertPair } from "../support/certs.ts";

const cli = (args: string[], env: NodeJS.ProcessEnv = process.env, cwd?: string) =>
  spawnSync(process.execPath, [join(PROJECT_ROOT, "dist", "multiplane.js"), ...args], { encoding: "utf8", env, ...(cwd ? { cwd } : {}) });

test("envoy-path prints the resolved, runnable Envoy", () => {
  const r = cli(["envoy-path"]);
  assert.is(r.status, 0, r.stderr);
  const version = spawnSync(r.stdout.trim(), ["--version"], { encoding: "utf8" });
  assert.match(version.stdout, /version: \S+\/1\.\d+\.\d+\//);
});

test("without Envoy: a one-line error naming ENVOY_BIN and npm install, no stack trace", () => {
  const r = cli(["envoy-path"], { ...process.env, ENVOY_BIN: "/nonexistent/envoy" });
  assert.is(r.status, 1);
  assert.match(r.stderr, "ENVOY_BIN=/nonexistent/envoy");
  assert.match(r.stderr, "npm install");
  assert.not.match(r.stderr, /\n\s+at /);
});

test("bootstrap: node id, INSTANCE_IPS, ADS to the given control plane, admin on 127.0.0.1", () => {
  const r = cli(["bootstrap", "--xds", "127.0.0.1:15010", "--node-id", "sidecar~192.168.10.63~a-1.default~default.svc.cluster.local", "--instance-ips", "192.168.10.63,10.75.8.101"]);
  assert.is(r.status, 0, r.stderr);
  const b = JSON.parse(r.stdout);
  assert.is(b.node.id, "sidecar~192.168.10.63~a-1.default~default.svc.cluster.local");
  assert.is(b.node.metadata.INSTANCE_IPS, "192.168.10.63,10.75.8.101");
  assert.is(b.admin.address.socket_address.address, "127.0.0.1");
  assert.is(b.dynamic_resources.ads_config.api_type, "GRPC");
  const xds = b.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
  assert.equal(xds, { address: "127.0.0.1", port_value: 15010 });
});

test("bootstrap --xds with several addresses: one xDS cluster whose endpoints are the replicas, quick retries", () => {
  const r = cli(["bootstrap", "--xds", "127.0.0.1:15010,[::1]:15011,cp-2.example:15012", "--node-id", "n", "--instance-ips", "none"]);
  assert.is(r.status, 0, r.stderr);
  const b = JSON.parse(r.stdout);
  assert.is(b.static_resources.clusters.length, 1);
  const endpoints = b.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints.map((e: any) => e.endpoint.address.socket_address);
  assert.equal(endpoints, [{ address: "127.0.0.1", port_value: 15010 }, { address: "::1", port_value: 15011 }, { address: "cp-2.example", port_value: 15012 }]);
  assert.equal(b.dynamic_resources.ads_config.grpc_services[0].envoy_grpc.retry_policy, { retry_back_off: { base_interval: "0.1s", max_interval: "1s" } });
  const one = JSON.parse(cli(["bootstrap", "--xds", "127.0.0.1:15010", "--node-id", "n"]).stdout);
  assert.equal(one.dynamic_resources.ads_config.grpc_services[0].envoy_grpc, { cluster_name: "xds-grpc" }, "one address: unchanged");
});

/** A bootstrap written with --out FILE in a fresh directory: the exit, FILE's JSON and the directory's files. */
function bootstrapTo(args: string[], name = "envoy.json", cwd?: string): { r: ReturnType<typeof cli>; out: string; dir: string; json: () => any; files: () => string[] } {
  const dir = mkdtempSync(join(tmpdir(), "mp-cli-bootstrap-"));
  dirs.push(dir);
  const out = join(dir, name);
  const r = cli(["bootstrap", ...args, "--out", out], process.env, cwd);
  return { r, out, dir, json: () => JSON.parse(readFileSync(out, "utf8")), files: () => readdirSync(dir).sort() };
}
const dirs: string[] = [];
test.after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });


test("serve --registry etcd://...: a malformed URL and the file registry's flags are usage errors", () => {
  assert.throws(() => parseServeArgs(["--registry", "etcd://127.0.0.1:2379"]), /no \/PREFIX/);
  assert.throws(() => parseServeArgs(["--registry", "etcd://nohost/p"]), /is not HOST:PORT/);
  assert.throws(() => parseServeArgs(["--registry", "etcd://127.0.0.1:2379/p", "--api-dir", "/tmp/x"]), /--api-dir is for a file registry/);
  assert.throws(() => parseServeArgs(["--registry", "etcd://127.0.0.1:2379/p", "--settle-seconds", "3", "--accept-removals"]), /--settle-seconds, --accept-removals are for a file registry/);
  assert.is(parseServeArgs(["--registry", "etcd://10.0.0.1:2379,10.0.0.2:2379/multiplane"]).registry, "etcd://10.0.0.1:2379,10.0.0.2:2379/multiplane");
});

test("bootstrap --instance-ips none omits INSTANCE_IPS (an old single-IP proxy)", () => {
  const r = cli(["bootstrap", "--xds", "127.0.0.1:15010", "--node-id", "n", "--instance-ips", "none"]);
  assert.is(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).node.metadata, {});
});


test("bootstrap --labels: node metadata LABELS for Sidecar workloadSelectors; a malformed or repeated label is a usage error", () => {
  const r = cli(["bootstrap", "--xds", "127.0.0.1:15010", "--node-id", "n", "--instance-ips", "none", "--labels", "app=reviews, version=v1,empty="]);
  assert.is(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).node.metadata, { LABELS: { app: "reviews", version: "v1", empty: "" } });
  for (const [bad, why] of [["app", "expected KEY=VALUE"], ["app=a,app=b", "label app given twice"], ["app=has space", "invalid label value"], ["x-=1", "invalid label key"]]) {
    const e = cli(["bootstrap", "--xds", "127.0.0.1:15010", "--node-id", "n", "--labels", bad!]);
    assert.is(e.status, 2, bad);
    assert.match(e.stderr, `--labels: ${why}`);
  }
});

test("serve --root-namespace must be a namespace name", () => {
  assert.is(parseServeArgs(["--registry", "r", "--root-namespace", "mesh-root"]).rootNamespace, "mesh-root");
  assert.throws(() => parseServeArgs(["--registry", "r", "--root-namespace", "Istio_System"]), /--root-namespace: expected a Kubernetes namespace name/);
});

test("bootstrap --xds-ca without --out is a usage error: the SDS files need a place", () => {
  const r = cli(["bootstrap", "--xds", "10.0.0.1:15010", "--node-id", "n", "--instance-ips", "none", "--xds-ca", "ca.pem"]);
  assert.is(r.status, 2);
  assert.is(r.stdout, "");
  assert.is(r.stderr.split("\n")[0], "multiplane: bootstrap: --xds-ca needs --out FILE (the SDS files through which Envoy reloads the CA and certificate are written next to it)");
});

whenAvailable(opensslUnavailableReason(), "certificates made by openssl", (test) => {
  // Real PEM files: bootstrap refuses a --xds-ca, --cert or --key it cannot read as one.
  let certs: string;
  let ca: CertPair;
  let leaf: CertPair;
  test.before(() => {
    certs = mkdtempSync(join(tmpdir(), "mp-cli-pem-"));
    dirs.push(certs);
    ca = makeCa(certs);
    leaf = makeLeaf(certs, ca, "node");
  });

  test("bootstrap --xds-ca with replicas on several hosts needs the SAN they share", () => {
    const base = ["--xds", "cp-1.example:15010,cp-2.example:15010", "--node-id", "n", "--instance-ips", "none", "--xds-ca", ca.cert];
    const refused = bootstrapTo(base);
    assert.is(refused.r.status, 1);
    assert.match(refused.r.stderr, "several hosts (cp-1.example, cp-2.example): name the SAN their certificates share with --xds-san");
    assert.equal(refused.files(), [], "nothing written");
    const tls = bootstrapTo([...base, "--xds-san", "cp.example"]).json().static_resources.clusters[0].transport_socket.typed_config;
    assert.is(tls.sni, "cp.example");
    assert.equal(tls.common_tls_context.combined_validation_context.default_validation_context.match_typed_subject_alt_names, [{ san_type: "DNS", matcher: { exact: "cp.example" } }]);
    const samehost = bootstrapTo(["--xds", "10.0.0.1:15010,10.0.0.1:15011", "--node-id", "n", "--instance-ips", "none", "--xds-ca", ca.cert]);
    assert.is(samehost.r.status, 0, "replicas on one host: its address is the SAN");
  });

  test("bootstrap --xds-ca --cert --key --out FILE: secrets by SDS files next to FILE, listed in the node metadata; mutual TLS to the control plane, which must carry the xDS host", () => {
    const b = bootstrapTo(["--xds", "192.168.10.1:15010", "--node-id", "n", "--instance-ips", "none", "--xds-ca", ca.cert, "--cert", leaf.cert, "--key", leaf.key]);
    assert.is(b.r.status, 0, b.r.stderr);
    assert.equal(b.files(), ["envoy.json", "envoy.xds-ca.json", "envoy.xds-cert.json"]);
    const caSds = join(b.dir, "envoy.xds-ca.json");
    const certSds = join(b.dir, "envoy.xds-cert.json");
    const secret = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
    assert.equal(JSON.parse(readFileSync(caSds, "utf8")), { resources: [{ "@type": secret, name: "multiplane-xds-ca", validation_context: { trusted_ca: { filename: ca.cert } } }] });
    assert.equal(JSON.parse(readFileSync(certSds, "utf8")), {
      resources: [{ "@type": secret, name: "multiplane-xds-cert", tls_certificate: { certificate_chain: { filename: leaf.cert }, private_key: { filename: leaf.key } } }],
    });
    const json = b.json();
    assert.equal(json.node.metadata, { MULTIPLANE_XDS_SECRETS: { ca: caSds, cert: certSds } });
    assert.is(json.static_resources.secrets, undefined, "no static secrets");
    const sdsConfig = (path: string) => ({ path_config_source: { path }, resource_api_version: "V3" });
    const tls = json.static_resources.clusters[0].transport_socket.typed_config;
    assert.is(tls["@type"], "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext");
    assert.equal(tls.common_tls_context.tls_certificate_sds_secret_configs, [{ name: "multiplane-xds-cert", sds_config: sdsConfig(certSds) }]);
    assert.equal(tls.common_tls_context.combined_validation_context, {
      default_validation_context: { match_typed_subject_alt_names: [{ san_type: "IP_ADDRESS", matcher: { exact: "192.168.10.1" } }] },
      validation_context_sds_secret_config: { name: "multiplane-xds-ca", sds_config: sdsConfig(caSds) },
    });

    // By name, without a client certificate, with relative paths and an --out without .json.
    const named = bootstrapTo(["--xds", "cp.example:15010", "--node-id", "n", "--instance-ips", "none", "--xds-ca", "ca.pem"], "bootstrap", certs);
    assert.is(named.r.status, 0, named.r.stderr);
    assert.equal(named.files(), ["bootstrap", "bootstrap.xds-ca.json"]);
    const namedTls = named.json().static_resources.clusters[0].transport_socket.typed_config;
    assert.is(namedTls.sni, "cp.example");
    assert.is(namedTls.common_tls_context.combined_validation_context.default_validation_context.match_typed_subject_alt_names[0].san_type, "DNS");
    assert.not.ok("tls_certificate_sds_secret_configs" in namedTls.common_tls_context, "TLS without a client certificate");
    assert.equal(named.json().node.metadata, { MULTIPLANE_XDS_SECRETS: { ca: join(named.dir, "bootstrap.xds-ca.json") } });
    const caFile = JSON.parse(readFileSync(join(named.dir, "bootstrap.xds-ca.json"), "utf8")).resources[0].validation_context.trusted_ca.filename;
    assert.is(caFile, ca.cert, "paths are made absolute");
  });

  test("bootstrap --xds-ca --cert --key --out: envoy --mode validate accepts the bootstrap and its SDS files", () => {
    const certs = mkdtempSync(join(tmpdir(), "mp-cli-certs-"));
    dirs.push(certs);
    const ca = makeCa(certs);
    const leaf = makeLeaf(certs, ca, "node", { uris: ["spiffe://cluster.local/ns/default/sa/a"] });
    const b = bootstrapTo(["--xds", "127.0.0.1:15010", "--node-id", "n", "--instance-ips", "none", "--xds-ca", ca.cert, "--cert", leaf.cert, "--key", leaf.key]);
    assert.is(b.r.status, 0, b.r.stderr);
    const envoy = cli(["envoy-path"]).stdout.trim();
    const validate = (file: string) => spawnSync(envoy, ["--mode", "validate", "-c", file], { encoding: "utf8" });
    const ok = validate(b.out);
    assert.is(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout + ok.stderr, `configuration '${b.out}' OK`);
    // Envoy checks the SDS files exist: a bootstrap whose SDS file is gone is refused.
    rmSync(join(b.dir, "envoy.xds-cert.json"));
    const missing = validate(b.out);
    assert.is.not(missing.status, 0);
    assert.match(missing.stdout + missing.stderr, "envoy.xds-cert.json' does not exist");
  });
});

test("bootstrap TLS flags: --cert without --key, or without --xds-ca, are usage errors", () => {
  const base = ["bootstrap", "--xds", "10.0.0.1:15010", "--node-id", "n", "--instance-ips", "none"];
  assert.match(cli([...base, "--xds-ca", "ca.pem", "--cert", "c.pem"]).stderr, "--cert and --key go together");
  assert.match(cli([...base, "--cert", "c.pem", "--key", "k.pem"]).stderr, "need --xds-ca");
});

test("bootstrap --xds-ca, --cert, --key that cannot be read as PEM are usage errors, and nothing is written", () => {
  const dir = mkdtempSync(join(tmpdir(), "mp-cli-badpem-"));
  dirs.push(dir);
  const garbage = join(dir, "garbage.pem");
  writeFileSync(garbage, "not a certificate\n");
  const cases: [string[], string][] = [
    [["--xds-ca", join(dir, "missing.pem")], `--xds-ca: cannot read ${join(dir, "missing.pem")}: ENOENT`],
    [["--xds-ca", garbage], `--xds-ca: ${garbage} holds no PEM certificate`],
  ];
  for (const [flags, message] of cases) {
    const b = bootstrapTo(["--xds", "10.0.0.1:15010", "--node-id", "n", "--instance-ips", "none", ...flags]);
    assert.is(b.r.status, 2, b.r.stderr);
    assert.ok(b.r.stderr.startsWith(`multiplane: ${message}`), b.r.stderr);
    assert.equal(b.files(), [], "nothing written");
  }
});

test("bootstrap with a bad --xds is a usage error", () => {
  const r = cli(["bootstrap", "--xds", "nowhere", "--node-id", "n"]);
  assert.is(r.status, 2, "a bad flag value is a usage error");
  assert.match(r.stderr, "--xds: expected HOST:PORT");
});

test("serve flags: defaults on loopback, xDS and HTTP hosts apart, guard and virtual listener options", () => {
  assert.equal(parseServeArgs(["--registry", "r"]), {
    registry: "r", xdsHost: "127.0.0.1", xdsPort: 15010, httpHost: "127.0.0.1", httpPort: 15014,
    legacySingleIp: false, loopGuard: { mode: "enforce" }, virtualListener: { handoff: "original_dst" },
  });
  const o = parseServeArgs(["--registry", "r", "--xds-host", "0.0.0.0", "--http-port", "0", "--legacy-single-ip", "--no-loop-guard",
    "--virtual-listener", "127.0.0.1:25001", "--virtual-handoff", "proxy_protocol"]);
  assert.equal([o.xdsHost, o.httpHost, o.httpPort, o.legacySingleIp, o.loopGuard], ["0.0.0.0", "127.0.0.1", 0, true, false]);
  assert.equal(o.virtualListener, { address: "127.0.0.1", port: 25001, handoff: "proxy_protocol" });
  assert.equal(parseServeArgs(["--registry", "r", "--guard-mode", "observe"]).loopGuard, { mode: "observe" });
  const tls = parseServeArgs(["--registry", "r", "--xds-host", "192.168.10.1", "--tls-cert", "c.pem", "--tls-key", "k.pem", "--client-ca", "ca.pem"]);
  assert.equal(tls.tls, { certFile: "c.pem", keyFile: "k.pem", clientCaFile: "ca.pem" });
  assert.is(parseServeArgs(["--registry", "r", "--xds-host", "0.0.0.0", "--insecure-xds"]).insecureXds, true);
  assert.is(parseServeArgs(["--registry", "r", "--guard-wasm-port", "15099"]).guardWasmPort, 15099);
  assert.is(parseServeArgs(["--registry", "r", "--guard-wasm-url", "https://m.example/lg.wasm"]).guardWasmUrl, "https://m.example/lg.wasm");
  assert.equal(parseServeArgs(["--registry", "r", "--guard-wasm-path", "/opt/mp/lg.wasm"]).loopGuard, { mode: "enforce", wasmPath: "/opt/mp/lg.wasm" });
  const safety = parseServeArgs(["--registry", "r", "--max-removal-share", "0.25", "--settle-seconds", "30", "--accept-removals", "--api-dir", "/var/lib/mp"]);
  assert.equal([safety.maxRemovalShare, safety.settleSeconds, safety.acceptRemovals, safety.apiDir], [0.25, 30, true, "/var/lib/mp"]);
});

test("serve flags: each mistake is a precise usage error", () => {
  const err = (args: string[]) => { try { parseServeArgs(args); return "accepted"; } catch (e) { return (e as Error).message; } };
  assert.match(err([]), "--registry PATH is required");
  assert.match(err(["--registry", "r", "--xds-port", "70000"]), "--xds-port: expected a port number");
  assert.match(err(["--registry", "r", "--http-port", "web"]), "--http-port: expected a port number");
  assert.match(err(["--registry", "r", "--guard-mode", "block"]), "--guard-mode: expected enforce or observe");
  assert.match(err(["--registry", "r", "--no-loop-guard", "--guard-mode", "observe"]), "contradict");
  assert.match(err(["--registry", "r", "--virtual-handoff", "magic"]), "--virtual-handoff");
  assert.match(err(["--registry", "r", "--token-file", "/nonexistent/token"]), "--token-file: cannot read /nonexistent/token: ENOENT");
  assert.match(err(["--registry", "r", "--bogus"]), "bogus");
  assert.match(err(["--registry", "r", "--tls-cert", "c.pem"]), "--tls-cert and --tls-key go together");
  assert.match(err(["--registry", "r", "--client-ca", "ca.pem"]), "--client-ca (mutual TLS) needs --tls-cert and --tls-key");
  assert.match(err(["--registry", "r", "--tls-cert", "c", "--tls-key", "k", "--insecure-xds"]), "contradict");
  assert.match(err(["--registry", "r", "--guard-wasm-url", "http://x/y", "--guard-wasm-path", "/p"]), "--guard-wasm-url and --guard-wasm-path contradict each other");
  assert.match(err(["--registry", "r", "--guard-wasm-port", "15013", "--no-loop-guard"]), "--guard-wasm-port and --no-loop-guard contradict");
  assert.match(err(["--registry", "r", "--guard-wasm-port", "x"]), "--guard-wasm-port: expected a port number");
  assert.match(err(["--registry", "r", "--trust-domain", "example.org"]), "--trust-domain applies to client certificates");
  assert.match(err(["--registry", "r", "--max-removal-share", "1.5"]), "--max-removal-share: expected a number from 0 to 1");
  assert.match(err(["--registry", "r", "--settle-seconds", "ten"]), "--settle-seconds: expected a number from 0");
});

test.run();
