// What a client certificate proves, read from its subject alternative names: a SPIFFE id
// (spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>, the form Istio issues) and the IP
// addresses the certificate was issued for. Pure.
import { normaliseIp } from "../identity/ip.ts";

export interface SpiffeId {
  uri: string;
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

export interface PeerIdentity {
  /** The certificate's SPIFFE id; undefined when it has none in Istio's form. */
  spiffe?: SpiffeId;
  /** Why the SPIFFE id could not be taken (several, or a malformed one). */
  spiffeProblem?: string;
  /** IP SANs, canonical. */
  ips: string[];
  uris: string[];
  dns: string[];
  /** For logs: the SPIFFE id, or the subject's CN. */
  display: string;
}

/** A certificate as node:tls describes it (PeerCertificate has these fields). */
export interface CertificateFields {
  subject?: { CN?: string | string[] } | null;
  subjectaltname?: string;
}

const SPIFFE = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/;

/**
 * Node's subjectaltname text: `TYPE:value` entries separated by ", "; a value that contains a comma,
 * quote or other special character is written as a JSON string.
 */
export function parseSubjectAltNames(text: string): { type: string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(":", i);
    if (colon < 0) break;
    const type = text.slice(i, colon).trim();
    let value: string;
    let next: number;
    if (text[colon + 1] === '"') {
      // A JSON string: find its closing quote (skipping escapes).
      let j = colon + 2;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      try {
        value = JSON.parse(text.slice(colon + 1, j + 1)) as string;
      } catch {
        value = text.slice(colon + 2, j);
      }
      next = text.indexOf(", ", j + 1);
    } else {
      next = text.indexOf(", ", colon + 1);
      value = text.slice(colon + 1, next < 0 ? text.length : next);
    }
    out.push({ type, value });
    if (next < 0) break;
    i = next + 2;
  }
  return out;
}

export function peerIdentityOf(cert: CertificateFields): PeerIdentity {
  const sans = parseSubjectAltNames(cert.subjectaltname ?? "");
  const uris = sans.filter((s) => s.type === "URI").map((s) => s.value);
  const dns = sans.filter((s) => s.type === "DNS").map((s) => s.value);
  const ips = [...new Set(sans.filter((s) => s.type === "IP Address").flatMap((s) => normaliseIp(s.value) ?? []))];
  const spiffeUris = uris.filter((u) => u.toLowerCase().startsWith("spiffe://"));
  let spiffe: SpiffeId | undefined;
  let spiffeProblem: string | undefined;
  if (spiffeUris.length > 1) {
    spiffeProblem = `the certificate carries ${spiffeUris.length} SPIFFE ids (${spiffeUris.join(", ")}); a SPIFFE certificate has exactly one`;
  } else if (spiffeUris.length === 1) {
    const m = SPIFFE.exec(spiffeUris[0]!);
    if (m) spiffe = { uri: spiffeUris[0]!, trustDomain: m[1]!, namespace: m[2]!, serviceAccount: m[3]! };
    else spiffeProblem = `SPIFFE id ${spiffeUris[0]} is not of the form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`;
  }
  const cn = cert.subject?.CN;
  const display = spiffe?.uri ?? `CN=${Array.isArray(cn) ? cn.join("+") : cn ?? "(none)"}`;
  return { ...(spiffe ? { spiffe } : {}), ...(spiffeProblem ? { spiffeProblem } : {}), ips, uris, dns, display };
}
