// deploy/systemd/: the node agent's unit and its EnvironmentFile, as a host would take them.
// - The unit, read as systemd reads it: ordered after network-online.target, restarted, settings from
//   /etc/default/multiplane-agent, no capabilities, the hardening in place, and nothing that would
//   hide the host's addresses (PrivateNetwork) or kill Node (MemoryDenyWriteExecute).
// - `systemd-analyze verify` accepts it: exit 0 and no line on stderr naming the unit (unknown keys
//   and bad values are only warnings, exit 0, so stderr is what tells). `systemd-analyze security
//   --offline` rates its exposure low.
// - Its ExecStart, with the example EnvironmentFile's variables substituted as systemd does (${NAME}
//   one argument, $NAME split at whitespace), is a command line `multiplane agent` accepts: run
//   through dist/multiplane.js against an xDS address nobody listens on, it does not stop with a
//   usage error (exit status 2) but keeps running and reports for the example's node id over mutual
//   TLS; SIGTERM ends it with 0. Run as written and with the example's commented-out AGENT_ARGS.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync } from "node:child_process";
import { accessSync, chmodSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { whenAvailable } from "../support/available.ts";
import { makeCa, makeLeaf, opensslUnavailableReason } from "../support/certs.ts";
import { waitFor } from "../support/net.ts";

const DIR = join(PROJECT_ROOT, "deploy", "systemd");
const UNIT_NAME = "multiplane-agent.service";
const UNIT = join(DIR, UNIT_NAME);
const ENV_EXAMPLE = join(DIR, "multiplane-agent.env.example");
const DIST = join(PROJECT_ROOT, "dist", "multiplane.js");
const SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze";

type Unit = Map<string, [string, string][]>;

/** A unit file as systemd parses it: [Section] headers, `Key=Value`, # and ; comments, `\` continuations. */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: [string, string][] | undefined;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    while (line.endsWith("\\") && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i]!.trim()}`;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = [];
      unit.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf("=");
    assert.ok(section && eq > 0, `${UNIT_NAME}: not a Key=Value line in a section: ${line}`);
    section.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return unit;
}

/** Every value of a key in a section (systemd lets most keys repeat). */
const values = (unit: Unit, section: string, key: string) => (unit.get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);

/** The one value of a key; the key must be set exactly once. */
function value(unit: Unit, section: string, key: string): string {
  const v = values(unit, section, key);
  assert.is(v.length, 1, `[${section}] ${key}= set once (${JSON.stringify(v)})`);
  return v[0]!;
}

/** A command line split into words as systemd splits ExecStart: whitespace, "..." and '...' quoting, \ escapes. */
function splitWords(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i]!)) i++;
    if (i >= line.length) break;
    let word = "";
    let quote: string | undefined;
    for (; i < line.length; i++) {
      const c = line[i]!;
      if (quote) {
        if (c === quote) quote = undefined;
        else if (c === "\\" && i + 1 < line.length) word += line[++i];
        else word += c;
      } else if (c === '"' || c === "'") quote = c;
      else if (c === "\\" && i + 1 < line.length) word += line[++i];
      else if (/\s/.test(c)) break;
      else word += c;
    }
    assert.is(quote, undefined, `unbalanced quoting in ${line}`);
    words.push(word);
  }
  return words;
}

/** An EnvironmentFile: NAME=VALUE lines, # and ; comments, a value optionally in quotes. */
function parseEnvFile(text: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    assert.ok(m, `${ENV_EXAMPLE}: not a NAME=VALUE line: ${line}`);
    let v = m[2]!.trim();
    if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v.at(-1) === v[0]) v = v.slice(1, -1);
    env.set(m[1]!, v);
  }
  return env;
}

/** The commented-out examples of the env file's own variables (`#NAME=value`), for a second run. */
function commentedExamples(text: string, env: Map<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^#([A-Z_][A-Z0-9_]*)=(.*)$/gm)) if (env.has(m[1]!)) out.set(m[1]!, m[2]!.trim());
  return out;
}

/**
 * ExecStart's argv once systemd has substituted the environment: "${NAME}" anywhere in a word is
 * the value, a word that is exactly "$NAME" becomes the value split at whitespace (zero or more
 * words). A variable the environment does not define is an error here (systemd would make it empty).
 * Specifiers (%n, %d, ...) are not the test's to resolve: none may appear.
 */
