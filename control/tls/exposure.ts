// Whether an xDS address may serve plaintext. xDS tells every proxy every service and endpoint and
// takes each proxy's word for who it is, so outside loopback it needs TLS (better: mutual TLS), or
// an explicit --insecure-xds, which is then warned about at start. Pure.
import { hostPort } from "../common/host-port.ts";

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and "localhost": reachable from this host only. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^(::ffff:)?127(\.\d{1,3}){3}$/.test(h);
}

export type Exposure = { ok: true; warning?: string } | { ok: false; error: string };

export function xdsExposure(host: string, port: number, tls: "none" | "tls" | "mtls", insecureXds: boolean): Exposure {
  const where = hostPort(host, port);
  if (tls !== "none" || isLoopbackHost(host)) {
    return tls === "tls" && !isLoopbackHost(host)
      ? { ok: true, warning: `xDS on ${where} uses TLS without client certificates (no --client-ca): any client that reaches it can claim any node id and learn every service and endpoint` }
      : { ok: true };
  }
  if (!insecureXds) {
    return { ok: false, error: `xDS on ${where} would be plaintext and unauthenticated outside loopback: give --tls-cert and --tls-key (and --client-ca for mutual TLS), or --insecure-xds to serve it plaintext anyway` };
  }
  return { ok: true, warning: `xDS on ${where} is plaintext and unauthenticated (--insecure-xds): anyone who reaches it learns every service and endpoint and can claim any node id` };
}
