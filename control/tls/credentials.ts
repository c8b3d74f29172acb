// gRPC server credentials for xDS from the control plane's certificate files: TLS, or mutual TLS
// (client certificate required and verified) when a client CA is given.
import * as grpc from "@grpc/grpc-js";
import type { CertificateFiles } from "./cert-files.ts";

export function xdsServerCredentials(files: CertificateFiles): grpc.ServerCredentials {
  // grpc-js 1.14 hands its first argument on as the identity provider and its second as the CA
  // provider (the declared parameter names say the opposite); one provider serves both here.
  return grpc.experimental.createCertificateProviderServerCredentials(files, files.mutual ? files : null, files.mutual);
}
