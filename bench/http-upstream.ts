// Child process of bench/guard-http.ts: the HTTP upstream, in its own process, on several ports (Envoy
// spreads its connections over them). Every request is answered 200 with
// "ok hops=<x-multiplane-hops> cdn-loop=<cdn-loop>\n", the headers the filters under test add, so the
// load generator can check that each request really passed through the filter. Raw sockets: a
// fraction of node:http's cost per request. Prints the ports, comma separated, once listening.
import net from "node:net";

const PORTS = Number(process.argv[2] ?? 4);
const HEADER_END = Buffer.from("\r\n\r\n");
const header = (head: string, name: RegExp) => name.exec(head)?.[1]?.trim() ?? "";

function reply(head: string): Buffer {
  const body = `ok hops=${header(head, /\r\nx-multiplane-hops:([^\r]*)/i)} cdn-loop=${header(head, /\r\ncdn-loop:([^\r]*)/i)}\n`;
  return Buffer.from(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

const ports: number[] = [];
for (let i = 0; i < PORTS; i++) {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    let buffered: Buffer = Buffer.alloc(0);
    socket.on("data", (d: Buffer) => {
      buffered = buffered.length === 0 ? d : Buffer.concat([buffered, d]);
      // Requests without bodies (GET): each ends at its blank line.
      for (let end = buffered.indexOf(HEADER_END); end >= 0; end = buffered.indexOf(HEADER_END)) {
        socket.write(reply(buffered.subarray(0, end).toString("latin1")));
        buffered = buffered.subarray(end + HEADER_END.length);
      }
    });
    socket.on("error", () => {});
  });
  server.listen(0, "127.0.0.1", () => {
    ports.push((server.address() as net.AddressInfo).port);
    if (ports.length === PORTS) process.stdout.write(`${ports.join(",")}\n`);
  });
}
