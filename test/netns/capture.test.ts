// The Istio 1.0 style capture: the rules as a pure function, and install/uninstall against the real
// iptables inside a scratch network namespace (root only; skipped otherwise), idempotent both ways.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  captureCommand, captureRules, installCapture, installCommands, iptablesRunner, readCaptureCounters, renderCommand,
  uninstallCapture, uninstallCommands, type Rule,
} from "../../envoy/capture.ts";
import { whenAvailable } from "../support/available.ts";
import { netnsUnavailableReason } from "../support/netns.ts";

const text = (rules: Rule[]) => rules.map((r) => r.args.join(" "));

test("rules: Istio 1.0 order, the lo rule before the owner exclusions", () => {
  const plan = captureRules({ proxyUids: [1337], proxyGids: [1337], excludeInboundPorts: [15000, 15010], excludeOutboundPorts: [15000, 15010] });
  assert.equal(text(plan.chains.ISTIO_REDIRECT), ["-p tcp -j REDIRECT --to-ports 15001"]);
  assert.equal(text(plan.chains.ISTIO_INBOUND), [
    "-p tcp --dport 22 -j RETURN",
    "-p tcp --dport 15000 -j RETURN",
    "-p tcp --dport 15010 -j RETURN",
    "-p tcp -j ISTIO_REDIRECT",
  ]);
  assert.equal(text(plan.chains.ISTIO_OUTPUT), [
    "-p tcp --dport 15000 -j RETURN",
    "-p tcp --dport 15010 -j RETURN",
    // The seed's loop closes here: Envoy's own connection to this node's 10.75.8.101 leaves through lo.
    "-o lo ! -d 127.0.0.1/32 -j ISTIO_REDIRECT",
    "-m owner --uid-owner 1337 -j RETURN",
    "-m owner --gid-owner 1337 -j RETURN",
    "-d 127.0.0.1/32 -j RETURN",
    "-j ISTIO_REDIRECT",
  ]);
  assert.equal(plan.jumps.map((j) => `${j.chain} ${j.args.join(" ")}`), ["PREROUTING -p tcp -j ISTIO_INBOUND", "OUTPUT -p tcp -j ISTIO_OUTPUT"]);
});

test("rules: options (port, uid only, no loopback redirect, duplicates) and invalid input", () => {
  const plan = captureRules({ proxyPort: 16001, proxyUids: [1000, 1000], excludeInboundPorts: [22], redirectLocalLoopback: false });
  assert.equal(text(plan.chains.ISTIO_REDIRECT), ["-p tcp -j REDIRECT --to-ports 16001"]);
  assert.equal(text(plan.chains.ISTIO_INBOUND), ["-p tcp --dport 22 -j RETURN", "-p tcp -j ISTIO_REDIRECT"]);
  assert.equal(text(plan.chains.ISTIO_OUTPUT), ["-m owner --uid-owner 1000 -j RETURN", "-d 127.0.0.1/32 -j RETURN", "-j ISTIO_REDIRECT"]);
  assert.throws(() => captureRules({}), /uid or gid is required/);
  assert.throws(() => captureRules({ proxyUids: [1], proxyPort: 70000 }), /invalid port/);
  assert.throws(() => captureRules({ proxyUids: [-1] }), /invalid id/);
  assert.throws(() => captureRules({ proxyUids: [1], excludeOutboundPorts: [0] }), /invalid port/);
});

test("commands: install creates chains before jumping to them; uninstall removes jumps before chains", () => {
  const plan = captureRules({ proxyUids: [1337] });
  const install = installCommands(plan).map((c) => c.join(" "));
  const at = (s: string) => install.indexOf(s);
  assert.ok(at("-t nat -N ISTIO_REDIRECT") < at("-t nat -A ISTIO_INBOUND -p tcp -j ISTIO_REDIRECT"));
  assert.ok(at("-t nat -N ISTIO_INBOUND") < at("-t nat -A PREROUTING -p tcp -j ISTIO_INBOUND"));
  assert.ok(at("-t nat -N ISTIO_OUTPUT") < at("-t nat -A OUTPUT -p tcp -j ISTIO_OUTPUT"));
  const uninstall = uninstallCommands(plan).map((c) => c.join(" "));
  assert.equal(uninstall.slice(0, 2), ["-t nat -D PREROUTING -p tcp -j ISTIO_INBOUND", "-t nat -D OUTPUT -p tcp -j ISTIO_OUTPUT"]);
  assert.ok(uninstall.indexOf("-t nat -X ISTIO_OUTPUT") < uninstall.indexOf("-t nat -X ISTIO_REDIRECT"));
  assert.is(renderCommand(["-t", "nat", "-A", "ISTIO_OUTPUT", "-o", "lo", "!", "-d", "127.0.0.1/32"]), "iptables -t nat -A ISTIO_OUTPUT -o lo '!' -d 127.0.0.1/32");
});

