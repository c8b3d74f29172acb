// The etcd registry against real etcd: values read, watched and validated like files (errors name
// the key); the watch resuming after a disconnect and listing again after a compaction; writes as
// compare-and-swap with ETag / If-Match over the HTTP API, from two replicas at once; etcd down:
// the last good registry serves, writes and readiness say why, and everything catches up after.
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { Etcd3 } from "etcd3";
import { parseEtcdUrl } from "../../control/registry/sources/etcd/etcd-layout.ts";
import { etcdClient } from "../../control/registry/sources/etcd/etcd-client.ts";
import { EtcdSource } from "../../control/registry/sources/etcd/etcd-source.ts";
import { RegistryStore } from "../../control/registry/store.ts";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { whenAvailable } from "../support/available.ts";
import { etcdUnavailableReason, startEtcdCluster, type EtcdCluster } from "../support/etcd.ts";
import { waitFor } from "../support/net.ts";
import { adsClient, node } from "../support/ads-client.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";

const TOKEN = "etcd-test-token";
const entry = (name: string, ip: string, port = 9080) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${name}.example]
  ports: [{number: ${port}, name: http, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: ${ip}}]
`;
const key = (prefix: string, name: string) => `${prefix}/ServiceEntry/default/${name}`;
const addresses = (store: RegistryStore) => store.registry.services.map((s) => `${s.host}=${s.endpoints.map((e) => e.address).join(",")}`);

whenAvailable(etcdUnavailableReason(), "etcd registry", (test) => {
  let one: EtcdCluster;
  let client: Etcd3;
  test.before(async () => {
    one = await startEtcdCluster(1);
    client = etcdClient(one.endpoints);
  });
  test.after(async () => {
    client?.close();
    await one?.close();
  });

  test("values are read and watched; a bad value is refused naming its key and the last good registry keeps serving", async () => {
    const prefix = "read";
    await client.put(key(prefix, "a")).value(entry("a", "10.0.0.1"));
    await client.put(`${prefix}/Unrelated/x`).value("whatever");
    const rejected: string[][] = [];
    const warned: string[][] = [];
    const store = new RegistryStore([new EtcdSource(parseEtcdUrl(one.url(prefix)))], { rejected: (_s, e) => rejected.push(e), warned: (_s, w) => warned.push(w) });
    try {
      await store.start();
      assert.ok(store.status().loaded);
      assert.equal(addresses(store), ["a.example=10.0.0.1"]);
      assert.equal(warned[0], [`${prefix}/Unrelated/x:0: not ${prefix}/<ServiceEntry|WorkloadEntry|Sidecar>/<namespace>/<name>; ignored`]);

      await client.put(key(prefix, "b")).value(entry("b", "10.0.0.2"));
      assert.ok(await waitFor(() => addresses(store).length === 2, 2000), "a new key is served");
      const good = store.registry;
      await client.put(key(prefix, "b")).value(entry("b", "10.0.0.999"));
      assert.ok(await waitFor(() => rejected.length > 0, 2000));
      assert.equal(rejected.at(-1), [`${key(prefix, "b")}:8:16: spec.endpoints[0].address: "10.0.0.999" is not an IPv4 or IPv6 address (resolution STATIC needs IP addresses)`]);
      assert.is(store.registry, good, "the last good registry keeps serving");
      await client.put(key(prefix, "c")).value(entry("c", "10.0.0.3").replace("name: c", "name: other"));
      assert.ok(await waitFor(() => rejected.at(-1)!.some((e) => e.includes("does not match its key")), 2000), rejected.at(-1)!.join("\n"));
      await client.delete().key(key(prefix, "c"));
      await client.put(key(prefix, "b")).value(entry("b", "10.0.0.4"));
      assert.ok(await waitFor(() => addresses(store).join() === "a.example=10.0.0.1,b.example=10.0.0.4", 2000), addresses(store).join());
      await client.delete().key(key(prefix, "a"));
      assert.ok(await waitFor(() => addresses(store).join() === "b.example=10.0.0.4", 2000), "a deleted key is gone");
      // Sidecars are registry documents too, one key each.
      await client.put(`${prefix}/Sidecar/default/default`).value("apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: default}\nspec: {egress: [{hosts: [./*]}]}\n");
      assert.ok(await waitFor(() => store.registry.sidecars.length === 1, 2000), "the Sidecar is served");
      assert.equal(store.registry.sidecars[0]!.egress, [{ hosts: [{ namespace: ".", host: "*" }] }]);
    } finally {
      store.stop();
    }
  });

  test("HTTP writes are compare-and-swap in etcd: ETag is the mod revision, a stale If-Match gets 412, racing replicas lose nothing", async () => {
    const url = one.url("api");
    const cps: ControlPlane[] = [];
    try {
      for (let i = 0; i < 2; i++) cps.push(await serve({ registry: url, xdsPort: 0, httpPort: 0, token: TOKEN, log: () => {} }));
      const [a, b] = cps as [ControlPlane, ControlPlane];
      const call = (cp: ControlPlane, path: string, init: RequestInit = {}) =>
        fetch(`${cp.httpUrl}/registry/serviceentries/default/${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...init.headers } });

      const put = await call(a, "s", { method: "PUT", body: entry("s", "10.1.0.1") });
      assert.is(put.status, 200, await put.clone().text());
      assert.is((await put.json()).changed, true, "acknowledged once this replica serves it");
      const tag = put.headers.get("etag")!;
      const stored = await client.get(key("api", "s")).exec();
      assert.is(tag, `"${stored.kvs[0]!.mod_revision}"`, "ETag = the key's mod revision in etcd");
      assert.is(stored.kvs[0]!.value.toString(), entry("s", "10.1.0.1"), "stored as sent");
      assert.ok(await waitFor(async () => (await call(b, "s")).headers.get("etag") === tag, 1000), "the other replica serves the same ETag");

      // Two writers read the same version and race: exactly one wins, the other learns it lost.
      const race = await Promise.all([
        call(a, "s", { method: "PUT", body: entry("s", "10.1.0.2"), headers: { "if-match": tag } }),
        call(b, "s", { method: "PUT", body: entry("s", "10.1.0.3"), headers: { "if-match": tag } }),
      ]);
      assert.equal(race.map((r) => r.status).sort(), [200, 412], (await Promise.all(race.map((r) => r.clone().text()))).join("\n"));
      const winner = race.find((r) => r.status === 200)!.headers.get("etag");
      const now = await client.get(key("api", "s")).exec();
      assert.is(`"${now.kvs[0]!.mod_revision}"`, winner);
      assert.match((await race.find((r) => r.status === 412)!.json()).details[0], /is at ETag ".*", not If-Match/);
      assert.is((await call(a, "s", { method: "DELETE", headers: { "if-match": tag } })).status, 412, "DELETE with the old ETag");

      // Unconditional writes of different keys from both replicas at once: every one lands.
      const many = await Promise.all(Array.from({ length: 20 }, (_, i) => call(i % 2 ? a : b, `k${i}`, { method: "PUT", body: entry(`k${i}`, `10.2.0.${i + 1}`, 10000 + i) })));
      assert.equal(many.map((r) => r.status), many.map(() => 200), (await Promise.all(many.map((r) => r.clone().text()))).join("\n"));
      for (const cp of cps) assert.ok(await waitFor(() => cp.store.registry.services.length === 21, 2000), `${cp.store.registry.services.length} services`);
      const listed = await client.getAll().prefix("api/ServiceEntry/default/").keys();
      assert.is(listed.length, 21);

      const conflicting = await call(b, "clash", { method: "PUT", body: entry("clash", "10.3.0.1").replace("clash.example", "s.example") });
      assert.is(conflicting.status, 409, "a host:port defined twice is refused before it reaches etcd");
      assert.is((await client.get(key("api", "clash")).exec()).kvs.length, 0);
      assert.is((await call(a, "nope", { method: "DELETE" })).status, 404);
      assert.is((await call(b, "s", { method: "DELETE", headers: { "if-match": winner! } })).status, 200);
      assert.is((await client.get(key("api", "s")).exec()).kvs.length, 0);
    } finally {
      await Promise.all(cps.map((cp) => cp.stop()));
    }
  });

  test("etcd down: the last good registry serves, /readyz and writes say why (503); back: ready and caught up", async () => {
    const url = one.url("down");
    await client.put(key("down", "a")).value(entry("a", "10.4.0.1"));
    const cp = await serve({ registry: url, xdsPort: 0, httpPort: 0, token: TOKEN, log: () => {} });
    try {
      assert.is((await fetch(`${cp.httpUrl}/readyz`)).status, 200);
      const served = cp.store.registry;
      await one.stopAll();
      const notReady = await waitFor(async () => {
        const r = await fetch(`${cp.httpUrl}/readyz`);
        return r.status === 503 ? r.text() : "";
      }, 5000);
      assert.match(notReady, /etcd 127\.0\.0\.1:\d+ unreachable since .*writes are refused; the registry at etcd revision \d+ keeps serving/);
      const put = await fetch(`${cp.httpUrl}/registry/serviceentries/default/b`, { method: "PUT", body: entry("b", "10.4.0.2"), headers: { authorization: `Bearer ${TOKEN}` } });
      assert.is(put.status, 503);
      assert.is(cp.store.registry, served, "still serving");

      // A replica starting now has no registry: it must not hand a connecting Envoy an empty config.
      const late = await serve({ registry: url, xdsPort: 0, httpPort: false, log: () => {} });
      const ads = adsClient(`127.0.0.1:${late.xds.port}`);
      const stream = ads.StreamAggregatedResources();
      const firstClusters = new Promise<string[]>((resolve) => stream.on("data", (res: any) => resolve(res.resources.map((r: any) => r.value.toString("latin1")))));
      stream.on("error", () => {});
      stream.write({ node: node("sidecar~10.9.9.9~late.default~default.svc.cluster.local"), type_url: TYPE_URL.cluster });

      await one.startAll();
      const writer = etcdClient(one.endpoints);
      await writer.put(key("down", "c")).value(entry("c", "10.4.0.3"));
      writer.close();
      assert.ok(await waitFor(async () => (await fetch(`${cp.httpUrl}/readyz`)).status === 200, 10000), "ready again");
      assert.ok(await waitFor(() => cp.store.registry.services.length === 2, 5000), "caught up with a change made while it was away");
      const clusters = await Promise.race([firstClusters, new Promise<string[]>((r) => setTimeout(() => r([]), 10000))]);
      assert.ok(clusters.some((c) => c.includes("outbound|9080||a.example")), "the late replica's first answer is the registry, not an empty config");
      stream.cancel();
      ads.close();
      await late.stop();
    } finally {
      await cp.stop();
    }
  });

  test("the watch resumes from the last revision after a disconnect, and lists again when etcd compacted that history", async () => {
    const three = await startEtcdCluster(3);
    const writer = etcdClient(three.endpoints.slice(1));
    const prefix = "resume";
    // The source talks to member 0 only, so stopping it is a disconnect while the cluster goes on.
    const source = new EtcdSource(parseEtcdUrl(`etcd://${three.endpoints[0]}/${prefix}`));
    const store = new RegistryStore([source]);
    try {
      await writer.put(key(prefix, "a")).value(entry("a", "10.5.0.1"));
      await writer.put(key(prefix, "b")).value(entry("b", "10.5.0.2"));
      await store.start();
      assert.equal(addresses(store), ["a.example=10.5.0.1", "b.example=10.5.0.2"]);
      assert.is(source.stats().listings, 1);

      await three.members[0]!.stop("SIGKILL");
      assert.ok(await waitFor(() => !source.stats().connected, 5000));
      await writer.put(key(prefix, "a")).value(entry("a", "10.5.0.11"));
      await writer.delete().key(key(prefix, "b"));
      await writer.put(key(prefix, "c")).value(entry("c", "10.5.0.3"));
      await three.members[0]!.start();
      assert.ok(await waitFor(() => addresses(store).join() === "a.example=10.5.0.11,c.example=10.5.0.3", 10000), addresses(store).join());
      assert.is(source.stats().listings, 1, "resumed: no second listing");

      await three.members[0]!.stop("SIGKILL");
      assert.ok(await waitFor(() => !source.stats().connected, 5000));
      await writer.put(key(prefix, "d")).value(entry("d", "10.5.0.4"));
      await writer.delete().key(key(prefix, "a"));
      const latest = await writer.put(`elsewhere`).value("x").exec();
      await writer.kv.compact({ revision: latest.header.revision, physical: true });
      await three.members[0]!.start();
      assert.ok(await waitFor(() => addresses(store).join() === "c.example=10.5.0.3,d.example=10.5.0.4", 10000), addresses(store).join());
      assert.is(source.stats().listings, 2, "listed again after the compaction");
    } finally {
      store.stop();
      writer.close();
      await three.close();
    }
  });
});

test.run();
