// The seed's matrix: one row per (control plane, guard, proxy's INSTANCE_IPS, Service A's port protocol),
// each row one real HTTP request to Service A at the node's second IP. Shared by `multiplane demo` and test/netns/seed.test.ts.
// This file holds what both runners (namespaces, loopback) share: the rows, the result shape, the
// expected outcomes, and the table and JSON renderings.

export type ControlPlaneMode = "legacy" | "multi-ip";
export type InstanceIpsMode = "auto" | "none";
/** Service A's port: TCP (proxied at L4, the network guard) or HTTP (an HTTP connection manager, the HTTP guard). */
export type PortProtocol = "TCP" | "HTTP";

export interface ScenarioSpec {
  name: string;
  controlPlane: ControlPlaneMode;
  guard: boolean;
  instanceIps: InstanceIpsMode;
  protocol: PortProtocol;
  /** One line: what this row shows. */
  story: string;
}

/** What each row shows, one line each (printed before the row runs). */
const STORIES = {
  "seed-loop": "Istio 1.0: the control plane only believes node.id's IP, so Service A (on the node's second IP) gets an OUTBOUND listener and Envoy forwards the request to itself until it runs out of FDs",
  "guard-metadata": "the same wrong config, but the proxy reports every node IP in INSTANCE_IPS: the guard refuses the first hop (self_destined)",
  "guard-learned": "the same wrong config and nobody reports the second IP: the second hop arrives with source == destination, the guard learns the IP and refuses it (self_learned)",
  "fix": "the multi-IP control plane matches Service A's IP against every node IP and builds an INBOUND listener that delivers to 127.0.0.1",
  "fix+guard": "the fix with the guard in place: the request takes the inbound path and the guard never fires",
  "http-loop": "Service A on an HTTP port, the same wrong config and nobody reports the second IP: Envoy routes the request by Host to Service A's cluster, i.e. to itself; at the second hop the HTTP guard answers 508 Loop Detected, and the reply's x-multiplane-hops names this node twice",
} as const;

/** The rows, in the order they run: name, control plane, guard, the proxy's INSTANCE_IPS, Service A's port protocol. */
export const MATRIX: readonly ScenarioSpec[] = ([
  ["seed-loop", "legacy", false, "auto", "TCP"],
  ["guard-metadata", "legacy", true, "auto", "TCP"],
  ["guard-learned", "legacy", true, "none", "TCP"],
  ["fix", "multi-ip", false, "auto", "TCP"],
  ["fix+guard", "multi-ip", true, "auto", "TCP"],
  ["http-loop", "legacy", true, "none", "HTTP"],
] as const).map(([name, controlPlane, guard, instanceIps, protocol]) => ({ name, controlPlane, guard, instanceIps, protocol, story: STORIES[name] }));

/** The JSON row, exactly the shape docs/DEMO.md documents. */
export interface ScenarioJson {
  name: string;
  controlPlane: ControlPlaneMode;
  guard: boolean;
  instanceIps: InstanceIpsMode;
  protocol: PortProtocol;
  request: "ok" | "failed";
  status: number | null;
  shortCircuited: number;
  selfLearned: number;
  downstreamCxTotal: number;
  envoyAlive: boolean;
}

/** Everything a runner measured; the JSON is a projection of it. */
export interface ScenarioResult extends ScenarioJson {
  /** "netns" (real interfaces and iptables) or "loopback" (rootless, 127.0.0.x). */
  environment: "netns" | "loopback";
  /** How the request ended when it did not get a response: ECONNRESET, "socket hang up", "timeout"... */
  requestError?: string;
  requestMs: number;
  body?: string;
  /** The reply's x-multiplane-hops header (the HTTP guard's 508 lists the hops the request crossed). */
  hops?: string;
  selfDestined: number;
  connectionsChecked: number;
  /** Envoy's open FDs before the request, the most seen during it, and its limit (ulimit -n). */
  fdsBefore?: number;
  fdsMax?: number;
  fdLimit?: number;
  /** Envoy ran out of file descriptors: it logged EMFILE ("Too many open files"), or its FDs reached the limit. */
  fdExhausted: boolean;
  /** How Envoy ended, if it did: "SIGSEGV", "SIGABRT", "exit 1". */
  envoyExit?: string;
  /** Envoy's process is running but its admin API does not answer (e.g. no FDs left to accept with). */
  envoyWedged: boolean;
  /**
   * Where the counters came from: Envoy's admin API after the request; its statsd sink when admin could not
   * answer any more; or "admin-sample", the last answer admin gave while the request was in flight (Envoy died
   * or wedged before it could report more: the true number is at least this).
   */
  statsSource: "admin" | "statsd" | "admin-sample" | "none";
  /** Connections the iptables capture redirected to Envoy (netns only): from outside, and Envoy's own over `lo`. */
  capture?: { inbound: number; loopback: number; outbound: number };
  /** Envoy's listeners (from admin) when the request was sent. */
  listeners: string[];
  /** The loop guard filter is present in Envoy's dynamic listener config. */
  guardInConfig: boolean;
  durationMs: number;
  envoyLogTail: string;
  /** Processes the runner started (all gone when it returns), and the namespaces it used (netns only). */
  pids: number[];
  namespaces: string[];
}

