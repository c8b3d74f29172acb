// The `multiplane` command. Each subcommand is a thin shell over a module that does the work.
import { parseArgs } from "node:util";
import { writeFileSync } from "node:fs";
import { resolveEnvoy } from "../envoy/resolve.ts";
import { generateBootstrap, parseHostPort, DEFAULT_ADMIN } from "../envoy/bootstrap.ts";
import { interfaceIps } from "../envoy/node-ips.ts";

const USAGE = `usage: multiplane <command> [options]

commands:
  serve --registry PATH [--xds-port 15010] [--http-port 15014] [--host 127.0.0.1]
        [--token-file F] [--legacy-single-ip]
      run the xDS control plane on a ServiceEntry registry (file or directory)
  start
      the main job: control plane on examples/registry plus a local Envoy sidecar with the loop guard
  bootstrap --xds HOST:PORT --node-id ID [--instance-ips auto|none|IP,IP...]
            [--admin 127.0.0.1:15000] [--out FILE]
      print (or write) an Envoy bootstrap that reports the node's IPs to the control plane
  envoy-path
      print the Envoy binary multiplane runs (ENVOY_BIN, else .envoy/, else envoy on PATH)
`;

export class UsageError extends Error {
  override name = "UsageError";
}

/** --instance-ips: "auto" = this host's interface IPs, "none" = omit INSTANCE_IPS (an old single-IP proxy), else a list. */
export function parseInstanceIpsFlag(value: string | undefined): string[] {
  if (value === undefined || value === "auto") return interfaceIps();
  if (value === "none") return [];
  const ips = value.split(",").map((s) => s.trim()).filter(Boolean);
  if (ips.length === 0) throw new UsageError(`--instance-ips: expected auto, none or a comma-separated list, got ${JSON.stringify(value)}`);
  return ips;
}

function bootstrapCommand(args: string[]): void {
  const { values } = parseArgs({
    args, strict: true,
    options: { xds: { type: "string" }, "node-id": { type: "string" }, "instance-ips": { type: "string" }, admin: { type: "string" }, out: { type: "string" } },
  });
  if (!values.xds) throw new UsageError("bootstrap: --xds HOST:PORT is required");
  if (!values["node-id"]) throw new UsageError("bootstrap: --node-id is required");
  const config = generateBootstrap({
    nodeId: values["node-id"],
    instanceIps: parseInstanceIpsFlag(values["instance-ips"]),
    xds: parseHostPort(values.xds, "--xds"),
    admin: values.admin ? parseHostPort(values.admin, "--admin") : DEFAULT_ADMIN,
  });
  const text = JSON.stringify(config, null, 2) + "\n";
  if (values.out) writeFileSync(values.out, text);
  else process.stdout.write(text);
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "envoy-path":
        console.log(resolveEnvoy().path);
        return 0;
      case "bootstrap":
        bootstrapCommand(rest);
        return 0;
      case undefined:
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (err) {
    const e = err as Error;
    // Expected failures (bad flags, no Envoy, unreachable ports) are one line, not a stack trace.
    console.error(`multiplane: ${e.message}`);
    if (e instanceof UsageError || (e as NodeJS.ErrnoException).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") process.stderr.write(`\n${USAGE}`);
    return e instanceof UsageError ? 2 : 1;
  }
}
