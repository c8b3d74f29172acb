// The `multiplane` command. Each subcommand is a thin shell over a module that does the work.
import { parseArgs } from "node:util";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { resolveEnvoy } from "../../envoy/resolve.ts";
import { generateBootstrap, parseHostPort, DEFAULT_ADMIN, type HostPort, sdsPathsNextTo, writeXdsSdsFiles, type XdsTlsOptions } from "../../envoy/bootstrap.ts";
import { interfaceIps } from "../../envoy/interface-ips.ts";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { parseCidr, parseIp, type Cidr } from "../identity/ip.ts";
import type { ServeOptions } from "../serve/options.ts";
import { serve } from "../serve/serve.ts";
import { runAgent } from "./agent.ts";
import { start } from "./start.ts";
import { captureCommand } from "../../envoy/capture.ts";
import { demoCommand } from "./demo/index.ts";
import { parseMeshNetworks } from "../registry/istio/mesh-networks.ts";
import { labelKeyProblem, labelValueProblem } from "../registry/istio/syntax.ts";
import { formatError, type MeshNetwork } from "../registry/model.ts";
import { validateCommand, ValidateUsageError } from "./validate/command.ts";
import { isEtcdUrl, parseEtcdUrl } from "../registry/sources/etcd/etcd-layout.ts";
import { registryCommand, REGISTRY_USAGE, TransferUsageError } from "./transfer/command.ts";
import { CONFIRM_USAGE, confirmCommand } from "./confirm.ts";