export function toJson(results: ScenarioResult[]): { scenarios: ScenarioJson[] } {
  return {
    scenarios: results.map((r) => ({
      name: r.name, controlPlane: r.controlPlane, guard: r.guard, instanceIps: r.instanceIps, protocol: r.protocol,
      request: r.request, status: r.status, shortCircuited: r.shortCircuited, selfLearned: r.selfLearned,
      downstreamCxTotal: r.downstreamCxTotal, envoyAlive: r.envoyAlive,
    })),
  };
}

// ------------------------------------------------------------------ expected outcomes

/** Below this many downstream connections for one request, no loop happened. */
export const BOUNDED_CONNECTIONS = 3;
/** At least this many downstream connections for one request: a loop storm. */
export const EXPLODED_CONNECTIONS = 100;

/** How many hops an x-multiplane-hops value lists. */
export const hopCount = (hops: string | undefined) => (hops ? hops.split(",").filter((h) => h.trim() !== "").length : 0);

/** What went differently from the row's expected outcome; empty when the row behaved as the seed says. */
export function unexpected(r: ScenarioResult): string[] {
  const out: string[] = [];
  const want = (cond: boolean, what: string) => { if (!cond) out.push(what); };
  const fdsBounded = r.fdsMax === undefined || r.fdsBefore === undefined || r.fdsMax - r.fdsBefore <= 16;
  switch (r.name) {
    case "seed-loop":
      want(r.request === "failed", `the request should fail, got ${r.status}`);
      want(r.downstreamCxTotal >= EXPLODED_CONNECTIONS || !r.envoyAlive, `Envoy's connections should explode (>= ${EXPLODED_CONNECTIONS}) or Envoy die; downstream_cx_total=${r.downstreamCxTotal}, alive=${r.envoyAlive}`);
      want(r.shortCircuited === 0, `no guard, so nothing short-circuited; got ${r.shortCircuited}`);
      break;
    case "guard-metadata":
      want(r.request === "failed", `the request should fail, got ${r.status}`);
      want(r.selfDestined >= 1, `self_destined should be >= 1 (INSTANCE_IPS), got ${r.selfDestined}`);
      want(r.shortCircuited >= 1, `short_circuited should be >= 1, got ${r.shortCircuited}`);
      want(r.selfLearned === 0, `stopped at the first hop, so nothing learned; self_learned=${r.selfLearned}`);
      want(r.envoyAlive, "Envoy should stay alive");
      want(r.downstreamCxTotal <= BOUNDED_CONNECTIONS, `downstream_cx_total should stay <= ${BOUNDED_CONNECTIONS}, got ${r.downstreamCxTotal}`);
      want(fdsBounded, `Envoy's FDs should stay bounded: ${r.fdsBefore} -> ${r.fdsMax}`);
      break;
    case "guard-learned":
      want(r.request === "failed", `the request should fail, got ${r.status}`);
      want(r.selfLearned >= 1, `self_learned should be >= 1, got ${r.selfLearned}`);
      want(r.shortCircuited >= 1, `short_circuited should be >= 1, got ${r.shortCircuited}`);
      want(r.envoyAlive, "Envoy should stay alive");
      want(r.downstreamCxTotal <= BOUNDED_CONNECTIONS, `downstream_cx_total should stay <= ${BOUNDED_CONNECTIONS}, got ${r.downstreamCxTotal}`);
      want(fdsBounded, `Envoy's FDs should stay bounded: ${r.fdsBefore} -> ${r.fdsMax}`);
      break;
    case "fix":
    case "fix+guard":
      want(r.request === "ok" && r.status === 200, `Service A should answer 200, got ${r.status ?? r.requestError}`);
      want(/service-a/.test(r.body ?? ""), `the body should come from Service A, got ${JSON.stringify((r.body ?? "").slice(0, 80))}`);
      want(r.shortCircuited === 0 && r.selfLearned === 0 && r.selfDestined === 0, `guard counters should be 0: short_circuited=${r.shortCircuited} self_destined=${r.selfDestined} self_learned=${r.selfLearned}`);
      want(r.envoyAlive, "Envoy should stay alive");
      want(r.downstreamCxTotal <= BOUNDED_CONNECTIONS, `downstream_cx_total should stay <= ${BOUNDED_CONNECTIONS}, got ${r.downstreamCxTotal}`);
      break;
    case "http-loop":
      want(r.status === 508, `the HTTP guard should answer 508, got ${r.status ?? r.requestError}`);
      want(/^508 Loop Detected: multiplane loop guard/.test(r.body ?? ""), `the body should be the guard's, got ${JSON.stringify((r.body ?? "").slice(0, 80))}`);
      want(hopCount(r.hops) === 2, `x-multiplane-hops should name this node twice (refused at the second hop), got ${JSON.stringify(r.hops)}`);
      want(r.shortCircuited >= 1, `short_circuited should be >= 1, got ${r.shortCircuited}`);
      want(r.envoyAlive, "Envoy should stay alive");
      want(r.downstreamCxTotal <= BOUNDED_CONNECTIONS, `downstream_cx_total should stay <= ${BOUNDED_CONNECTIONS}, got ${r.downstreamCxTotal}`);
      want(fdsBounded, `Envoy's FDs should stay bounded: ${r.fdsBefore} -> ${r.fdsMax}`);
      break;
  }
  if (r.guard !== r.guardInConfig) out.push(`guard=${r.guard} but the loop guard is ${r.guardInConfig ? "" : "not "}in Envoy's listeners`);
  return out;
}