function execStartArgv(unit: Unit, env: Map<string, string>): string[] {
  const line = value(unit, "Service", "ExecStart").replace(/^[-@:+!]+/, "");
  const defined = (name: string) => {
    assert.ok(env.has(name), `ExecStart uses $${name}, which the EnvironmentFile does not set`);
    return env.get(name)!;
  };
  return splitWords(line).flatMap((word) => {
    assert.not.ok(/%[^%]/.test(word), `${word}: a specifier, which this test does not resolve`);
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    if (whole) return defined(whole[1]!).split(/\s+/).filter(Boolean);
    assert.not.ok(/\$[A-Za-z_]/.test(word), `${word}: $NAME inside a word is not substituted by systemd; write \${NAME}`);
    return [word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => defined(name))];
  });
}

const unit = () => parseUnit(readFileSync(UNIT, "utf8"));

test("the unit: after network-online.target, restarted, settings from /etc/default/multiplane-agent, installed into multi-user.target", () => {
  const u = unit();
  assert.equal([...u.keys()].sort(), ["Install", "Service", "Unit"]);
  for (const key of ["After", "Wants"]) assert.ok(values(u, "Unit", key).join(" ").split(/\s+/).includes("network-online.target"), `${key}=network-online.target`);
  assert.is(value(u, "Service", "Restart"), "always");
  assert.match(value(u, "Service", "RestartSec"), /^\d+s?$/);
  assert.is(value(u, "Service", "RestartPreventExitStatus"), "2", "a usage error is not restarted forever");
  assert.is(value(u, "Service", "EnvironmentFile"), "-/etc/default/multiplane-agent");
  assert.is(value(u, "Install", "WantedBy"), "multi-user.target");
  const argv = execStartArgv(u, parseEnvFile(readFileSync(ENV_EXAMPLE, "utf8")));
  assert.equal(argv.slice(0, 4), ["/usr/bin/env", "node", "/opt/multiplane/dist/multiplane.js", "agent"], "the checkout in /opt/multiplane, as the Kubernetes image has it");
});

test("the unit's hardening: no capabilities, read-only system, netlink allowed, the host's network visible, no W^X for V8", () => {
  const u = unit();
  const expected: Record<string, string> = {
    NoNewPrivileges: "yes", CapabilityBoundingSet: "", AmbientCapabilities: "", ProtectSystem: "strict", ProtectHome: "yes",
    PrivateTmp: "yes", PrivateDevices: "yes", ProtectKernelTunables: "yes", ProtectKernelModules: "yes", ProtectControlGroups: "yes",
    RestrictNamespaces: "yes", RestrictSUIDSGID: "yes", LockPersonality: "yes", SystemCallArchitectures: "native",
  };
  for (const [key, v] of Object.entries(expected)) assert.is(value(u, "Service", key), v, key);
  assert.equal(value(u, "Service", "RestrictAddressFamilies").split(/\s+/).sort(), ["AF_INET", "AF_INET6", "AF_NETLINK", "AF_UNIX"]);
  // A user without privileges: DynamicUser, or a named system user other than root.
  const user = values(u, "Service", "User")[0];
  assert.ok(values(u, "Service", "DynamicUser")[0] === "yes" || (user !== undefined && !["root", "0"].includes(user)), "runs as an unprivileged user");
  // These would break the agent: its own network namespace hides the host's addresses; V8 writes its JIT code.
  for (const key of ["PrivateNetwork", "MemoryDenyWriteExecute", "IPAddressDeny", "NetworkNamespacePath"]) {
    assert.equal(values(u, "Service", key).filter((v) => v !== "no" && v !== ""), [], `${key}= would break the agent`);
  }
});

test("the env example sets every variable ExecStart uses, a HOST:PORT, an Istio node id and absolute certificate paths", () => {
  const env = parseEnvFile(readFileSync(ENV_EXAMPLE, "utf8"));
  assert.equal([...env.keys()].sort(), ["AGENT_ARGS", "CERT", "KEY", "NODE_ID", "XDS", "XDS_CA"]);
  execStartArgv(unit(), env); // every $NAME is defined
  assert.match(env.get("XDS")!, /^[A-Za-z0-9.-]+:\d{1,5}$/);
  assert.match(env.get("NODE_ID")!, /^[a-z]+~[0-9a-f.:]+~[^~.\s]+\.[^~.\s]+~[^~.\s]+\.svc\.cluster\.local$/);
  for (const k of ["XDS_CA", "CERT", "KEY"]) assert.match(env.get(k)!, /^\/etc\/multiplane\/agent\/[^\s]+$/, k);
});

