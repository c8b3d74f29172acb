// HTTP ports on a real Envoy, on loopback, over state-of-the-world and delta xDS: `multiplane serve` gives
// Envoy an HTTP connection manager whose routes arrive by RDS; two HTTP services on one port are told
// apart by Host (full name, short name, with the port); a Host no service claims goes on to the address
// the client dialled; a gRPC service is reached over HTTP/2 upstream; a registry edit pushes a new route
// configuration; the HTTP loop guard marks every request with x-multiplane-hops and answers 508 for a
// request to a node IP, counted in Envoy's /stats, or lets it through and counts it in observe mode.
// Connections reach Envoy's virtual listener with a PROXY header naming the original destination (the
// rootless stand-in for iptables); all traffic stays on 127.0.0.0/8.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import { rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { startLoopbackCapture, type LoopbackCapture } from "../../control/cmd/demo/loopback-capture.ts";
import { serve, type ControlPlane } from "../../control/serve/serve.ts";
import { LOOP_GUARD_WASM } from "../../envoy/paths.ts";
import { envoyListeners, httpThroughVirtual, sidecarBootstrap, tempRegistryDir } from "../support/control.ts";
import { startEnvoy, type RunningEnvoy } from "../support/envoy.ts";
import { freePort, waitFor } from "../support/net.ts";

const NODE = "sidecar~127.0.0.9~client-1.default~default.svc.cluster.local";
const NODE_IP = "127.0.0.9"; // a node IP: a request to it is self-destined
const CLIENT_VIP = "127.0.0.20"; // what clients dial: no service's address, so only Host decides
const DIRECT = "127.0.0.24"; // a server no route names, reached by passthrough
const REVIEWS = "reviews.default.svc.cluster.local";
const RATINGS = "ratings.default.svc.cluster.local";
const DETAILS = "details.default.svc.cluster.local";
const GREETER = "greeter.default.svc.cluster.local";

interface Upstream { name: string; host: string; port: number; requests: number; close(): Promise<void> }

/** An HTTP server answering `<name> hops=<x-multiplane-hops>` to every request, counting them. */
function httpUpstream(name: string, host: string, port = 0): Promise<Upstream> {
  return new Promise((resolve, reject) => {
    const srv = http.createServer((req, res) => {
      upstream.requests++;
      res.end(`${name} hops=${req.headers["x-multiplane-hops"] ?? ""}\n`);
    });
    const upstream: Upstream = { name, host, port, requests: 0, close: () => new Promise((r) => { srv.closeAllConnections(); srv.close(() => r()); }) };
    srv.once("error", reject);
    srv.listen(port, host, () => resolve(Object.assign(upstream, { port: (srv.address() as any).port })));
  });
}

// A unary gRPC method on raw bytes (no .proto needed): the answer names the hops the request carried.
const GREETER_SERVICE = {
  hello: {
    path: "/multiplane.test.Greeter/Hello", requestStream: false, responseStream: false,
    requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b,
  },
} satisfies grpc.ServiceDefinition;

