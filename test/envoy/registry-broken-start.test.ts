// A control plane (re)started on a registry file that does not parse, or on a path that does not
// exist, serves nothing until the registry loads: a real Envoy that connects keeps what it has (here:
// nothing) instead of being handed an empty configuration, /readyz says why, and the first good load
// reaches it.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { startEnvoy, type RunningEnvoy } from "../support/envoy.ts";
import { waitFor } from "../support/net.ts";
import { envoyListeners, sidecarBootstrap, tempRegistryDir } from "../support/control.ts";

const GOOD = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: remote, namespace: default}
spec:
  hosts: [remote.default.svc.cluster.local]
  ports: [{number: 7071, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.9}]
`;

async function case_(name: string, prepare: (dir: string) => string, fix: (dir: string) => void): Promise<void> {
  const dir = tempRegistryDir();
  const logs: string[] = [];
  let cp: ControlPlane | undefined;
  let envoy: RunningEnvoy | undefined;
  try {
    cp = await serve({ registry: prepare(dir), xdsPort: 0, httpPort: false, log: (l) => logs.push(l) });
    envoy = await startEnvoy(sidecarBootstrap(cp.xds.port));
    assert.ok(await waitFor(() => cp!.view.proxies().length === 1, 10_000), `${name}: Envoy connected`);
    // Envoy asked; give the control plane every chance to answer before looking.
    assert.ok(await waitFor(async () => (await envoy!.stat("control_plane.connected_state")) === 1, 10_000), `${name}: stream up`);
    const readiness = cp.view.readiness();
    assert.is(readiness.ready, false, name);
    assert.match(readiness.reasons.join("\n"), /registry not loaded/, name);
    assert.is(await envoy.stat("listener_manager.lds.update_success"), 0, `${name}: no LDS update was sent (${logs.join(" | ")})`);
    assert.equal([...(await envoyListeners(envoy)).keys()], [], `${name}: no listener`);
    assert.ok(logs.some((l) => l.startsWith("registry reload rejected, no registry yet: no proxy gets a configuration until it loads:")), `${name}: the log says nothing serves (${logs.join(" | ")})`);
    fix(dir);
    assert.ok(await waitFor(async () => (await envoyListeners(envoy!)).get("0.0.0.0_7071")?.state === "active", 10_000), `${name}: the first good load reaches Envoy (${logs.join(" | ")})`);
    assert.is(cp.view.readiness().ready, true, `${name}: ready once loaded`);
  } finally {
    await envoy?.stop();
    await cp?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

test("a registry file with a syntax error at start: no configuration until it is fixed", async () => {
  await case_("syntax error",
    (dir) => { writeFileSync(join(dir, "registry.yaml"), GOOD.replace("ports: [{", "ports: [{{")); return dir; },
    (dir) => writeFileSync(join(dir, "registry.yaml"), GOOD));
});

test("a registry path that does not exist at start (a typo): no configuration until it appears", async () => {
  await case_("missing path",
    (dir) => join(dir, "registry.yaml"),
    (dir) => writeFileSync(join(dir, "registry.yaml"), GOOD));
});

test.run();
