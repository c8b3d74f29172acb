// The etcd client every etcd user here shares (the registry source, import and export): calls fail
// over between members with a deadline per attempt, and messages may be as large as a registry page.
import { handleWhen, IterableBackoff, noop, retry } from "cockatiel";
import { Etcd3, isRecoverableError } from "etcd3";

/** Bigger than any registry page or value; gRPC's default (4 MiB) is not. */
const MAX_MESSAGE_BYTES = 64 << 20;

/** A client on `hosts`; calls fail over between members, and messages may be large. */
export function etcdClient(hosts: string[], attemptTimeoutMs = 2000): Etcd3 {
  return new Etcd3({
    hosts: hosts.map((h) => `http://${h}`),
    dialTimeout: 2000,
    grpcOptions: {
      "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
      "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
      // A member that vanishes without closing its connections (a dead host) is noticed.
      "grpc.keepalive_time_ms": 10_000,
      "grpc.keepalive_timeout_ms": 5_000,
      // A member that comes back is reconnected to within a second, not after grpc's default back-off.
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 1000,
    },
    // Each attempt gets its own deadline: etcd3 retries a call on another member (3 attempts) with the
    // options it was given, so one deadline per call would leave the retries none after a first attempt
    // that hung on a member just killed. Streams (the watch) have none.
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + attemptTimeoutMs }),
    // No per-member circuit breaker: etcd3's stays open for 5 s after 3 failures, so right after members
    // come back every call would still be refused. A dead member costs one refused connection instead.
    // Two retries at once (each on another member: a dead one costs nothing), then two after a pause: a
    // member killed while it led leaves the others without a leader for an election, and etcd3's default
    // (three attempts at once) could spend all of them inside it.
    faultHandling: {
      host: () => noop,
      global: retry(handleWhen(isRecoverableError), { maxAttempts: 4, backoff: new IterableBackoff([0, 0, 250, 1000]) }),
    },
  });
}

/** An etcd client error's first line, without the resolver note grpc-js appends (it says nothing here). */
export const firstLine = (err: Error) => err.message.split("\n")[0]!.replace(/\.? Resolution note:.*$/, "");