async function grpcUpstream(host: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = new grpc.Server();
  server.addService(GREETER_SERVICE, {
    hello: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) =>
      done(null, Buffer.from(`hello ${call.request.toString()} hops=${call.metadata.get("x-multiplane-hops").join(",")}`)),
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { port, close: () => new Promise((r) => server.tryShutdown(() => r())) };
}

const se = (name: string, spec: string) => `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${name}, namespace: default}\nspec:\n${spec}\n---\n`;

function variant(protocol: "sotw" | "delta", mode: "enforce" | "observe") {
  const test = suite(`${protocol}, guard ${mode}`);
  let dir: string, cp: ControlPlane, envoy: RunningEnvoy, capture: LoopbackCapture;
  let vport = 0, httpPort = 0, grpcPort = 0;
  const upstreams: Upstream[] = [];
  let greeter: Awaited<ReturnType<typeof grpcUpstream>>;
  const logs: string[] = [];
  const registry = (withDetails: boolean) =>
    se("reviews", `  hosts: [${REVIEWS}]\n  ports: [{number: ${httpPort}, name: http, protocol: HTTP}]\n  resolution: STATIC\n  location: MESH_INTERNAL\n  endpoints: [{address: 127.0.0.21, ports: {http: ${upstreams[0]!.port}}}]`)
    + se("ratings", `  hosts: [${RATINGS}]\n  ports: [{number: ${httpPort}, name: http, protocol: HTTP}]\n  resolution: STATIC\n  location: MESH_INTERNAL\n  endpoints: [{address: 127.0.0.22, ports: {http: ${upstreams[1]!.port}}}]`)
    + se("greeter", `  hosts: [${GREETER}]\n  ports: [{number: ${grpcPort}, name: grpc, protocol: GRPC}]\n  resolution: STATIC\n  location: MESH_INTERNAL\n  endpoints: [{address: 127.0.0.23, ports: {grpc: ${greeter.port}}}]`)
    + (withDetails ? se("details", `  hosts: [${DETAILS}]\n  ports: [{number: ${httpPort}, name: http, protocol: HTTP}]\n  resolution: STATIC\n  location: MESH_INTERNAL\n  endpoints: [{address: ${DIRECT}}]`) : "");
  const get = (host: string, dst = CLIENT_VIP) => httpThroughVirtual(vport, dst, httpPort, { host });
  const proxy = () => cp.view.proxies().find((p) => p.id === NODE);
  const context = async () => `\ncontrol plane:\n${logs.slice(-20).join("\n")}\nenvoy:\n${envoy.log().slice(-2000)}`;

  test.before(async () => {
    [vport, grpcPort] = await Promise.all([freePort(), freePort(CLIENT_VIP)]);
    upstreams.push(await httpUpstream("reviews", "127.0.0.21"), await httpUpstream("ratings", "127.0.0.22"));
    // The HTTP port: servers for passthrough and for the node IP listen on it, on their own addresses.
    for (let attempt = 0; upstreams.length < 4; attempt++) {
      httpPort = await freePort(CLIENT_VIP);
      const bound = await Promise.all([httpUpstream("direct", DIRECT, httpPort), httpUpstream("self", NODE_IP, httpPort)].map((p) => p.catch(() => undefined)));
      if (bound.every(Boolean)) upstreams.push(...(bound as Upstream[]));
      else if (attempt >= 5) throw new Error(`no port free on ${CLIENT_VIP}, ${DIRECT} and ${NODE_IP}`);
      else await Promise.all(bound.map((u) => u?.close()));
    }
    greeter = await grpcUpstream("127.0.0.23");
    dir = tempRegistryDir({ "services.yaml": registry(false) });
    cp = await serve({
      registry: dir, xdsPort: 0, httpPort: false, loopGuard: { wasmPath: LOOP_GUARD_WASM, mode },
      virtualListener: { address: "127.0.0.1", port: vport, handoff: "proxy_protocol" }, log: (l) => logs.push(l),
    });
    envoy = await startEnvoy(sidecarBootstrap(cp.xds.port, { nodeId: NODE, instanceIps: [NODE_IP], delta: protocol === "delta" }));
    capture = await startLoopbackCapture({ listen: { host: CLIENT_VIP, port: grpcPort }, envoy: { host: "127.0.0.1", port: vport }, clientAddress: "127.0.0.1" });
    const ready = await waitFor(async () => {
      const types = proxy()?.types ?? {};
      if (!["lds", "cds", "eds", "rds", "ecds"].every((t) => types[t]?.state === "ACK")) return false;
      const listeners = [...(await envoyListeners(envoy)).values()];
      return listeners.length === 3 && listeners.every((l) => l.state === "active");
    }, 15000);
    assert.ok(ready, `not ready: ${JSON.stringify(proxy()?.types)}${await context()}`);
  });

  test.after(async () => {
    await capture?.close();
    await envoy?.stop();
    await cp?.stop();
    await Promise.all([...upstreams.map((u) => u.close()), greeter?.close()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("Envoy holds 0.0.0.0_<port> with an HTTP connection manager on RDS route config \"<port>\", and the route config from RDS", async () => {
    const l = (await envoyListeners(envoy)).get(`0.0.0.0_${httpPort}`)!.listener;
    const hcm = l.filter_chains.find((c: any) => c.name === `http ${httpPort}`).filters[0].typed_config;
    assert.is(hcm.rds.route_config_name, String(httpPort));
    assert.equal(hcm.http_filters.map((f: any) => f.name), ["loop_guard_http", "envoy.filters.http.router"]);
    const routes = await envoy.configDump("dynamic_route_configs");
    const config = routes.configs.find((c: any) => c.route_config.name === String(httpPort)).route_config;
    assert.equal(config.virtual_hosts.map((v: any) => v.name), [`${RATINGS}:${httpPort}`, `${REVIEWS}:${httpPort}`, "allow_any"]);
  });

  test("two HTTP services on one port are told apart by Host: full name, short name, name:port; the guard marked each request", async () => {
    for (const [host, want] of [[REVIEWS, "reviews"], [RATINGS, "ratings"], ["reviews", "reviews"], [`ratings:${httpPort}`, "ratings"], [`reviews.default:${httpPort}`, "reviews"]] as const) {
      const r = await get(host);
      assert.equal([r.status, r.body], [200, `${want} hops=${NODE}\n`], `Host ${host}${await context()}`);
    }
    assert.is(await envoy.stat(`cluster.outbound|${httpPort}||${REVIEWS}.upstream_rq_total`), 3);
    assert.is(await envoy.stat(`cluster.outbound|${httpPort}||${RATINGS}.upstream_rq_total`), 2);
  });

  test("a Host no service claims goes on to the address the client dialled (allow_any -> PassthroughCluster)", async () => {
    const r = await get("unknown.example", DIRECT);
    assert.equal([r.status, r.body], [200, `direct hops=${NODE}\n`]);
    assert.ok((await envoy.stat("cluster.PassthroughCluster.upstream_rq_total"))! >= 1);
  });

  test("a gRPC service is reached over HTTP/2 upstream, by its :authority", async () => {
    const Client = grpc.makeGenericClientConstructor(GREETER_SERVICE, "Greeter");
    const client = new Client(`${CLIENT_VIP}:${grpcPort}`, grpc.credentials.createInsecure(), { "grpc.default_authority": `${GREETER}:${grpcPort}` }) as any;
    try {
      const answer = await new Promise<Buffer>((resolve, reject) => client.hello(Buffer.from("mesh"), { deadline: Date.now() + 5000 }, (e: Error | null, r: Buffer) => (e ? reject(e) : resolve(r))));
      assert.is(answer.toString(), `hello mesh hops=${NODE}`);
    } finally {
      client.close();
    }
    const cluster = `cluster.outbound|${grpcPort}||${GREETER}`;
    assert.is(await envoy.stat(`${cluster}.upstream_cx_http2_total`), 1, "HTTP/2 to the upstream");
    assert.is(await envoy.stat(`${cluster}.upstream_rq_200`), 1);
  });

  test("a registry edit pushes a new route configuration: the new service is routed by Host; RDS ACKed at the new version", async () => {
    const before = proxy()!.types.rds!.ackedVersion;
    const pushes = logs.length;
    writeFileSync(join(dir, "services.yaml"), registry(true));
    const routed = await waitFor(async () => (await get(DETAILS).catch(() => undefined))?.body === `direct hops=${NODE}\n`, 5000, 50);
    assert.ok(routed, `details never routed${await context()}`);
    assert.ok(await waitFor(() => proxy()!.types.rds!.ackedVersion !== before && proxy()!.types.rds!.state === "ACK", 3000));
    // Delta sends the one route configuration that changed; SotW, by definition, every one Envoy asked for.
    const rdsPush = logs.slice(pushes).find((l) => / type=rds /.test(l));
    assert.match(rdsPush ?? "", protocol === "delta" ? / resources=1$/ : / resources=2$/, rdsPush);
    assert.ok(await waitFor(async () => (await envoy.stat(`cluster.outbound|${httpPort}||${DETAILS}.upstream_rq_total`)) === 1, 3000));
  });

  if (mode === "enforce") {
    test("enforce: a request to a node IP gets the HTTP guard's 508, counted in /stats; nothing reached the upstream", async () => {
      const errors = `http.outbound_0.0.0.0_${httpPort}.downstream_rq_5xx`;
      const before = (await envoy.stat(errors)) ?? 0;
      const r = await get("unknown.example", NODE_IP);
      assert.is(r.status, 508);
      assert.is(r.body, `508 Loop Detected: multiplane loop guard on node ${NODE} (configuration)\n`);
      assert.is(r.headers["x-multiplane-hops"], NODE);
      assert.is(await envoy.stat("wasmcustom.loop_guard.short_circuited"), 1);
      assert.is(await envoy.stat("wasmcustom.loop_guard.self_destined"), 1);
      assert.is((await envoy.stat(errors))! - before, 1, "the connection manager counts the 508 as its own 5xx reply");
      assert.is(upstreams.find((u) => u.name === "self")!.requests, 0, "the node IP's server never saw it");
    });
  } else {
    test("observe: a request to a node IP is counted and let through (on to the node IP's server)", async () => {
      const r = await get("unknown.example", NODE_IP);
      assert.equal([r.status, r.body], [200, `self hops=${NODE}\n`]);
      assert.is(upstreams.find((u) => u.name === "self")!.requests, 1);
      assert.is(await envoy.stat("wasmcustom.loop_guard.observed"), 1);
      assert.is(await envoy.stat("wasmcustom.loop_guard.self_destined"), 1);
      assert.is(await envoy.stat("wasmcustom.loop_guard.short_circuited") ?? 0, 0);
    });
  }

  test("every request was checked by the HTTP guard, in the same counters as the network guard's", async () => {
    // 5 by Host, 1 passthrough, 1 gRPC, at least 1 for details, 1 to the node IP; the network guard saw none (no TCP chain was used).
    assert.ok((await envoy.stat("wasmcustom.loop_guard.connections_checked"))! >= 9);
    assert.ok(envoy.alive());
  });

  test.run();
}

variant("sotw", "enforce");
variant("delta", "observe");
