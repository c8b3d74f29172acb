// Resolution modes carrying real traffic (root only): in network namespaces, a node runs `multiplane
// serve` and Envoy (uid 1337) behind Istio 1.0's iptables capture; a second namespace is the rest of
// the network, with the test's own DNS server (answering only the test's names) and the upstreams.
// An application on the node dials VIPs and addresses; the capture hands every connection to Envoy,
// which resolves DNS services through that server (its cluster DNS resolver, from the bootstrap),
// forwards the NONE wildcard to the address dialled, and resolves DYNAMIC_DNS hosts from SNI.
// Traffic stays on loopback and inside these namespaces; everything is removed afterwards, also on
// failure.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { AGENT_SOURCE, NsAgent } from "../../control/cmd/demo/agent.ts";
import { dnsQueries, DNS_RESPONDER_SOURCE } from "../support/dns-responder.ts";
import { assertNothingLeftBehind, NODE_PORTS, seedTopology, startCapturedNode } from "../support/captured-node.ts";
import { waitFor } from "../support/net.ts";
import { netnsUnavailableReason, SEED } from "../support/netns.ts";
import { whenAvailable } from "../support/available.ts";

const UPSTREAM = SEED.lanPeerIp; // 192.168.10.1: the other side of the node's first interface
const NODE_ID = `sidecar~${SEED.nodeIp1}~app-1.default~default.svc.cluster.local`;

const REGISTRY = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api}
spec:
  hosts: [api.dns.test]              # no endpoints: Envoy resolves the host itself
  addresses: [240.10.0.1]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8080}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: rr}
