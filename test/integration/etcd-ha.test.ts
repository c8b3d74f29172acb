// High availability, for real: a 3-member etcd cluster, two control-plane replicas (processes of the
// multiplane bin) on it, and two Envoys (one SotW, one delta) whose bootstraps name both replicas.
// Replicas serve byte-identical resources; a write on one replica reaches an Envoy on the other
// (in well under a second: the time is reported, not asserted); kill -9 of a replica: its Envoys
// reconnect to the other (time reported) without a single config update; one etcd member down (each
// in turn): nothing changes and no write is refused; all of etcd down: the last good registry keeps
// serving and readiness says why, then everything catches up; everything restarted: no acknowledged
// write is lost.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateBootstrap } from "../../envoy/bootstrap.ts";
import { etcdClient } from "../../control/registry/sources/etcd/etcd-client.ts";
import { adsClient, node } from "../support/ads-client.ts";
import { startEnvoy, type RunningEnvoy } from "../support/envoy.ts";
import { whenAvailable } from "../support/available.ts";
import { etcdUnavailableReason, startEtcdCluster, type EtcdCluster } from "../support/etcd.ts";
import { freePort, startEcho, waitFor, type EchoServer } from "../support/net.ts";
import { replica, type Replica } from "../support/replica.ts";
import { envoyClusterNames, throughVirtual } from "../support/control.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";

const TOKEN = "ha-token";
const PREFIX = "ha";
const se = (name: string, ip: string, port: number) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${name}.ha.example]
  ports: [{number: ${port}, name: tcp}]
  resolution: STATIC
  endpoints: [{address: ${ip}}]
