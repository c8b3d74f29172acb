// The small parts of the Kubernetes watch (control/registry/sources/kubernetes/): back-off with
// jitter, the coalescer, what an error answer means, where the configuration comes from, and what
// of a pod is kept.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { Backoff } from "../../control/registry/sources/kubernetes/backoff.ts";
import { Coalescer } from "../../control/common/coalescer.ts";
import { apiErrorFromBody, apiErrorFromStatus, classify } from "../../control/registry/sources/kubernetes/errors.ts";
import { loadKubeConfig, NO_CONFIGURATION } from "../../control/registry/sources/kubernetes/client.ts";
import { KINDS } from "../../control/registry/sources/kubernetes/kinds.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("back-off doubles to its cap, each delay in the upper half of its step, and starts over after reset()", () => {
  const low = new Backoff({ initialMs: 200, maxMs: 30_000 }, () => 0);
  assert.equal(Array.from({ length: 10 }, () => low.next()), [100, 200, 400, 800, 1600, 3200, 6400, 12800, 15000, 15000]);
  const high = new Backoff({ initialMs: 200, maxMs: 30_000 }, () => 1);
  assert.equal(Array.from({ length: 10 }, () => high.next()), [200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
  high.reset();
  assert.is(high.next(), 200);
});

test("coalescer: a burst is one call after the quiet time; a steady stream still calls by the max wait", async () => {
  let calls = 0;
  const c = new Coalescer(() => calls++, { quietMs: 20, maxWaitMs: 60 });
  for (let i = 0; i < 10; i++) c.poke();
  await sleep(40);
  assert.is(calls, 1, "one call for the burst");
  // Pokes every 10 ms never leave 20 ms of quiet: the max wait fires anyway.
  const began = Date.now();
  while (Date.now() - began < 150) {
    c.poke();
    await sleep(10);
  }
  assert.ok(calls >= 3, `calls during a steady stream: ${calls - 1}`);
  c.stop();
  const after = calls;
  c.poke();
  await sleep(40);
  assert.is(calls, after, "nothing after stop()");
});

test("what an error answer means: 410 and 'too large resource version' list again; 403, 401, 404 by name; the rest is an outage", () => {
  const status = (code: number, reason: string, message: string) => JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", code, reason, message });
  assert.is(classify(apiErrorFromStatus({ kind: "Status", code: 410, reason: "Expired", message: "too old resource version: 1 (196)" })).kind, "gone");
  assert.is(classify(apiErrorFromBody(410, status(410, "Expired", "The provided continue parameter is too old"))).kind, "gone");
  assert.is(classify(apiErrorFromBody(504, status(504, "Timeout", "Too large resource version: 300, current: 200"))).kind, "gone");
  const forbidden = classify(apiErrorFromBody(403, status(403, "Forbidden", 'pods is forbidden: User "x" cannot list resource "pods"')));
  assert.equal(forbidden, { kind: "forbidden", message: 'pods is forbidden: User "x" cannot list resource "pods"' });
  assert.is(classify(apiErrorFromBody(401, status(401, "Unauthorized", "Unauthorized"))).kind, "unauthorized");
  assert.equal(classify(apiErrorFromBody(404, "404 page not found\n")), { kind: "not-found", message: "404 page not found (404)" });
  assert.equal(classify(apiErrorFromBody(429, status(429, "TooManyRequests", "slow down"), "3")), { kind: "unavailable", message: "slow down (429 TooManyRequests)", retryAfterMs: 3000 });
  assert.equal(classify(apiErrorFromBody(502, "<html><body>Bad Gateway</body></html>")), { kind: "unavailable", message: "<html><body>Bad Gateway</body></html> (502)" });
  assert.equal(classify(Object.assign(new Error("connect ECONNREFUSED 10.0.0.1:6443"), { code: "ECONNREFUSED" })), { kind: "unavailable", message: "connect ECONNREFUSED 10.0.0.1:6443" });
});

/** The message a promise rejects with ("" when it resolves). */
const refusal = (p: Promise<unknown>) => p.then(() => "", (e: Error) => e.message);

