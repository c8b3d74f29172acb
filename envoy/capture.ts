// Traffic capture in the style of Istio 1.0's istio-iptables.sh (REDIRECT mode, every inbound port):
// inbound TCP (PREROUTING) and the node's outbound TCP (OUTPUT) go to Envoy's virtual listener on 15001,
// except Envoy's own traffic (owner uid/gid) and the excluded ports (Envoy admin, xDS, ssh).
//
// Faithful to 1.0 on purpose, including the rule `-o lo ! -d 127.0.0.1/32 -j ISTIO_REDIRECT`, which sits
// BEFORE the owner RETURN rules: Envoy's own connection to a non-127.0.0.1 address of this node (it leaves
// through `lo`) is captured again. That is the rule through which the seed's loop closes (README, "The story").
//
// The rules are a pure function (captureRules) so they can be unit-tested; install/uninstall apply them with
// the iptables binary, idempotently, and report every change they made.
import { execFile } from "node:child_process";
import { parseArgs } from "node:util";

export const NAT = "nat";
const CHAINS = ["ISTIO_REDIRECT", "ISTIO_INBOUND", "ISTIO_OUTPUT"] as const;
export type IstioChain = (typeof CHAINS)[number];

export interface CaptureOptions {
  /** Envoy's virtual listener (use_original_dst). Default 15001. */
  proxyPort?: number;
  /** Envoy's uid(s) whose own outbound traffic is not captured (after the `lo` rule). */
  proxyUids?: number[];
  /** Envoy's gid(s), same. At least one uid or gid is required. */
  proxyGids?: number[];
  /** Inbound destination ports that are never captured. 22 is always added, as Istio does. */
  excludeInboundPorts?: number[];
  /** Outbound destination ports that are never captured (placed first in ISTIO_OUTPUT). */
  excludeOutboundPorts?: number[];
  /** Istio 1.0's `-o lo ! -d 127.0.0.1/32 -j ISTIO_REDIRECT` (DISABLE_REDIRECTION_ON_LOCAL_LOOPBACK unset). Default true. */
  redirectLocalLoopback?: boolean;
}

const DEFAULT_PROXY_PORT = 15001;
const DEFAULT_PROXY_ID = 1337;
const DEFAULT_ADMIN_PORT = 15000;
const DEFAULT_XDS_PORT = 15010;

/** One rule of the nat table, as the argument list after `iptables -t nat -A <chain>`. */
export interface Rule {
  chain: IstioChain | "PREROUTING" | "OUTPUT";
  args: string[];
}

/**
 * The jumps from the built-in chains into ours: the one definition that install adds, uninstall removes
 * and --dry-run prints. They do not depend on the options.
 */
const JUMPS: readonly Rule[] = [
  { chain: "PREROUTING", args: ["-p", "tcp", "-j", "ISTIO_INBOUND"] },
  { chain: "OUTPUT", args: ["-p", "tcp", "-j", "ISTIO_OUTPUT"] },
];

/** Our chains in the order they are removed: users before the chain they jump to. */
const REMOVAL_ORDER: readonly IstioChain[] = [...CHAINS].reverse();

export interface CapturePlan {
  /** Our chains with their rules, in order. */
  chains: Record<IstioChain, Rule[]>;
  /** The jumps from the built-in chains into ours (always JUMPS). */
  jumps: readonly Rule[];
}

function checkPort(p: number, what: string): number {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`${what}: invalid port ${p}`);
  return p;
}

function checkId(id: number, what: string): number {
  if (!Number.isInteger(id) || id < 0) throw new Error(`${what}: invalid id ${id}`);
  return id;
}

const uniq = (xs: number[]) => [...new Set(xs)];