whenAvailable(spawnSync(SYSTEMD_ANALYZE, ["--version"]).status === 0 ? undefined : `${SYSTEMD_ANALYZE} is not installed (Debian: apt-get install -y systemd)`, "systemd-analyze", (test) => {
  const help = () => spawnSync(SYSTEMD_ANALYZE, ["--help"], { encoding: "utf8" }).stdout;

  /**
   * `systemd-analyze verify` on a copy of the unit in a temporary directory, under the same file name
   * (systemd names the unit after its file). Why a copy, and these options, for a result that depends
   * on the unit and not on this machine:
   * - verify fails when ExecStart's executable does not exist here ("Command ... is not executable").
   *   The unit runs /usr/bin/env, which every Linux has; should a unit name a binary this machine
   *   lacks (/usr/local/bin/multiplane, say), the copy's ExecStart names a stub executable in the
   *   temporary directory instead, so that verify still checks everything else.
   * - --man=no: Documentation=man:... pages need not be installed here; --generators=no: no
   *   generators reading this machine's fstab and the like (the default, made explicit).
   * - --recursive-errors=no (systemd 250 and later): only this unit's own errors fail the run, not
   *   those of the distribution's units it names (network-online.target, multi-user.target).
   * - unknown keys and bad values are warnings that leave the exit status 0: stderr is checked for any
   *   line naming the unit.
   */
  function verify(text: string): { status: number | null; stderr: string; unitLines: string[] } {
    const dir = mkdtempSync(join(tmpdir(), "multiplane-systemd-"));
    try {
      const file = join(dir, UNIT_NAME);
      const exec = /^(ExecStart=[-@:+!]*)(\S+)/m.exec(text);
      assert.ok(exec, "ExecStart=");
      let copy = text;
      try {
        accessSync(exec[2]!, constants.X_OK);
      } catch {
        const stub = join(dir, "stub-executable");
        writeFileSync(stub, "#!/bin/sh\nexit 0\n");
        chmodSync(stub, 0o755);
        copy = text.replace(exec[0], `${exec[1]}${stub}`);
      }
      writeFileSync(file, copy);
      const opts = ["--man=no", "--generators=no", ...(help().includes("--recursive-errors") ? ["--recursive-errors=no"] : [])];
      const r = spawnSync(SYSTEMD_ANALYZE, ["verify", ...opts, file], { encoding: "utf8", timeout: 60_000 });
      const unitLines = r.stderr.split("\n").filter((l) => l.includes("multiplane-agent") || l.includes(dir));
      return { status: r.status, stderr: r.stderr, unitLines };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test("systemd-analyze verify accepts the unit: exit 0, no complaint naming it", () => {
    const r = verify(readFileSync(UNIT, "utf8"));
    assert.is(r.status, 0, r.stderr);
    assert.equal(r.unitLines, [], r.stderr);
  });

  test("the verify check is not vacuous: a misspelt key, a bad value and a missing executable are reported", () => {
    const text = readFileSync(UNIT, "utf8");
    const typo = verify(text.replace(/^Restart=always$/m, "Restrat=always"));
    assert.ok(typo.unitLines.some((l) => /Unknown key 'Restrat'/.test(l)), typo.stderr);
    const bad = verify(text.replace(/^ProtectSystem=strict$/m, "ProtectSystem=very"));
    assert.ok(bad.unitLines.some((l) => /protect system value.*very/i.test(l)), bad.stderr);
    // A missing executable is caught too; the stub above only stands in for one that is absent here.
    const dir = mkdtempSync(join(tmpdir(), "multiplane-systemd-exe-"));
    try {
      const file = join(dir, UNIT_NAME);
      writeFileSync(file, text.replace(/^ExecStart=\S+/m, "ExecStart=/nonexistent/node"));
      const r = spawnSync(SYSTEMD_ANALYZE, ["verify", "--man=no", file], { encoding: "utf8" });
      assert.is.not(r.status, 0);
      assert.match(r.stderr, /is not executable/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("systemd-analyze security --offline rates the unit's exposure low (at most 2.5 of 10)", () => {
    if (!help().includes("--offline")) {
      console.log("  (systemd-analyze security --offline needs systemd 250 or later: not checked here)");
      return;
    }
    const r = spawnSync(SYSTEMD_ANALYZE, ["security", "--offline=yes", "--no-pager", UNIT], { encoding: "utf8", timeout: 60_000 });
    const level = /Overall exposure level for multiplane-agent\.service: ([\d.]+)/.exec(r.stdout);
    assert.ok(level, r.stdout + r.stderr);
    assert.ok(Number(level[1]) <= 2.5, `exposure ${level[1]}:\n${r.stdout}`);
  });
});

const ipUnavailable = spawnSync("ip", ["-V"]).status === 0 ? undefined : "iproute2 (ip) is not installed (Debian: apt-get install -y iproute2)";

whenAvailable(opensslUnavailableReason() ?? ipUnavailable, "the unit's ExecStart run through multiplane agent", (test) => {
  /**
   * The unit's ExecStart with the env file's settings, run as the bin (node dist/multiplane.js agent
   * ...). XDS is replaced by an address nobody listens on and the certificate paths by test
   * certificates (the agent reads them before it starts), everything else is the example's.
   */
  async function runExecStart(env: Map<string, string>): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), "multiplane-agent-unit-"));
    const ca = makeCa(dir);
    const node = makeLeaf(dir, ca, "node-a", { ips: ["192.168.10.63", "10.75.8.101"] });
    const settings = new Map(env);
    settings.set("XDS", "127.0.0.1:1");
    settings.set("XDS_CA", ca.cert);
    settings.set("CERT", node.cert);
    settings.set("KEY", node.key);
    const argv = execStartArgv(unit(), settings);
    assert.equal(argv.slice(0, 2), ["/usr/bin/env", "node"]);
    assert.match(argv[2]!, /\/dist\/multiplane\.js$/);
    const args = argv.slice(3);
    const nodeIds = args.flatMap((a, i) => (args[i - 1] === "--node-id" ? [a] : []));
    assert.ok(nodeIds.includes(env.get("NODE_ID")!), "the example's node id is passed as one argument");

    const child = spawn(process.execPath, [DIST, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => { stdout += d; });
    child.stderr.on("data", (d) => { stderr += d; });
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const exited = new Promise<void>((resolve) => child.on("exit", (code, signal) => { exit = { code, signal }; resolve(); }));
    try {
      const started = Date.now();
      // About a second, or until it has started reporting (its first log line), whichever is later.
      await waitFor(() => exit !== undefined || (Date.now() - started >= 1000 && stdout.includes("reporting for")), 15_000);
      assert.is.not(exit?.code, 2, `a usage error: multiplane ${args.join(" ")}\n${stderr}`);
      assert.is(exit, undefined, `it stopped (${JSON.stringify(exit)}):\n${stdout}${stderr}`);
      const line = stdout.split("\n").find((l) => l.includes("reporting for")) ?? "";
      assert.ok(line.endsWith("to 127.0.0.1:1 (mutual TLS)"), stdout);
      for (const id of nodeIds) assert.ok(line.includes(id), `reports for ${id}: ${line}`);
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      assert.equal(exit, { code: 0, signal: null }, `SIGTERM (systemctl stop) ends it cleanly:\n${stderr}`);
    } finally {
      if (exit === undefined) {
        child.kill("SIGKILL");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test("ExecStart with the env example's settings: multiplane agent takes them, runs, reports over mutual TLS, ends on SIGTERM", async () => {
    await runExecStart(parseEnvFile(readFileSync(ENV_EXAMPLE, "utf8")));
  });

  test("the same with the env example's commented-out AGENT_ARGS (another node id, --xds-san, --exclude-interfaces)", async () => {
    const text = readFileSync(ENV_EXAMPLE, "utf8");
    const env = parseEnvFile(text);
    const examples = commentedExamples(text, env);
    assert.ok(examples.get("AGENT_ARGS"), "the example shows AGENT_ARGS in use");
    await runExecStart(new Map([...env, ...examples]));
  });
});

test.run();
