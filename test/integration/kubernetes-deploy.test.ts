// deploy/kubernetes/ as a cluster would take it. Without a cluster: every file parses as YAML into
// objects with apiVersion, kind and metadata.name, the kustomization lists every manifest, the
// Deployment names only flags `serve` has and keeps the HTTP API on loopback, and its probes' node
// scripts answer as a kubelet needs (0 on 200, 1 on anything else, within the probe's timeout).
// Against a real kube-apiserver (test/support/kube-apiserver.ts): every manifest is accepted by a
// server-side dry run, both as a create and as a server-side apply, with strict field validation
// (an unknown field is an error, not a dropped warning) and no warning at all (the namespace
// enforces and warns on Pod Security "restricted"); then the ServiceAccount, ClusterRole and binding
// are created for real and the service account's access is probed: SubjectAccessReviews for what it
// must and must not do, and its own token (TokenRequest) against the API, Istio's CRDs included.
// deploy/kubernetes/node-agent/ (the node agent's DaemonSet, in its own namespace) likewise: it
// parses, its kustomization lists every manifest, the DaemonSet names only flags `agent` has and
// builds the node's Envoy's node id from the downward API, and every manifest passes the same strict
// dry run without a warning (its namespace enforces Pod Security "privileged", which hostNetwork and
// the node's certificate on a hostPath need; under "baseline" the DaemonSet is warned about).
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as k8s from "@kubernetes/client-node";
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { request, type RequestOptions } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { whenAvailable } from "../support/available.ts";
import { kubeApiserverUnavailableReason, startKubeApiserver, type KubeApiserver } from "../support/kube-apiserver.ts";
import { waitFor } from "../support/net.ts";

const DIR = join(PROJECT_ROOT, "deploy", "kubernetes");
const NAMESPACE = "multiplane-system";
const AGENT_DIR = join(DIR, "node-agent");
const AGENT_NAMESPACE = "multiplane-node";
const SA_USER = `system:serviceaccount:${NAMESPACE}:multiplane`;
// What a real token of that service account authenticates as: RBAC reads bindings for the user and
// for these groups, and a SubjectAccessReview infers none of them, so they are given as a pod's
// token would carry them (discovery is granted through system:authenticated).
const SA_GROUPS = ["system:serviceaccounts", `system:serviceaccounts:${NAMESPACE}`, "system:authenticated"];
const FIELD_MANAGER = "multiplane-deploy-test";

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: unknown }; [k: string]: any };
interface Manifest { file: string; obj: Obj }

/** Every document of every .yaml file in deploy/kubernetes/ (or dir), in file-name order; parse errors and warnings fail. */
function manifests(dir = DIR): Manifest[] {
  const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
  return files.flatMap((file) => {
    const docs = [...parseAllDocuments(readFileSync(join(dir, file), "utf8"))];
    assert.ok(docs.length > 0, `${file}: no YAML documents`);
    return docs.map((d, i) => {
      assert.equal([...d.errors, ...d.warnings].map((e) => e.message), [], `${file} document ${i + 1}: YAML errors or warnings`);
      return { file, obj: d.toJS() as Obj };
    });
  });
}

/** The objects for the API server (the Kustomization is kubectl's, not the cluster's), the Namespace first. */
function clusterObjects(dir = DIR): Manifest[] {
  const all = manifests(dir).filter((m) => m.obj.kind !== "Kustomization");
  return [...all.filter((m) => m.obj.kind === "Namespace"), ...all.filter((m) => m.obj.kind !== "Namespace")];
}

function deployment(): Obj {
  const d = manifests().find((m) => m.obj.kind === "Deployment");
  assert.ok(d, "deploy/kubernetes/ has a Deployment");
  return d.obj;
}

function container(): Obj {
  const c = deployment().spec.template.spec.containers;
  assert.is(c.length, 1);
  return c[0];
}

