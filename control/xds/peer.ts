// Who is at the other end of a stream, as far as the transport knows: the verified client certificate
// (mutual TLS) and the addresses of the connection. grpc-js gives a handler the certificate
// (getAuthContext) but not the connection's local address, so a server interceptor copies that into
// the call's metadata under a key the server sets last (a client cannot supply it).
import * as grpc from "@grpc/grpc-js";
import type { PeerCertificate } from "node:tls";

export interface StreamPeer {
  /** The client certificate, when the connection is TLS and the certificate was verified against the client CA. */
  certificate?: PeerCertificate;
  /** The control plane's address this connection arrived at (IPv4-mapped IPv6 unwrapped). */
  localAddress?: string;
}

const LOCAL_ADDRESS_KEY = "x-multiplane-local-address";

const unmapped = (a: string | undefined) => (a?.startsWith("::ffff:") && a.includes(".") ? a.slice(7) : a);

/** Records the connection's local address in the call's metadata, replacing anything a client sent under that key. */
export const connectionInterceptor: grpc.ServerInterceptor = (_method, call) => new grpc.ServerInterceptingCall(call, {
  start(next) {
    next({
      onReceiveMetadata(metadata, mdNext) {
        metadata.remove(LOCAL_ADDRESS_KEY);
        const local = unmapped(call.getConnectionInfo().localAddress);
        if (local) metadata.set(LOCAL_ADDRESS_KEY, local);
        mdNext(metadata);
      },
    });
  },
});

export function peerOf(call: grpc.ServerDuplexStream<unknown, unknown>): StreamPeer {
  const auth = call.getAuthContext();
  const local = call.metadata.get(LOCAL_ADDRESS_KEY)[0];
  return {
    ...(auth?.sslPeerCertificate ? { certificate: auth.sslPeerCertificate } : {}),
    ...(typeof local === "string" ? { localAddress: local } : {}),
  };
}
