// Loopback-only network helpers for tests and benchmarks.
import net from "node:net";

export { freePort, waitFor } from "../../control/cmd/demo/wait.ts";

export interface EchoServer {
  host: string;
  port: number;
  connections: number;
  close(): Promise<void>;
}

/** A TCP server that writes back every byte it receives. */
export function startEcho(host = "127.0.0.1", port = 0): Promise<EchoServer> {
  return new Promise((resolve, reject) => {
    const sockets = new Set<net.Socket>();
    const echo: EchoServer = {
      host, port: 0, connections: 0,
      close: () => new Promise((r) => { for (const s of sockets) s.destroy(); srv.close(() => r()); }),
    };
    const srv = net.createServer((s) => {
      echo.connections++;
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
      s.pipe(s);
    });
    srv.once("error", reject);
    srv.listen(port, host, () => {
      echo.port = (srv.address() as net.AddressInfo).port;
      resolve(echo);
    });
  });
}

export interface ExchangeResult {
  /** Bytes received before the connection ended. */
  received: string;
  /** How the connection ended: the peer closed it, it was reset, it was refused, or we gave up. */
  ended: "closed" | "reset" | "refused" | "timeout" | "echoed";
}

/** Connects, sends `payload`, and reports what came back: "echoed" once `payload` returned in full. */
export function exchange(host: string, port: number, payload: string, opts: { timeoutMs?: number; localAddress?: string } = {}): Promise<ExchangeResult> {
  return new Promise((resolve) => {
    let received = "";
    let done = false;
    const finish = (ended: ExchangeResult["ended"]) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ received, ended });
    };
    const sock = net.connect({ host, port, localAddress: opts.localAddress }, () => sock.write(payload));
    const timer = setTimeout(() => finish("timeout"), opts.timeoutMs ?? 3000);
    sock.on("data", (d) => {
      received += d.toString("utf8");
      if (received === payload) finish("echoed");
    });
    sock.on("end", () => finish("closed"));
    sock.on("close", () => finish("closed"));
    sock.on("error", (e: NodeJS.ErrnoException) => finish(e.code === "ECONNREFUSED" ? "refused" : "reset"));
  });
}
