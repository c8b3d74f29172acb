// `multiplane agent`: runs on a node beside its Envoys, watches the node's addresses (agent/) and
// reports every change to the control plane for the proxies it names, so they follow a moved VIP, a
// DHCP renewal or a hot-plugged interface without a restart.
import * as grpc from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import { watchAddresses, type AddressWatch } from "../agent/address-watch.ts";
import { Reporter } from "../agent/reporter.ts";
import { hostPort } from "../common/host-port.ts";

export interface AgentCommandOptions {
  /** The control plane's xDS address. */
  xds: { host: string; port: number };
  nodeIds: string[];
  /** xDS over TLS: the CA to verify the control plane; with cert and key, mutual TLS. */
  tls?: { caFile: string; certFile?: string; keyFile?: string; san?: string };
  excludeInterfaces: string[];
  log: (line: string) => void;
}

export interface RunningAgent {
  reporter: Reporter;
  watch: AddressWatch;
  stop(): Promise<void>;
}

export async function runAgent(opts: AgentCommandOptions): Promise<RunningAgent> {
  const target = hostPort(opts.xds.host, opts.xds.port);
  const credentials = opts.tls
    ? grpc.credentials.createSsl(
      readFileSync(opts.tls.caFile),
      opts.tls.keyFile ? readFileSync(opts.tls.keyFile) : null,
      opts.tls.certFile ? readFileSync(opts.tls.certFile) : null,
    )
    : grpc.credentials.createInsecure();
  const reporter = new Reporter({
    target, credentials, nodeIds: opts.nodeIds, log: opts.log,
    ...(opts.tls?.san ? { channelOptions: { "grpc.ssl_target_name_override": opts.tls.san, "grpc.default_authority": opts.tls.san } } : {}),
  });
  let watch: AddressWatch;
  try {
    watch = await watchAddresses({ excludeInterfaces: opts.excludeInterfaces, onProblem: (m) => opts.log(`node agent: ${m}`) }, (ips) => {
      opts.log(`node agent: node IPs now ${ips.join(",") || "none"}`);
      reporter.set(ips);
    });
  } catch (err) {
    reporter.stop();
    throw err;
  }
  opts.log(`node agent: node IPs ${watch.current().join(",") || "none"}; reporting for ${opts.nodeIds.join(", ")} to ${target} (${opts.tls ? (opts.tls.certFile ? "mutual TLS" : "TLS") : "plaintext"})`);
  reporter.set(watch.current());
  return {
    reporter, watch,
    async stop() {
      await watch.stop();
      reporter.stop();
    },
  };
}