/** The rules, in Istio 1.0's order. Pure: no I/O. */
export function captureRules(opts: CaptureOptions = {}): CapturePlan {
  const proxyPort = checkPort(opts.proxyPort ?? DEFAULT_PROXY_PORT, "proxy port");
  const uids = uniq((opts.proxyUids ?? []).map((u) => checkId(u, "proxy uid")));
  const gids = uniq((opts.proxyGids ?? []).map((g) => checkId(g, "proxy gid")));
  if (uids.length === 0 && gids.length === 0) throw new Error("capture: Envoy's uid or gid is required, or its own traffic would be captured forever");
  const inEx = uniq([22, ...(opts.excludeInboundPorts ?? [])].map((p) => checkPort(p, "excluded inbound port")));
  const outEx = uniq((opts.excludeOutboundPorts ?? []).map((p) => checkPort(p, "excluded outbound port")));

  const redirect: Rule[] = [{ chain: "ISTIO_REDIRECT", args: ["-p", "tcp", "-j", "REDIRECT", "--to-ports", String(proxyPort)] }];
  const inbound: Rule[] = [
    ...inEx.map((p): Rule => ({ chain: "ISTIO_INBOUND", args: ["-p", "tcp", "--dport", String(p), "-j", "RETURN"] })),
    { chain: "ISTIO_INBOUND", args: ["-p", "tcp", "-j", "ISTIO_REDIRECT"] },
  ];
  const output: Rule[] = [
    ...outEx.map((p): Rule => ({ chain: "ISTIO_OUTPUT", args: ["-p", "tcp", "--dport", String(p), "-j", "RETURN"] })),
    // Istio 1.0: "Redirect app calls to back itself via Envoy when using the service VIP or endpoint address".
    // Before the owner exclusion, so it also catches Envoy's own connection to this node's other IPs.
    ...(opts.redirectLocalLoopback ?? true ? [{ chain: "ISTIO_OUTPUT" as const, args: ["-o", "lo", "!", "-d", "127.0.0.1/32", "-j", "ISTIO_REDIRECT"] }] : []),
    ...uids.map((u): Rule => ({ chain: "ISTIO_OUTPUT", args: ["-m", "owner", "--uid-owner", String(u), "-j", "RETURN"] })),
    ...gids.map((g): Rule => ({ chain: "ISTIO_OUTPUT", args: ["-m", "owner", "--gid-owner", String(g), "-j", "RETURN"] })),
    { chain: "ISTIO_OUTPUT", args: ["-d", "127.0.0.1/32", "-j", "RETURN"] },
    { chain: "ISTIO_OUTPUT", args: ["-j", "ISTIO_REDIRECT"] },
  ];
  return {
    chains: { ISTIO_REDIRECT: redirect, ISTIO_INBOUND: inbound, ISTIO_OUTPUT: output },
    jumps: JUMPS,
  };
}

/** The whole plan as iptables argument lists (`iptables -w <args>`), in the order install runs them on a clean table. */
export function installCommands(plan: CapturePlan): string[][] {
  const cmds: string[][] = [];
  // Chains first (a jump needs its target), ISTIO_REDIRECT before the chains that jump to it.
  for (const chain of CHAINS) {
    cmds.push(["-t", NAT, "-N", chain]);
    for (const r of plan.chains[chain]) cmds.push(["-t", NAT, "-A", r.chain, ...r.args]);
  }
  for (const j of plan.jumps) cmds.push(["-t", NAT, "-A", j.chain, ...j.args]);
  return cmds;
}

/** Removal on a fully installed table: jumps out of the built-in chains, then flush and delete ours (users before targets). */
export function uninstallCommands(plan: CapturePlan): string[][] {
  const cmds: string[][] = [];
  for (const j of plan.jumps) cmds.push(["-t", NAT, "-D", j.chain, ...j.args]);
  for (const chain of REMOVAL_ORDER) cmds.push(["-t", NAT, "-F", chain], ["-t", NAT, "-X", chain]);
  return cmds;
}