function daemonSet(): Obj {
  const d = manifests(AGENT_DIR).find((m) => m.obj.kind === "DaemonSet");
  assert.ok(d, "deploy/kubernetes/node-agent/ has a DaemonSet");
  return d.obj;
}

/**
 * Checks that every argument is a --flag=value whose flag the command's --help lists (as
 * `[--flag` or ` --flag `), and returns the arguments' values by flag.
 */
function flagsOf(command: string, args: string[]): (flag: string) => string | undefined {
  const help = spawnSync(process.execPath, [join(PROJECT_ROOT, "dist", "multiplane.js"), command, "--help"], { encoding: "utf8" });
  assert.is(help.status, 0, help.stderr);
  for (const a of args) {
    const flag = /^(--[a-z-]+)(=|$)/.exec(a)?.[1];
    assert.ok(flag, `${a}: a --flag=value argument`);
    assert.ok(help.stdout.includes(`[${flag}`) || help.stdout.includes(` ${flag} `), `${flag} is not a ${command} flag`);
  }
  return (flag) => args.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);
}

test("every file parses as YAML; every document has apiVersion, kind and metadata.name", () => {
  const all = manifests();
  assert.equal(
    [...new Set(all.map((m) => m.obj.kind))].sort(),
    ["ClusterRole", "ClusterRoleBinding", "Deployment", "Kustomization", "Namespace", "Service", "ServiceAccount"],
  );
  for (const { file, obj } of all) {
    for (const field of ["apiVersion", "kind"] as const) assert.type(obj[field], "string", `${file}: ${field}`);
    assert.type(obj.metadata?.name, "string", `${file}: metadata.name`);
    if (!["Namespace", "ClusterRole", "ClusterRoleBinding", "Kustomization"].includes(obj.kind)) {
      assert.is(obj.metadata.namespace, NAMESPACE, `${file}: ${obj.kind} in ${NAMESPACE}`);
    }
  }
});

test("kustomization.yaml lists every manifest, and only those", () => {
  const k = manifests().find((m) => m.obj.kind === "Kustomization");
  assert.ok(k);
  const files = [...new Set(clusterObjects().map((m) => m.file))].sort();
  assert.equal([...k.obj.resources].sort(), files);
});

test("the Deployment: only flags `serve` has; xDS with TLS off loopback, the HTTP API left on loopback; probes reach it there", () => {
  const c = container();
  assert.equal(c.command, ["node", "/opt/multiplane/dist/multiplane.js"]);
  const args: string[] = c.args;
  assert.is(args[0], "serve");
  const help = spawnSync(process.execPath, [join(PROJECT_ROOT, "dist", "multiplane.js"), "serve", "--help"], { encoding: "utf8" });
  assert.is(help.status, 0, help.stderr);
  for (const a of args.slice(1)) {
    const flag = /^(--[a-z-]+)(=|$)/.exec(a)?.[1];
    assert.ok(flag, `${a}: a --flag=value argument`);
    assert.ok(help.stdout.includes(`[${flag}`) || help.stdout.includes(` ${flag} `), `${flag} is not a serve flag`);
  }
  const value = (flag: string) => args.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);
  assert.is(value("--xds-host"), "$(POD_IP)");
  assert.equal(c.env.find((e: Obj) => e.name === "POD_IP")?.valueFrom, { fieldRef: { fieldPath: "status.podIP" } });
  // Off loopback xDS needs TLS (serve refuses plaintext without --insecure-xds); mutual TLS here.
  for (const f of ["--tls-cert", "--tls-key", "--client-ca"]) assert.match(value(f) ?? "", /^\/etc\/multiplane\/tls\//, f);
  assert.not.ok(args.some((a) => a.startsWith("--insecure-xds")), "no plaintext xDS");
  assert.not.ok(args.some((a) => a.startsWith("--http-host") || a.startsWith("--http-port")), "the HTTP API stays on 127.0.0.1:15014");
  assert.match(help.stdout, "[--http-host 127.0.0.1] [--http-port 15014]");
  for (const probe of [c.readinessProbe, c.livenessProbe]) {
    assert.is(probe.exec.command[0], "node");
    assert.match(probe.exec.command[2], /"http:\/\/127\.0\.0\.1:15014\/(readyz|healthz)"/);
    assert.ok(probe.timeoutSeconds * 1000 > 4000, "the script's own deadline (4 s) ends before the probe's timeout");
  }
  assert.match(c.readinessProbe.exec.command[2], "/readyz");
  assert.match(c.livenessProbe.exec.command[2], "/healthz");
  const volumes = deployment().spec.template.spec.volumes;
  assert.is(volumes.find((v: Obj) => v.name === "xds-tls")?.secret.defaultMode, 0o440);
});

