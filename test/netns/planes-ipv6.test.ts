// Planes on the wire over IPv6 (root only): the node's management address fd00:10::63 carries its
// default route, its data address is fd00:75::101, and a data-plane service sits behind a router at
// fd00:20::5. A connection handed to Envoy's virtual listener (PROXY protocol: no ip6tables capture
// needed) for that service arrives from fd00:75::101 with every packet at DSCP 46 (IPV6_TCLASS),
// counted by ip6tables `-m dscp` rules in the server's namespace.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AGENT_SOURCE, NsAgent } from "../../control/cmd/demo/agent.ts";
import { CleanupRegistry } from "../../control/cmd/demo/cleanup.ts";
import type { SpawnedProcess } from "../../control/cmd/demo/netns.ts";
import { setprivAs } from "../../control/cmd/demo/runner.ts";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { resolveEnvoy } from "../../envoy/resolve.ts";
import { createHosts, type Hosts } from "../support/hosts.ts";
import { netnsUnavailableReason } from "../support/netns.ts";
import { waitFor } from "../support/net.ts";
import { whenAvailable } from "../support/available.ts";

const CLI = join(PROJECT_ROOT, "dist", "multiplane.js");
const NODE = { mgmt: "fd00:10::63", data: "fd00:75::101", id: "sidecar~fd00:10::63~app-1.default~default.svc.cluster.local" };
const SERVER = "fd00:20::5";
const PLANES = `planes:
- name: data
  cidrs: ["fd00:75::/64", "fd00:20::/64"]
  dscp: 46
  bindSource: true
- name: management
  cidrs: ["fd00:10::/64"]
`;
const REGISTRY = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: media6, namespace: default}
spec:
  hosts: [media6.example]
  ports: [{number: 9000, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: "${SERVER}"}]
