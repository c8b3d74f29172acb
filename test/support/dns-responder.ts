// A tiny DNS server for tests, run inside a network namespace with `node -e DNS_RESPONDER_SOURCE ADDRESS
// PORT NAMES_JSON`: it answers A queries for the test's names only (NXDOMAIN for any other name, no
// data for other types; nothing is ever forwarded), and prints "ready" and then one JSON line per
// query, so a test can see that Envoy asked it.

/** Plain JavaScript (runs with `node -e`, no TypeScript loader needed inside the namespace). */
export const DNS_RESPONDER_SOURCE = String.raw`
const dgram = require("node:dgram");
const [address, port, namesJson] = process.argv.slice(1);
const names = JSON.parse(namesJson);
const sock = dgram.createSocket(address.includes(":") ? "udp6" : "udp4");
function readName(msg, off) {
  const labels = [];
  for (;;) {
    const len = msg[off];
    if (len === undefined) throw new Error("truncated name");
    if (len === 0) return { name: labels.join(".").toLowerCase(), end: off + 1 };
    if (len >= 0xc0) throw new Error("compressed question name");
    labels.push(msg.toString("latin1", off + 1, off + 1 + len));
    off += 1 + len;
  }
}
sock.on("message", (msg, rinfo) => {
  let q;
  try {
    if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return; // one question, as resolvers send
    const { name, end } = readName(msg, 12);
    q = { name, type: msg.readUInt16BE(end), end: end + 4 };
  } catch { return; }
  const ip = names[q.name];
  const answer = ip && q.type === 1 ? Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, ...ip.split(".").map(Number)]) : Buffer.alloc(0);
  const head = Buffer.alloc(12);
  head.writeUInt16BE(msg.readUInt16BE(0), 0); // id
  // QR, opcode 0, AA, RD copied, RA; rcode 3 (NXDOMAIN) for names this server does not hold.
  head.writeUInt16BE(0x8400 | (msg.readUInt16BE(2) & 0x0100) | 0x0080 | (ip ? 0 : 3), 2);
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(answer.length ? 1 : 0, 6);
  sock.send(Buffer.concat([head, msg.subarray(12, q.end), answer]), rinfo.port, rinfo.address);
  process.stdout.write(JSON.stringify({ query: q.name, type: q.type, answered: Boolean(answer.length) }) + "\n");
});
sock.on("error", (e) => { process.stderr.write("dns responder: " + e.message + "\n"); process.exit(1); });
sock.bind(Number(port), address, () => process.stdout.write("ready\n"));
`;

/** The queries a responder printed so far. */
export function dnsQueries(output: string): { query: string; type: number; answered: boolean }[] {
  return output.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}
