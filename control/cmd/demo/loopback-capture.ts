// The rootless stand-in for iptables' REDIRECT: a listener bound on the captured address (the service's
// IP and port) that hands every connection to Envoy's virtual listener with a PROXY protocol v1 header
// carrying the connection's original source and destination — what REDIRECT plus SO_ORIGINAL_DST give
// Envoy in the kernel. Envoy's own connections to that address are captured too, exactly like the seed's
// `-o lo ! -d 127.0.0.1/32` rule, so a wrong OUTBOUND listener loops here as it does on a real node.
import net from "node:net";

export interface LoopbackCapture {
  /** Connections captured, and those whose source is not the demo's client (Envoy's own: the loop's hops). */
  counters(): { inbound: number; loopback: number; outbound: number };
  close(): Promise<void>;
}

export async function startLoopbackCapture(opts: {
  listen: { host: string; port: number };
  envoy: { host: string; port: number };
  /** Connections from this address are the client's ("inbound"); any other source is Envoy re-captured. */
  clientAddress: string;
  /** Hard bound: beyond this many, connections are refused (a loop must not exhaust this process). */
  maxConnections?: number;
}): Promise<LoopbackCapture> {
  const max = opts.maxConnections ?? 4000;
  let inbound = 0;
  let loopback = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (down) => {
    if (down.remoteAddress === opts.clientAddress) inbound++;
    else loopback++;
    if (inbound + loopback > max) { down.destroy(); return; }
    const up = net.connect({ host: opts.envoy.host, port: opts.envoy.port, allowHalfOpen: true });
    sockets.add(down);
    sockets.add(up);
    const v4 = (a: string | undefined) => (a ?? "").replace(/^::ffff:/, "");
    up.on("connect", () => {
      up.write(`PROXY TCP4 ${v4(down.remoteAddress)} ${v4(down.localAddress)} ${down.remotePort} ${down.localPort}\r\n`);
      down.pipe(up);
      up.pipe(down);
    });
    // A reset on either side resets the other, as it would end to end through NAT.
    const reset = () => { down.destroy(); up.destroy(); };
    down.on("error", reset);
    up.on("error", reset);
    // A side that closed ends the other (after what is buffered), and is gone for good a second later.
    const closeOther = (self: net.Socket, other: net.Socket) => self.on("close", () => {
      sockets.delete(self);
      if (other.destroyed) return;
      other.end();
      setTimeout(() => other.destroy(), 1000).unref();
    });
    closeOther(down, up);
    closeOther(up, down);
  });
  server.maxConnections = max;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.listen.port, opts.listen.host, () => resolve());
  });
  return {
    counters: () => ({ inbound, loopback, outbound: 0 }),
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