// ------------------------------------------------------------------ the table

function resultCell(r: ScenarioResult): string {
  if (r.request === "ok") return "ok";
  if (r.status === 508) return `failed (508 Loop Detected at hop ${hopCount(r.hops)})`;
  const how = r.requestError === "timeout" ? `no answer in ${(r.requestMs / 1000).toFixed(1)} s` : `${r.requestError ?? "failed"} after ${r.requestMs} ms`;
  return `failed (${how})`;
}

function aliveCell(r: ScenarioResult): string {
  if (r.envoyAlive) return "yes";
  if (r.envoyExit) return `no (died: ${r.envoyExit})`;
  if (r.envoyWedged) return `no (wedged${r.fdsMax !== undefined && r.fdLimit ? `, ${r.fdsMax}/${r.fdLimit} FDs` : ""})`;
  return "no";
}

export function renderTable(results: ScenarioResult[]): string {
  const header = ["case", "port", "control plane", "guard", "INSTANCE_IPS", "result", "status", "loop counters", "Envoy connections", ...(results.some((r) => r.capture) ? ["re-captured via lo"] : []), "Envoy FDs", "Envoy alive"];
  const rows = results.map((r) => [
    r.name,
    r.protocol,
    r.controlPlane,
    r.guard ? "on" : "off",
    r.instanceIps,
    resultCell(r),
    r.status === null ? "-" : String(r.status),
    `short_circuited ${r.shortCircuited}, self_destined ${r.selfDestined}, self_learned ${r.selfLearned}`,
    `${r.statsSource === "admin-sample" ? ">= " : ""}${r.downstreamCxTotal}`,
    ...(results.some((x) => x.capture) ? [r.capture ? String(r.capture.loopback) : "-"] : []),
    r.fdsBefore === undefined ? "-" : `${r.fdsBefore} -> ${r.fdsMax ?? "?"}${r.fdLimit ? ` (limit ${r.fdLimit})` : ""}`,
    aliveCell(r),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("-|-"), ...rows.map(line)].join("\n");
}

// ------------------------------------------------------------------ counters

/** Envoy stats (admin /stats text, or statsd sums with the `envoy.` prefix removed) -> the row's counters. */
export function countersFrom(stats: Map<string, number>): Pick<ScenarioResult, "shortCircuited" | "selfLearned" | "selfDestined" | "connectionsChecked" | "downstreamCxTotal"> {
  const get = (n: string) => stats.get(`wasmcustom.loop_guard.${n}`) ?? 0;
  let downstream = 0;
  for (const [name, value] of stats) {
    // Per-listener totals only: not admin's, not the per-worker copies of the same counter.
    if (!name.startsWith("listener.") || !name.endsWith(".downstream_cx_total")) continue;
    if (name.startsWith("listener.admin.") || /\.(worker_\d+|main_thread)\.downstream_cx_total$/.test(name)) continue;
    downstream += value;
  }
  return {
    shortCircuited: get("short_circuited"),
    selfLearned: get("self_learned"),
    selfDestined: get("self_destined"),
    connectionsChecked: get("connections_checked"),
    downstreamCxTotal: downstream,
  };
}

/** Parses admin /stats text ("name: value" lines; histograms skipped). */
export function parseAdminStats(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^(\S+): (\d+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}
