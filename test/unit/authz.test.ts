// The authorization decision (control/authz/) on its own: what a certificate proves, whether a proxy's
// claims match it, how a stream relates to open streams of the same node id, and the refusal log limit.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { admit } from "../../control/authz/admission.ts";
import { authorize } from "../../control/authz/authorize.ts";
import { parseSubjectAltNames, peerIdentityOf, type PeerIdentity } from "../../control/authz/peer-identity.ts";
import { sameNodeConflict } from "../../control/authz/same-node.ts";
import { proxyIdentity } from "../../control/identity/proxy.ts";
import { whenAvailable } from "../support/available.ts";
import { makeCa, makeLeaf, opensslUnavailableReason } from "../support/certs.ts";

const POLICY = { trustDomain: "cluster.local" };
const NODE1 = "sidecar~192.168.10.11~service-a-1.default~default.svc.cluster.local";
const proxy = (id: string, instanceIps?: string, extra: Record<string, unknown> = {}) =>
  proxyIdentity({ id, metadata: { ...(instanceIps !== undefined ? { INSTANCE_IPS: instanceIps } : {}), ...extra } });
const cert = (san: string, cn = "node1"): PeerIdentity => peerIdentityOf({ subject: { CN: cn }, subjectaltname: san });
const NODE1_CERT = cert("URI:spiffe://cluster.local/ns/default/sa/service-a, IP Address:192.168.10.11, IP Address:10.75.8.11");

test("subjectaltname text: entries, JSON-quoted values with commas, IPv6 in canonical form", () => {
  assert.equal(parseSubjectAltNames("DNS:a.example, URI:spiffe://td/ns/x/sa/y, IP Address:10.0.0.1"), [
    { type: "DNS", value: "a.example" }, { type: "URI", value: "spiffe://td/ns/x/sa/y" }, { type: "IP Address", value: "10.0.0.1" },
  ]);
  assert.equal(parseSubjectAltNames('URI:"spiffe://td/ns/a, IP Address:1.2.3.4", DNS:b'), [{ type: "URI", value: "spiffe://td/ns/a, IP Address:1.2.3.4" }, { type: "DNS", value: "b" }]);
  const p = cert("IP Address:2001:DB8:0:0:0:0:0:1, IP Address:10.0.0.1");
  assert.equal(p.ips, ["2001:db8::1", "10.0.0.1"]);
  assert.is(p.display, "CN=node1");
});

test("SPIFFE id: Istio's form is taken apart; several, or a malformed one, prove nothing", () => {
  assert.equal(NODE1_CERT.spiffe, { uri: "spiffe://cluster.local/ns/default/sa/service-a", trustDomain: "cluster.local", namespace: "default", serviceAccount: "service-a" });
  assert.is(NODE1_CERT.display, "spiffe://cluster.local/ns/default/sa/service-a");
  const two = cert("URI:spiffe://cluster.local/ns/a/sa/x, URI:spiffe://cluster.local/ns/b/sa/y");
  assert.is(two.spiffe, undefined);
  assert.match(two.spiffeProblem!, "carries 2 SPIFFE ids");
  assert.match(cert("URI:spiffe://cluster.local/workload/x").spiffeProblem!, "is not of the form");
});