/** Each command's usage, in the order `multiplane --help` lists them; `multiplane COMMAND --help` prints one. */
const HELP: Readonly<Record<string, string>> = {
  serve: `  serve --registry PATH | --kubernetes | --kubeconfig FILE [--xds-host 127.0.0.1] [--xds-port 15010] [--http-host 127.0.0.1] [--http-port 15014]
        [--tls-cert F --tls-key F [--client-ca F] [--trust-domain cluster.local]] [--insecure-xds]
        [--token-file F --api-dir DIR] [--legacy-single-ip] [--no-loop-guard] [--guard-mode enforce|observe]
        [--guard-wasm-port 15013 | --guard-wasm-url URL | --guard-wasm-path PATH]
        [--virtual-listener 0.0.0.0:15001] [--virtual-handoff original_dst|proxy_protocol]
        [--max-removal-share 1] [--settle-seconds 10] [--accept-removals]
        [--mesh-networks FILE] [--planes FILE] [--on-invalid reject|skip] [--namespaces a,b] [--cluster-domain cluster.local]
        [--agent-floating-ips CIDR,CIDR] [--agent-expiry-seconds 60] [--root-namespace istio-system]
      run the xDS control plane on a ServiceEntry registry (file or directory, watched), or on
      etcd://HOST:PORT[,HOST:PORT...]/PREFIX (one key per entry, watched; the HTTP API's writes go to
      etcd, so --api-dir and the hold flags are for files only; replicas on one etcd are
      interchangeable). Outside loopback xDS needs TLS (--tls-cert/--tls-key; --client-ca: mutual TLS) or --insecure-xds.
      The loop guard module: with xDS on loopback Envoy reads dist/loop-guard.wasm; otherwise this
      control plane serves it on the xDS host (port 15013, TLS like xDS) and Envoy fetches it and checks
      its sha256; --guard-wasm-url: fetched from another server; --guard-wasm-path: a file on the Envoy hosts.
      With --on-invalid skip, invalid documents are left out (and reported) instead of refusing the change.
      Istio Sidecars scope what each proxy is sent (egress hosts, outboundTrafficPolicy); the Sidecar
      without workloadSelector in --root-namespace is the default of namespaces without their own.
      --kubernetes (KUBECONFIG, or the pod's service account) or --kubeconfig FILE: also read Services,
      EndpointSlices, Pods and Istio's ServiceEntries, WorkloadEntries and Sidecars from Kubernetes (--namespaces:
      only these), with or without --registry; a proxy whose node id names a pod gets its pod's IPs
      (status.podIPs and every network in Multus's network-status) as node IPs.
      Node agents (multiplane agent) report on the xDS port; under mutual TLS an agent may claim its
      certificate's IP addresses and --agent-floating-ips; a report outlives its agent by --agent-expiry-seconds.
      --planes FILE (YAML or JSON, watched): the node's planes by address range, each with its DSCP, source
      binding, isolation, connect timeout and circuit breakers`,
  agent: `  agent --xds HOST:PORT --node-id ID [--node-id ID ...] [--xds-ca F [--cert F --key F] [--xds-san NAME]]
        [--exclude-interfaces a,b]
      run on a node beside its Envoys: watch the node's addresses (iproute2: ip monitor, a full read every
      30 s as a safety net) and report them to the control plane for these node ids, so their proxies'
      node IPs follow interface changes without a restart (same filter as bootstrap --instance-ips auto;
      TLS flags as bootstrap's); runs until SIGTERM or SIGINT`,
  validate: `  validate [--json] [--mesh-networks FILE] [--planes FILE] PATH...
      check ServiceEntry/WorkloadEntry/Sidecar files or directories by Istio's rules (and the files serve reads beside them) without serving:
      one file:line:column: reason per problem; exit 0 when none is an error, else 1`,
  registry: `${REGISTRY_USAGE}\n${CONFIRM_USAGE}`,
  start: `  start [--free-ports]
      the main job (npm start): control plane on examples/registry/loopback.yaml plus a local Envoy
      sidecar with the loop guard, on loopback, until Ctrl-C; --free-ports: every port picked free
      (the example's services renumbered to match), to run beside something on 15000, 9080, ...`,
  bootstrap: `  bootstrap --xds HOST:PORT[,HOST:PORT...] --node-id ID [--instance-ips auto|none|IP,IP...]
            [--labels k=v,k=v] [--xds-ca F [--cert F --key F] [--xds-san NAME]] [--admin 127.0.0.1:15000] [--out FILE]
      print (or write) an Envoy bootstrap that reports the node's IPs to the control plane (and the
      workload's --labels, which Sidecar workloadSelectors match); several
      --xds addresses: control-plane replicas, one xDS cluster that Envoy fails over within; --xds-ca:
      xDS over TLS (the control plane's certificate must carry NAME, default the --xds host; replicas
      on several hosts need NAME); --cert/--key: this proxy's certificate for mutual TLS. With TLS,
      --out is required: the CA and certificate are delivered by SDS files next to FILE (envoy.json:
      envoy.xds-ca.json, envoy.xds-cert.json), and Envoy reloads the PEM files when they are replaced
      (write the new file, then rename it over the old one), without a restart`,
  capture: `  capture install|uninstall [--proxy-port 15001] [--proxy-uid 1337] [--proxy-gid GID]
          [--exclude-inbound-ports 15000,15010] [--exclude-outbound-ports 15000,15010]
          [--no-local-loopback-redirect] [--netns NS] [--dry-run]
      Istio 1.0 style iptables capture to Envoy's 15001 (root); idempotent, prints what it changed`,
  demo: `  demo [--json] [--environment netns|loopback] [--only NAME,...]
      the seed's matrix: the loop reproduced, and stopped by the fix and by the loop guard`,
  "envoy-path": `  envoy-path
      print the Envoy binary multiplane runs (ENVOY_BIN, else .envoy/, else envoy on PATH)`,
};

const USAGE = `usage: multiplane <command> [options]

commands:
${Object.values(HELP).join("\n")}
  --version
      print multiplane's version

exit status: 0 done; 1 invalid input or a failure (a registry that does not validate, no Envoy, a
port in use); 2 a usage error (an unknown command or option, a bad or missing flag value)
`;

class UsageError extends Error {
  override name = "UsageError";
}

