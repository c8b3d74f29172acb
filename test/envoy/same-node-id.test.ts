// Config is per stream, not per node id (plaintext xDS, no certificates): a second Envoy that claims
// another's node id, with its own INSTANCE_IPS or with none (started by mistake with
// `--instance-ips none`), gets its own config. The first Envoy's inbound listener and the node IPs its
// loop guard was told stay exactly as they were, while the second is connected and after it is gone;
// /debug/proxies shows both streams under the one id with a warning, and the log says so.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync } from "node:fs";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { startEnvoy, type RunningEnvoy } from "../support/envoy.ts";
import { freePort, waitFor } from "../support/net.ts";
import { envoyListeners, SEED_IPS, SEED_NODE_ID, sidecarBootstrap, tempRegistryDir } from "../support/control.ts";

const REGISTRY = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: service-a, namespace: default}
spec:
  hosts: [service-a.default.svc.cluster.local]
  ports: [{number: 9080, name: http}]
  resolution: STATIC
  endpoints: [{address: 10.75.8.101}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: service-b, namespace: default}
spec:
  hosts: [service-b.default.svc.cluster.local]
  ports: [{number: 9081, name: http}]
  resolution: STATIC
  endpoints: [{address: 10.75.8.102}]
`;

let dir: string;
let cp: ControlPlane;
let victim: RunningEnvoy;
const logs: string[] = [];

/** The node IPs the loop guard in this Envoy was configured with (from its ECDS config). */
async function guardNodeIps(envoy: RunningEnvoy): Promise<string[] | undefined> {
  const dump = await envoy.configDump("ecds_filters");
  const cfg = dump.configs?.[0]?.ecds_filter?.typed_config?.config?.configuration?.value;
  return cfg ? JSON.parse(cfg).node_ips : undefined;
}

const acked = (streams: number) => waitFor(() => {
  const p = cp.view.proxies().find((x) => x.id === SEED_NODE_ID);
  return p?.connections?.length === streams && p.connections.every((c) => ["lds", "cds", "ecds"].every((t) => c.types[t]?.state === "ACK"));
}, 10000);

test.before(async () => {
  dir = tempRegistryDir({ "services.yaml": REGISTRY });
  const vport = await freePort();
  cp = await serve({ registry: dir, xdsPort: 0, httpPort: 0, virtualListener: { address: "127.0.0.1", port: vport, handoff: "proxy_protocol" }, log: (l) => logs.push(l) });
  victim = await startEnvoy(sidecarBootstrap(cp.xds.port));
  assert.ok(await acked(1), `victim not ACKed: ${JSON.stringify(cp.view.proxies())}\n${logs.join("\n")}`);
});

test.after(async () => {
  await victim?.stop();
  await cp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

for (const [label, instanceIps] of [["its own INSTANCE_IPS (a remote service's IP)", ["10.75.8.102"]], ["--instance-ips none", []]] as const) {
  test(`a second Envoy with the same node id and ${label} changes nothing of the first's config`, async () => {
    const before = { listeners: [...(await envoyListeners(victim)).keys()].sort(), guard: await guardNodeIps(victim) };
    assert.ok(before.listeners.includes("10.75.8.101_9080"), before.listeners.join(","));
    assert.equal(before.guard, SEED_IPS);
    const victimLds = () => cp.view.proxies()[0]!.connections![0]!.types.lds!.sentVersion;
    const ldsBefore = victimLds();

    const second = await startEnvoy(sidecarBootstrap(cp.xds.port, { instanceIps: [...instanceIps] }));
    try {
      assert.ok(await acked(2), `second not ACKed: ${JSON.stringify(cp.view.proxies())}\n${second.log().slice(-2000)}`);
      const [p] = cp.view.proxies();
      assert.is(cp.view.proxies().length, 1, "one node id");
      assert.is(p!.connections!.length, 2);
      assert.equal(p!.connections![1]!.nodeIps, ["192.168.10.63", ...instanceIps]);
      assert.is(p!.warnings!.length, 1, JSON.stringify(p!.warnings));
      assert.match(p!.warnings![0]!, /another stream claims node id .* node IPs .* differ from stream \d+'s 192\.168\.10\.63,10\.75\.8\.101; each stream gets its own config/);
      assert.ok(logs.some((l) => /^warning: stream=\d+: another stream claims node id/.test(l)), logs.join("\n"));
      // The second Envoy got the config for what it claims ...
      const secondListeners = [...(await envoyListeners(second)).keys()];
      assert.is(secondListeners.includes("10.75.8.102_9081"), instanceIps.length > 0, secondListeners.join(","));
      assert.not.ok(secondListeners.includes("10.75.8.101_9080"));
      assert.equal(await guardNodeIps(second), ["192.168.10.63", ...instanceIps]);
      // ... and the first still holds its own: no push reached it.
      assert.equal([...(await envoyListeners(victim)).keys()].sort(), before.listeners);
      assert.equal(await guardNodeIps(victim), SEED_IPS);
      assert.is(victimLds(), ldsBefore, "nothing was pushed to the first Envoy");
    } finally {
      await second.stop();
    }
    // Gone: nothing of it is left and nothing had to be restored.
    assert.ok(await waitFor(() => cp.view.proxies()[0]?.connections?.length === 1, 5000));
    assert.equal(cp.view.proxies()[0]!.warnings, []);
    assert.equal([...(await envoyListeners(victim)).keys()].sort(), before.listeners);
    assert.equal(await guardNodeIps(victim), SEED_IPS);
    assert.is(victimLds(), ldsBefore);
  });
}

test.run();
