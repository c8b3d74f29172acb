// The agent's side of the report stream (xds/server/agent-protocol.ts): it keeps one stream to the
// control plane, sends the node's whole address set whenever it changes and whenever the stream is
// (re)opened, so a control plane that restarted or a replica it failed over to learns the set at once.
// A broken stream is reopened with a jittered back-off; answers are logged when they differ.
import * as grpc from "@grpc/grpc-js";
import { agentService, type AgentAnswer } from "../xds/server/agent-protocol.ts";

export interface ReporterOptions {
  /** The control plane's xDS address, HOST:PORT. */
  target: string;
  credentials: grpc.ChannelCredentials;
  /** grpc-js channel options (a TLS name override). */
  channelOptions?: grpc.ChannelOptions;
  nodeIds: readonly string[];
  log: (line: string) => void;
  /** Back-off between reconnects: first and longest wait. */
  retryMs?: { first: number; max: number };
}

const NodeAgentClient = grpc.makeGenericClientConstructor(agentService, "NodeAgent");

export class Reporter {
  private readonly client: grpc.Client;
  private call: grpc.ClientDuplexStream<unknown, AgentAnswer> | undefined;
  private ips: readonly string[] | undefined;
  private retry: NodeJS.Timeout | undefined;
  private wait: number;
  private stopped = false;
  private lastAnswer = "";
  /** Resolves each time an answer arrives (tests, and the first report's outcome). */
  private answered: ((a: AgentAnswer) => void)[] = [];

  constructor(private readonly opts: ReporterOptions) {
    this.client = new NodeAgentClient(opts.target, opts.credentials, opts.channelOptions ?? {});
    this.wait = opts.retryMs?.first ?? 500;
  }

  /** The node's current set: sent now, and again whenever the stream reopens. */
  set(ips: readonly string[]): void {
    this.ips = ips;
    // While a reconnect is pending, the set goes out when it opens (the back-off stands).
    if (this.stopped || this.retry) return;
    if (!this.call) this.open();
    else this.send();
  }

  /** The next answer from the control plane. */
  nextAnswer(): Promise<AgentAnswer> {
    return new Promise((resolve) => this.answered.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    this.call?.end();
    this.call?.cancel();
    this.client.close();
  }

  private open(): void {
    const call = (this.client as unknown as { ReportAddresses(): grpc.ClientDuplexStream<unknown, AgentAnswer> }).ReportAddresses();
    this.call = call;
    call.on("data", (answer: AgentAnswer) => {
      this.wait = this.opts.retryMs?.first ?? 500;
      this.logAnswer(answer);
      const waiting = this.answered;
      this.answered = [];
      for (const resolve of waiting) resolve(answer);
    });
    call.on("error", (err: grpc.ServiceError) => this.broken(call, `${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`));
    call.on("end", () => this.broken(call, "the control plane ended the stream"));
    this.send();
  }

  private send(): void {
    if (this.ips === undefined || !this.call) return;
    this.call.write({ nodeIds: this.opts.nodeIds, ips: this.ips });
  }

  private broken(call: grpc.ClientDuplexStream<unknown, AgentAnswer>, why: string): void {
    if (this.call !== call) return;
    this.call = undefined;
    this.lastAnswer = "";
    if (this.stopped) return;
    const max = this.opts.retryMs?.max ?? 30_000;
    const delay = Math.round(this.wait * (0.5 + Math.random() / 2));
    this.wait = Math.min(max, this.wait * 2);
    this.opts.log(`node agent: report stream to ${this.opts.target} broken (${why}); reconnecting in ${delay} ms`);
    this.retry = setTimeout(() => { this.retry = undefined; if (!this.stopped) this.open(); }, delay);
  }

  private logAnswer(a: AgentAnswer): void {
    const lines = [
      `node agent: control plane took node IPs ${a.accepted.join(",") || "none"}`,
      ...a.refused.map((r) => `node agent: refused ${r.ip}: ${r.reason}`),
      ...a.nodes.map((n) => n.refused.length > 0
        ? `node agent: node id ${n.nodeId}: applied to ${n.applied} proxy streams, refused by ${n.refused.length}: ${n.refused[0]!.reason}`
        : `node agent: node id ${n.nodeId}: applied to ${n.applied} proxy stream${n.applied === 1 ? "" : "s"}${n.applied === 0 ? " (none connected now; a proxy that connects gets it)" : ""}`),
    ];
    const text = lines.join("\n");
    if (text === this.lastAnswer) return;
    this.lastAnswer = text;
    for (const line of lines) this.opts.log(line);
  }
}