`;
const cluster = (name: string, port: number) => `outbound|${port}||${name}.ha.example`;

/** Counters that move when Envoy accepts an update or changes a listener or cluster. */
const CHURN = [
  "listener_manager.lds.update_success", "cluster_manager.cds.update_success",
  "listener_manager.listener_added", "listener_manager.listener_modified", "listener_manager.listener_removed",
  "cluster_manager.cluster_added", "cluster_manager.cluster_modified", "cluster_manager.cluster_removed",
];
const churn = async (e: RunningEnvoy) => {
  const stats = await e.stats();
  return Object.fromEntries(CHURN.map((n) => [n, stats.get(n) ?? 0]));
};

whenAvailable(etcdUnavailableReason(), "HA: two replicas on a 3-member etcd, real Envoys", (test) => {
  let etcd: EtcdCluster;
  let dir: string;
  let echo: EchoServer;
  let vport: number;
  const replicas: Replica[] = [];
  const envoys: { id: string; envoy: RunningEnvoy; delta: boolean }[] = [];
  /** Every write a replica acknowledged: name -> the ETag and address of the last one. */
  const acked = new Map<string, { etag: string; ip: string; port: number }>();
  let nextPort = 20000;

  const put = async (r: Replica, name: string, ip: string, port = acked.get(name)?.port ?? nextPort++) => {
    const res = await r.call(`/registry/serviceentries/default/${name}`, { method: "PUT", body: se(name, ip, port) });
    if (res.status === 200) acked.set(name, { etag: res.headers.get("etag")!, ip, port });
    return res;
  };
  const ready = (r: Replica) => waitFor(async () => (await fetch(`${r.httpUrl}/readyz`).catch(() => undefined))?.status === 200, 15000);
  const hasCluster = async (e: RunningEnvoy, name: string) => (await envoyClusterNames(e)).includes(cluster(name, acked.get(name)!.port));
  /** The replica an Envoy's stream is on, by the replicas' own /debug/proxies. */
  const replicaOf = async (id: string) => {
    for (const r of replicas) if ((await r.proxies()).includes(id)) return r;
    return undefined;
  };
  const served = async () => {
    const outs = await Promise.all(Array.from({ length: 4 }, (_, i) => throughVirtual(vport, "127.0.0.1", echo.port, `ping-${i}`)));
    return outs.every((o, i) => o === `ping-${i}`);
  };

  test.before(async () => {
    dir = mkdtempSync(join(tmpdir(), "mp-ha-"));
    writeFileSync(join(dir, "token"), TOKEN);
    echo = await startEcho("127.0.0.1");
    vport = await freePort();
    etcd = await startEtcdCluster(3);
    const client = etcdClient(etcd.endpoints);
    await client.put(`${PREFIX}/ServiceEntry/default/echo`).value(se("echo", "127.0.0.1", echo.port));
    client.close();
    acked.set("echo", { etag: "", ip: "127.0.0.1", port: echo.port });
    for (const name of ["a", "b"]) {
      const r = await replica(name, {
        registry: etcd.url(PREFIX), tokenFile: join(dir, "token"), token: TOKEN,
        extraArgs: ["--virtual-listener", `127.0.0.1:${vport}`, "--virtual-handoff", "proxy_protocol"],
      });
      replicas.push(r);
      await r.start();
      assert.ok(await ready(r), `replica ${name} ready`);
    }
    const [a, b] = replicas as [Replica, Replica];
    for (const [i, delta] of [[1, false], [2, true]] as const) {
      const id = `sidecar~127.0.0.1${i}~e${i}.default~default.svc.cluster.local`;
      const bootstrap: Record<string, any> = generateBootstrap({
        nodeId: id, instanceIps: [`127.0.0.1${i}`],
        xds: (i === 1 ? [a, b] : [b, a]).map((r) => ({ host: "127.0.0.1", port: r.xdsPort })),
      });
      if (delta) bootstrap.dynamic_resources.ads_config.api_type = "DELTA_GRPC";
      envoys.push({ id, envoy: await startEnvoy(bootstrap), delta });
    }
    for (const e of envoys) assert.ok(await waitFor(() => hasCluster(e.envoy, "echo"), 10000), `${e.id} configured`);
    assert.ok(await waitFor(served, 5000), "traffic flows through the Envoys");
  });

  test.after(async () => {
    await Promise.all(envoys.map((e) => e.envoy.stop()));
    await Promise.all(replicas.map((r) => r.kill()));
    await etcd?.close();
    await echo?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("for the same registry revision both replicas serve byte-identical resources with identical versions", async () => {
    const fetchAll = (r: Replica) => new Promise<Map<string, { version: string; resources: Buffer[] }>>((resolve, reject) => {
      const client = adsClient(`127.0.0.1:${r.xdsPort}`);
      const stream = client.StreamAggregatedResources();
      const got = new Map<string, { version: string; resources: Buffer[] }>();
      const types = [TYPE_URL.listener, TYPE_URL.cluster, TYPE_URL.endpoint, TYPE_URL.extensionConfig];
      const timer = setTimeout(() => { stream.cancel(); client.close(); reject(new Error(`no response from ${r.name}`)); }, 5000);
      stream.on("data", (res: any) => {
        got.set(res.type_url, { version: res.version_info, resources: res.resources.map((x: any) => Buffer.from(x.value)) });
        if (types.every((t) => got.has(t))) { clearTimeout(timer); stream.cancel(); client.close(); resolve(got); }
      });
      stream.on("error", () => {});
      for (const type_url of types) stream.write({ node: node("sidecar~127.0.0.21~probe.default~default.svc.cluster.local", "127.0.0.21"), type_url, resource_names: [] });
    });
    const [fromA, fromB] = await Promise.all(replicas.map(fetchAll));
    for (const type of [TYPE_URL.listener, TYPE_URL.cluster, TYPE_URL.endpoint, TYPE_URL.extensionConfig]) {
      assert.is(fromA!.get(type)!.version, fromB!.get(type)!.version, `${type}: same version`);
      assert.ok(fromA!.get(type)!.resources.length > 0);
      assert.equal(fromA!.get(type)!.resources.map((b) => b.toString("base64")), fromB!.get(type)!.resources.map((b) => b.toString("base64")), `${type}: same bytes`);
    }
  });

  test("a PUT on one replica reaches an Envoy connected to the other", async () => {
    for (const [i, e] of envoys.entries()) {
      const home = await replicaOf(e.id);
      assert.ok(home, `${e.id} is connected`);
      const other = replicas.find((r) => r !== home)!;
      const t0 = performance.now();
      const res = await put(other, `cross-${i}`, "127.0.0.30");
      assert.is(res.status, 200, await res.clone().text());
      assert.ok(await waitFor(() => hasCluster(e.envoy, `cross-${i}`), 5000, 10), `${e.id} got the write made on ${other.name}`);
      console.log(`  PUT on replica ${other.name} -> ${e.delta ? "delta" : "SotW"} Envoy on replica ${home.name}: ${(performance.now() - t0).toFixed(0)} ms`);
    }
  });

  test("kill -9 of a replica, twice: its Envoys (SotW and delta) reconnect to the other, keep serving, and receive no update at all", async () => {
    // Round 1 moves the Envoys of one replica; round 2 kills the survivor, which then holds both.
    for (const [round, name] of ["after-failover-1", "after-failover-2"].entries()) {
      const victim = (await replicaOf(envoys[round]!.id))!;
      const survivor = replicas.find((r) => r !== victim)!;
      const moving: typeof envoys = [];
      for (const e of envoys) if ((await replicaOf(e.id)) === victim) moving.push(e);
      const before = await Promise.all(envoys.map((e) => churn(e.envoy)));
      const t0 = performance.now();
      await victim.kill("SIGKILL");
      for (const e of moving) {
        assert.ok(await waitFor(async () => (await survivor.proxies()).includes(e.id), 10000, 10), `${e.id} reconnected to ${survivor.name}`);
        console.log(`  kill -9 of replica ${victim.name}: ${e.delta ? "delta" : "SotW"} Envoy reconnected to ${survivor.name} after ${(performance.now() - t0).toFixed(0)} ms`);
      }
      assert.ok(await served(), "the Envoys keep serving");
      // The survivor knows what the moved Envoys hold, though it sent them nothing.
      const acked = async () => {
        const ps = (await (await fetch(`${survivor.httpUrl}/debug/proxies`)).json()).proxies as { id: string; types: Record<string, { state: string }> }[];
        return moving.every((e) => ["lds", "cds", "eds", "ecds"].every((t) => ps.find((p) => p.id === e.id)?.types[t]?.state === "ACK"));
      };
      assert.ok(await waitFor(acked, 5000), `${survivor.name}'s /debug/proxies shows every type of the moved Envoys ACKed`);
      // A write after the failover is pushed after anything the re-opened streams were sent, so once the
      // Envoys have it, their counters show everything they received: that write and nothing else.
      const res = await put(survivor, name, "127.0.0.31");
      assert.is(res.status, 200, await res.clone().text());
      for (const e of envoys) assert.ok(await waitFor(() => hasCluster(e.envoy, name), 5000), `${e.id} gets writes after the failover`);
      const after = await Promise.all(envoys.map((e) => churn(e.envoy)));
      const onlyTheWrite = before.map((b) => ({
        ...b,
        "listener_manager.lds.update_success": b["listener_manager.lds.update_success"]! + 1, "listener_manager.listener_added": b["listener_manager.listener_added"]! + 1,
        "cluster_manager.cds.update_success": b["cluster_manager.cds.update_success"]! + 1, "cluster_manager.cluster_added": b["cluster_manager.cluster_added"]! + 1,
      }));
      assert.equal(after, onlyTheWrite, `the failover itself changed nothing in Envoy; ${survivor.name} logged:\n${survivor.log().split("\n").filter((l) => /push|connect/.test(l)).slice(-12).join("\n")}`);
      await victim.start();
      assert.ok(await ready(victim));
    }
  });

  test("each etcd member of three stopped in turn: replicas stay ready, every write succeeds, Envoys see only those writes", async () => {
    // Whatever member a replica's watch is on, one of the rounds kills it (a watch that never moved sits
    // on one member, and its round comes): writes right after that kill land while the watch moves.
    const versions = async () => Promise.all(replicas.map(async (r) => (await (await fetch(`${r.httpUrl}/debug/registry`)).json()).status.version as number));
    const v0 = await versions();
    let writes = 0;
    for (const member of etcd.members) {
      await member.stop("SIGKILL");
      for (let k = 0; k < 3; k++) {
        for (const [i, r] of replicas.entries()) {
          const res = await put(r, `member-down-${i}`, `127.0.0.${40 + writes++}`);
          assert.is(res.status, 200, await res.clone().text());
        }
      }
      for (const r of replicas) assert.ok(await ready(r), `replica ${r.name} ready`);
      await member.start();
    }
    for (const e of envoys) for (const i of [0, 1]) assert.ok(await waitFor(() => hasCluster(e.envoy, `member-down-${i}`), 2000));
    assert.equal(await versions(), v0.map((v) => v + writes), `${writes} writes, as many registry versions: nothing else changed`);
  });

  test("all of etcd stopped: the last good registry keeps serving, /readyz and writes say why; etcd back: everyone catches up", async () => {
    await etcd.stopAll("SIGKILL");
    for (const r of replicas) {
      const reason = await waitFor(async () => {
        const res = await fetch(`${r.httpUrl}/readyz`);
        return res.status === 503 ? res.text() : "";
      }, 10000);
      assert.match(reason, /etcd .* unreachable since .*writes are refused; the registry at etcd revision \d+ keeps serving/, `replica ${r.name}`);
      const res = await put(r, "while-down", "127.0.0.33");
      assert.is(res.status, 503);
    }
    acked.delete("while-down");
    assert.ok(await served(), "the Envoys keep serving");
    for (const e of envoys) assert.ok(await hasCluster(e.envoy, "echo"));
    await etcd.startAll();
    const client = etcdClient(etcd.endpoints);
    await client.put(`${PREFIX}/ServiceEntry/default/while-away`).value(se("while-away", "127.0.0.34", 19999));
    client.close();
    acked.set("while-away", { etag: "", ip: "127.0.0.34", port: 19999 });
    for (const r of replicas) assert.ok(await ready(r), `replica ${r.name} ready again`);
    for (const e of envoys) assert.ok(await waitFor(() => hasCluster(e.envoy, "while-away"), 5000), `${e.id} caught up`);
  });

  test("everything restarted (kill -9 right after the last acknowledged write): no acknowledged write is lost", async () => {
    const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => put(replicas[i % 2]!, `burst-${i}`, `127.0.1.${i + 1}`)));
    assert.equal(burst.map((r) => r.status), burst.map(() => 200));
    // The same keys again, conditionally: the ETags acknowledged above are the ones etcd holds.
    const bump = await put(replicas[0]!, "burst-0", "127.0.2.1");
    assert.is(bump.status, 200);
    await Promise.all([...replicas.map((r) => r.kill("SIGKILL")), etcd.stopAll("SIGKILL")]);
    await etcd.startAll();
    for (const r of replicas) await r.start();
    for (const r of replicas) assert.ok(await ready(r), `replica ${r.name} ready after the restart`);
    for (const r of replicas) {
      for (const [name, w] of acked) {
        const res = await r.call(`/registry/serviceentries/default/${name}`);
        assert.is(res.status, 200, `${name} on ${r.name}`);
        const body = await res.json();
        assert.is(body.spec.endpoints[0].address, w.ip, `${name} on ${r.name}`);
        if (w.etag) assert.is(res.headers.get("etag"), w.etag, `${name} on ${r.name}: the acknowledged version`);
      }
    }
    const missing = async (e: RunningEnvoy) => {
      const names = await envoyClusterNames(e);
      return [...acked].filter(([name, w]) => !names.includes(cluster(name, w.port))).map(([name]) => name);
    };
    for (const e of envoys) {
      if (await waitFor(async () => (await missing(e.envoy)).length === 0, 10000)) continue;
      // What each replica believes the Envoy holds, and what it logged about it, to tell which side lost track.
      const views = await Promise.all(replicas.map(async (r) => ({ replica: r.name, proxies: (await (await fetch(`${r.httpUrl}/debug/proxies`)).json()).proxies.filter((p: any) => p.id === e.id) })));
      const logs = replicas.map((r) => `${r.name}:\n${r.log().split("\n").filter((l) => l.includes(e.id)).slice(-20).join("\n")}`);
      assert.unreachable(`${e.id} lacks acknowledged writes ${(await missing(e.envoy)).join(",")}\n${JSON.stringify(views)}\n${logs.join("\n")}`);
    }
    assert.ok(await served(), "and serves");
  });
});

test.run();
