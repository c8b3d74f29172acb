// Child process of bench/agents.ts: node agents, each a control/agent/reporter.ts Reporter (the client
// `multiplane agent` runs) on its own connection to the control plane's xDS port, plaintext on loopback.
// Protocol with the parent, one JSON object per line:
//   stdout {"ready": true, "cpuMs": C}                              loaded (C: start-up, not the agents' work)
//   stdin  {"reports": [{"nodeIds": [...], "ips": [...]}, ...]}   agent k reports reports[k] (all at once)
//   stdout {"t0": ns, "answered": N, "applied": A, "refused": R, "lastAnswerMs": T, "cpuMs": C}
//          once every agent has its answer: t0 is just before the first report was written, A the proxy
//          streams the reports were applied to, R the IPs and proxies refused, T t0 -> the last answer
// The first command opens the agents' streams (their first report); later ones report on open streams.
// cpuMs is this process's CPU time so far, so the parent can show the agents are not the bottleneck.
import * as grpc from "@grpc/grpc-js";
import { createInterface } from "node:readline";
import { Reporter } from "../control/agent/reporter.ts";
import type { AgentAnswer } from "../control/xds/server/agent-protocol.ts";

// Ended by the parent with SIGTERM: exit normally, so a --cpu-prof profile is written.
process.on("SIGTERM", () => process.exit(0));

const [target] = process.argv.slice(2) as [string];
const reporters: Reporter[] = [];
const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const log = (line: string) => { if (line.includes("broken")) process.stderr.write(`${line}\n`); };

process.stdout.write(JSON.stringify({ ready: true, cpuMs: cpuMs() }) + "\n");
createInterface({ input: process.stdin }).on("line", (line) => {
  const { reports } = JSON.parse(line) as { reports: { nodeIds: string[]; ips: string[] }[] };
  // One connection per agent, as agents on separate nodes have (grpc-js would share one otherwise).
  while (reporters.length < reports.length) {
    reporters.push(new Reporter({ target, credentials: grpc.credentials.createInsecure(), channelOptions: { "grpc.use_local_subchannel_pool": 1 }, nodeIds: reports[reporters.length]!.nodeIds, log }));
  }
  let lastAt = 0n;
  const answers = reports.map((_, k) => reporters[k]!.nextAnswer().then((a: AgentAnswer) => { lastAt = process.hrtime.bigint(); return a; }));
  const t0 = process.hrtime.bigint();
  reports.forEach((r, k) => reporters[k]!.set(r.ips));
  void Promise.all(answers).then((all) => {
    const applied = all.reduce((n, a) => n + a.nodes.reduce((m, x) => m + x.applied, 0), 0);
    const refused = all.reduce((n, a) => n + a.refused.length + a.nodes.reduce((m, x) => m + x.refused.length, 0), 0);
    process.stdout.write(JSON.stringify({ t0: t0.toString(), answered: all.length, applied, refused, lastAnswerMs: Number(lastAt - t0) / 1e6, cpuMs: cpuMs() }) + "\n");
  });
});