test("authorize: the node id's namespace, the metadata's service account and every claimed IP must match the certificate", () => {
  assert.equal(authorize(proxy(NODE1, "192.168.10.11,10.75.8.11"), NODE1_CERT, POLICY), { ok: true });
  assert.equal(authorize(proxy(NODE1, "10.75.8.11", { SERVICE_ACCOUNT: "service-a" }), NODE1_CERT, POLICY), { ok: true });

  const r = (p: ReturnType<typeof proxy>, c = NODE1_CERT, policy = POLICY) => {
    const d = authorize(p, c, policy);
    return d.ok ? "ok" : `${d.kind}: ${d.reason}`;
  };
  // Another host's IPs, in node.id or INSTANCE_IPS.
  assert.is(r(proxy("sidecar~192.168.10.12~service-a-1.default~default.svc.cluster.local", "10.75.8.12")),
    "node_ip: node IPs 192.168.10.12 (node.id), 10.75.8.12 (INSTANCE_IPS) are not among the certificate's IP addresses 192.168.10.11, 10.75.8.11 (spiffe://cluster.local/ns/default/sa/service-a)");
  assert.match(r(proxy(NODE1, "192.168.10.11,10.75.8.11,10.75.8.12")), /^node_ip: node IPs 10\.75\.8\.12 \(INSTANCE_IPS\)/);
  // Another namespace, in the workload or the domain part.
  assert.match(r(proxy("sidecar~192.168.10.11~service-a-1.prod~prod.svc.cluster.local")), /^namespace: node id .* claims namespace prod; certificate spiffe:\/\/cluster\.local\/ns\/default\/sa\/service-a is for namespace default/);
  assert.match(r(proxy("sidecar~192.168.10.11~service-a-1.default~prod.svc.cluster.local")), /^namespace: .* claims namespace prod/);
  assert.match(r(proxy("my-proxy")), /^namespace: node id "my-proxy" names no namespace/);
  // Another service account.
  assert.match(r(proxy(NODE1, "", { SERVICE_ACCOUNT: "service-b" })), /^service_account: node metadata SERVICE_ACCOUNT "service-b" is not the certificate's service account service-a/);
  // Another trust domain, or no SPIFFE id at all.
  assert.match(r(proxy(NODE1), cert("URI:spiffe://example.org/ns/default/sa/service-a")), /^trust_domain: certificate .* belongs to trust domain example\.org, not cluster\.local/);
  assert.match(r(proxy(NODE1), cert("IP Address:192.168.10.11")), /^no_identity: the client certificate \(CN=node1\) carries no SPIFFE id/);
  assert.match(r(proxy(NODE1), cert("URI:spiffe://cluster.local/ns/a/sa/x, URI:spiffe://cluster.local/ns/b/sa/y")), /^no_identity: the certificate carries 2 SPIFFE ids/);
  // A certificate without IP SANs does not bind the proxy to addresses.
  assert.is(r(proxy(NODE1, "10.1.2.3"), cert("URI:spiffe://cluster.local/ns/default/sa/service-a")), "ok");
  // IPv6 compares in canonical form.
  assert.is(r(proxy(NODE1, "[2001:DB8::1]"), cert("URI:spiffe://cluster.local/ns/default/sa/service-a, IP Address:192.168.10.11, IP Address:2001:DB8:0:0:0:0:0:1")), "ok");
});

test("same node id: the same claims are the same proxy; other node IPs or another certificate are not", () => {
  const open = [{ streamId: 1, nodeIps: ["192.168.10.11", "10.75.8.11"], peerIdentity: "spiffe://cluster.local/ns/default/sa/service-a" }];
  assert.is(sameNodeConflict(open, { streamId: 2, nodeIps: ["10.75.8.11", "192.168.10.11"], peerIdentity: "spiffe://cluster.local/ns/default/sa/service-a" }), undefined);
  assert.is(sameNodeConflict(open, { streamId: 2, nodeIps: ["192.168.10.11"], peerIdentity: "spiffe://cluster.local/ns/default/sa/service-a" }),
    "node IPs 192.168.10.11 differ from stream 1's 192.168.10.11,10.75.8.11");
  assert.match(sameNodeConflict(open, { streamId: 2, nodeIps: ["192.168.10.11", "10.75.8.11"], peerIdentity: "spiffe://cluster.local/ns/default/sa/other" })!, "certificate identity spiffe://cluster.local/ns/default/sa/other differs from stream 1's");
  assert.is(sameNodeConflict([], { streamId: 2, nodeIps: [] }), undefined);
});

test("admission: under mutual TLS a disagreeing stream is refused; without it, served with a warning", () => {
  const p = proxy(NODE1, "10.75.8.11");
  const open = [{ streamId: 1, nodeIps: ["192.168.10.11", "10.75.8.11"], peerIdentity: NODE1_CERT.display }];
  assert.equal(admit({ proxy: p, streamId: 2, nodeIps: p.nodeIps, peer: NODE1_CERT, open, policy: POLICY }), { ok: true, peerIdentity: NODE1_CERT.display });
  const refused = admit({ proxy: p, streamId: 2, nodeIps: ["192.168.10.11"], peer: NODE1_CERT, open, policy: POLICY });
  assert.ok(!refused.ok && refused.kind === "conflict" && /already connected and this stream differs: node IPs 192\.168\.10\.11 differ/.test(refused.reason), JSON.stringify(refused));
  const warned = admit({ proxy: p, streamId: 2, nodeIps: ["192.168.10.11"], open: [{ streamId: 1, nodeIps: ["192.168.10.11", "10.75.8.11"] }], policy: POLICY });
  assert.ok(warned.ok && /each stream gets its own config/.test(warned.warning ?? ""), JSON.stringify(warned));
  // Authorization comes first.
  const foreign = admit({ proxy: proxy(NODE1, "10.75.8.12"), streamId: 3, nodeIps: [], peer: NODE1_CERT, open: [], policy: POLICY });
  assert.ok(!foreign.ok && foreign.kind === "node_ip");
});

whenAvailable(opensslUnavailableReason(), "certificates made by openssl", (test) => {
  test("a certificate made by openssl reads as its SPIFFE id and IP SANs", () => {
    const dir = mkdtempSync(join(tmpdir(), "mp-authz-"));
    try {
      const ca = makeCa(dir);
      const leaf = makeLeaf(dir, ca, "node1", { uris: ["spiffe://cluster.local/ns/default/sa/service-a"], ips: ["192.168.10.11", "10.75.8.11", "fd00::11"] });
      const x = new X509Certificate(readFileSync(leaf.cert));
      const p = peerIdentityOf({ subject: { CN: "node1" }, subjectaltname: x.subjectAltName! });
      assert.is(p.spiffe?.uri, "spiffe://cluster.local/ns/default/sa/service-a");
      assert.equal(p.ips, ["192.168.10.11", "10.75.8.11", "fd00::11"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test.run();
