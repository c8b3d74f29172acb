// Prometheus text exposition (format 0.0.4) for counters, gauges and histograms. Small on purpose:
// the control plane has a dozen series and needs no client library.
import type { Proxies } from "../pipeline/proxies.ts";
import type { RegistryStore } from "../registry/store.ts";
import type { XdsServer } from "../xds/server/grpc-server.ts";

type Labels = Record<string, string>;

const escape = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const labelText = (l: Labels) => {
  const keys = Object.keys(l);
  return keys.length === 0 ? "" : `{${keys.map((k) => `${k}="${escape(l[k]!)}"`).join(",")}}`;
};
const num = (v: number) => (v === Infinity ? "+Inf" : v === -Infinity ? "-Inf" : String(v));

interface Metric {
  render(): string;
}

abstract class Series<T> implements Metric {
  protected readonly series = new Map<string, { labels: Labels; value: T }>();
  constructor(readonly name: string, readonly help: string, readonly type: string) {}
  protected entry(labels: Labels, init: () => T): { labels: Labels; value: T } {
    const key = labelText(labels);
    let e = this.series.get(key);
    if (!e) this.series.set(key, (e = { labels, value: init() }));
    return e;
  }
  protected header(): string {
    return `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} ${this.type}\n`;
  }
  abstract render(): string;
}

export class Counter extends Series<number> {
  constructor(name: string, help: string) { super(name, help, "counter"); }
  inc(labels: Labels = {}, by = 1): void {
    this.entry(labels, () => 0).value += by;
  }
  get(labels: Labels = {}): number {
    return this.series.get(labelText(labels))?.value ?? 0;
  }
  render(): string {
    const lines = [...this.series.values()].map((e) => `${this.name}${labelText(e.labels)} ${num(e.value)}\n`);
    return this.header() + (lines.length ? lines.join("") : `${this.name} 0\n`);
  }
}

/** A gauge (or a counter kept elsewhere) whose value is read when scraped. */
export class Gauge implements Metric {
  constructor(readonly name: string, readonly help: string, private readonly read: () => number | [Labels, number][], private readonly type: "gauge" | "counter" = "gauge") {}
  render(): string {
    const v = this.read();
    const rows: [Labels, number][] = typeof v === "number" ? [[{}, v]] : v;
    return `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} ${this.type}\n${rows.map(([l, x]) => `${this.name}${labelText(l)} ${num(x)}\n`).join("")}`;
  }
}

export class Histogram extends Series<{ counts: number[]; sum: number; count: number }> {
  constructor(name: string, help: string, readonly buckets: number[]) { super(name, help, "histogram"); }
  observe(value: number, labels: Labels = {}): void {
    const e = this.entry(labels, () => ({ counts: this.buckets.map(() => 0), sum: 0, count: 0 })).value;
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) e.counts[i]!++;
    e.sum += value;
    e.count++;
  }
  count(labels: Labels = {}): number {
    return this.series.get(labelText(labels))?.value.count ?? 0;
  }
  render(): string {
    let out = this.header();
    for (const { labels, value } of this.series.values()) {
      this.buckets.forEach((b, i) => { out += `${this.name}_bucket${labelText({ ...labels, le: num(b) })} ${value.counts[i]}\n`; });
      out += `${this.name}_bucket${labelText({ ...labels, le: "+Inf" })} ${value.count}\n`;
      out += `${this.name}_sum${labelText(labels)} ${value.sum}\n${this.name}_count${labelText(labels)} ${value.count}\n`;
    }
    return out;
  }
}

export class MetricsRegistry {
  constructor(private readonly metrics: readonly Metric[]) {}
  render(): string {
    return this.metrics.map((m) => m.render()).join("");
  }
}

/** Seconds, from 1 ms to 10 s: push and generation latencies. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The series the control plane's events feed (serve/events.ts); made before the parts that feed them. */
export function controlPlaneCounters() {
  return {
    pushes: new Counter("multiplane_xds_pushes_total", "Discovery responses sent, by resource type."),
    pushLatency: new Histogram("multiplane_xds_push_latency_seconds", "From the change that triggered a push (registry change or proxy connect) to the response being written.", LATENCY_BUCKETS),
    acks: new Counter("multiplane_xds_acks_total", "Responses Envoy accepted, by resource type."),
    nacks: new Counter("multiplane_xds_nacks_total", "Responses Envoy rejected (NACK), by resource type."),
    refusals: new Counter("multiplane_xds_refusals_total", "xDS streams refused with PERMISSION_DENIED (mutual TLS: the certificate does not prove what the proxy claims), by reason."),
    generation: new Histogram("multiplane_generation_seconds", "Generating and packing one proxy's resources.", LATENCY_BUCKETS),
    rejections: new Counter("multiplane_registry_rejections_total", "Registry changes refused (bad file, etcd value or HTTP request), by source."),
    podIpRefusals: new Counter("multiplane_pod_ips_refused_total", "Proxies whose pod's IPs (Kubernetes) were not added: their certificate's service account is not the pod's."),
    agentReports: new Counter("multiplane_agent_reports_total", "Node agents' address reports taken."),
    agentRefusals: new Counter("multiplane_agent_refusals_total", "What node agents claimed and may not (mutual TLS): kind=ip, an address outside the certificate's IP SANs and the floating ranges; kind=proxy, a proxy not on the agent's node; kind=report, a malformed report."),
  };
}

export type ControlPlaneCounters = ReturnType<typeof controlPlaneCounters>;

/**
 * Every series, in the order GET /metrics renders them: the counters, and gauges read from the running
 * parts when scraped. Made once those parts run, so the gauges read nothing that does not exist yet.
 */
export function controlPlaneMetrics(c: ControlPlaneCounters, parts: { proxies: Proxies; store: RegistryStore; xds: Pick<XdsServer, "sending"> }): MetricsRegistry {
  const { proxies, store, xds } = parts;
  return new MetricsRegistry([
    new Gauge("multiplane_connected_proxies", "Proxies (distinct node ids) with at least one open xDS stream.", () => proxies.size),
    new Gauge("multiplane_xds_streams", "Open xDS streams by protocol.", () => Object.entries(proxies.streamCounts()).map(([protocol, n]) => [{ protocol }, n])),
    new Gauge("multiplane_xds_send_bytes", "Bytes of built responses the connections have not taken yet, over all streams (bounded by the send budget).", () => xds.sending().bytes),
    new Gauge("multiplane_xds_streams_waiting_to_send", "Streams waiting for the send budget before they build their next response.", () => xds.sending().waiting),
    c.pushes, c.pushLatency, c.acks, c.nacks, c.refusals, c.podIpRefusals, c.agentReports, c.agentRefusals, c.generation,
    new Gauge("multiplane_registry_services", "Services (ServiceEntry hosts) in the serving registry.", () => store.registry.services.length),
    new Gauge("multiplane_registry_reloads_total", "Registry updates from files or etcd that were applied.", () => store.status().reloads, "counter"),
    c.rejections,
    new Gauge("multiplane_registry_held_changes", "1 while a source holds a change back until it is stable (it looks like a partial write or removes many services), by source.", () => store.status().sources.map((s) => [{ source: s.name }, s.held ? 1 : 0])),
    new Gauge("multiplane_registry_held_awaiting_confirmation", "1 while a source holds back a change that would remove every service until an operator confirms it (multiplane registry confirm), by source.", () => store.status().sources.map((s) => [{ source: s.name }, s.held && s.held.appliesAt === undefined ? 1 : 0])),
  ]);
}