test("CLI: --dry-run prints the commands, a bad action is an error", async () => {
  const lines: string[] = [];
  assert.is(await captureCommand(["install", "--dry-run", "--proxy-uid", "1337", "--exclude-inbound-ports", "15000"], (l) => lines.push(l)), 0);
  assert.ok(lines.includes("iptables -t nat -A ISTIO_INBOUND -p tcp --dport 15000 -j RETURN"), lines.join("\n"));
  assert.ok(lines.includes("iptables -t nat -A ISTIO_OUTPUT -o lo '!' -d 127.0.0.1/32 -j ISTIO_REDIRECT"));
  await captureCommand(["frobnicate"]).then(() => assert.unreachable("should throw"), (e: Error) => assert.match(e.message, /install or uninstall/));
  await captureCommand(["install", "--proxy-uid", "root"]).then(() => assert.unreachable("should throw"), (e: Error) => assert.match(e.message, /numeric id/));
});

whenAvailable(netnsUnavailableReason(), "iptables in a network namespace", (test) => {
  test("install/uninstall in a scratch namespace: applied, idempotent, repaired, removed", async () => {
    const ns = `mpcap${process.pid}-${randomBytes(2).toString("hex")}`;
    execFileSync("ip", ["netns", "add", ns]);
    try {
      const run = iptablesRunner({ netns: ns });
      const opts = { proxyUids: [1337], proxyGids: [1337], excludeInboundPorts: [15000, 15010], excludeOutboundPorts: [15000, 15010] };
      const saved = () => execFileSync("ip", ["netns", "exec", ns, "iptables", "-w", "-t", "nat", "-S"], { encoding: "utf8" });
      const before = saved();

      const lines: string[] = [];
      const first = await installCapture(opts, run, (l) => lines.push(l));
      assert.is(first.changes.length, installCommands(captureRules(opts)).length);
      assert.is(lines.length, first.changes.length, "every change printed");
      const installed = saved();
      assert.match(installed, "-A PREROUTING -p tcp -j ISTIO_INBOUND");
      assert.match(installed, "-A OUTPUT -p tcp -j ISTIO_OUTPUT");
      assert.match(installed, "-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -j ISTIO_REDIRECT");
      assert.match(installed, "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001");
      // The lo rule is listed before the owner exclusion.
      assert.ok(installed.indexOf("-o lo -j ISTIO_REDIRECT") < installed.indexOf("--uid-owner 1337"));

      // Idempotent: a second install changes nothing.
      assert.equal((await installCapture(opts, run)).changes, []);
      assert.is(saved(), installed);

      // Different options: only the chain that differs is rewritten.
      const changed = await installCapture({ ...opts, excludeInboundPorts: [15000] }, run);
      assert.ok(changed.changes.every((c) => c.includes("ISTIO_INBOUND")), JSON.stringify(changed.changes));
      assert.not.match(saved(), "-A ISTIO_INBOUND -p tcp -m tcp --dport 15010 -j RETURN");
      assert.match(saved(), "-A ISTIO_OUTPUT -p tcp -m tcp --dport 15010 -j RETURN");

      // A hand-deleted jump and a duplicated jump are repaired.
      execFileSync("ip", ["netns", "exec", ns, "iptables", "-w", "-t", "nat", "-D", "OUTPUT", "-p", "tcp", "-j", "ISTIO_OUTPUT"]);
      execFileSync("ip", ["netns", "exec", ns, "iptables", "-w", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "-j", "ISTIO_INBOUND"]);
      const repaired = await installCapture(opts, run);
      assert.ok(repaired.changes.length > 0);
      const after = saved();
      assert.is(after.split("\n").filter((l) => l === "-A PREROUTING -p tcp -j ISTIO_INBOUND").length, 1);
      assert.is(after.split("\n").filter((l) => l === "-A OUTPUT -p tcp -j ISTIO_OUTPUT").length, 1);
      assert.is(after, installed);

      assert.equal(await readCaptureCounters(run), { inbound: 0, loopback: 0, outbound: 0 });

      // Uninstall restores the table exactly; a second uninstall changes nothing.
      const removed = await uninstallCapture(run);
      assert.ok(removed.changes.length >= 8);
      assert.is(saved(), before);
      assert.equal((await uninstallCapture(run)).changes, []);
    } finally {
      execFileSync("ip", ["netns", "del", ns]);
    }
  });
});

test.run();
