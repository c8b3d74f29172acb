// A checkout in a private directory (root's home, a `mktemp -d` folder) with Envoy running as another
// user, as a sidecar beside an iptables capture does (uid 1337): Envoy cannot read the module there
// and refuses the guard's configuration, but it can read the copy the control plane sends instead.
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LOOP_GUARD_WASM } from "../../envoy/paths.ts";
import { readableCopy } from "../../control/guard-wasm/readable-copy.ts";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { whenAvailable } from "../support/available.ts";
import { startEnvoy, type RunningEnvoy } from "../support/envoy.ts";
import { waitFor } from "../support/net.ts";
import { sidecarBootstrap, tempRegistryDir } from "../support/control.ts";

const SIDECAR = { uid: 1337, gid: 1337 };
const REGISTRY = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: remote, namespace: default}
spec:
  hosts: [remote.default.svc.cluster.local]
  ports: [{number: 7072, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.9}]
`;

/** The guard's ECDS state for the one proxy: "ACK" or "NACK" with Envoy's error, once Envoy answered. */
async function guardState(wasmPath: string): Promise<{ state: string; error?: string }> {
  const dir = tempRegistryDir({ "registry.yaml": REGISTRY });
  let cp: ControlPlane | undefined;
  let envoy: RunningEnvoy | undefined;
  try {
    cp = await serve({ registry: dir, xdsPort: 0, httpPort: false, loopGuard: { wasmPath }, log: () => {} });
    envoy = await startEnvoy(sidecarBootstrap(cp.xds.port), { user: SIDECAR });
    const answered = await waitFor(() => {
      const ecds = cp!.view.proxies()[0]?.types.ecds;
      return ecds && ecds.state !== "PENDING" ? ecds : undefined;
    }, 15_000);
    assert.ok(answered, `Envoy never answered the guard's configuration; its log:\n${envoy.log().slice(-2000)}`);
    return { state: answered.state, ...(answered.errorDetail ? { error: answered.errorDetail } : {}) };
  } finally {
    await envoy?.stop();
    await cp?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Envoy runs as uid 1337 through setpriv: root and util-linux's setpriv. */
function sidecarUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (Envoy runs as uid 1337)";
  return spawnSync("setpriv", ["--version"]).error ? "setpriv is not installed (Debian: apt-get install -y util-linux)" : undefined;
}

whenAvailable(sidecarUnavailableReason(), "guard module in a private checkout", (test) => {
  let checkout: string;
  let privateModule: string;

  test.before(() => {
    checkout = mkdtempSync(join(tmpdir(), "mp-private-checkout-"));
    chmodSync(checkout, 0o700);
    privateModule = join(checkout, "loop-guard.wasm");
    copyFileSync(LOOP_GUARD_WASM, privateModule);
    chmodSync(privateModule, 0o644);
  });

  test.after(() => rmSync(checkout, { recursive: true, force: true }));

  test("Envoy as uid 1337 cannot read the module in the private checkout: it refuses the guard", async () => {
    const r = await guardState(privateModule);
    assert.is(r.state, "NACK", JSON.stringify(r));
  });

  test("the copy the control plane sends instead: Envoy as uid 1337 takes the guard", async () => {
    const r = await guardState(readableCopy(privateModule));
    assert.is(r.state, "ACK", JSON.stringify(r));
  });

  test.run();
});
