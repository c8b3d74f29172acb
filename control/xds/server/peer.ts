// Who is at the other end of a stream, as far as the transport knows: the verified client certificate
// (mutual TLS) and the addresses of the connection. grpc-js gives a handler the certificate
// (getAuthContext) but not the connection's addresses, so a server interceptor copies them into the
// call's metadata under keys the server sets last (a client cannot supply them).
import * as grpc from "@grpc/grpc-js";
import type { PeerCertificate } from "node:tls";

export interface StreamPeer {
  /** The client certificate, when the connection is TLS and the certificate was verified against the client CA. */
  certificate?: PeerCertificate;
  /** The control plane's address this connection arrived at (IPv4-mapped IPv6 unwrapped). */
  localAddress?: string;
  /** The client's address. */
  remoteAddress?: string;
  /** Names the HTTP/2 connection (the client's address and port, as grpc-js gives it): work is shared out by connection. */
  connection: string;
}

const LOCAL_ADDRESS_KEY = "x-multiplane-local-address";
const REMOTE_ADDRESS_KEY = "x-multiplane-remote-address";

const unmapped = (a: string | undefined) => (a?.startsWith("::ffff:") && a.includes(".") ? a.slice(7) : a);

/** Records the connection's addresses in the call's metadata, replacing anything a client sent under those keys. */
export const connectionInterceptor: grpc.ServerInterceptor = (_method, call) => new grpc.ServerInterceptingCall(call, {
  start(next) {
    next({
      onReceiveMetadata(metadata, mdNext) {
        const info = call.getConnectionInfo();
        for (const [key, address] of [[LOCAL_ADDRESS_KEY, info.localAddress], [REMOTE_ADDRESS_KEY, info.remoteAddress]] as const) {
          metadata.remove(key);
          const a = unmapped(address);
          if (a) metadata.set(key, a);
        }
        mdNext(metadata);
      },
    });
  },
});

export function peerOf(call: grpc.ServerDuplexStream<unknown, unknown>): StreamPeer {
  const auth = call.getAuthContext();
  const local = call.metadata.get(LOCAL_ADDRESS_KEY)[0];
  const remote = call.metadata.get(REMOTE_ADDRESS_KEY)[0];
  return {
    connection: call.getPeer(),
    ...(auth?.sslPeerCertificate ? { certificate: auth.sslPeerCertificate } : {}),
    ...(typeof local === "string" ? { localAddress: local } : {}),
    ...(typeof remote === "string" ? { remoteAddress: remote } : {}),
  };
}