/** --instance-ips: "auto" = this host's interface IPs, "none" = omit INSTANCE_IPS (an old single-IP proxy), else a list. */
function parseInstanceIpsFlag(value: string | undefined): string[] {
  if (value === undefined || value === "auto") return interfaceIps();
  if (value === "none") return [];
  const entries = value.split(",").map((s) => s.trim()).filter(Boolean);
  const parsed = entries.map(parseIp);
  const bad = entries.filter((_, i) => !parsed[i]!.ok);
  // A typo ("atuo") or a stray word must not become an INSTANCE_IPS entry the control plane ignores.
  if (entries.length === 0 || bad.length > 0) {
    throw new UsageError(`--instance-ips: expected auto, none or a comma-separated list of IP addresses, got ${JSON.stringify(value)}${bad.length > 0 ? ` (not an IP address: ${bad.map((b) => JSON.stringify(b)).join(", ")})` : ""}`);
  }
  return parsed.map((p) => (p as { ip: string }).ip);
}

function bootstrapCommand(args: string[]): void {
  const { values } = parseArgs({
    args, strict: true,
    options: {
      xds: { type: "string" }, "node-id": { type: "string" }, "instance-ips": { type: "string" }, admin: { type: "string" }, out: { type: "string" },
      "xds-ca": { type: "string" }, cert: { type: "string" }, key: { type: "string" }, "xds-san": { type: "string" }, labels: { type: "string" },
    },
  });
  if (!values.xds) throw new UsageError("bootstrap: --xds HOST:PORT[,HOST:PORT...] is required");
  const labels = values.labels !== undefined ? labelsFlag(values.labels) : undefined;
  if (!values["node-id"]) throw new UsageError("bootstrap: --node-id is required");
  if (!values.cert !== !values.key) throw new UsageError("bootstrap: --cert and --key go together");
  if ((values.cert || values["xds-san"]) && !values["xds-ca"]) throw new UsageError("bootstrap: --cert, --key and --xds-san need --xds-ca (xDS over TLS)");
  if (values["xds-ca"] && !values.out) throw new UsageError("bootstrap: --xds-ca needs --out FILE (the SDS files through which Envoy reloads the CA and certificate are written next to it)");
  // Envoy reads these files only when it starts (or, by SDS, when they change): a wrong path must fail here, not there.
  if (values["xds-ca"]) pemFile(values["xds-ca"], "--xds-ca", "certificate");
  if (values.cert) pemFile(values.cert, "--cert", "certificate");
  if (values.key) pemFile(values.key, "--key", "key");
  const tls: XdsTlsOptions | undefined = values["xds-ca"] && values.out ? {
    caFile: values["xds-ca"],
    ...(values.cert && values.key ? { certFile: values.cert, keyFile: values.key } : {}),
    ...(values["xds-san"] ? { san: values["xds-san"] } : {}),
    sds: sdsPathsNextTo(values.out, values.cert !== undefined),
  } : undefined;
  const config = generateBootstrap({
    nodeId: values["node-id"],
    instanceIps: parseInstanceIpsFlag(values["instance-ips"]),
    xds: values.xds.split(",").map((x) => hostPortFlag(x, "--xds")),
    admin: values.admin ? hostPortFlag(values.admin, "--admin") : DEFAULT_ADMIN,
    ...(tls ? { tls } : {}),
    ...(labels ? { labels } : {}),
  });
  const text = JSON.stringify(config, null, 2) + "\n";
  // The SDS files first: the bootstrap names them, and Envoy refuses one whose SDS files are missing.
  if (tls) writeXdsSdsFiles(tls);
  if (values.out) writeFileSync(values.out, text);
  else process.stdout.write(text);
}

/** --labels app=reviews,version=v1: Kubernetes label syntax, each key once. */
function labelsFlag(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of value.split(",")) {
    const eq = pair.indexOf("=");
    const [k, v] = eq < 0 ? [pair, undefined] : [pair.slice(0, eq).trim(), pair.slice(eq + 1).trim()];
    const problem = v === undefined ? `expected KEY=VALUE, got ${JSON.stringify(pair)}` : k in out ? `label ${k} given twice` : labelKeyProblem(k) ?? labelValueProblem(v);
    if (problem) throw new UsageError(`--labels: ${problem}`);
    out[k] = v!;
  }
  return out;
}

