// `bootstrap --xds NAME:PORT`: a control plane named by host name. Envoy refuses a STATIC cluster with a
// name ("malformed IP address"), so the bootstrap resolves it by DNS; here a real Envoy reaches the
// control plane as localhost and takes its listeners.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateBootstrap } from "../../envoy/bootstrap.ts";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { startEnvoy, type RunningEnvoy } from "../support/envoy.ts";
import { waitFor } from "../support/net.ts";
import { envoyListeners, SEED_IPS, SEED_NODE_ID, tempRegistryDir } from "../support/control.ts";

let dir: string;
let cp: ControlPlane | undefined;
let envoy: RunningEnvoy | undefined;

test.before(async () => {
  dir = tempRegistryDir();
  writeFileSync(join(dir, "registry.yaml"), `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: remote, namespace: default}
spec:
  hosts: [remote.default.svc.cluster.local]
  ports: [{number: 7070, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.9}]
`);
  cp = await serve({ registry: dir, xdsPort: 0, httpPort: false, log: () => {} });
});

test.after(async () => {
  await envoy?.stop();
  await cp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("an xDS address given by name: the cluster resolves it, and Envoy gets its listeners through it", async () => {
  const bootstrap = generateBootstrap({ nodeId: SEED_NODE_ID, instanceIps: SEED_IPS, xds: { host: "localhost", port: cp!.xds.port } });
  const xds = (bootstrap as any).static_resources.clusters[0];
  assert.is(xds.type, "STRICT_DNS");
  assert.is(xds.dns_lookup_family, "V4_PREFERRED");
  envoy = await startEnvoy(bootstrap);
  const active = await waitFor(async () => (await envoyListeners(envoy!)).get("0.0.0.0_7070")?.state === "active", 10_000);
  assert.ok(active, `no outbound listener from the control plane named localhost; Envoy's log:\n${envoy.log().slice(-2000)}`);
  assert.is(await envoy.stat("control_plane.connected_state"), 1);
});

test("an xDS address by IP keeps a STATIC cluster", () => {
  const bootstrap = generateBootstrap({ nodeId: "n", instanceIps: [], xds: [{ host: "127.0.0.1", port: 15010 }, { host: "::1", port: 15010 }] }) as any;
  assert.is(bootstrap.static_resources.clusters[0].type, "STATIC");
  assert.is(bootstrap.static_resources.clusters[0].dns_lookup_family, undefined);
});

test.run();