spec:
  hosts: [rr.dns.test]
  addresses: [240.10.0.2]
  ports: [{number: 81, name: http, protocol: HTTP, targetPort: 8080}]
  resolution: DNS_ROUND_ROBIN
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ep}
spec:
  hosts: [ep.dns.test]
  addresses: [240.10.0.3]
  ports: [{number: 82, name: http, protocol: HTTP}]
  resolution: DNS
  endpoints: [{address: backend.dns.test, ports: {http: 8080}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wild}
spec:
  hosts: ["*.wild.test"]             # no resolution: NONE, no addresses: the whole port
  ports: [{number: 9090, name: tcp, protocol: TCP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dyn}
spec:
  hosts: ["*.dyn.test"]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DYNAMIC_DNS
`;

/** A TCP server that reports, per connection, whether the first bytes carried the SNI name it was told to look for. */
const SNI_SINK_SOURCE = String.raw`
const net = require("node:net");
const [host, port, sni] = process.argv.slice(1);
net.createServer((s) => {
  s.once("data", (d) => { process.stdout.write(JSON.stringify({ sni: d.toString("latin1").includes(sni) }) + "\n"); s.end(); });
  s.on("error", () => {});
}).listen(Number(port), host, () => process.stdout.write("ready\n"));
`;

/** A TLS ClientHello for `servername` to host:port; the handshake itself is not the point. */
const TLS_CLIENT_SOURCE = String.raw`
const tls = require("node:tls");
const [host, port, servername] = process.argv.slice(1);
const s = tls.connect({ host, port: Number(port), servername, rejectUnauthorized: false });
s.on("error", () => process.exit(0));
s.on("close", () => process.exit(0));
setTimeout(() => process.exit(0), 3000);
`;

whenAvailable(netnsUnavailableReason(), "resolution modes in network namespaces", (test) => {
  let namespaces: string[] = [];
  const pids: number[] = [];

  test("DNS, DNS_ROUND_ROBIN, DNS endpoints, a NONE wildcard and DYNAMIC_DNS carry real connections", async () => {
    const { t, dir, close } = seedTopology("mp-resolution-");
    namespaces = Object.values(t.ns);
    try {
      // The rest of the network: the test's DNS server and the upstreams, at 192.168.10.1.
      const dns = t.spawn(t.ns.lan, process.execPath, ["-e", DNS_RESPONDER_SOURCE, UPSTREAM, "53",
        JSON.stringify({ "api.dns.test": UPSTREAM, "rr.dns.test": UPSTREAM, "backend.dns.test": UPSTREAM, "svc.dyn.test": UPSTREAM })], { label: "dns" });
      const sink = t.spawn(t.ns.lan, process.execPath, ["-e", SNI_SINK_SOURCE, UPSTREAM, "443", "svc.dyn.test"], { label: "sni sink" });
      const lan = new NsAgent(t.spawn(t.ns.lan, process.execPath, ["-e", AGENT_SOURCE], { label: "lan agent" }));
      await lan.httpServer(UPSTREAM, 8080, "dns upstream\n");
      await lan.httpServer(UPSTREAM, 9090, "passthrough upstream\n");
      assert.ok(await waitFor(() => dns.output().includes("ready") && sink.output().includes("ready"), 5000), `dns: ${dns.output()} sink: ${sink.output()}`);

      // The node: a default route (so VIPs route, and are then captured), the capture, serve, Envoy.
      t.exec(t.ns.node, "ip", ["route", "add", "default", "via", UPSTREAM]);
      for (const p of [dns, sink]) if (p.child.pid) pids.push(p.child.pid);
      const { envoy, node } = await startCapturedNode(t, dir, {
        registry: REGISTRY, nodeId: NODE_ID, wanted: ["virtual", "0.0.0.0_80", "0.0.0.0_81", "0.0.0.0_82", "0.0.0.0_9090", "0.0.0.0_443"], pids,
        // Envoy's DNS resolver for clusters (and the forward proxy's cache): the test's server, nothing else.
        editBootstrap: (bootstrap) => {
          bootstrap.typed_dns_resolver_config = {
            name: "envoy.network.dns_resolver.cares",
            typed_config: {
              "@type": "type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig",
              resolvers: [{ socket_address: { address: UPSTREAM, port_value: 53 } }],
              dns_resolver_options: { no_default_search_domain: true },
            },
          };
        },
      });

      // The application on the node (root, so captured) dials each service.
      const get = (url: string) => node.request(url, { timeoutMs: 5000 });
      const results = {
        dns: await get("http://240.10.0.1/"),
        roundRobin: await get("http://240.10.0.2:81/"),
        dnsEndpoint: await get("http://240.10.0.3:82/"),
        none: await get(`http://${UPSTREAM}:9090/`),
      };
      const ctx = () => `\n${JSON.stringify(results)}\ndns: ${dns.output()}\nenvoy: ${envoy.output().slice(-2000)}`;
      for (const [what, r] of Object.entries(results)) {
        assert.is(r.status, 200, `${what}${ctx()}`);
        assert.is(r.body, what === "none" ? "passthrough upstream\n" : "dns upstream\n", what);
      }
      // DYNAMIC_DNS: dialled at an address nothing listens on; Envoy resolves the SNI name and connects there.
      t.exec(t.ns.node, process.execPath, ["-e", TLS_CLIENT_SOURCE, "203.0.113.10", "443", "svc.dyn.test"], { timeoutMs: 10000 });
      assert.ok(await waitFor(() => sink.output().includes('{"sni":true}'), 5000), `the SNI sink saw no ClientHello for svc.dyn.test: ${sink.output()}${ctx()}`);

      // Envoy asked the test's DNS server for each name, and each cluster carried the connection.
      const asked = new Set(dnsQueries(dns.output()).filter((q) => q.answered).map((q) => q.query));
      for (const name of ["api.dns.test", "rr.dns.test", "backend.dns.test", "svc.dyn.test"]) assert.ok(asked.has(name), `no DNS query for ${name}: ${dns.output()}`);
      const stats = (await node.request(`http://127.0.0.1:${NODE_PORTS.admin}/stats?filter=upstream_cx_total`)).body ?? "";
      for (const cluster of ["outbound|80||api.dns.test", "outbound|81||rr.dns.test", "outbound|82||ep.dns.test", "outbound|9090||*.wild.test", "outbound|443||*.dyn.test"]) {
        const n = Number(new RegExp(`^cluster\\.${cluster.replace(/[|.*]/g, (c) => `\\${c}`)}\\.upstream_cx_total: (\\d+)$`, "m").exec(stats)?.[1] ?? 0);
        assert.ok(n >= 1, `${cluster} carried no connection:\n${stats}`);
      }
      assert.not.match(stats, /^cluster\.PassthroughCluster\.upstream_cx_total: [1-9]/m, "nothing fell through to PassthroughCluster");
    } finally {
      await close();
    }
  });

  test("nothing left behind: namespaces and processes", () => assertNothingLeftBehind(namespaces, pids));
});

test.run();
