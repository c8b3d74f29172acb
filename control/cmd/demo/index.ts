// `multiplane demo [--json] [--environment netns|loopback]`: runs the seed's matrix (scenario.ts) and prints
// a table, or with --json `{"scenarios": [...]}`. Namespaces when root, otherwise the rootless loopback
// variant. Progress goes to stderr; the exit code is 0 when every row behaved as expected
// (scenario.ts: unexpected()).
import { parseArgs } from "node:util";
import { resolveEnvoy } from "../../../envoy/resolve.ts";
import { netnsUnavailableReason } from "./netns.ts";
import { defaultEnvironment, runScenario, type Environment } from "./runner.ts";
import { MATRIX, renderTable, toJson, unexpected, type ScenarioResult } from "./scenario.ts";

const DEMO_USAGE = `usage: multiplane demo [--json] [--environment netns|loopback] [--only NAME,...]
  Runs the seed's matrix (legacy/multi-IP control plane x loop guard x INSTANCE_IPS, Service A on a TCP
  port, and one row on an HTTP port), one real HTTP request per row, and prints a table (or JSON). netns (default as root): two-interface node in network namespaces
  with Istio 1.0 iptables capture. loopback (default otherwise): the same on 127.0.0.x, rootless.
  Exit code 0 when every row behaved as expected.
`;

export interface DemoIo {
  out: (text: string) => void;
  err: (line: string) => void;
}

const defaultIo: DemoIo = { out: (t) => process.stdout.write(t), err: (l) => process.stderr.write(`${l}\n`) };

export async function demoCommand(args: string[], io: DemoIo = defaultIo): Promise<number> {
  const { values } = parseArgs({
    args, strict: true,
    options: { json: { type: "boolean" }, environment: { type: "string" }, only: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) { io.out(DEMO_USAGE); return 0; }
  const requested = values.environment;
  if (requested !== undefined && requested !== "netns" && requested !== "loopback") throw new Error(`demo: --environment must be netns or loopback, got ${JSON.stringify(requested)}`);
  const environment: Environment = requested ?? defaultEnvironment();
  if (environment === "netns") {
    const why = netnsUnavailableReason();
    if (why) throw new Error(`demo: network namespaces unavailable: ${why} (or use --environment loopback)`);
  }
  const names = values.only?.split(",").map((s) => s.trim()).filter(Boolean);
  const specs = names ? MATRIX.filter((s) => names.includes(s.name)) : [...MATRIX];
  if (names && specs.length !== names.length) throw new Error(`demo: --only: unknown case in ${values.only}; cases: ${MATRIX.map((s) => s.name).join(", ")}`);

  resolveEnvoy(); // fail early, with the resolver's one-line message, when there is no Envoy
  if (!requested && environment === "loopback") io.err(`demo: ${netnsUnavailableReason()}; running the rootless loopback variant (127.0.0.x)`);
  io.err(environment === "netns"
    ? "demo: the seed's node in network namespaces: 192.168.10.63 + 10.75.8.101, Istio 1.0 iptables capture, Envoy as uid 1337 with ulimit -n 512"
    : "demo: loopback variant: node IPs 127.0.0.2 + 127.0.0.1, capture by a bound listener handing off with PROXY protocol, Envoy with ulimit -n 512");

  const started = Date.now();
  const results: ScenarioResult[] = [];
  for (const spec of specs) {
    io.err(`demo: ${spec.name}: ${spec.story}`);
    results.push(await runScenario(spec, environment, { log: (l) => io.err(`  ${l}`) }));
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);

  const problems = results.flatMap((r) => unexpected(r).map((p) => `${r.name}: ${p}`));
  if (values.json) {
    io.out(`${JSON.stringify(toJson(results), null, 2)}\n`);
  } else {
    io.out(`\n${renderTable(results)}\n\n`);
    for (const r of results) {
      const spec = specs.find((s) => s.name === r.name)!;
      io.out(`${r.name}: ${spec.story}\n`);
    }
    io.out(`\n${environment === "netns" ? "network namespaces" : "loopback"}, ${results.length} rows in ${seconds} s; ` +
      `${problems.length === 0 ? "every row behaved as expected" : `${problems.length} unexpected outcome(s)`}\n`);
  }
  for (const p of problems) io.err(`demo: unexpected: ${p}`);
  return problems.length === 0 ? 0 : 1;
}
