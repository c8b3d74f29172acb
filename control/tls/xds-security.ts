// How xDS is served: plaintext (loopback, or --insecure-xds), TLS, or mutual TLS; checked and set up
// once at start, with the warning a risky choice deserves.
import type * as grpc from "@grpc/grpc-js";
import { CertificateFiles, describeCertificate, type TlsFiles } from "./cert-files.ts";
import { xdsServerCredentials } from "./credentials.ts";
import { xdsExposure } from "./exposure.ts";

export interface XdsSecurity {
  mode: "plaintext" | "TLS" | "mutual TLS";
  /** Undefined: plaintext. */
  credentials?: grpc.ServerCredentials;
  /** The certificate files, watched for changes (stop() ends the watch). */
  certs?: CertificateFiles;
  stop(): void;
}

/** Throws when the choice is not allowed (plaintext outside loopback without --insecure-xds) or the files are unusable. */
export function xdsSecurity(host: string, port: number, tls: TlsFiles | undefined, insecureXds: boolean, log: (line: string) => void): XdsSecurity {
  const exposure = xdsExposure(host, port, tls ? (tls.clientCaFile ? "mtls" : "tls") : "none", insecureXds);
  if (!exposure.ok) throw new Error(exposure.error);
  if (exposure.warning) log(`warning: ${exposure.warning}`);
  if (!tls) return { mode: "plaintext", stop() {} };
  const certs = new CertificateFiles(tls, log);
  log(`xDS certificate ${tls.certFile}: ${describeCertificate(certs.current().cert)}${tls.clientCaFile ? `; client certificates must be signed by ${tls.clientCaFile}` : ""}`);
  return { mode: tls.clientCaFile ? "mutual TLS" : "TLS", credentials: xdsServerCredentials(certs), certs, stop: () => certs.stop() };
}