/** A shell rendering of argument lists (for printing). */
export function renderCommand(args: string[], bin = "iptables"): string {
  return [bin, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
}

// ---------------------------------------------------------------------------------------------- applying

export interface Runner {
  /** Runs iptables with args; resolves with exit code and output (never rejects on a non-zero exit). */
  (args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
}

/** Runs the iptables binary (optionally inside `ip netns exec NS`). `-w` waits for the xtables lock. */
export function iptablesRunner(opts: { bin?: string; netns?: string } = {}): Runner {
  const bin = opts.bin ?? "iptables";
  return (args) => new Promise((resolve, reject) => {
    const [file, argv] = opts.netns ? ["ip", ["netns", "exec", opts.netns, bin, "-w", ...args]] : [bin, ["-w", ...args]];
    execFile(file, argv, { encoding: "utf8", timeout: 15000 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: string | number }) | null;
      if (e && typeof e.code === "string") {
        reject(new Error(e.code === "ENOENT" ? `${file}: not found (Debian: apt-get install -y iptables)` : `${file}: ${e.message}`));
        return;
      }
      resolve({ code: e ? Number(e.code ?? 1) : 0, stdout, stderr });
    });
  });
}

export interface CaptureResult {
  /** Every iptables command that changed the table, in the order run. Empty = nothing to do. */
  changes: string[][];
}

