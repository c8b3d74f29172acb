// Why a marking plane's IPv4 and IPv6 endpoints get a cluster each (README, "Planes"): with a real
// Envoy, the IPv4 cluster's options (IP_TOS) connect, and the IPv6 cluster's options (IP_TOS plus
// IPV6_TCLASS) on an IPv4 endpoint fail the connection, since the socket refuses IPV6_TCLASS and Envoy
// does not connect with a socket option it could not apply.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { dscpOptions } from "../../control/generation/planes.ts";
import type { Plane } from "../../control/planes/plane.ts";
import { startEnvoy, type RunningEnvoy } from "../support/envoy.ts";
import { exchange, freePort, startEcho, waitFor, type EchoServer } from "../support/net.ts";

const PLANE: Plane = { name: "data", cidrs: ["127.0.0.0/8"], dscp: 46, bindSource: false, isolated: false };

let envoy: RunningEnvoy;
let echo: EchoServer;
const ports = { v4: 0, v6: 0 };

const proxied = (name: string, port: number, family: 4 | 6) => ({
  listener: {
    name, address: { socket_address: { address: "127.0.0.1", port_value: port } },
    filter_chains: [{ filters: [{ name: "envoy.filters.network.tcp_proxy", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", stat_prefix: name, cluster: name } }] }],
  },
  cluster: {
    name, type: "STATIC", connect_timeout: "1s",
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: echo.port } } } }] }] },
    upstream_bind_config: { socket_options: dscpOptions(PLANE, family) },
  },
});

test.before(async () => {
  echo = await startEcho();
  ports.v4 = await freePort();
  ports.v6 = await freePort();
  const a = proxied("ipv4_options", ports.v4, 4);
  const b = proxied("ipv6_options", ports.v6, 6);
  envoy = await startEnvoy({ static_resources: { listeners: [a.listener, b.listener], clusters: [a.cluster, b.cluster] } });
});

test.after(async () => {
  await envoy?.stop();
  await echo?.close();
});

test("IP_TOS alone connects to an IPv4 endpoint; with IPV6_TCLASS added, Envoy fails the connection", async () => {
  assert.equal(dscpOptions(PLANE, 4).map((o) => o.name), [1]);
  assert.equal(dscpOptions(PLANE, 6).map((o) => o.name), [1, 67]);
  const ok = await exchange("127.0.0.1", ports.v4, "marked\n");
  assert.is(ok.ended, "echoed", JSON.stringify(ok));
  const refused = await exchange("127.0.0.1", ports.v6, "marked\n");
  assert.is.not(refused.ended, "echoed", JSON.stringify(refused));
  assert.ok(await waitFor(async () => ((await envoy.stat("cluster.ipv6_options.upstream_cx_connect_fail")) ?? 0) >= 1, 5000),
    `connect failures: ${await envoy.stat("cluster.ipv6_options.upstream_cx_connect_fail")}; total ${await envoy.stat("cluster.ipv6_options.upstream_cx_total")}\n${envoy.log().slice(-1500)}`);
  assert.is(refused.received, "", "nothing came back through the failed connection");
  assert.match(envoy.log(), "Setting 41/67 option on socket failed");
});

test.run();
