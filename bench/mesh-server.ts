// Child process of bench/mesh.ts and bench/kubernetes.ts: the control plane under test, alone in its
// process, so the memory and CPU figures are its own (in the benchmark's process, what its earlier
// sections left on the heap counted too). One JSON object per line:
//   argv   REGISTRY_DIR [PLANES_FILE] | --kubeconfig FILE
//   stdout {"port": N, "loadMs": L}                    serving (a file registry is loaded by then)
//   stdout {"applied": "<ns>", "services": S}          a "registry v..." log line, at process.hrtime (the
//                                                      monotonic clock every process of the benchmark shares),
//                                                      and how many services that version serves
//   stdin  {"cmd": "sample"}                           -> {"cpuMs": C, "rssMb": R, "peakMb": P}: CPU so far,
//                                                      RSS now and its peak since the previous sample
//   stdin  {"cmd": "profile-start"}                    -> {"profiling": true}
//   stdin  {"cmd": "profile-stop", "file": F}          -> {"profiled": F} (a .cpuprofile)
// MESH_SEND_BUDGET_MB sets the xDS send budget (0: none). Ends on SIGTERM.
import { Session } from "node:inspector/promises";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { createInterface } from "node:readline";
import { serve } from "../control/serve/serve.ts";
import { LOOP_GUARD_WASM } from "../envoy/paths.ts";

const args = process.argv.slice(2);
const source = args[0] === "--kubeconfig" ? { kubernetes: { kubeconfig: args[1]! } } : { registry: args[0]!, ...(args[1] ? { planesFile: args[1] } : {}) };
const MB = 2 ** 20;
const out = (o: object) => process.stdout.write(JSON.stringify(o) + "\n");

let peak = process.memoryUsage().rss;
setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20).unref();
const budgetMb = process.env.MESH_SEND_BUDGET_MB;
const sendBudget = budgetMb === undefined ? {} : { sendBudget: { maxBytes: Number(budgetMb) > 0 ? Number(budgetMb) * MB : Infinity } };
// "registry v3: 10000 services from 10000 resources" (serve/events.ts).
const log = (line: string) => {
  const m = /^registry v\d+: (\d+) services/.exec(line);
  if (m) out({ applied: process.hrtime.bigint().toString(), services: Number(m[1]) });
};
const t = performance.now();
const cp = await serve({ ...source, xdsPort: 0, httpPort: false, loopGuard: { wasmPath: LOOP_GUARD_WASM }, log, ...sendBudget });
out({ port: cp.xds.port, loadMs: performance.now() - t });
process.on("SIGTERM", () => void cp.stop().then(() => process.exit(0)));

let session: Session | undefined;
createInterface({ input: process.stdin }).on("line", (line) => void (async () => {
  const msg = JSON.parse(line) as { cmd: string; file?: string };
  if (msg.cmd === "sample") {
    const rss = process.memoryUsage().rss;
    const u = process.cpuUsage();
    out({ cpuMs: (u.user + u.system) / 1000, rssMb: rss / MB, peakMb: Math.max(peak, rss) / MB });
    peak = rss;
  } else if (msg.cmd === "profile-start") {
    session = new Session();
    session.connect();
    await session.post("Profiler.enable");
    await session.post("Profiler.start");
    out({ profiling: true });
  } else if (msg.cmd === "profile-stop" && session) {
    const { profile } = await session.post("Profiler.stop");
    session.disconnect();
    session = undefined;
    mkdirSync(dirname(msg.file!), { recursive: true });
    writeFileSync(msg.file!, JSON.stringify(profile));
    out({ profiled: msg.file });
  }
})());
