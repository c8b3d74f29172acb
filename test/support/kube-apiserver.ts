// A real Kubernetes API server for tests: kube-apiserver built from the Kubernetes Go sources
// (scripts/build-kube-apiserver.sh, cached outside the checkout; KUBE_APISERVER_BIN overrides) on its
// own etcd (./etcd.ts), listening on a free loopback port, with everything in a temporary directory
// that is removed at the end (also when the test process exits early).
//
// There is no controller-manager, scheduler or kubelet: objects are stored and served exactly as a
// cluster would, but nothing acts on them. A test plays those parts itself (binding a pod to a node
// with spec.nodeName, writing its status as a kubelet would). Consequences worth knowing:
// - The ServiceAccount admission plugin is off: it refuses pods until their namespace's "default"
//   ServiceAccount exists, and only the controller-manager creates those. Pods keep whatever
//   spec.serviceAccountName the test gives them.
// - A deleted namespace stays Terminating (the namespace controller would finish the deletion): use a
//   fresh namespace per test rather than deleting and recreating one.
//
// Authentication is by static bearer tokens: an admin (group system:masters, allowed everything) and
// a limited user that RBAC allows only what every authenticated user may (discovery, self-reviews).
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { etcdUnavailableReason, startEtcdCluster, type EtcdCluster } from "./etcd.ts";
import { freePort, waitFor } from "./net.ts";

const BUILD_SCRIPT = join(PROJECT_ROOT, "scripts", "build-kube-apiserver.sh");
/** The version the build script builds: the script is the one place it is written. */
const KUBE_VERSION = /^KUBE_VERSION=(\S+)$/m.exec(readFileSync(BUILD_SCRIPT, "utf8"))?.[1] ?? "unknown";

/** Where scripts/build-kube-apiserver.sh caches the binary (the same rule as the script's). */
function cachedBinary(): string {
  const root = process.env.MULTIPLANE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "multiplane");
  return join(root, `kube-apiserver-${KUBE_VERSION}`, "kube-apiserver");
}

/** KUBE_APISERVER_BIN, else the build script's cached binary when it has been built; no build from here. */
export function kubeApiserverBinary(): string | undefined {
  if (process.env.KUBE_APISERVER_BIN) return process.env.KUBE_APISERVER_BIN;
  const cached = cachedBinary();
  return existsSync(cached) ? cached : undefined;
}

/** A Go toolchain the build script would find (it looks the same way). */
function goAvailable(): boolean {
  for (const go of [process.env.GO, "go", "/usr/local/go/bin/go"]) {
    if (!go) continue;
    try {
      execFileSync(go, ["version"], { stdio: "ignore" });
      return true;
    } catch { /* next */ }
  }
  return false;
}

/**
 * Why a kube-apiserver cannot run here, or undefined when it can: it needs etcd, and the binary, or Go
 * to build it (then the first startKubeApiserver() builds it, about 5 minutes on 2 cores).
 */
export function kubeApiserverUnavailableReason(): string | undefined {
  const etcd = etcdUnavailableReason();
  if (etcd) return etcd;
  const explicit = process.env.KUBE_APISERVER_BIN;
  if (explicit) {
    try {
      execFileSync(explicit, ["--version"], { stdio: "ignore" });
      return undefined;
    } catch {
      return `KUBE_APISERVER_BIN=${explicit} does not run`;
    }
  }
  if (kubeApiserverBinary() || goAvailable()) return undefined;
  return `no kube-apiserver ${KUBE_VERSION} at ${cachedBinary()} and no Go toolchain to build it with scripts/build-kube-apiserver.sh (or set KUBE_APISERVER_BIN)`;
}

let building: Promise<string> | undefined;

