// The node agent's address watch (control/agent/address-watch.ts) against a stand-in for iproute2: a shell
// script whose `addr show` prints a file the test writes and whose `monitor` is `tail -F` of an events
// file, so each line the test appends is a change notice. What real iproute2 does in a real namespace is
// test/netns/agent-address-watch.test.ts (root); this covers, without root, what a kernel will not do
// on demand: a monitor that dies, a read that fails, `ip` missing.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { appendFileSync, chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { watchAddresses, type AddressWatch, type AddressWatchOptions } from "../../control/agent/address-watch.ts";

const FAKE_IP = `#!/bin/sh
d="$(dirname "$0")"
case " $* " in
  *" monitor "*)
    echo $$ >> "$d/monitors"
    echo "$*" > "$d/monitor-args"
    exec tail -n 0 -F "$d/events" 2>/dev/null ;;
  *" addr show "*)
    echo "$*" >> "$d/reads"
    if [ -f "$d/read-fails" ]; then echo "RTNETLINK answers: Operation not permitted" >&2; exit 2; fi
    cat "$d/addrs.json" ;;
  *) echo "unexpected: $*" >&2; exit 1 ;;
esac
`;

interface Fake {
  dir: string;
  ip: string;
  setAddresses(ips: string[], more?: object[]): void;
  event(): void;
  monitors(): number[];
  reads(): number;
  close(): void;
}

