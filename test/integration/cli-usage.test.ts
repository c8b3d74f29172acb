// What a user trips on at the command line: every command's own --help, --version, and the exit
// codes README documents (0 done, 1 invalid input or a failure, 2 a usage error), through the bin as
// users run it (dist/multiplane.js).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { serve } from "../../control/serve/serve.ts";
import { tempRegistryDir } from "../support/control.ts";
import { waitFor } from "../support/net.ts";

const cli = (args: string[], input?: string) =>
  spawnSync(process.execPath, [join(PROJECT_ROOT, "dist", "multiplane.js"), ...args], { encoding: "utf8", ...(input !== undefined ? { input } : {}) });

/** The bin while this process keeps serving (spawnSync would block the control plane it talks to). */
const cliAsync = (args: string[]) => new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, "dist", "multiplane.js"), ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => { stdout += d; });
  child.stderr.on("data", (d) => { stderr += d; });
  child.on("close", (status) => resolve({ status, stdout, stderr }));
});

const COMMANDS = ["serve", "validate", "registry", "start", "bootstrap", "capture", "demo", "envoy-path"];

test("--version prints the package's version", () => {
  const r = cli(["--version"]);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout.trim(), `multiplane ${JSON.parse(readFileSync(join(PROJECT_ROOT, "package.json"), "utf8")).version}`);
});

test("every command has its own --help (and -h): its usage alone, exit 0", () => {
  const all = cli(["--help"]).stdout;
  for (const command of COMMANDS) {
    for (const flag of ["--help", "-h"]) {
      const r = cli([command, flag]);
      assert.is(r.status, 0, `${command} ${flag}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^usage: multiplane ${command}`), `${command} ${flag}`);
      const own = r.stdout.split("\n").slice(2).join("\n").trim();
      assert.ok(own.length > 0 && all.includes(own), `${command}: the section of --help`);
      for (const other of COMMANDS.filter((c) => c !== command && !c.startsWith(command) && !command.startsWith(c))) {
        assert.not.match(r.stdout, new RegExp(`^  ${other} `, "m"), `${command} --help lists only ${command}`);
      }
    }
  }
});