test("configuration: --kubeconfig, else KUBECONFIG (merged, first wins), else the pod's service account, else a clear error", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mp-kubeconfig-"));
  try {
    const config = (name: string, server: string, token: string, current = name) => {
      const file = join(dir, name);
      writeFileSync(file, JSON.stringify({
        apiVersion: "v1", kind: "Config",
        clusters: [{ name, cluster: { server } }],
        users: [{ name: `${name}-user`, user: { token } }],
        contexts: [{ name, context: { cluster: name, user: `${name}-user` } }],
        ...(current ? { "current-context": current } : {}),
      }));
      return file;
    };
    const a = config("a", "https://a.example:6443", "token-a");
    const b = config("b", "https://b.example:6443", "token-b", "");
    const flag = await loadKubeConfig({ kubeconfig: a, env: { KUBECONFIG: b } });
    assert.equal({ source: flag.source, server: flag.server, user: flag.user }, { source: `--kubeconfig ${a}`, server: "https://a.example:6443", user: "a-user" });
    // b has no current context: a's, from the second file, is used; b's entries are there too.
    const env = await loadKubeConfig({ env: { KUBECONFIG: [b, a].join(delimiter) } });
    assert.is(env.server, "https://a.example:6443");
    assert.equal(env.kubeConfig.getContexts().map((c) => c.name), ["b", "a"]);
    assert.not.match(JSON.stringify({ source: env.source, server: env.server, user: env.user }), /token-/, "no credential in the description");

    const sa = join(dir, "sa");
    assert.is(await refusal(loadKubeConfig({ env: {}, serviceAccountDir: sa })), NO_CONFIGURATION);
    assert.is(await refusal(loadKubeConfig({ env: { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" }, serviceAccountDir: sa })), NO_CONFIGURATION, "no token mounted: not in a pod");
    mkdirSync(sa);
    writeFileSync(join(sa, "token"), "sa-token");
    const pod = await loadKubeConfig({ env: { KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" }, serviceAccountDir: sa });
    assert.equal({ source: pod.source, server: pod.server }, { source: "in-cluster service account", server: "https://[fd00::1]:443" });

    assert.match(await refusal(loadKubeConfig({ kubeconfig: join(dir, "missing") })), /^--kubeconfig: cannot read .*missing: ENOENT/);
    const insecure = join(dir, "plain");
    writeFileSync(insecure, JSON.stringify({ clusters: [{ name: "p", cluster: { server: "http://p.example" } }], users: [{ name: "u", user: {} }], contexts: [{ name: "p", context: { cluster: "p", user: "u" } }], "current-context": "p" }));
    assert.match(await refusal(loadKubeConfig({ kubeconfig: insecure })), /is not https/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a pod is kept with what the registry reads, without its containers' commands, environment or volumes", () => {
  const pod = KINDS.pods.trim({
    apiVersion: "v1", kind: "Pod",
    metadata: { name: "p", namespace: "n", labels: { app: "a" }, managedFields: [{ manager: "kubelet" }], annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{}", "k8s.v1.cni.cncf.io/network-status": "[]" } },
    spec: {
      nodeName: "node-1", serviceAccountName: "sa", hostNetwork: false,
      containers: [{ name: "app", image: "i", command: ["run"], env: [{ name: "A", value: "b" }], ports: [{ containerPort: 80 }] }],
      initContainers: [{ name: "sidecar", image: "s", restartPolicy: "Always", ports: [{ containerPort: 15001 }] }],
      volumes: [{ name: "v" }],
    },
    status: { phase: "Running", podIP: "10.0.0.1", podIPs: [{ ip: "10.0.0.1" }], hostIP: "192.0.2.1", containerStatuses: [{ name: "app" }], qosClass: "BestEffort" },
  } as never);
  assert.equal(pod, {
    metadata: { name: "p", namespace: "n", labels: { app: "a" }, annotations: { "k8s.v1.cni.cncf.io/network-status": "[]" } },
    spec: {
      containers: [{ name: "app", ports: [{ containerPort: 80 }] }],
      initContainers: [{ name: "sidecar", ports: [{ containerPort: 15001 }], restartPolicy: "Always" }],
      nodeName: "node-1", serviceAccountName: "sa", hostNetwork: false,
    },
    status: { phase: "Running", podIP: "10.0.0.1", podIPs: [{ ip: "10.0.0.1" }], hostIP: "192.0.2.1" },
  });
});

test.run();