/** The binary, built by the script first when it is missing (once per test process). */
function ensureBinary(): Promise<string> {
  const existing = kubeApiserverBinary();
  if (existing) return Promise.resolve(existing);
  building ??= new Promise<string>((resolve, reject) => {
    console.log(`  building kube-apiserver ${KUBE_VERSION} with scripts/build-kube-apiserver.sh (about 5 minutes on 2 cores, once)`);
    // The script's progress goes to our stderr; its last line of stdout is the binary's path.
    const child = spawn("bash", [BUILD_SCRIPT], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => { out += d; });
    child.on("error", reject);
    child.on("close", (code) => {
      const path = out.trim().split("\n").at(-1);
      if (code === 0 && path) resolve(path);
      else reject(new Error(`scripts/build-kube-apiserver.sh failed (exit ${code})`));
    });
  });
  return building;
}

export interface KubeApiserverOptions {
  /** More kube-apiserver flags, after the harness's own (a later flag wins). */
  args?: string[];
}

export interface KubeApiserver {
  /** https://127.0.0.1:<port> */
  url: string;
  /** Bearer token of "admin", in group system:masters. */
  adminToken: string;
  /** Bearer token of "limited", which RBAC grants nothing beyond what every authenticated user gets. */
  limitedToken: string;
  /** The serving certificate's CA bundle (PEM file), for clients that verify TLS. */
  caFile: string;
  /** Writes a kubeconfig for the user of `token` (default the admin) and returns its path. */
  kubeconfigFile(token?: string): string;
  etcd: EtcdCluster;
  /** SIGTERM (graceful) or SIGKILL the API server, run `whileDown`, start it again on the same port and etcd, and wait until it is ready. */
  restart(opts?: { signal?: NodeJS.Signals; whileDown?: () => Promise<void> }): Promise<void>;
  /** Stops the API server and etcd, and removes the temporary directory. */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
const dirs = new Set<string>();
// etcd.ts already turns SIGINT/SIGTERM into an exit, so this also runs when a run is interrupted.
process.on("exit", () => {
  for (const p of running) p.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const TOKENS = { admin: "multiplane-admin-token", limited: "multiplane-limited-token" };
const START_TIMEOUT_MS = 60_000;

export async function startKubeApiserver(opts: KubeApiserverOptions = {}): Promise<KubeApiserver> {
  const binary = await ensureBinary();
  const dir = mkdtempSync(join(tmpdir(), "mp-kube-"));
  dirs.add(dir);
  let etcd: EtcdCluster | undefined;
  try {
    etcd = await startEtcdCluster(1);
    return await launch(binary, dir, etcd, opts);
  } catch (err) {
    await etcd?.close();
    rmSync(dir, { recursive: true, force: true });
    dirs.delete(dir);
    throw err;
  }
}

async function launch(binary: string, dir: string, etcd: EtcdCluster, opts: KubeApiserverOptions): Promise<KubeApiserver> {
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const certDir = join(dir, "certs");
  mkdirSync(certDir);
  // Static tokens, CSV: token,user,uid,"groups". No group for the limited user: it is still in
  // system:authenticated, which is what RBAC's default roles grant to.
  const tokenFile = join(dir, "tokens.csv");
  writeFileSync(tokenFile, `${TOKENS.admin},admin,admin-uid,"system:masters"\n${TOKENS.limited},limited,limited-uid\n`);
  // The key service account tokens are signed (and checked) with; pods' projected tokens need it.
  const saKey = join(dir, "service-account.key");
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  writeFileSync(saKey, privateKey.export({ type: "pkcs1", format: "pem" }));
  const logFile = join(dir, "kube-apiserver.log");

  const args = [
    `--etcd-servers=${etcd.endpoints.map((e) => `http://${e}`).join(",")}`,
    "--bind-address=127.0.0.1", `--secure-port=${port}`,
    // Without it the server looks for a host interface with a default route to advertise, and a
    // sandbox may have none; nothing uses the advertised address here.
    "--advertise-address=127.0.0.1",
    // It would write 127.0.0.1 into the "kubernetes" Service's endpoints, which validation refuses
    // (loopback), and log that every few seconds.
    "--endpoint-reconciler-type=none",
    // A self-signed serving certificate for 127.0.0.1 and localhost, generated at the first start
    // and kept by restarts (same directory).
    `--cert-dir=${certDir}`,
    `--token-auth-file=${tokenFile}`,
    "--authorization-mode=RBAC",
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    `--service-account-key-file=${saKey}`, `--service-account-signing-key-file=${saKey}`,
    "--service-cluster-ip-range=10.96.0.0/16",
    // See the top of this file: nothing creates the "default" ServiceAccounts it waits for.
    "--disable-admission-plugins=ServiceAccount",
    // Priority and fairness only queues requests under load; off, start-up has less to bootstrap.
    "--enable-priority-and-fairness=false",
    "--profiling=false",
    // Told to stop (SIGTERM, restart()), it would keep serving open watches until killed (10 s here);
    // this ends them within 2 s, as an outage test wants.
    "--shutdown-watch-termination-grace-period=2s",
    ...(opts.args ?? []),
  ];

  let child: ChildProcess | undefined;
  const alive = () => child !== undefined && child.exitCode === null && child.signalCode === null;
  const logTail = () => {
    try {
      return readFileSync(logFile, "utf8").split("\n").slice(-40).join("\n");
    } catch {
      return "(no log)";
    }
  };
  const start = async () => {
    // Straight into a file (appended across restarts): no pipe for this process to drain or hold open.
    const fd = openSync(logFile, "a");
    child = spawn(binary, args, { stdio: ["ignore", fd, fd] });
    closeSync(fd);
    const c = child;
    running.add(c);
    c.on("exit", () => running.delete(c));
    const ready = await waitFor(async () => !alive() || await readyz(url), START_TIMEOUT_MS, 100);
    if (!alive()) throw new Error(`kube-apiserver exited (${c.exitCode ?? c.signalCode}) while starting; ${logFile} ends:\n${logTail()}`);
    if (!ready) throw new Error(`kube-apiserver not ready after ${START_TIMEOUT_MS / 1000} s; ${logFile} ends:\n${logTail()}`);
  };
  const stopServer = async (signal: NodeJS.Signals) => {
    const c = child;
    if (!c || !alive()) return;
    const gone = new Promise<void>((r) => c.once("exit", () => r()));
    c.kill(signal);
    const timeout = setTimeout(() => c.kill("SIGKILL"), 10_000);
    await gone;
    clearTimeout(timeout);
  };

  try {
    await start();
  } catch (err) {
    await stopServer("SIGKILL");
    throw err;
  }
  const caFile = join(certDir, "apiserver.crt");
  return {
    url,
    adminToken: TOKENS.admin,
    limitedToken: TOKENS.limited,
    caFile,
    kubeconfigFile(token = TOKENS.admin) {
      const user = Object.entries(TOKENS).find(([, t]) => t === token)?.[0] ?? "user";
      const file = join(dir, `kubeconfig-${user}`);
      // JSON is YAML, which is what kubeconfig readers parse.
      writeFileSync(file, JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "test", cluster: { server: url, "certificate-authority": caFile } }],
        users: [{ name: user, user: { token } }],
        contexts: [{ name: user, context: { cluster: "test", user } }],
        "current-context": user,
      }, null, 2));
      return file;
    },
    etcd,
    async restart({ signal = "SIGTERM", whileDown } = {}) {
      await stopServer(signal);
      await whileDown?.();
      await start();
    },
    async stop() {
      await stopServer("SIGKILL");
      await etcd.close();
      rmSync(dir, { recursive: true, force: true });
      dirs.delete(dir);
    },
  };
}

/** GET /readyz: true once every readiness check (etcd, informers, post-start hooks) passes. */
function readyz(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    // Not verified: the serving certificate may not have been written yet when this first asks. The
    // clients the tests use verify it (kubeconfigFile's certificate-authority).
    const req = request(`${url}/readyz`, { rejectUnauthorized: false, timeout: 2000, headers: { authorization: `Bearer ${TOKENS.admin}` } }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}
