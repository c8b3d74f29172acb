// A real control plane to fuzz: serve() on free ports with a watched registry directory holding one good
// ServiceEntry, an API directory and a token, plus a healthy xDS client (an ADS stream that ACKs every
// push) for a proxy on the good service's endpoint IP. `healthy()` says what, if anything, is wrong after
// an attack: the process answers, the good registry still serves over HTTP and xDS, the client's stream
// is open and up to date, and memory and log output stayed bounded.
import fc from "fast-check";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";
import { retainedBytes } from "./memory.ts";
import { adsClient, node, type AdsClient } from "./ads-client.ts";
import { tempRegistryDir } from "./control.ts";
import { waitFor } from "./net.ts";

export const TOKEN = "fuzz-token";
export const PROXY = "sidecar~10.0.0.1~fuzz-1.default~default.svc.cluster.local";
/** The good service's inbound listener on the proxy: present as long as the good registry serves. */
const GOOD_LISTENER = "10.0.0.1_9080";
/**
 * Memory retained after full collections, over what the plane held at start. Generous: the limits keep
 * one request or reload to tens of MB; this catches unbounded growth. Only checked when the cheap
 * uncollected figure is past it, since a full collection per request would make the fuzzing slow.
 */
const MAX_RETAINED_GROWTH = 200 * 2 ** 20;
/** Per request or reload; a 1 MB body of errors once made megabytes of log. */
export const MAX_LOG_BYTES_PER_EVENT = 64 * 1024;

export const GOOD_ENTRY = JSON.stringify({
  apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: "good", namespace: "default" },
  spec: { hosts: ["good.example"], ports: [{ number: 9080, name: "http" }], resolution: "STATIC", endpoints: [{ address: "10.0.0.1" }] },
});

export interface FuzzPlane {
  cp: ControlPlane;
  registryDir: string;
  /** One request to the HTTP API, no retry. */
  call(path: string, init?: RequestInit): Promise<Response>;
  /** Bytes logged so far. */
  loggedBytes(): number;
  /** Reloads applied, refused and held so far: changes when a registry edit has been read. */
  progress(): string;
  /** undefined when all is well, else what is wrong. */
  healthy(): Promise<string | undefined>;
  stop(): Promise<void>;
}

export async function startFuzzPlane(): Promise<FuzzPlane> {
  const root = tempRegistryDir();
  const registryDir = join(root, "registry");
  mkdirSync(registryDir);
  writeFileSync(join(registryDir, "good.yaml"), GOOD_ENTRY);
  let logged = 0;
  let held = 0;
  const cp = await serve({
    registry: registryDir, apiDir: join(root, "api"), token: TOKEN, xdsPort: 0, httpPort: 0, loopGuard: false,
    log: (line) => {
      logged += line.length + 1;
      if (line.startsWith("registry reload held back")) held++;
    },
  });
  const client: AdsClient = adsClient(`127.0.0.1:${cp.xds.port}`);
  let streamEnded = false;
  const stream = client.StreamAggregatedResources();
  stream.on("error", () => { streamEnded = true; });
  stream.on("end", () => { streamEnded = true; });
  stream.on("data", (r: any) => stream.write({ type_url: r.type_url, version_info: r.version_info, response_nonce: r.nonce }));
  stream.write({ node: node(PROXY), type_url: TYPE_URL.listener });
  const retainedAtStart = retainedBytes();
  const call = (path: string, init: RequestInit = {}) => fetch(`${cp.httpUrl}${path}`, init);
  // Client and server share this process's event loop: after a long parse the server may close an idle
  // kept-alive connection just as the client reuses it ("fetch failed"). Health checks retry once (on a
  // new connection), which tells that race from a server that stopped answering; attacks do not.
  const check = (path: string) => call(path).catch(() => call(path));

  const plane: FuzzPlane = {
    cp, registryDir, call,
    loggedBytes: () => logged,
    progress: () => {
      const s = cp.store.status();
      return `${s.reloads}/${s.rejections}/${held}`;
    },
    async healthy() {
      if (streamEnded) return "the xDS client's stream ended";
      if ((await check("/healthz")).status !== 200) return "/healthz is not 200";
      const entries = (await (await check("/registry/serviceentries")).json()).serviceEntries as any[];
      const good = entries.find((e) => e.name === "good" && e.namespace === "default");
      if (good?.endpoints?.[0]?.address !== "10.0.0.1") return `the good ServiceEntry is not served: ${JSON.stringify(entries.map((e) => e.name))}`;
      const upToDate = await waitFor(() => {
        const p = cp.view.proxies().find((x) => x.id === PROXY);
        return p?.types.lds?.state === "ACK" && (cp.view.configDump(PROXY)?.listeners ?? []).some((l: any) => l.name === GOOD_LISTENER);
      }, 5_000, 10);
      if (!upToDate) return `the xDS client does not hold ${GOOD_LISTENER} ACKed: ${JSON.stringify(cp.view.proxies().find((x) => x.id === PROXY)?.types.lds)}`;
      const uncollected = process.memoryUsage();
      if (uncollected.heapUsed + uncollected.arrayBuffers - retainedAtStart > MAX_RETAINED_GROWTH) {
        const grown = retainedBytes() - retainedAtStart;
        if (grown > MAX_RETAINED_GROWTH) return `memory retained grew ${(grown / 2 ** 20).toFixed(0)} MiB`;
      }
      return undefined;
    },
    async stop() {
      stream.cancel();
      client.close();
      await cp.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
  const first = await waitFor(async () => (await plane.healthy()) === undefined, 10_000);
  if (!first) throw new Error(`the fuzz control plane is not healthy at start: ${await plane.healthy()}`);
  return plane;
}

/**
 * Runs `body` on values of `arbitrary` for about `seconds` (FUZZ_SECONDS overrides), as many as fit, with
 * fast-check's shrinking on failure. Returns how many ran. fast-check stops at the time limit by racing
 * the run in progress; that run is awaited here, so it finishes (and fails, if it does) before the next test.
 */
export async function fuzzFor<T>(seconds: number, arbitrary: fc.Arbitrary<T>, body: (value: T) => Promise<void>): Promise<number> {
  const limit = Number(process.env.FUZZ_SECONDS ?? seconds) * 1000;
  let runs = 0;
  let inFlight: Promise<void> = Promise.resolve();
  await fc.assert(fc.asyncProperty(arbitrary, (value) => {
    runs++;
    inFlight = body(value);
    return inFlight;
  }), { numRuns: 1_000_000, interruptAfterTimeLimit: limit, markInterruptAsFailure: false });
  await inFlight;
  return runs;
}
