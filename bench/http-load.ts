// Child process of bench/guard-http.ts: a load generator. For each command on stdin (one JSON line:
// {"host", "port", "connections", "seconds", "expected", "perConnection"}) it opens that many keep-alive
// connections, sends GETs on each, one at a time (a new connection after every `perConnection`
// requests, when given), until the time is up, checks every reply (status 200 and exactly the
// expected body), and answers one JSON line: {"ok": N, "bad": N, "sample": "first bad reply", "cpuMs": C}.
// Several of these run side by side, so the load comes from several cores.
import { createInterface } from "node:readline";
import { KeepAliveConnection } from "./http-client.ts";

interface Command { host: string; port: number; connections: number; seconds: number; expected: string; perConnection?: number }

const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

async function run(c: Command) {
  const expected = Buffer.from(c.expected);
  const deadline = Date.now() + c.seconds * 1000;
  let ok = 0, bad = 0;
  let sample: string | undefined;
  const cpu0 = cpuMs();
  await Promise.all(Array.from({ length: c.connections }, async () => {
    let conn = await KeepAliveConnection.open(c.host, c.port);
    try {
      for (let sent = 0; Date.now() < deadline; sent++) {
        if (c.perConnection !== undefined && sent > 0 && sent % c.perConnection === 0) {
          conn.close();
          conn = await KeepAliveConnection.open(c.host, c.port);
        }
        const r = await conn.get();
        if (r.status === 200 && r.body.equals(expected)) ok++;
        else { bad++; sample ??= `${r.status} ${r.body.toString("utf8").slice(0, 200)}`; }
      }
    } finally {
      conn.close();
    }
  }));
  return { ok, bad, ...(sample ? { sample } : {}), cpuMs: cpuMs() - cpu0 };
}

for await (const line of createInterface({ input: process.stdin })) {
  const result = await run(JSON.parse(line) as Command).catch((e: Error) => ({ ok: 0, bad: 0, error: e.message, cpuMs: 0 }));
  process.stdout.write(JSON.stringify(result) + "\n");
}