/** HOST:PORT of a flag; a malformed one is a usage error (exit 2), like any bad flag value. */
function hostPortFlag(value: string, flag: string): HostPort {
  try {
    return parseHostPort(value, flag);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** A PEM file a flag names: readable, and holding a certificate (the first of a chain) or a private key. */
function pemFile(path: string, flag: string, holds: "certificate" | "key"): void {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (err) {
    throw new UsageError(`${flag}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    if (holds === "certificate") new X509Certificate(pem);
    else createPrivateKey(pem);
  } catch (err) {
    throw new UsageError(`${flag}: ${path} holds no PEM ${holds === "certificate" ? "certificate" : "private key"}: ${(err as Error).message}`);
  }
}

function portFlag(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new UsageError(`${flag}: expected a port number 0-65535, got ${JSON.stringify(value)}`);
  return n;
}

/** Reads --token-file: one line, surrounding whitespace ignored; an empty file is an error, not "no auth". */
function readToken(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(`--token-file: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const token = text.trim();
  if (token === "") throw new UsageError(`--token-file: ${path} is empty`);
  return token;
}

export function parseServeArgs(args: string[]): ServeOptions {
  const { values } = parseArgs({
    args, strict: true,
    options: {
      registry: { type: "string" }, "xds-host": { type: "string" }, "xds-port": { type: "string" },
      "http-host": { type: "string" }, "http-port": { type: "string" },
      "token-file": { type: "string" }, "api-dir": { type: "string" }, "legacy-single-ip": { type: "boolean" }, "no-loop-guard": { type: "boolean" },
      "guard-mode": { type: "string" }, "virtual-listener": { type: "string" }, "virtual-handoff": { type: "string" },
      "tls-cert": { type: "string" }, "tls-key": { type: "string" }, "client-ca": { type: "string" }, "insecure-xds": { type: "boolean" }, "trust-domain": { type: "string" },
      "guard-wasm-port": { type: "string" }, "guard-wasm-url": { type: "string" }, "guard-wasm-path": { type: "string" },
      "max-removal-share": { type: "string" }, "settle-seconds": { type: "string" }, "accept-removals": { type: "boolean" },
      "mesh-networks": { type: "string" }, "on-invalid": { type: "string" }, planes: { type: "string" },
      kubernetes: { type: "boolean" }, kubeconfig: { type: "string" }, namespaces: { type: "string" }, "cluster-domain": { type: "string" },
      "agent-floating-ips": { type: "string" }, "agent-expiry-seconds": { type: "string" }, "root-namespace": { type: "string" },
    },
  });
  const guardFlags = ["guard-wasm-port", "guard-wasm-url", "guard-wasm-path"].filter((f) => values[f as "guard-wasm-port"] !== undefined);
  if (guardFlags.length > 1) throw new UsageError(`serve: --${guardFlags.join(" and --")} contradict each other: the loop guard module comes from one place`);
  if (guardFlags.length > 0 && values["no-loop-guard"]) throw new UsageError(`serve: --${guardFlags[0]} and --no-loop-guard contradict each other`);
  if (!values["tls-cert"] !== !values["tls-key"]) throw new UsageError("serve: --tls-cert and --tls-key go together");
  if (values["client-ca"] && !values["tls-cert"]) throw new UsageError("serve: --client-ca (mutual TLS) needs --tls-cert and --tls-key");
  if (values["insecure-xds"] && values["tls-cert"]) throw new UsageError("serve: --insecure-xds and --tls-cert contradict each other");
  if (values["trust-domain"] !== undefined && !values["client-ca"]) throw new UsageError("serve: --trust-domain applies to client certificates: it needs --client-ca");
  const kubernetes = values.kubernetes || values.kubeconfig !== undefined;
  if (!kubernetes && (values.namespaces !== undefined || values["cluster-domain"] !== undefined)) {
    throw new UsageError(`serve: --${values.namespaces !== undefined ? "namespaces" : "cluster-domain"} is for the Kubernetes registry: add --kubernetes or --kubeconfig FILE`);
  }
  if (!values.registry && !kubernetes) throw new UsageError("serve: --registry PATH is required (a ServiceEntry file or directory, or etcd://HOST:PORT/PREFIX), or --kubernetes / --kubeconfig FILE");
  const namespaces = values.namespaces?.split(",").map((n) => n.trim()).filter(Boolean);
  if (namespaces && (namespaces.length === 0 || namespaces.some((n) => !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(n)))) {
    throw new UsageError(`--namespaces: expected Kubernetes namespace names separated by commas, got ${JSON.stringify(values.namespaces)}`);
  }
  if (values.registry && isEtcdUrl(values.registry)) {
    try {
      parseEtcdUrl(values.registry);
    } catch (err) {
      throw new UsageError(`--registry: ${(err as Error).message}`);
    }
    const fileOnly = ["api-dir", "max-removal-share", "settle-seconds", "accept-removals"].filter((f) => values[f as "api-dir"] !== undefined);
    if (fileOnly.length > 0) throw new UsageError(`serve: --${fileOnly.join(", --")} ${fileOnly.length > 1 ? "are" : "is"} for a file registry; an etcd registry stores the API's writes itself and applies every change`);
  }
  const mode = values["guard-mode"] ?? "enforce";
  if (mode !== "enforce" && mode !== "observe") throw new UsageError(`--guard-mode: expected enforce or observe, got ${JSON.stringify(mode)}`);
  if (values["no-loop-guard"] && values["guard-mode"]) throw new UsageError("--guard-mode and --no-loop-guard contradict each other");
  const handoff = values["virtual-handoff"] ?? "original_dst";
  if (handoff !== "original_dst" && handoff !== "proxy_protocol") throw new UsageError(`--virtual-handoff: expected original_dst or proxy_protocol, got ${JSON.stringify(handoff)}`);
  const virtual = values["virtual-listener"] ? hostPortFlag(values["virtual-listener"], "--virtual-listener") : undefined;
  const root = values["root-namespace"];
  if (root !== undefined && !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(root)) throw new UsageError(`--root-namespace: expected a Kubernetes namespace name, got ${JSON.stringify(root)}`);
  const onInvalid = values["on-invalid"] ?? "reject";
  if (onInvalid !== "reject" && onInvalid !== "skip") throw new UsageError(`--on-invalid: expected reject or skip, got ${JSON.stringify(onInvalid)}`);
  return {
    ...(values.registry ? { registry: values.registry } : {}),
    ...(kubernetes
      ? { kubernetes: { ...(values.kubeconfig !== undefined ? { kubeconfig: values.kubeconfig } : {}), ...(namespaces ? { namespaces } : {}), ...(values["cluster-domain"] !== undefined ? { clusterDomain: values["cluster-domain"] } : {}) } }
      : {}),
    // Separate on purpose: Envoys on other hosts need xDS on a routable address, while the debug API
    // (config dumps, decisions) should stay on loopback unless asked for.
    xdsHost: values["xds-host"] ?? "127.0.0.1",
    xdsPort: portFlag(values["xds-port"], "--xds-port", 15010),
    httpHost: values["http-host"] ?? "127.0.0.1",
    httpPort: portFlag(values["http-port"], "--http-port", 15014),
    ...(values["token-file"] ? { token: readToken(values["token-file"]) } : {}),
    ...(values["tls-cert"] && values["tls-key"]
      ? { tls: { certFile: values["tls-cert"], keyFile: values["tls-key"], ...(values["client-ca"] ? { clientCaFile: values["client-ca"] } : {}) } }
      : {}),
    ...(values["insecure-xds"] ? { insecureXds: true } : {}),
    ...(values["trust-domain"] !== undefined ? { trustDomain: values["trust-domain"] } : {}),
    ...(values["api-dir"] ? { apiDir: values["api-dir"] } : {}),
    legacySingleIp: values["legacy-single-ip"] ?? false,
    loopGuard: values["no-loop-guard"] ? false : { mode, ...(values["guard-wasm-path"] !== undefined ? { wasmPath: values["guard-wasm-path"] } : {}) },
    ...(values["guard-wasm-url"] !== undefined ? { guardWasmUrl: values["guard-wasm-url"] } : {}),
    ...(values["guard-wasm-port"] !== undefined ? { guardWasmPort: portFlag(values["guard-wasm-port"], "--guard-wasm-port", 0) } : {}),
    virtualListener: { ...(virtual ? { address: virtual.host, port: virtual.port } : {}), handoff },
    ...(values["max-removal-share"] !== undefined ? { maxRemovalShare: numberFlag(values["max-removal-share"], "--max-removal-share", 0, 1) } : {}),
    ...(values["settle-seconds"] !== undefined ? { settleSeconds: numberFlag(values["settle-seconds"], "--settle-seconds", 0, 86_400) } : {}),
    ...(values["accept-removals"] ? { acceptRemovals: true } : {}),
    ...(values["mesh-networks"] ? { meshNetworks: readMeshNetworks(values["mesh-networks"]) } : {}),
    ...(values.planes !== undefined ? { planesFile: values.planes } : {}),
    ...(root !== undefined ? { rootNamespace: root } : {}),
    ...(onInvalid === "skip" ? { onInvalid } : {}),
    ...(values["agent-floating-ips"] !== undefined ? { agentFloatingIps: cidrListFlag(values["agent-floating-ips"], "--agent-floating-ips") } : {}),
    ...(values["agent-expiry-seconds"] !== undefined ? { agentExpirySeconds: numberFlag(values["agent-expiry-seconds"], "--agent-expiry-seconds", 0, 86_400) } : {}),
  };
}

function cidrListFlag(value: string, flag: string): Cidr[] {
  const entries = value.split(",").map((e) => e.trim()).filter(Boolean);
  if (entries.length === 0) throw new UsageError(`${flag}: expected CIDR ranges or addresses separated by commas, got ${JSON.stringify(value)}`);
  return entries.map((e) => {
    const c = parseCidr(e);
    if (!c.ok) throw new UsageError(`${flag}: ${c.reason}`);
    return c.cidr;
  });
}

/** Runs until SIGTERM or SIGINT. */
async function agentCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args, strict: true,
    options: {
      xds: { type: "string" }, "node-id": { type: "string", multiple: true },
      "xds-ca": { type: "string" }, cert: { type: "string" }, key: { type: "string" }, "xds-san": { type: "string" },
      "exclude-interfaces": { type: "string" },
    },
  });
  if (!values.xds) throw new UsageError("agent: --xds HOST:PORT (the control plane's xDS address) is required");
  const nodeIds = (values["node-id"] ?? []).filter((id) => id !== "");
  if (nodeIds.length === 0) throw new UsageError("agent: --node-id is required (each Envoy on this node that the reports are for; repeat the flag for several)");
  if (!values.cert !== !values.key) throw new UsageError("agent: --cert and --key go together");
  if ((values.cert || values["xds-san"]) && !values["xds-ca"]) throw new UsageError("agent: --cert, --key and --xds-san need --xds-ca (xDS over TLS)");
  if (values["xds-ca"]) pemFile(values["xds-ca"], "--xds-ca", "certificate");
  if (values.cert) pemFile(values.cert, "--cert", "certificate");
  if (values.key) pemFile(values.key, "--key", "key");
  const running = await runAgent({
    xds: hostPortFlag(values.xds, "--xds"),
    nodeIds,
    ...(values["xds-ca"] ? { tls: { caFile: values["xds-ca"], ...(values.cert && values.key ? { certFile: values.cert, keyFile: values.key } : {}), ...(values["xds-san"] ? { san: values["xds-san"] } : {}) } } : {}),
    excludeInterfaces: (values["exclude-interfaces"] ?? "").split(",").map((i) => i.trim()).filter(Boolean),
    log: console.log,
  });
  await untilSignal();
  await running.stop();
}

function numberFlag(value: string, flag: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || n < min || n > max) throw new UsageError(`${flag}: expected a number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return n;
}

/** --mesh-networks: Istio's meshNetworks file; any error stops `serve` with file:line:column: reason. */
function readMeshNetworks(path: string): MeshNetwork[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(`--mesh-networks: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const r = parseMeshNetworks(text, path);
  for (const w of r.warnings) console.log(`mesh networks warning: ${formatError(w)}`);
  if (r.errors.length > 0) throw new UsageError(`--mesh-networks: ${path} is invalid:\n  ${r.errors.map(formatError).join("\n  ")}`);
  return r.networks;
}

async function registryConfirm(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, strict: true, options: { "token-file": { type: "string" }, http: { type: "string" } } });
  if (!values["token-file"]) throw new UsageError("registry confirm: --token-file FILE is required (the token serve's --token-file names)");
  const http = values.http ?? "http://127.0.0.1:15014";
  if (!URL.canParse(http)) throw new UsageError(`--http: expected the HTTP API's URL (http://HOST:PORT), got ${JSON.stringify(http)}`);
  return confirmCommand(http, readToken(values["token-file"]), console.log);
}

