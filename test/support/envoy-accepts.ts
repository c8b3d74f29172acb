// One real Envoy behind a test xDS server: hand it generated resources and learn whether it ACKs
// them all (and which listeners it then holds), or what it NACKs.
import type { Test } from "uvu";
import * as assert from "uvu/assert";
import type { Resources } from "../../control/generation/generate.ts";
import { SnapshotCache } from "../../control/xds/cache/cache.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";
import { startXdsServer, type XdsServer } from "../../control/xds/server/grpc-server.ts";
import { envoyListeners, sidecarBootstrap } from "./control.ts";
import { startEnvoy, type RunningEnvoy } from "./envoy.ts";
import { waitFor } from "./net.ts";
import { snapshotOf } from "./snapshot.ts";

export interface Verdict {
  nacks: string[];
  /** Every wanted type ACKed at the pushed version. */
  acked: boolean;
  /** Listener names Envoy holds (active or warming) afterwards. */
  listeners: string[];
}

export interface EnvoyJudge {
  envoy: RunningEnvoy;
  judge(resources: Resources): Promise<Verdict>;
  stop(): Promise<void>;
}

const NODE_ID = "envoy-judge";

/** The types Envoy must ACK at the pushed version for `resources` to count as accepted whole. */
export function wantedTypes(resources: Resources): string[] {
  return [
    TYPE_URL.listener, TYPE_URL.cluster,
    ...(resources.endpoints.length > 0 ? [TYPE_URL.endpoint] : []),
    ...(resources.routes.length > 0 ? [TYPE_URL.route] : []),
    ...(resources.extensionConfigs.length > 0 ? [TYPE_URL.extensionConfig] : []),
  ];
}

/**
 * Points Envoy's DNS resolver (DNS clusters, the dynamic forward proxy) at a closed port on loopback:
 * generated DNS clusters are resolved, but no query ever leaves the machine.
 */
export function withLoopbackDns(bootstrap: Record<string, any>): Record<string, any> {
  return {
    ...bootstrap,
    typed_dns_resolver_config: {
      name: "envoy.network.dns_resolver.cares",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig",
        resolvers: [{ socket_address: { address: "127.0.0.1", port_value: 9 } }],
        dns_resolver_options: { no_default_search_domain: true },
      },
    },
  };
}

export async function startEnvoyJudge(): Promise<EnvoyJudge> {
  const cache = new SnapshotCache();
  const acked = new Map<string, string>();
  const nacks: string[] = [];
  let streamId: number | undefined; // snapshots are per stream: Envoy's one ADS stream
  const xds: XdsServer = await startXdsServer({
    host: "127.0.0.1", port: 0, cache,
    callbacks: { onStreamOpen: (info) => { streamId = info.streamId; }, onAck: (a) => acked.set(a.typeUrl, a.version), onNack: (n) => nacks.push(`${n.typeUrl}: ${n.errorDetail}`) },
  });
  let envoy: RunningEnvoy;
  try {
    envoy = await startEnvoy(withLoopbackDns(sidecarBootstrap(xds.port, { nodeId: NODE_ID, instanceIps: [] })), { extraArgs: ["--drain-time-s", "0"] });
  } catch (err) {
    await xds.stop();
    throw err;
  }
  return {
    envoy,
    async judge(resources) {
      const snapshot = snapshotOf(resources);
      nacks.length = 0;
      if (!(await waitFor(() => streamId !== undefined, 10000))) throw new Error("Envoy opened no ADS stream");
      cache.set(streamId!, snapshot);
      const wanted = wantedTypes(resources);
      const done = await waitFor(() => nacks.length > 0 || wanted.every((t) => acked.get(t) === snapshot.get(t)!.version), 10000, 5);
      return { nacks: [...nacks], acked: Boolean(done) && nacks.length === 0, listeners: [...(await envoyListeners(envoy)).keys()].sort() };
    },
    async stop() {
      await envoy.stop();
      await xds.stop();
    },
  };
}

/**
 * For a test file that generates configurations and wants each one judged by a real Envoy: starts the
 * judge before the file's tests and stops it after; `record` keeps a configuration (and returns it), and
 * `assertAllAccepted` (the file's last test) pushes each to Envoy and asserts it is ACKed whole.
 */
export function envoyJudgedFile(test: Test) {
  let judge: EnvoyJudge | undefined;
  const recorded: [string, Resources][] = [];
  test.before(async () => { judge = await startEnvoyJudge(); });
  test.after(async () => { await judge?.stop(); });
  return {
    record(what: string, resources: Resources): Resources {
      recorded.push([what, resources]);
      return resources;
    },
    async assertAllAccepted(minimum: number): Promise<void> {
      assert.ok(recorded.length >= minimum, `${recorded.length} generated`);
      for (const [what, resources] of recorded) {
        const v = await judge!.judge(resources);
        assert.equal(v.nacks, [], `${what}: Envoy NACKed`);
        assert.ok(v.acked, `${what}: no ACK`);
        assert.equal(v.listeners, resources.listeners.map((l) => l.name!).sort(), `${what}: listeners Envoy holds`);
      }
    },
  };
}