test("the probes' scripts: exit 0 on 200, 1 on 503, 1 when nothing listens, 1 within their deadline when the answer never comes", async () => {
  let hang = false;
  const server: Server = createServer((req, res) => {
    if (hang) return; // never answers
    res.statusCode = req.url === "/healthz" || req.url === "/readyz-ok" ? 200 : 503;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const c = container();
  // The very script of each probe, pointed at this server instead of 15014.
  const run = (script: string, path?: string) => new Promise<{ code: number | null; ms: number }>((resolve) => {
    let s = script.replace("127.0.0.1:15014", `127.0.0.1:${port}`);
    if (path) s = s.replace(/\/(readyz|healthz)"/, `${path}"`);
    const started = Date.now();
    const child = spawn(process.execPath, ["-e", s], { stdio: "ignore" });
    child.on("exit", (code) => resolve({ code, ms: Date.now() - started }));
  });
  const readiness: string = c.readinessProbe.exec.command[2];
  const liveness: string = c.livenessProbe.exec.command[2];
  try {
    assert.is((await run(readiness)).code, 1, "/readyz 503: not ready");
    assert.is((await run(readiness, "/readyz-ok")).code, 0, "/readyz 200: ready");
    assert.is((await run(liveness)).code, 0, "/healthz 200: alive");
    hang = true;
    const hung = await run(readiness);
    assert.is(hung.code, 1);
    assert.ok(hung.ms < 5000, `ended after ${hung.ms} ms, before the probe's 5 s timeout`);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
  assert.is((await run(readiness)).code, 1, "nothing listening: not ready");
});

test("node-agent/: every file parses; Namespace, ServiceAccount, DaemonSet in multiplane-node; the kustomization lists every manifest, and only those", () => {
  const all = manifests(AGENT_DIR);
  assert.equal([...new Set(all.map((m) => m.obj.kind))].sort(), ["DaemonSet", "Kustomization", "Namespace", "ServiceAccount"]);
  for (const { file, obj } of all) {
    for (const field of ["apiVersion", "kind"] as const) assert.type(obj[field], "string", `${file}: ${field}`);
    assert.type(obj.metadata?.name, "string", `${file}: metadata.name`);
    if (!["Namespace", "Kustomization"].includes(obj.kind)) assert.is(obj.metadata.namespace, AGENT_NAMESPACE, `${file}: ${obj.kind} in ${AGENT_NAMESPACE}`);
  }
  const ns = all.find((m) => m.obj.kind === "Namespace")!.obj;
  assert.is(ns.metadata.name, AGENT_NAMESPACE);
  assert.is((ns.metadata.labels as Record<string, string>)["pod-security.kubernetes.io/enforce"], "privileged");
  const sa = all.find((m) => m.obj.kind === "ServiceAccount")!.obj;
  assert.is(sa.automountServiceAccountToken, false, "no token: the agent talks only to the control plane");
  const k = all.find((m) => m.obj.kind === "Kustomization")!;
  assert.equal([...k.obj.resources].sort(), [...new Set(clusterObjects(AGENT_DIR).map((m) => m.file))].sort());
  assert.is(k.obj.resources[0], "namespace.yaml", "the Namespace first");
});

test("node-agent/: the DaemonSet names only flags `agent` has; the node id from the downward API; xDS at the control plane's Service over mutual TLS; the node's network, no privilege", () => {
  const ds = daemonSet();
  const pod = ds.spec.template.spec;
  assert.is(pod.containers.length, 1);
  const c = pod.containers[0];
  // The control plane's image, run the same way.
  assert.is(c.image, container().image);
  assert.equal(c.command, container().command);
  const args: string[] = c.args;
  assert.is(args[0], "agent");
  const value = flagsOf("agent", args.slice(1));
  // The node's Envoy in Istio's form, built from the downward API: the kubelet substitutes $(NAME).
  assert.is(value("--node-id"), "router~$(HOST_IP)~$(NODE_NAME).multiplane-node~multiplane-node.svc.cluster.local");
  const env = (name: string) => c.env.find((e: Obj) => e.name === name)?.valueFrom;
  assert.equal(env("HOST_IP"), { fieldRef: { fieldPath: "status.hostIP" } });
  assert.equal(env("NODE_NAME"), { fieldRef: { fieldPath: "spec.nodeName" } });
  for (const ref of args.join(" ").matchAll(/\$\(([A-Z_]+)\)/g)) assert.ok(env(ref[1]!), `$(${ref[1]}) is a variable of the container`);
  // The control plane's Service, by the name on its certificate, and its xDS port.
  const svc = manifests().find((m) => m.obj.kind === "Service")!.obj;
  const xdsPort = svc.spec.ports.find((p: Obj) => p.name === "grpc-xds").port;
  assert.is(value("--xds"), `${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local:${xdsPort}`);
  // Mutual TLS: the CA from a ConfigMap, the node's own certificate and key from the node, read-only.
  const mountOf = (path: string) => {
    const m = c.volumeMounts.find((vm: Obj) => path.startsWith(`${vm.mountPath}/`));
    assert.ok(m, `${path} is on a mounted volume`);
    assert.is(m.readOnly, true, `${m.mountPath} read-only`);
    return pod.volumes.find((v: Obj) => v.name === m.name);
  };
  assert.ok(mountOf(value("--xds-ca")!).configMap, "--xds-ca from a ConfigMap");
  for (const f of ["--cert", "--key"]) assert.equal(mountOf(value(f)!).hostPath, { path: "/etc/multiplane/agent", type: "Directory" }, f);
  assert.not.ok(args.some((a) => a.startsWith("--xds-san")), "the --xds host is the name on the certificate");
  // The node's addresses are the host network's; cluster DNS still resolves the Service's name.
  assert.is(pod.hostNetwork, true);
  assert.is(pod.dnsPolicy, "ClusterFirstWithHostNet");
  assert.is(pod.automountServiceAccountToken, false);
  assert.is(pod.serviceAccountName, manifests(AGENT_DIR).find((m) => m.obj.kind === "ServiceAccount")!.obj.metadata.name);
  assert.equal(pod.tolerations, [{ operator: "Exists" }], "every node, whatever its taints");
  assert.not.ok(pod.hostPID || pod.hostIPC || c.ports, "no host PID or IPC namespace, no ports");
  // As locked down as the control plane otherwise.
  assert.is(pod.securityContext.runAsNonRoot, true);
  assert.type(pod.securityContext.runAsUser, "number");
  assert.equal(pod.securityContext.seccompProfile, { type: "RuntimeDefault" });
  assert.equal(c.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
  assert.ok(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.memory, "requests and a memory limit");
});

interface Answer { status: number; body: Obj; warnings: string[] }

/**
 * One request as kubectl sends it: the body exactly as parsed from the file (the client library's
 * typed serializer would drop a field it does not know, which would hide a typo from the server).
 */
async function call(kc: k8s.KubeConfig, method: string, path: string, body?: unknown, contentType = "application/json"): Promise<Answer> {
  const url = new URL(kc.getCurrentCluster()!.server + path);
  const opts: RequestOptions = { method, headers: { accept: "application/json", ...(body !== undefined ? { "content-type": contentType } : {}) } };
  await kc.applyToHTTPSOptions(opts);
  return new Promise((resolve, reject) => {
    const req = request(url, opts, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => { text += d; });
      res.on("end", () => {
        const warnings: string[] = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) if (res.rawHeaders[i]!.toLowerCase() === "warning") warnings.push(res.rawHeaders[i + 1]!);
        let parsed: Obj;
        try {
          parsed = JSON.parse(text) as Obj;
        } catch {
          parsed = { apiVersion: "", kind: "", metadata: { name: "" }, text };
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, warnings });
      });
    });
    req.on("error", reject);
    if (body !== undefined) req.write(JSON.stringify(body));
    req.end();
  });
}

/** The collection path of an object's kind, found by API discovery as kubectl finds it. */
async function collectionPath(kc: k8s.KubeConfig, obj: Obj): Promise<string> {
  const base = obj.apiVersion.includes("/") ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`;
  const list = await call(kc, "GET", base);
  assert.is(list.status, 200, `discovery of ${base}`);
  const r = (list.body.resources as { name: string; kind: string; namespaced: boolean }[]).find((x) => x.kind === obj.kind && !x.name.includes("/"));
  assert.ok(r, `${obj.kind} in ${base}`);
  return `${base}${r.namespaced ? `/namespaces/${obj.metadata.namespace}` : ""}/${r.name}`;
}

const DRY = `dryRun=All&fieldValidation=Strict&fieldManager=${FIELD_MANAGER}`;

/** `kubectl create --dry-run=server --validate=strict`. */
async function dryCreate(kc: k8s.KubeConfig, obj: Obj): Promise<Answer> {
  return call(kc, "POST", `${await collectionPath(kc, obj)}?${DRY}`, obj);
}

/** `kubectl apply --server-side --dry-run=server --validate=strict` (JSON is YAML). */
async function dryApply(kc: k8s.KubeConfig, obj: Obj): Promise<Answer> {
  return call(kc, "PATCH", `${await collectionPath(kc, obj)}/${obj.metadata.name}?${DRY}`, obj, "application/apply-patch+yaml");
}

function accepted(a: Answer, what: string, obj: Obj): void {
  assert.ok(a.status === 200 || a.status === 201, `${what}: ${a.status} ${a.body.message ?? JSON.stringify(a.body)}`);
  assert.equal(a.warnings, [], `${what}: warnings`);
  assert.is(a.body.kind, obj.kind, what);
  assert.is(a.body.metadata?.name, obj.metadata.name, what);
}

const NO = (verb: string, resource: string, namespace = "", group = "", subresource?: string) => ({ verb, resource, namespace, group, ...(subresource ? { subresource } : {}) });

whenAvailable(kubeApiserverUnavailableReason(), "kube-apiserver", (test) => {
  let kube: KubeApiserver;
  let kc: k8s.KubeConfig;
  test.before(async () => {
    kube = await startKubeApiserver();
    kc = new k8s.KubeConfig();
    kc.loadFromFile(kube.kubeconfigFile());
  });
  test.after(async () => {
    await kube?.stop();
  });

  test("every manifest is accepted by a strict server-side dry run, as a create and as a server-side apply, without warnings", async () => {
    const objects = clusterObjects();
    assert.is(objects[0]?.obj.kind, "Namespace");
    const [ns, ...rest] = objects;
    // The Namespace itself can be dry-run before it exists...
    accepted(await dryCreate(kc, ns!.obj), "namespace.yaml, dry-run create", ns!.obj);
    accepted(await dryApply(kc, ns!.obj), "namespace.yaml, dry-run apply", ns!.obj);
    assert.is((await call(kc, "GET", `/api/v1/namespaces/${NAMESPACE}`)).status, 404, "a dry run stores nothing");
    // ...the namespaced objects need it to exist: created for real, as kubectl apply would first.
    await k8s.KubernetesObjectApi.makeApiClient(kc).create(ns!.obj);
    for (const { file, obj } of rest) {
      accepted(await dryCreate(kc, obj), `${file}, dry-run create`, obj);
      accepted(await dryApply(kc, obj), `${file}, dry-run apply`, obj);
    }
    const sa = await call(kc, "GET", `/api/v1/namespaces/${NAMESPACE}/serviceaccounts/multiplane`);
    assert.is(sa.status, 404, "dry runs stored nothing");
  });

  test("the strict dry run is not vacuous: an unknown field, and a pod template below Pod Security 'restricted', are refused", async () => {
    const d = deployment();
    const typo = structuredClone(d);
    const c = typo.spec.template.spec.containers[0];
    c.readinesProbe = c.readinessProbe;
    delete c.readinessProbe;
    const refused = await dryCreate(kc, typo);
    assert.is(refused.status, 400, JSON.stringify(refused.body));
    assert.match(refused.body.message, /unknown field "spec\.template\.spec\.containers\[0\]\.readinesProbe"/);

    // The namespace warns on "restricted" for workloads (and enforces it on pods): a privileged
    // template is accepted as a Deployment, with a warning, which is why the run above asserts none.
    const loose = structuredClone(d);
    loose.spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation = true;
    const warned = await dryCreate(kc, loose);
    assert.is(warned.status, 201);
    assert.ok(warned.warnings.some((w) => /restricted/.test(w) && /allowPrivilegeEscalation/.test(w)), JSON.stringify(warned.warnings));
  });

  test("RBAC, least privilege: the service account may get, list and watch exactly the registry's objects, and use API discovery", async () => {
    const api = k8s.KubernetesObjectApi.makeApiClient(kc);
    for (const kind of ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"]) {
      const m = clusterObjects().find((x) => x.obj.kind === kind);
      assert.ok(m, kind);
      await api.create(m.obj);
    }
    // Exactly these rules: the reviews below probe points, this pins the whole set.
    const role = await kc.makeApiClient(k8s.RbacAuthorizationV1Api).readClusterRole({ name: "multiplane" });
    const rules = (role.rules ?? []).flatMap((r) => (r.apiGroups ?? []).flatMap((g) => (r.resources ?? []).map((res) => `${g}/${res}: ${[...(r.verbs ?? [])].sort().join(",")}`))).sort();
    assert.equal(rules, [
      "/pods: get,list,watch",
      "/services: get,list,watch",
      "discovery.k8s.io/endpointslices: get,list,watch",
      "networking.istio.io/serviceentries: get,list,watch",
      "networking.istio.io/sidecars: get,list,watch",
      "networking.istio.io/workloadentries: get,list,watch",
    ]);
    assert.ok((role.rules ?? []).every((r) => !r.nonResourceURLs && !r.resourceNames), "no non-resource URLs, no names");

    const authz = kc.makeApiClient(k8s.AuthorizationV1Api);
    const review = async (attrs: { resourceAttributes?: k8s.V1ResourceAttributes; nonResourceAttributes?: k8s.V1NonResourceAttributes }) => {
      const r = await authz.createSubjectAccessReview({ body: { apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview", spec: { user: SA_USER, groups: SA_GROUPS, ...attrs } } });
      return r.status?.allowed === true;
    };
    const readable: [string, string][] = [["", "pods"], ["", "services"], ["discovery.k8s.io", "endpointslices"], ["networking.istio.io", "serviceentries"], ["networking.istio.io", "workloadentries"]];
    for (const [group, resource] of readable) {
      for (const verb of ["get", "list", "watch"]) {
        for (const namespace of ["", "shop"]) {
          assert.ok(await review({ resourceAttributes: { verb, group, resource, namespace } }), `may ${verb} ${group}/${resource} in ${namespace || "every namespace"}`);
        }
      }
      for (const verb of ["create", "update", "patch", "delete", "deletecollection"]) {
        assert.not.ok(await review({ resourceAttributes: { verb, group, resource, namespace: "shop" } }), `must not ${verb} ${group}/${resource}`);
      }
    }
    const forbidden = [
      NO("list", "secrets"), NO("get", "secrets", NAMESPACE), NO("watch", "secrets"),
      NO("create", "pods", "shop"), NO("delete", "services", "shop"),
      NO("get", "configmaps", "shop"), NO("list", "configmaps"),
      NO("watch", "nodes"), NO("list", "nodes"), NO("list", "namespaces"),
      NO("create", "pods", "shop", "", "exec"), NO("get", "pods", "shop", "", "log"),
      NO("create", "serviceaccounts", NAMESPACE, "", "token"),
      NO("list", "endpoints"), NO("list", "virtualservices", "", "networking.istio.io"),
      NO("update", "endpointslices", "shop", "discovery.k8s.io"),
      NO("list", "customresourcedefinitions", "", "apiextensions.k8s.io"),
      NO("bind", "clusterroles", "", "rbac.authorization.k8s.io"), NO("escalate", "clusterroles", "", "rbac.authorization.k8s.io"),
      NO("impersonate", "users"),
    ];
    for (const attrs of forbidden) {
      assert.not.ok(await review({ resourceAttributes: attrs }), `must not ${attrs.verb} ${attrs.group}/${attrs.resource}${attrs.subresource ? `/${attrs.subresource}` : ""}`);
    }
    // Discovery, from Kubernetes' default system:discovery role (bound to system:authenticated), not from ours.
    for (const path of ["/api", "/apis", "/apis/networking.istio.io", "/apis/networking.istio.io/v1"]) {
      assert.ok(await review({ nonResourceAttributes: { verb: "get", path } }), `discovery ${path}`);
    }
    assert.not.ok(await review({ nonResourceAttributes: { verb: "get", path: "/metrics" } }), "no /metrics");
  });

  test("the service account's own token: reads and watches the registry's objects (Istio's CRDs included), discovers APIs, is refused everything else", async () => {
    // Istio's CRDs, reduced to what the API server needs to serve the two kinds.
    const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
    for (const [plural, kind] of [["serviceentries", "ServiceEntry"], ["workloadentries", "WorkloadEntry"]] as const) {
      await ext.createCustomResourceDefinition({
        body: {
          metadata: { name: `${plural}.networking.istio.io` },
          spec: {
            group: "networking.istio.io", scope: "Namespaced",
            names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
            versions: [{ name: "v1", served: true, storage: true, schema: { openAPIV3Schema: { type: "object", x_kubernetes_preserve_unknown_fields: true } } }],
          },
        },
      });
    }
    const token = await kc.makeApiClient(k8s.CoreV1Api).createNamespacedServiceAccountToken({
      name: "multiplane", namespace: NAMESPACE, body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const sa = new k8s.KubeConfig();
    sa.loadFromOptions({
      clusters: [{ name: "test", server: kube.url, caFile: kube.caFile }],
      users: [{ name: "multiplane", token: token.status!.token }],
      contexts: [{ name: "multiplane", cluster: "test", user: "multiplane" }],
      currentContext: "multiplane",
    });
    const who = await sa.makeApiClient(k8s.AuthenticationV1Api).createSelfSubjectReview({ body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" } });
    assert.is(who.status?.userInfo?.username, SA_USER);
    assert.equal([...(who.status?.userInfo?.groups ?? [])].sort(), [...SA_GROUPS].sort(), "the groups the reviews above assumed");

    assert.ok(await waitFor(async () => (await call(sa, "GET", "/apis/networking.istio.io/v1/serviceentries")).status === 200, 10_000), "the CRDs are served");
    for (const path of ["/api/v1/pods", "/api/v1/services", "/apis/discovery.k8s.io/v1/endpointslices", "/apis/networking.istio.io/v1/serviceentries",
      "/apis/networking.istio.io/v1/workloadentries", "/api/v1/namespaces/shop/pods"]) {
      const list = await call(sa, "GET", path);
      assert.is(list.status, 200, `list ${path}: ${list.body.message}`);
      const watch = await call(sa, "GET", `${path}?watch=1&timeoutSeconds=1`);
      assert.is(watch.status, 200, `watch ${path}`);
    }
    for (const path of ["/api", "/apis", "/apis/networking.istio.io/v1"]) assert.is((await call(sa, "GET", path)).status, 200, `discovery ${path}`);
    const refused: [string, string, unknown?][] = [
      ["GET", "/api/v1/secrets"],
      ["GET", `/api/v1/namespaces/${NAMESPACE}/secrets`],
      ["GET", "/api/v1/configmaps"],
      ["GET", "/api/v1/nodes"],
      ["POST", `/api/v1/namespaces/${NAMESPACE}/pods`, { apiVersion: "v1", kind: "Pod", metadata: { name: "x" }, spec: { containers: [{ name: "x", image: "x" }] } }],
      ["DELETE", `/api/v1/namespaces/${NAMESPACE}/services/multiplane`],
    ];
    for (const [method, path, body] of refused) {
      const r = await call(sa, method, path, body);
      assert.is(r.status, 403, `${method} ${path}: ${r.status} ${r.body.message}`);
    }
  });

  test("node-agent/: every manifest is accepted by a strict server-side dry run, as a create and as a server-side apply, without warnings", async () => {
    const objects = clusterObjects(AGENT_DIR);
    const [ns, ...rest] = objects;
    assert.is(ns?.obj.kind, "Namespace");
    accepted(await dryCreate(kc, ns!.obj), "node-agent/namespace.yaml, dry-run create", ns!.obj);
    accepted(await dryApply(kc, ns!.obj), "node-agent/namespace.yaml, dry-run apply", ns!.obj);
    assert.is((await call(kc, "GET", `/api/v1/namespaces/${AGENT_NAMESPACE}`)).status, 404, "a dry run stores nothing");
    await k8s.KubernetesObjectApi.makeApiClient(kc).create(ns!.obj);
    for (const { file, obj } of rest) {
      accepted(await dryCreate(kc, obj), `node-agent/${file}, dry-run create`, obj);
      accepted(await dryApply(kc, obj), `node-agent/${file}, dry-run apply`, obj);
    }
    assert.is((await call(kc, "GET", `/apis/apps/v1/namespaces/${AGENT_NAMESPACE}/daemonsets/multiplane-node-agent`)).status, 404, "dry runs stored nothing");

    // Not vacuous: a typo is refused...
    const typo = structuredClone(daemonSet());
    typo.spec.template.spec.hostNetwrok = true;
    const refused = await dryCreate(kc, typo);
    assert.is(refused.status, 400, JSON.stringify(refused.body));
    assert.match(refused.body.message, /unknown field "spec\.template\.spec\.hostNetwrok"/);
    // ...and the privileged namespace is what spares the DaemonSet the Pod Security warnings: in a
    // namespace that warns on "baseline", hostNetwork and the hostPath volume are named.
    const baseline = { apiVersion: "v1", kind: "Namespace", metadata: { name: "pod-security-baseline", labels: { "pod-security.kubernetes.io/warn": "baseline" } } };
    await k8s.KubernetesObjectApi.makeApiClient(kc).create(baseline);
    const elsewhere = structuredClone(daemonSet());
    elsewhere.metadata.namespace = baseline.metadata.name;
    const warned = await dryCreate(kc, elsewhere);
    assert.is(warned.status, 201, JSON.stringify(warned.body));
    assert.ok(warned.warnings.some((w) => /baseline/.test(w) && /hostNetwork/.test(w) && /hostPath/.test(w)), JSON.stringify(warned.warnings));
  });
});

test.run();
