// Which Kubernetes API server to watch, and as whom: `--kubeconfig FILE`, else the KUBECONFIG
// variable (several files joined by ":", merged as kubectl does), else the pod's service account
// (in a cluster: its token and CA under /var/run/secrets/kubernetes.io/serviceaccount, the server
// from KUBERNETES_SERVICE_HOST/PORT). ~/.kube/config is not read on its own: a control plane that
// silently picked up whatever cluster a developer's kubectl points at would be a surprise.
// What this returns describes the choice (file, server, user name) without any credential.
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { isIPv6 } from "node:net";
import type { KubeConfig } from "@kubernetes/client-node";

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export const NO_CONFIGURATION = "no Kubernetes configuration: --kubeconfig FILE, KUBECONFIG, or run in a pod with a service account";

export interface KubeConfigChoice {
  kubeConfig: KubeConfig;
  /** Where it came from: "--kubeconfig /path", "KUBECONFIG=/a:/b", "in-cluster service account". */
  source: string;
  /** The API server's URL. */
  server: string;
  /** The kubeconfig's user name (not a credential), for logs. */
  user: string;
}

export interface LoadKubeConfigOptions {
  /** --kubeconfig FILE */
  kubeconfig?: string;
  /** Where KUBECONFIG and KUBERNETES_SERVICE_HOST/PORT are read (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Where the pod's service account token, CA and namespace are (default the one Kubernetes mounts). */
  serviceAccountDir?: string;
}

type NewKubeConfig = () => KubeConfig;

/**
 * The configuration to use; rejects with an Error saying why there is none or what is wrong with it.
 * The client library is loaded here, on first use: loading it takes 0.6 s, which every `multiplane`
 * command paid at start while it was imported with the rest.
 */
export async function loadKubeConfig(opts: LoadKubeConfigOptions = {}): Promise<KubeConfigChoice> {
  const { KubeConfig } = await import("@kubernetes/client-node");
  const make: NewKubeConfig = () => new KubeConfig();
  const env = opts.env ?? process.env;
  if (opts.kubeconfig) return checked(fromFiles(make, [opts.kubeconfig], "--kubeconfig"), `--kubeconfig ${opts.kubeconfig}`);
  const files = (env.KUBECONFIG ?? "").split(delimiter).filter(Boolean);
  if (files.length) return checked(fromFiles(make, files, "KUBECONFIG"), `KUBECONFIG=${env.KUBECONFIG}`);
  const inCluster = fromServiceAccount(make, env, opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR);
  if (inCluster) return checked(inCluster, "in-cluster service account");
  throw new Error(NO_CONFIGURATION);
}

/** The files loaded and merged as kubectl merges them: the first file to name a cluster, user, context or current context wins. */
function fromFiles(make: NewKubeConfig, files: readonly string[], what: string): KubeConfig {
  const merged = { clusters: [] as KubeConfig["clusters"], users: [] as KubeConfig["users"], contexts: [] as KubeConfig["contexts"], currentContext: "" };
  const add = <T extends { name: string }>(into: T[], from: readonly T[]) => {
    for (const x of from) if (!into.some((y) => y.name === x.name)) into.push(x);
  };
  for (const file of files) {
    const one = make();
    try {
      one.loadFromFile(file);
    } catch (err) {
      // The parser's message may quote the file, credentials included: its first line only, cut short.
      const reason = (err as Error).message.split("\n")[0]!.slice(0, 120);
      throw new Error(`${what}: cannot read ${file}: ${reason}`);
    }
    add(merged.clusters, one.clusters);
    add(merged.users, one.users);
    add(merged.contexts, one.contexts);
    merged.currentContext ||= one.currentContext ?? "";
  }
  const kc = make();
  kc.loadFromOptions(merged);
  return kc;
}

/** A pod's own configuration, or undefined outside a pod (no service host, or no token mounted). */
function fromServiceAccount(make: NewKubeConfig, env: Readonly<Record<string, string | undefined>>, dir: string): KubeConfig | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  const tokenFile = join(dir, "token");
  if (!host || !port || !existsSync(tokenFile)) return undefined;
  const kc = make();
  kc.loadFromClusterAndUser(
    { name: "in-cluster", server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`, caFile: join(dir, "ca.crt"), skipTLSVerify: false },
    // A token file, not the token: the library reads it again every minute, and the kubelet rotates it.
    { name: "service-account", authProvider: { name: "tokenFile", config: { tokenFile } } },
  );
  return kc;
}

function checked(kc: KubeConfig, source: string): KubeConfigChoice {
  const context = kc.getCurrentContext();
  if (!context) throw new Error(`${source}: no current context`);
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server) throw new Error(`${source}: context ${JSON.stringify(context)} has no cluster with a server`);
  const user = kc.getCurrentUser();
  if (!user) throw new Error(`${source}: context ${JSON.stringify(context)} has no user`);
  let url: URL;
  try {
    url = new URL(cluster.server);
  } catch {
    throw new Error(`${source}: the server ${JSON.stringify(cluster.server)} is not a URL`);
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && cluster.skipTLSVerify)) {
    throw new Error(`${source}: the server ${cluster.server} is not https (plain http is allowed only with insecure-skip-tls-verify)`);
  }
  return { kubeConfig: kc, source, server: cluster.server, user: user.name };
}
