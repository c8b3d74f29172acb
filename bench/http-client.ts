// A minimal HTTP/1.1 keep-alive client for the benchmarks: one connection, one GET at a time, the
// response framed by Content-Length and compared byte for byte with the body expected. It does a
// fraction of node:http's work per request, so the load generator is not what the benchmark measures.
import net from "node:net";

const HEADER_END = Buffer.from("\r\n\r\n");
const CONTENT_LENGTH = /\r\ncontent-length:\s*(\d+)/i;

export interface Reply {
  status: number;
  body: Buffer;
}

export class KeepAliveConnection {
  private buffered: Buffer = Buffer.alloc(0);
  private pending?: { resolve: (r: Reply) => void; reject: (e: Error) => void };
  private failure?: Error;

  private constructor(private readonly socket: net.Socket, private readonly request: Buffer) {
    socket.on("data", (d: Buffer) => {
      this.buffered = this.buffered.length === 0 ? d : Buffer.concat([this.buffered, d]);
      this.deliver();
    });
    const fail = (e: Error) => {
      this.failure ??= e;
      this.pending?.reject(e);
      this.pending = undefined;
    };
    socket.on("error", fail);
    socket.on("close", () => fail(new Error("connection closed")));
  }

  static open(host: string, port: number, hostHeader = "bench.example"): Promise<KeepAliveConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, noDelay: true });
      socket.once("connect", () => resolve(new KeepAliveConnection(socket, Buffer.from(`GET / HTTP/1.1\r\nhost: ${hostHeader}\r\n\r\n`))));
      socket.once("error", reject);
    });
  }

  /** One GET; resolves with the status and body, rejects if the connection fails. */
  get(): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(this.request);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private deliver(): void {
    const end = this.buffered.indexOf(HEADER_END);
    if (end < 0 || !this.pending) return;
    const head = this.buffered.subarray(0, end).toString("latin1");
    const length = Number(CONTENT_LENGTH.exec(head)?.[1] ?? 0);
    const bodyStart = end + HEADER_END.length;
    if (this.buffered.length < bodyStart + length) return;
    const reply = { status: Number(head.slice(9, 12)), body: this.buffered.subarray(bodyStart, bodyStart + length) };
    this.buffered = this.buffered.subarray(bodyStart + length);
    const p = this.pending;
    this.pending = undefined;
    p.resolve(reply);
  }
}
