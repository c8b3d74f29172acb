// A Kubernetes Service port's protocol, decided as Istio decides it: appProtocol when set (the
// three kubernetes.io/ names the Service API defines first), else the port name's prefix before the
// first '-' (`http`, `http-api`, `grpc-web-x`), ignoring case; a name or appProtocol Istio does not
// know leaves the protocol to sniffing (multiplane's "", proxied as TCP), except on the ports Istio
// never sniffs (SMTP, DNS, MySQL, MongoDB), which are TCP.
import type { V1ServicePort } from "@kubernetes/client-node";
import type { Protocol } from "../../model.ts";
import { parseProtocol } from "../../istio/syntax.ts";

/** Istio does not sniff these: a server that speaks first would wait forever for the client's bytes. */
const NEVER_SNIFFED: ReadonlySet<number> = new Set([25, 53, 3306, 27017]);

/** The appProtocol values the Service API itself defines. */
const KUBERNETES_APP_PROTOCOLS: Readonly<Record<string, Protocol>> = Object.freeze({
  "kubernetes.io/h2c": "HTTP2", // HTTP/2 over cleartext: what Istio's HTTP2 is
  "kubernetes.io/ws": "HTTP", // WebSocket over cleartext: an HTTP/1.1 upgrade
  "kubernetes.io/wss": "HTTPS", // WebSocket over TLS: TLS the sidecar passes through
});

export type PortProtocol = { ok: true; protocol: Protocol } | { ok: false; reason: string };

/**
 * The port's protocol, or why the port cannot be served: UDP and SCTP carry nothing through a
 * sidecar (Envoy proxies TCP), so they are left out rather than kept as ports without listeners.
 */
export function servicePortProtocol(port: V1ServicePort): PortProtocol {
  const transport = (port.protocol || "TCP").toUpperCase();
  if (transport !== "TCP") return { ok: false, reason: `protocol ${port.protocol} is not proxied (sidecars carry TCP only)` };
  const appProtocol = typeof port.appProtocol === "string" ? port.appProtocol : undefined;
  if (appProtocol !== undefined && appProtocol in KUBERNETES_APP_PROTOCOLS) return { ok: true, protocol: KUBERNETES_APP_PROTOCOLS[appProtocol]! };
  const name = appProtocol ?? port.name ?? "";
  const protocol = parseProtocol(/^grpc-web/i.test(name) ? "GRPC-Web" : name.split("-")[0]!);
  if (protocol === "UDP") return { ok: false, reason: `${appProtocol !== undefined ? `appProtocol ${JSON.stringify(appProtocol)}` : `name ${JSON.stringify(name)}`} says UDP, which is not proxied (sidecars carry TCP only)` };
  if (protocol === undefined || protocol === "") return { ok: true, protocol: NEVER_SNIFFED.has(port.port) ? "TCP" : "" };
  return { ok: true, protocol };
}