test("usage errors exit 2 with the command's usage: unknown command, unknown option, missing or bad flag values", () => {
  const cases: [string[], RegExp][] = [
    [["frobnicate"], /unknown command "frobnicate"/],
    [["serve", "--registry", "x", "--bogus"], /Unknown option '--bogus'/],
    [["bootstrap", "--node-id", "n"], /--xds HOST:PORT.* is required/],
    [["bootstrap", "--xds", "nohostport", "--node-id", "n"], /--xds: expected HOST:PORT/],
    [["bootstrap", "--xds", "127.0.0.1:15010", "--node-id", "n", "--instance-ips", "atuo"], /--instance-ips: .*not an IP address: "atuo"/],
    [["bootstrap", "--xds", "127.0.0.1:15010", "--node-id", "n", "--instance-ips", "10.0.0.1,notanip"], /--instance-ips: .*not an IP address: "notanip"/],
    [["serve", "--registry", "x", "--xds-port", "99999"], /--xds-port: expected a port number/],
    [["validate"], /name at least one registry file/],
  ];
  for (const [args, message] of cases) {
    const r = cli(args);
    assert.is(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
    assert.match(r.stderr, /usage: multiplane/, `${args.join(" ")}: usage follows the error`);
    assert.not.match(r.stderr, /\n\s+at /, "no stack trace");
  }
});

test("bootstrap --instance-ips takes IPs in any spelling and writes them canonical", () => {
  const r = cli(["bootstrap", "--xds", "127.0.0.1:15010", "--node-id", "n", "--instance-ips", "10.0.0.1, 2001:DB8::1"]);
  assert.is(r.status, 0, r.stderr);
  assert.is(JSON.parse(r.stdout).node.metadata.INSTANCE_IPS, "10.0.0.1,2001:db8::1");
});

test("validate - reads standard input: problems at <stdin>:line:column, exit 1; a valid registry exits 0", () => {
  const bad = cli(["validate", "-"], "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: a, namespace: default}\nspec:\n  hosts: [a.example]\n  ports: [{number: 80, name: tcp, protocol: TCP}]\n  resolution: BOGUS\n");
  assert.is(bad.status, 1, bad.stderr);
  assert.match(bad.stdout, /^<stdin>:7:3: spec\.resolution BOGUS/m);
  const good = cli(["validate", "-"], readFileSync(join(PROJECT_ROOT, "examples", "registry", "loopback.yaml"), "utf8"));
  assert.is(good.status, 0, good.stdout + good.stderr);
  assert.match(good.stdout, /^valid: 1 file, 2 resources, 0 errors/m);
  const twice = cli(["validate", "-", "-"], "");
  assert.is(twice.status, 2);
});

test("a port in use names the server, its address and the flags that choose it; exit 1", async () => {
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, "127.0.0.1", () => r()));
  const port = (taken.address() as AddressInfo).port;
  const registry = join(PROJECT_ROOT, "examples", "registry", "loopback.yaml");
  try {
    const cases: [string[], string][] = [
      [["--xds-port", String(port), "--http-port", "0"], `xDS server cannot listen on 127.0.0.1:${port} (--xds-host, --xds-port): the address is already in use`],
      [["--xds-port", "0", "--http-port", String(port)], `HTTP API cannot listen on 127.0.0.1:${port} (--http-host, --http-port): the address is already in use`],
      [["--xds-port", "0", "--http-port", "0", "--guard-wasm-port", String(port)], `loop guard module server cannot listen on 127.0.0.1:${port} (--xds-host, --guard-wasm-port): the address is already in use`],
    ];
    for (const [flags, message] of cases) {
      const r = spawnSync(process.execPath, [join(PROJECT_ROOT, "dist", "multiplane.js"), "serve", "--registry", registry, ...flags], { encoding: "utf8", timeout: 30_000 });
      assert.is(r.status, 1, `${flags.join(" ")}: ${r.stderr}`);
      assert.ok(r.stderr.includes(`multiplane: ${message}`), `${flags.join(" ")}: ${r.stderr}`);
    }
  } finally {
    taken.close();
  }
});

test("registry confirm: the operator's word applies a held removal of every service; with nothing held it exits 1", async () => {
  const dir = tempRegistryDir({ "services.yaml": readFileSync(join(PROJECT_ROOT, "examples", "registry", "loopback.yaml"), "utf8") });
  const tokenFile = join(dir, "..", `${dir.split("/").pop()}.token`);
  writeFileSync(tokenFile, "confirm-token\n");
  const cp = await serve({ registry: dir, xdsPort: 0, httpPort: 0, token: "confirm-token", log: () => {} });
  try {
    writeFileSync(join(dir, "services.yaml"), "");
    assert.ok(await waitFor(() => cp.store.status().sources[0]!.held !== undefined, 5_000), "held");
    const args = ["registry", "confirm", "--token-file", tokenFile, "--http", cp.httpUrl!];
    const confirmed = await cliAsync(args);
    assert.is(confirmed.status, 0, confirmed.stderr);
    assert.match(confirmed.stdout, /^confirmed \(files\): it would remove all 2 services the files define/m);
    assert.match(confirmed.stdout, /^registry serving 0 services$/m);
    assert.is(cp.store.registry.services.length, 0);
    const nothing = await cliAsync(args);
    assert.is(nothing.status, 1);
    assert.match(nothing.stderr, /registry confirm: 409: no registry change is held back waiting for a confirmation/);
    assert.is((await cliAsync(["registry", "confirm"])).status, 2, "--token-file is required");
  } finally {
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(tokenFile, { force: true });
  }
});

test.run();
