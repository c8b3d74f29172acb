// HTTP services for real (root only): the seed's node in network namespaces behind Istio 1.0's iptables
// capture, `multiplane serve` and Envoy (uid 1337) inside it; the upstreams in the `lan` namespace at
// 192.168.10.1. An application on the node dials one address on port 9080 and is answered by reviews or
// ratings according to its Host header alone, and reaches a gRPC service (HTTP/2 upstream) by its
// :authority; every request crosses the HTTP loop guard, which marks it with the node's id. (The HTTP
// loop itself, stopped with 508 at its second hop, is a row of the seed matrix: seed-netns.test.ts.)
// Traffic stays inside these namespaces; everything is removed afterwards, also on failure.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createRequire } from "node:module";
import { parseAdminStats } from "../../control/cmd/demo/scenario.ts";
import { assertNothingLeftBehind, NODE_PORTS, seedTopology, startCapturedNode } from "../support/captured-node.ts";
import { waitFor } from "../support/net.ts";
import { netnsUnavailableReason, SEED } from "../support/netns.ts";
import { whenAvailable } from "../support/available.ts";

const UPSTREAM = SEED.lanPeerIp; // 192.168.10.1
const NODE_ID = `sidecar~${SEED.nodeIp1}~app-1.default~default.svc.cluster.local`;
const GRPC = createRequire(import.meta.url).resolve("@grpc/grpc-js");

const REGISTRY = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  location: MESH_INTERNAL
  endpoints: [{address: ${UPSTREAM}, ports: {http: 9081}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings}
spec:
  hosts: [ratings.default.svc.cluster.local]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  location: MESH_INTERNAL
  endpoints: [{address: ${UPSTREAM}, ports: {http: 9082}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: greeter}
spec:
  hosts: [greeter.default.svc.cluster.local]
  ports: [{number: 50051, name: grpc, protocol: GRPC}]
  resolution: STATIC
  location: MESH_INTERNAL
  endpoints: [{address: ${UPSTREAM}, ports: {grpc: 9090}}]
`;

/** HTTP servers on host:port=name pairs, each answering `<name> hops=<x-multiplane-hops>`. */
const HTTP_UPSTREAMS_SOURCE = String.raw`
const http = require("node:http");
const [host, ...pairs] = process.argv.slice(1);
let up = 0;
for (const pair of pairs) {
  const [port, name] = pair.split("=");
  http.createServer((q, s) => s.end(name + " hops=" + (q.headers["x-multiplane-hops"] || "") + "\n"))
    .listen(Number(port), host, () => { if (++up === pairs.length) process.stdout.write("ready\n"); });
}
`;

// A unary gRPC method on raw bytes: no .proto needed on either side.
const GREETER = String.raw`
const method = { path: "/multiplane.test.Greeter/Hello", requestStream: false, responseStream: false,
  requestSerialize: (b) => b, requestDeserialize: (b) => b, responseSerialize: (b) => b, responseDeserialize: (b) => b };
`;
const GRPC_SERVER_SOURCE = GREETER + String.raw`
const grpc = require(process.argv[1]);
const server = new grpc.Server();
server.addService({ hello: method }, { hello: (call, done) => done(null, Buffer.from("hello " + call.request + " hops=" + call.metadata.get("x-multiplane-hops").join(","))) });
server.bindAsync(process.argv[2], grpc.ServerCredentials.createInsecure(), (e) => process.stdout.write(e ? "error " + e.message + "\n" : "ready\n"));
`;
const GRPC_CLIENT_SOURCE = GREETER + String.raw`
const grpc = require(process.argv[1]);
const Client = grpc.makeGenericClientConstructor({ hello: method }, "Greeter");
const client = new Client(process.argv[2], grpc.credentials.createInsecure(), { "grpc.default_authority": process.argv[3] });
client.hello(Buffer.from("mesh"), { deadline: Date.now() + 5000 }, (e, r) => { process.stdout.write(e ? "error " + e.message : String(r)); client.close(); });
`;

whenAvailable(netnsUnavailableReason(), "HTTP services in network namespaces", (test) => {
  let namespaces: string[] = [];
  const pids: number[] = [];

  test("two HTTP services on one port told apart by Host, and a gRPC service over HTTP/2, through the capture and the HTTP guard", async () => {
    const { t, dir, close } = seedTopology("mp-http-netns-");
    namespaces = Object.values(t.ns);
    try {
      const web = t.spawn(t.ns.lan, process.execPath, ["-e", HTTP_UPSTREAMS_SOURCE, UPSTREAM, "9081=reviews", "9082=ratings"], { label: "http upstreams" });
      const grpcServer = t.spawn(t.ns.lan, process.execPath, ["-e", GRPC_SERVER_SOURCE, GRPC, `${UPSTREAM}:9090`], { label: "grpc upstream" });
      assert.ok(await waitFor(() => web.output().includes("ready") && grpcServer.output().includes("ready"), 10000), `${web.output()} ${grpcServer.output()}`);

      for (const p of [web, grpcServer]) if (p.child.pid) pids.push(p.child.pid);
      const { node, ctx } = await startCapturedNode(t, dir, { registry: REGISTRY, nodeId: NODE_ID, wanted: ["virtual", "0.0.0.0_9080", "0.0.0.0_50051"], pids });

      // The application on the node (root, so captured) dials one address; only Host differs.
      for (const [host, want] of [["reviews.default.svc.cluster.local", "reviews"], ["ratings", "ratings"], ["reviews:9080", "reviews"]]) {
        const r = await node.request(`http://${UPSTREAM}:9080/`, { timeoutMs: 5000, headers: { host: host! } });
        assert.equal([r.status, r.body], [200, `${want} hops=${NODE_ID}\n`], `Host ${host}: ${JSON.stringify(r)}${ctx()}`);
      }
      const answer = t.exec(t.ns.node, process.execPath, ["-e", GRPC_CLIENT_SOURCE, GRPC, `${UPSTREAM}:50051`, "greeter.default.svc.cluster.local:50051"], { timeoutMs: 15000 });
      assert.is(answer, `hello mesh hops=${NODE_ID}`, ctx());

      const stats = parseAdminStats((await node.request(`http://127.0.0.1:${NODE_PORTS.admin}/stats`)).body ?? "");
      const stat = (name: string) => stats.get(name) ?? 0;
      assert.is(stat("cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_total"), 2);
      assert.is(stat("cluster.outbound|9080||ratings.default.svc.cluster.local.upstream_rq_total"), 1);
      assert.is(stat("cluster.outbound|50051||greeter.default.svc.cluster.local.upstream_cx_http2_total"), 1, "HTTP/2 to the gRPC upstream");
      assert.is(stat("wasmcustom.loop_guard.connections_checked"), 4, "every request through the HTTP guard");
      assert.is(stat("wasmcustom.loop_guard.short_circuited"), 0);
      assert.is(stat("cluster.PassthroughCluster.upstream_rq_total"), 0, "nothing fell through to PassthroughCluster");
    } finally {
      await close();
    }
  });

  test("nothing left behind: namespaces and processes", () => assertNothingLeftBehind(namespaces, pids));
});

test.run();
