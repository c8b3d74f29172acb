// An ADS client over plain node:http2 that stops reading when told to, as a stuck or slow Envoy
// would: once its HTTP/2 flow-control window (64 KiB) is full, the server cannot send it anything
// more. resume() reads again and decodes every response that was held back. It can also send bytes
// that are not a request at all, and announce Envoy's large windows (then only a stalled TCP
// connection, stallingRelay, holds the server back).
import http2 from "node:http2";
import net from "node:net";
import { adsServiceDefinition } from "../../control/xds/cache/protos.ts";

const SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService";

export interface SlowReader {
  /** Responses decoded so far (only while reading). */
  responses: any[];
  write(request: object): void;
  /** Sends `body` as one gRPC message as it is: bytes that need not be a request at all. */
  writeFrame(body: Uint8Array): void;
  pause(): void;
  resume(): void;
  close(): void;
}

export function slowReader(port: number, method: "StreamAggregatedResources" | "DeltaAggregatedResources", opts: { windowBytes?: number } = {}): SlowReader {
  const def = (adsServiceDefinition()[SERVICE] as any)[method];
  const session = http2.connect(`http://127.0.0.1:${port}`, opts.windowBytes ? { settings: { initialWindowSize: opts.windowBytes } } : {});
  if (opts.windowBytes) session.on("connect", () => session.setLocalWindowSize(opts.windowBytes!));
  session.on("error", () => {});
  const stream = session.request({ ":method": "POST", ":path": `/${SERVICE}/${method}`, "content-type": "application/grpc", te: "trailers" });
  stream.on("error", () => {});
  const responses: any[] = [];
  let pending = Buffer.alloc(0);
  stream.on("data", (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
      const len = pending.readUInt32BE(1);
      responses.push(def.responseDeserialize(pending.subarray(5, 5 + len)));
      pending = pending.subarray(5 + len);
    }
  });
  return {
    responses,
    write(request) {
      this.writeFrame(def.requestSerialize(request));
    },
    writeFrame(body) {
      const frame = Buffer.alloc(5 + body.length);
      frame.writeUInt32BE(body.length, 1);
      frame.set(body, 5);
      stream.write(frame);
    },
    pause: () => stream.pause(),
    resume: () => stream.resume(),
    close() {
      stream.destroy();
      session.destroy();
    },
  };
}

export interface StallingRelay {
  port: number;
  /** Stops reading from the server: its socket's buffers fill, as when the proxy's thread is stuck. */
  stall(): void;
  close(): Promise<void>;
}

/**
 * A TCP relay to 127.0.0.1:`target` that can stop reading from the server. An Envoy announces
 * HTTP/2 windows of 256 MiB, so a stuck Envoy is held back by the TCP connection, not by flow control.
 */
export async function stallingRelay(target: number): Promise<StallingRelay> {
  const upstreams = new Set<net.Socket>();
  const all = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const up = net.connect(target, "127.0.0.1");
    for (const s of [client, up]) { all.add(s); s.on("error", () => {}); s.on("close", () => all.delete(s)); }
    upstreams.add(up);
    client.pipe(up);
    up.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    stall() {
      for (const up of upstreams) { up.unpipe(); up.pause(); }
    },
    close: () => new Promise((resolve) => { for (const s of all) s.destroy(); server.close(() => resolve()); }),
  };
}