/** Runs until SIGTERM or SIGINT, then stops cleanly (streams closed, watchers removed). */
async function serveCommand(args: string[]): Promise<void> {
  const cp = await serve(parseServeArgs(args));
  await untilSignal();
  await cp.stop();
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      console.log(`multiplane: ${signal}, shutting down`);
      resolve(signal);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}

/** A usage error's hint: the command's own usage when there is one, else all of it. */
const commandUsage = (command: string | undefined) =>
  command !== undefined && Object.hasOwn(HELP, command) ? `usage: multiplane ${command} [options]\n\n${HELP[command]}\n\nmultiplane --help lists every command\n` : USAGE;

/** `multiplane COMMAND --help` (or -h), before any `--`. */
const asksForHelp = (args: readonly string[]) => {
  const end = args.indexOf("--");
  return (end === -1 ? args : args.slice(0, end)).some((a) => a === "--help" || a === "-h");
};

function version(): string {
  return (JSON.parse(readFileSync(join(PROJECT_ROOT, "package.json"), "utf8")) as { version: string }).version;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command !== undefined && Object.hasOwn(HELP, command) && asksForHelp(rest)) {
      process.stdout.write(`usage: multiplane ${command === "registry" ? "registry import|export|confirm" : command} [options]\n\n${HELP[command]}\n`);
      return 0;
    }
    switch (command) {
      case "--version":
      case "version":
        console.log(`multiplane ${version()}`);
        return 0;
      case "envoy-path":
        console.log(resolveEnvoy().path);
        return 0;
      case "bootstrap":
        bootstrapCommand(rest);
        return 0;
      case "serve":
        await serveCommand(rest);
        return 0;
      case "agent":
        await agentCommand(rest);
        return 0;
      case "start": {
        const { values } = parseArgs({ args: rest, strict: true, options: { "free-ports": { type: "boolean" } } });
        const running = await start(console.log, { freePorts: values["free-ports"] ?? false });
        await untilSignal();
        await running.stop();
        return 0;
      }
      case "capture":
        return await captureCommand(rest);
      case "demo":
        return await demoCommand(rest);
      case "validate":
        return await validateCommand(rest);
      case "registry":
        return rest[0] === "confirm" ? await registryConfirm(rest.slice(1)) : await registryCommand(rest, console.log);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (err) {
    const e = err as Error;
    // Expected failures (bad flags, no Envoy, unreachable ports) are one line, not a stack trace.
    console.error(`multiplane: ${e.message}`);
    // node:util parseArgs' own errors (an unknown option, a missing value, a stray argument) are usage errors too.
    const usage = e instanceof UsageError || e instanceof ValidateUsageError || e instanceof TransferUsageError
      || ((e as NodeJS.ErrnoException).code ?? "").startsWith("ERR_PARSE_ARGS_");
    if (usage) process.stderr.write(`\n${commandUsage(command)}`);
    return usage ? 2 : 1;
  }
}