async function must(run: Runner, args: string[], changes: string[][], log: (line: string) => void): Promise<void> {
  const r = await run(args);
  if (r.code !== 0) throw new Error(`${renderCommand(args)} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  changes.push(args);
  log(`+ ${renderCommand(args)}`);
}

async function chainExists(run: Runner, chain: string): Promise<boolean> {
  return (await run(["-t", NAT, "-S", chain])).code === 0;
}

/** Rules currently in `chain` (`-S` lines other than the chain's own -N/-P line). */
async function chainRuleCount(run: Runner, chain: string): Promise<number> {
  const r = await run(["-t", NAT, "-S", chain]);
  return r.stdout.split("\n").filter((l) => l.startsWith("-A ")).length;
}

async function ruleExists(run: Runner, rule: Rule): Promise<boolean> {
  return (await run(["-t", NAT, "-C", rule.chain, ...rule.args])).code === 0;
}

/** Is `chain` exactly `rules`? Same count, every rule present, and in order (checked through -S line positions). */
async function chainMatches(run: Runner, chain: IstioChain, rules: Rule[]): Promise<boolean> {
  if (!(await chainExists(run, chain))) return false;
  if ((await chainRuleCount(run, chain)) !== rules.length) return false;
  for (const r of rules) if (!(await ruleExists(run, r))) return false;
  // Order: iptables prints rules in its own canonical syntax, so compare what orders ours (target, port,
  // owner, interface, destination) line by line rather than the text.
  const listed = (await run(["-t", NAT, "-S", chain])).stdout.split("\n").filter((l) => l.startsWith("-A "));
  const signature = (args: string[]) => {
    const j = args[args.indexOf("-j") + 1] ?? "";
    const port = args.includes("--dport") ? args[args.indexOf("--dport") + 1] : "";
    const owner = args.includes("--uid-owner") ? `u${args[args.indexOf("--uid-owner") + 1]}` : args.includes("--gid-owner") ? `g${args[args.indexOf("--gid-owner") + 1]}` : "";
    const lo = args.includes("lo") ? "lo" : "";
    const dst = args.includes("127.0.0.1/32") ? "d" : "";
    return `${j}|${port}|${owner}|${lo}|${dst}`;
  };
  return listed.every((line, i) => signature(line.split(/\s+/)) === signature(rules[i]!.args));
}

/**
 * Installs the capture. Idempotent: an identical installation is left alone (no changes); a chain that differs
 * (other options, a hand edit) is flushed and rewritten; missing jumps are added, duplicate jumps removed.
 */
export async function installCapture(opts: CaptureOptions, run: Runner = iptablesRunner(), log: (line: string) => void = () => {}): Promise<CaptureResult> {
  const plan = captureRules(opts);
  const changes: string[][] = [];
  for (const chain of CHAINS) {
    const rules = plan.chains[chain];
    if (await chainMatches(run, chain, rules)) continue;
    if (await chainExists(run, chain)) await must(run, ["-t", NAT, "-F", chain], changes, log);
    else await must(run, ["-t", NAT, "-N", chain], changes, log);
    for (const r of rules) await must(run, ["-t", NAT, "-A", r.chain, ...r.args], changes, log);
  }
  for (const j of plan.jumps) {
    // Exactly one jump: remove extras (a previous partial run, or a hand-added copy), add if missing.
    let count = 0;
    const listed = (await run(["-t", NAT, "-S", j.chain])).stdout.split("\n");
    for (const line of listed) if (line.startsWith(`-A ${j.chain} `) && line.includes(`-j ${j.args[j.args.length - 1]}`)) count++;
    for (; count > 1; count--) await must(run, ["-t", NAT, "-D", j.chain, ...j.args], changes, log);
    if (!(await ruleExists(run, j))) await must(run, ["-t", NAT, "-A", j.chain, ...j.args], changes, log);
  }
  return { changes };
}

/** Removes the capture: every jump into our chains, then our chains. Idempotent: nothing installed = no changes. */
export async function uninstallCapture(run: Runner = iptablesRunner(), log: (line: string) => void = () => {}): Promise<CaptureResult> {
  const changes: string[][] = [];
  for (const j of JUMPS) {
    // At most a few copies; bounded so a failing -D can never spin.
    for (let i = 0; i < 16 && (await ruleExists(run, j)); i++) await must(run, ["-t", NAT, "-D", j.chain, ...j.args], changes, log);
  }
  for (const chain of REMOVAL_ORDER) {
    if (!(await chainExists(run, chain))) continue;
    if ((await chainRuleCount(run, chain)) > 0) await must(run, ["-t", NAT, "-F", chain], changes, log);
  }
  for (const chain of REMOVAL_ORDER) {
    if (await chainExists(run, chain)) await must(run, ["-t", NAT, "-X", chain], changes, log);
  }
  return { changes };
}

// ---------------------------------------------------------------------------------------------- CLI

const CAPTURE_USAGE = `usage: multiplane capture install [--proxy-port 15001] [--proxy-uid 1337] [--proxy-gid UID]
                                [--exclude-inbound-ports 15000,15010] [--exclude-outbound-ports 15000,15010]
                                [--no-local-loopback-redirect] [--netns NS] [--dry-run]
       multiplane capture uninstall [--netns NS] [--dry-run]
  Istio 1.0 style iptables capture (nat chains ISTIO_REDIRECT, ISTIO_INBOUND, ISTIO_OUTPUT) to Envoy's 15001.
  Idempotent; prints every iptables command that changed something. Needs root (CAP_NET_ADMIN).
`;

function portList(v: string | undefined, what: string): number[] | undefined {
  if (v === undefined) return undefined;
  if (v.trim() === "" || v === "none") return [];
  return v.split(",").map((s) => s.trim()).filter(Boolean).map((s) => {
    const n = Number(s);
    if (!/^\d+$/.test(s) || n < 1 || n > 65535) throw new Error(`${what}: invalid port ${JSON.stringify(s)}`);
    return n;
  });
}

function idList(v: string | undefined, what: string): number[] | undefined {
  if (v === undefined) return undefined;
  return v.split(",").map((s) => s.trim()).filter(Boolean).map((s) => {
    if (!/^\d+$/.test(s)) throw new Error(`${what}: expected a numeric id, got ${JSON.stringify(s)}`);
    return Number(s);
  });
}

/** `multiplane capture install|uninstall ...`; returns the exit code. Errors are thrown (the CLI prints them). */
export async function captureCommand(args: string[], out: (line: string) => void = (l) => console.log(l)): Promise<number> {
  const [action, ...rest] = args;
  if (action !== "install" && action !== "uninstall") {
    throw new Error(`capture: expected install or uninstall, got ${JSON.stringify(action ?? "")}\n\n${CAPTURE_USAGE}`);
  }
  const { values } = parseArgs({
    args: rest, strict: true,
    options: {
      "proxy-port": { type: "string" }, "proxy-uid": { type: "string" }, "proxy-gid": { type: "string" },
      "exclude-inbound-ports": { type: "string" }, "exclude-outbound-ports": { type: "string" },
      "no-local-loopback-redirect": { type: "boolean" }, netns: { type: "string" }, "dry-run": { type: "boolean" },
    },
  });
  const defaults = [DEFAULT_ADMIN_PORT, DEFAULT_XDS_PORT];
  const opts: CaptureOptions = {
    proxyPort: values["proxy-port"] ? portList(values["proxy-port"], "--proxy-port")![0] : DEFAULT_PROXY_PORT,
    // Istio's defaults: uid 1337, and the gid defaults to the uid(s).
    proxyUids: idList(values["proxy-uid"], "--proxy-uid") ?? [DEFAULT_PROXY_ID],
    proxyGids: idList(values["proxy-gid"], "--proxy-gid") ?? idList(values["proxy-uid"], "--proxy-uid") ?? [DEFAULT_PROXY_ID],
    excludeInboundPorts: portList(values["exclude-inbound-ports"], "--exclude-inbound-ports") ?? defaults,
    excludeOutboundPorts: portList(values["exclude-outbound-ports"], "--exclude-outbound-ports") ?? defaults,
    redirectLocalLoopback: !values["no-local-loopback-redirect"],
  };
  const where = values.netns ? ` in network namespace ${values.netns}` : "";
  if (values["dry-run"]) {
    const plan = captureRules(opts);
    const cmds = action === "install" ? installCommands(plan) : uninstallCommands(plan);
    for (const c of cmds) out(renderCommand(values.netns ? ["-w", ...c] : c, values.netns ? `ip netns exec ${values.netns} iptables` : "iptables"));
    return 0;
  }
  const run = iptablesRunner({ netns: values.netns });
  const result = action === "install" ? await installCapture(opts, run, out) : await uninstallCapture(run, out);
  const n = result.changes.length;
  if (action === "install") out(n ? `capture installed${where}: ${n} iptables change${n === 1 ? "" : "s"}` : `capture already installed${where}: nothing changed`);
  else out(n ? `capture removed${where}: ${n} iptables change${n === 1 ? "" : "s"}` : `capture not installed${where}: nothing to remove`);
  return 0;
}

export interface CaptureCounters {
  /** Connections arriving from outside that PREROUTING sent to Envoy (ISTIO_INBOUND -> ISTIO_REDIRECT). */
  inbound: number;
  /** Connections to a non-127.0.0.1 address over `lo` sent back to Envoy: Envoy's own, in the seed's loop. */
  loopback: number;
  /** Other outbound connections of local applications sent to Envoy (the last ISTIO_OUTPUT rule). */
  outbound: number;
}

/**
 * The capture's packet counters. In the nat table only a connection's first packet traverses the chains,
 * so each counter is a number of connections.
 */
export async function readCaptureCounters(run: Runner = iptablesRunner()): Promise<CaptureCounters> {
  const rules = async (chain: string) => {
    const r = await run(["-t", NAT, "-L", chain, "-v", "-x", "-n"]);
    if (r.code !== 0) return [];
    // Columns: pkts bytes target prot opt in out source destination [extra]
    return r.stdout.split("\n").slice(2).map((l) => l.trim().split(/\s+/)).filter((c) => c.length >= 9);
  };
  const inbound = (await rules("ISTIO_INBOUND")).filter((c) => c[2] === "ISTIO_REDIRECT").reduce((n, c) => n + Number(c[0]), 0);
  const out = (await rules("ISTIO_OUTPUT")).filter((c) => c[2] === "ISTIO_REDIRECT");
  const loopback = out.filter((c) => c[6] === "lo").reduce((n, c) => n + Number(c[0]), 0);
  const outbound = out.filter((c) => c[6] !== "lo").reduce((n, c) => n + Number(c[0]), 0);
  return { inbound, loopback, outbound };
}