function fakeIp(): Fake {
  const dir = mkdtempSync(join(tmpdir(), "mp-agent-ip-"));
  const ip = join(dir, "ip");
  writeFileSync(ip, FAKE_IP);
  chmodSync(ip, 0o755);
  writeFileSync(join(dir, "events"), "");
  const fake: Fake = {
    dir, ip,
    setAddresses(ips, more = []) {
      writeFileSync(join(dir, "addrs.json"), JSON.stringify([
        { ifindex: 1, ifname: "lo", flags: ["LOOPBACK", "UP", "LOWER_UP"], addr_info: [{ family: "inet", local: "127.0.0.1" }] },
        { ifindex: 2, ifname: "eth0", flags: ["BROADCAST", "UP", "LOWER_UP"], addr_info: ips.map((local) => ({ family: local.includes(":") ? "inet6" : "inet", local })) },
        ...more,
      ]));
    },
    event: () => appendFileSync(join(dir, "events"), "3: eth0    inet 10.0.0.1/24 scope global eth0\n"),
    monitors: () => (existsSync(join(dir, "monitors")) ? readFileSync(join(dir, "monitors"), "utf8").trim().split("\n").map(Number) : []),
    reads: () => (existsSync(join(dir, "reads")) ? readFileSync(join(dir, "reads"), "utf8").trim().split("\n").length : 0),
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
  fake.setAddresses(["192.168.10.63"]);
  return fake;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** The newest monitor has the events file open (tail -F reads from there on). */
async function monitorListening(fake: Fake): Promise<number> {
  await until("a monitor", () => fake.monitors().length > 0);
  const pid = fake.monitors().at(-1)!;
  const events = join(fake.dir, "events");
  await until("the monitor to open its file", () => {
    try {
      return readdirSync(`/proc/${pid}/fd`).some((fd) => { try { return readlinkSync(`/proc/${pid}/fd/${fd}`) === events; } catch { return false; } });
    } catch {
      return false;
    }
  });
  await sleep(50); // tail sets its inotify watch right after opening
  return pid;
}

/** A watch on the fake, with what it reported. */
async function start(fake: Fake, options: AddressWatchOptions = {}) {
  const changes: (readonly string[])[] = [];
  const problems: string[] = [];
  const watch = await watchAddresses({ ipCommand: fake.ip, monitorReadyMs: 0, batchMs: 20, maxBatchMs: 60, onProblem: (m) => problems.push(m), ...options }, (ips) => changes.push(ips));
  return { watch, changes, problems };
}

async function stopped(fake: Fake, watch: AddressWatch): Promise<void> {
  await watch.stop();
  for (const pid of fake.monitors()) assert.not.ok(alive(pid), `monitor ${pid} left running`);
}

test("the first read is the initial set (no onChange); the monitor runs in the namespace asked for, and starts first", async () => {
  const fake = fakeIp();
  try {
    fake.setAddresses(["10.75.8.101", "192.168.10.63", "FD00::1", "fe80::1", "10.75.8.101"]);
    const { watch, changes } = await start(fake, { netns: "agent-ns" });
    assert.equal(watch.current(), ["10.75.8.101", "192.168.10.63", "fd00::1"]);
    assert.ok(Object.isFrozen(watch.current()));
    assert.is(readFileSync(join(fake.dir, "monitor-args"), "utf8").trim(), "-n agent-ns -oneline monitor address link");
    assert.is(readFileSync(join(fake.dir, "reads"), "utf8").trim(), "-n agent-ns -json addr show");
    await sleep(100);
    assert.equal(changes, []);
    await stopped(fake, watch);
  } finally {
    fake.close();
  }
});

test("a notice re-reads: a different set is reported once, the same set is not reported", async () => {
  const fake = fakeIp();
  try {
    const { watch, changes } = await start(fake);
    await monitorListening(fake);
    fake.setAddresses(["192.168.10.63", "10.75.8.101"]);
    fake.event();
    await until("the change", () => changes.length === 1);
    assert.equal(changes[0], ["10.75.8.101", "192.168.10.63"]);
    assert.equal(watch.current(), changes[0]);
    const reads = fake.reads();
    fake.event();
    fake.event();
    await until("a re-read", () => fake.reads() > reads);
    await sleep(100);
    assert.is(changes.length, 1, "no callback for an unchanged set");
    await stopped(fake, watch);
  } finally {
    fake.close();
  }
});

test("a failed re-read is reported and the last good set kept; the next good read reports what changed", async () => {
  const fake = fakeIp();
  try {
    const { watch, changes, problems } = await start(fake);
    await monitorListening(fake);
    writeFileSync(join(fake.dir, "read-fails"), "");
    fake.setAddresses([]);
    fake.event();
    await until("the problem", () => problems.length === 1);
    assert.match(problems[0]!, /^reading this node's addresses failed, keeping the last good set \(1 IPs\): .*ip -json addr show failed \(exit code 2\): RTNETLINK answers: Operation not permitted$/);
    assert.equal(watch.current(), ["192.168.10.63"]);
    assert.equal(changes, []);
    unlinkSync(join(fake.dir, "read-fails"));
    writeFileSync(join(fake.dir, "addrs.json"), "Object \"addr\" is unknown, try \"ip help\".");
    fake.event();
    await until("the second problem", () => problems.length === 2);
    assert.match(problems[1]!, /keeping the last good set \(1 IPs\): ip -json addr show: the output is not JSON/);
    fake.setAddresses([]);
    fake.event();
    await until("the change", () => changes.length === 1);
    assert.equal(changes[0], []);
    await stopped(fake, watch);
  } finally {
    fake.close();
  }
});

test("a monitor that dies is reported and restarted, and what changed meanwhile is read", async () => {
  const fake = fakeIp();
  try {
    const { watch, changes, problems } = await start(fake);
    const first = await monitorListening(fake);
    fake.setAddresses(["192.168.10.63", "10.75.8.101"]); // changed while no monitor runs: no notice for it
    process.kill(first, "SIGKILL");
    await until("the restart", () => fake.monitors().length === 2);
    assert.match(problems[0]!, /^ip monitor was ended by SIGKILL; restarting it in 100 ms$/);
    await until("the re-read after the restart", () => changes.length === 1);
    assert.equal(changes[0], ["10.75.8.101", "192.168.10.63"]);
    await monitorListening(fake);
    fake.setAddresses(["10.75.8.101"]);
    fake.event();
    await until("a change through the new monitor", () => changes.length === 2);
    assert.equal(changes[1], ["10.75.8.101"]);
    // Dying again: a longer wait.
    process.kill(fake.monitors().at(-1)!, "SIGTERM");
    await until("the second restart", () => fake.monitors().length === 3);
    assert.match(problems[1]!, /^ip monitor was ended by SIGTERM; restarting it in 200 ms$/);
    await stopped(fake, watch);
  } finally {
    fake.close();
  }
});

test("the periodic read finds what no notice announced", async () => {
  const fake = fakeIp();
  try {
    const { watch, changes } = await start(fake, { resyncMs: 100 });
    fake.setAddresses(["10.1.2.3"]);
    await until("the periodic read", () => changes.length === 1, 1000);
    assert.equal(changes[0], ["10.1.2.3"]);
    await stopped(fake, watch);
  } finally {
    fake.close();
  }
});

test("a throwing onChange is reported, and the watch goes on", async () => {
  const fake = fakeIp();
  const problems: string[] = [];
  let calls = 0;
  try {
    const watch = await watchAddresses({ ipCommand: fake.ip, monitorReadyMs: 0, batchMs: 10, maxBatchMs: 30, resyncMs: 50, onProblem: (m) => problems.push(m) }, () => {
      calls++;
      throw new Error("handler bug");
    });
    fake.setAddresses(["10.0.0.1"]);
    await until("the problem", () => problems.length === 1);
    assert.is(problems[0], "the address change handler threw: handler bug");
    assert.equal(watch.current(), ["10.0.0.1"]);
    fake.setAddresses(["10.0.0.2"]);
    await until("the next call", () => calls === 2);
    await stopped(fake, watch);
  } finally {
    fake.close();
  }
});

test("start fails clearly, leaving nothing running: ip missing, the first read failing, bad options", async () => {
  const missing = join(tmpdir(), `mp-no-such-ip-${process.pid}`);
  await watchAddresses({ ipCommand: missing, monitorReadyMs: 0 }, () => {}).then(
    () => assert.unreachable("resolved"),
    (err: Error) => assert.is(err.message, `${JSON.stringify(missing)} was not found`),
  );
  const fake = fakeIp();
  try {
    writeFileSync(join(fake.dir, "read-fails"), "");
    const problems: string[] = [];
    await watchAddresses({ ipCommand: fake.ip, monitorReadyMs: 0, netns: "gone", onProblem: (m) => problems.push(m) }, () => {}).then(
      () => assert.unreachable("resolved"),
      (err: Error) => assert.match(err.message, /ip -n gone -json addr show failed \(exit code 2\): RTNETLINK answers: Operation not permitted$/),
    );
    await sleep(250);
    assert.ok(fake.monitors().length <= 1, "no restart after a failed start");
    for (const pid of fake.monitors()) assert.not.ok(alive(pid), "the monitor ended");
    assert.equal(problems, []);
  } finally {
    fake.close();
  }
  for (const bad of [{ batchMs: -1 }, { maxBatchMs: Number.NaN }, { resyncMs: Infinity }]) {
    await watchAddresses({ ipCommand: missing, ...bad }, () => {}).then(() => assert.unreachable("resolved"), (err: Error) => assert.match(err.message, /must be a number of milliseconds >= 0/));
  }
});

test("stop() ends the monitor, timers and notices: nothing is reported afterwards", async () => {
  const fake = fakeIp();
  try {
    const { watch, changes } = await start(fake, { resyncMs: 30 });
    await monitorListening(fake);
    fake.setAddresses(["10.9.9.9"]);
    fake.event();
    await watch.stop();
    await watch.stop(); // twice: fine
    const reads = fake.reads();
    await sleep(150);
    assert.is(fake.reads(), reads, "no reads after stop()");
    assert.ok(changes.length <= 1);
    await stopped(fake, watch);
  } finally {
    fake.close();
  }
});

test.run();