`;

/** Runs in the node: one HTTP request through the virtual listener, claiming the original destination. */
const PROXIED_GET = String.raw`
const net = require("node:net");
const s = net.connect({ host: "127.0.0.1", port: 15001 }, () => s.write("PROXY TCP6 fd00:10::63 ${SERVER} 40000 9000\r\nGET / HTTP/1.1\r\nhost: media6.example\r\nconnection: close\r\n\r\n"));
let got = "";
s.on("data", (d) => { got += d; });
s.on("close", () => { process.stdout.write(got); process.exit(0); });
s.on("error", (e) => { process.stdout.write("error " + e.code); process.exit(0); });
setTimeout(() => { process.stdout.write("timeout " + got); process.exit(0); }, 5000);
`;

whenAvailable(netnsUnavailableReason(), "planes over IPv6 in network namespaces", (test) => {
  let cleanup: CleanupRegistry;
  let hosts: Hosts;
  let dir: string;
  let cp: SpawnedProcess;
  let envoy: SpawnedProcess;
  const agents = {} as Record<"node" | "dsrv", NsAgent>;
  const context = () => `\ncontrol plane:\n${cp?.output().slice(-2000)}\nenvoy:\n${envoy?.output().slice(-2000)}`;

  test.before(async () => {
    cleanup = new CleanupRegistry();
    dir = mkdtempSync(join(tmpdir(), "multiplane-planes6-"));
    chmodSync(dir, 0o755);
    cleanup.add(() => rmSync(dir, { recursive: true, force: true }));
    hosts = createHosts(cleanup, [
      { name: "rt", interfaces: { mgmt: "fd00:10::1/64", data: "fd00:75::1/64", far: "fd00:20::1/64" } },
      { name: "node", interfaces: { mgmt: `${NODE.mgmt}/64`, data: `${NODE.data}/64` } },
      { name: "dsrv", interfaces: { far: `${SERVER}/64` } },
    ]);
    hosts.exec("rt", "sysctl", ["-qw", "net.ipv6.conf.all.forwarding=1"]);
    // Duplicate address detection holds new addresses back for a moment: wait until none is tentative.
    for (const h of ["rt", "node", "dsrv"]) {
      assert.ok(await waitFor(() => hosts.exec(h, "ip", ["-6", "addr", "show", "tentative"]).trim() === "", 10000), `${h}: addresses still tentative`);
    }
    hosts.exec("node", "ip", ["-6", "route", "add", "default", "via", "fd00:10::1"]);
    hosts.exec("dsrv", "ip", ["-6", "route", "add", "default", "via", "fd00:20::1"]);
    hosts.exec("dsrv", "ip6tables", ["-w", "-A", "INPUT", "-p", "tcp", "--dport", "9000", "-m", "dscp", "--dscp", "46"]);
    hosts.exec("dsrv", "ip6tables", ["-w", "-A", "INPUT", "-p", "tcp", "--dport", "9000", "-m", "dscp", "!", "--dscp", "46"]);
    for (const h of ["node", "dsrv"] as const) agents[h] = new NsAgent(hosts.spawn(h, process.execPath, ["-e", AGENT_SOURCE], { label: `agent ${h}` }));
    await agents.dsrv.httpServer("::", 9000, "media from {peer}\n");

    writeFileSync(join(dir, "registry.yaml"), REGISTRY);
    writeFileSync(join(dir, "planes.yaml"), PLANES);
    cp = hosts.spawn("node", process.execPath, [CLI, "serve", "--registry", join(dir, "registry.yaml"), "--planes", join(dir, "planes.yaml"),
      "--virtual-listener", "127.0.0.1:15001", "--virtual-handoff", "proxy_protocol"], { label: "control plane" });
    assert.ok(await waitFor(async () => cp.exited() || (await agents.node.request("http://127.0.0.1:15014/readyz")).status === 200, 20000) && !cp.exited(), `control plane did not start${context()}`);
    const out = join(dir, "envoy.json");
    hosts.exec("node", process.execPath, [CLI, "bootstrap", "--xds", "127.0.0.1:15010", "--node-id", NODE.id, "--instance-ips", "auto", "--out", out]);
    chmodSync(out, 0o644);
    envoy = hosts.spawn("node", "setpriv", [...setprivAs(), resolveEnvoy().path, "-c", out, "--concurrency", "1", "-l", "warning", "--disable-hot-restart", "--use-dynamic-base-id"], { label: "envoy" });
    const active = async () => {
      const r = await agents.node.request("http://127.0.0.1:15000/config_dump?resource=dynamic_listeners", { timeoutMs: 3000 });
      return r.status === 200 && (JSON.parse(r.body!).configs ?? []).some((l: any) => l.name === "0.0.0.0_9000" && l.active_state);
    };
    assert.ok(await waitFor(active, 30000, 200), `listener 0.0.0.0_9000 not active${context()}`);
  });

  test.after(async () => {
    await Promise.all(Object.values(agents).map((a) => a.stop().catch(() => {})));
    await hosts?.destroy();
    cleanup?.close();
  });

  test("the kernel alone would reach the server from the management address", () => {
    assert.match(hosts.exec("node", "ip", ["-6", "route", "get", SERVER]), `src ${NODE.mgmt}`);
  });

  test("an IPv6 data-plane connection leaves from fd00:75::101, every packet at DSCP 46", () => {
    const reply = hosts.exec("node", process.execPath, ["-e", PROXIED_GET], { timeoutMs: 10000 });
    assert.match(reply, /^HTTP\/1\.1 200/, `${reply}${context()}`);
    assert.match(reply, `media from ${NODE.data}\n`);
    const counts = hosts.exec("dsrv", "ip6tables", ["-w", "-L", "INPUT", "-v", "-n", "-x"]).split("\n").filter((l) => l.includes("dpt:9000")).map((l) => Number(l.trim().split(/\s+/)[0]));
    assert.ok((counts[0] ?? 0) >= 3, `packets with DSCP 46: ${counts[0]}`);
    assert.is(counts[1], 0, "packets without DSCP 46");
  });
});

test.run();
