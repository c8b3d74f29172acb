// The node agent's address watch (control/agent/address-watch.ts) on a real kernel and real iproute2
// (root): in a network namespace made here, addresses are added and removed with `ip -n NS` and the
// watch, run with `netns`, reports each new set. Only addresses inside that namespace are touched; the
// namespace is removed afterwards, also when a test fails or the process is interrupted.
//
//   <ns>:  lo        (loopback: never reported)
//          v0 ──veth── x0   (v0: the node's interface; x0: excluded, and the v0 link's far end)
import { test } from "uvu";
import * as assert from "uvu/assert";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { watchAddresses, type AddressWatch } from "../../control/agent/address-watch.ts";
import { CleanupRegistry } from "../../control/cmd/demo/cleanup.ts";
import { deleteNamespaceSync, run } from "../../control/cmd/demo/netns.ts";
import { whenAvailable } from "../support/available.ts";
import { netnsUnavailableReason, sweepStaleNamespaces } from "../support/netns.ts";

const NS_RE = /^mpaw(\d+)-[0-9a-f]{4}$/;
const NODE_IP = "192.168.10.63";
const SERVICE_IP = "10.75.8.101";

interface Change {
  ips: readonly string[];
  at: number;
}

whenAvailable(netnsUnavailableReason(), "node agent address watch in a network namespace", (test) => {
  const ns = `mpaw${process.pid}-${randomBytes(2).toString("hex")}`;
  const ipn = (...args: string[]) => run("ip", ["-n", ns, ...args]);
  let cleanup: CleanupRegistry | undefined;
  let watch: AddressWatch | undefined;
  const changes: Change[] = [];
  const problems: string[] = [];
  /** Checks run inside onChange, while the kernel state that caused the call still holds. */
  let duringChange: ((ips: readonly string[]) => void) | undefined;

  /** `ip` processes this process started that run in the test's namespace (the watch's). */
  const ipChildren = (): { pid: number; args: string }[] => {
    const found: { pid: number; args: string }[] = [];
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
        const close = stat.lastIndexOf(")");
        const comm = stat.slice(stat.indexOf("(") + 1, close);
        const ppid = Number(stat.slice(close + 2).split(" ")[1]);
        const args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ").trim();
        if (ppid === process.pid && comm === "ip" && args.includes(ns)) found.push({ pid: Number(entry), args });
      } catch {
        // gone meanwhile
      }
    }
    return found;
  };

  /** The first change from index `from` on whose set satisfies `cond`. */
  const changeFrom = async (from: number, what: string, cond: (ips: readonly string[]) => boolean, timeoutMs = 1000): Promise<Change> => {
    const end = performance.now() + timeoutMs;
    for (;;) {
      const hit = changes.slice(from).find((c) => cond(c.ips));
      if (hit) return hit;
      if (performance.now() > end) throw new Error(`no change with ${what} within ${timeoutMs} ms; changes: ${JSON.stringify(changes.slice(from).map((c) => c.ips))}; problems: ${JSON.stringify(problems)}`);
      await sleep(2);
    }
  };

  test.before(() => {
    sweepStaleNamespaces(NS_RE);
    cleanup = new CleanupRegistry();
    cleanup.add(() => deleteNamespaceSync(ns)); // also on exit or a signal
    run("ip", ["netns", "add", ns]);
    ipn("link", "set", "lo", "up");
    ipn("link", "add", "v0", "type", "veth", "peer", "name", "x0");
    ipn("link", "set", "v0", "up");
    ipn("link", "set", "x0", "up");
    ipn("addr", "add", `${NODE_IP}/24`, "dev", "v0");
  });

  test.after(async () => {
    try {
      await watch?.stop();
    } finally {
      cleanup?.close(); // deletes the namespace (and kills anything left in it)
      assert.not.ok(run("ip", ["netns", "list"]).includes(ns), "namespace removed");
    }
  });

  test("the watch starts with the namespace's node IPs, and reports nothing for them", async () => {
    watch = await watchAddresses({ netns: ns, excludeInterfaces: ["x0"], onProblem: (m) => problems.push(m) }, (ips) => {
      changes.push({ ips, at: performance.now() });
      duringChange?.(ips);
    });
    assert.equal(watch.current(), [NODE_IP]);
    const monitors = ipChildren().filter((p) => p.args.includes(" monitor "));
    assert.is(monitors.length, 1, "one monitor runs");
    assert.match(monitors[0]!.args, /^ip -n \S+ -oneline monitor address link$/);
    await sleep(300);
    assert.equal(changes, []);
  });

  test("an address added is reported within 1 s, one removed too (latency printed)", async () => {
    const adds: number[] = [];
    const dels: number[] = [];
    for (let round = 0; round < 5; round++) {
      let from = changes.length;
      let t0 = performance.now();
      ipn("addr", "add", `${SERVICE_IP}/24`, "dev", "v0");
      const added = await changeFrom(from, SERVICE_IP, (ips) => ips.includes(SERVICE_IP));
      adds.push(added.at - t0);
      assert.equal(added.ips, [SERVICE_IP, NODE_IP]);
      assert.equal(watch!.current(), added.ips);

      from = changes.length;
      t0 = performance.now();
      ipn("addr", "del", `${SERVICE_IP}/24`, "dev", "v0");
      const removed = await changeFrom(from, `no ${SERVICE_IP}`, (ips) => !ips.includes(SERVICE_IP));
      dels.push(removed.at - t0);
      assert.equal(removed.ips, [NODE_IP]);
    }
    const fmt = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      return `median ${s[Math.floor(s.length / 2)]!.toFixed(0)} ms, min ${s[0]!.toFixed(0)}, max ${s.at(-1)!.toFixed(0)} (5 rounds)`;
    };
    console.log(`    add -> onChange: ${fmt(adds)}; del -> onChange: ${fmt(dels)}`);
    assert.is(changes.length, 10, "one call per change");
  });

  test("a burst of 20 adds is a few calls (batched), and so are the 20 removals", async () => {
    const burst = Array.from({ length: 20 }, (_, i) => `10.75.9.${i + 1}`);
    let from = changes.length;
    const t0 = performance.now();
    // One `ip -batch`: 20 RTM_NEWADDR back to back, 20 monitor lines.
    run("ip", ["-n", ns, "-batch", "-"], { input: burst.map((ip) => `addr add ${ip}/32 dev v0\n`).join("") });
    const all = await changeFrom(from, "all 20", (ips) => burst.every((ip) => ips.includes(ip)));
    await sleep(300);
    const addCalls = changes.length - from;
    console.log(`    20 adds -> ${addCalls} call(s), the last ${(all.at - t0).toFixed(0)} ms after the burst began`);
    assert.ok(addCalls <= 3, `${addCalls} calls for one burst`);
    assert.equal(changes.at(-1)!.ips, [...burst, NODE_IP]);

    from = changes.length;
    run("ip", ["-n", ns, "-batch", "-"], { input: burst.map((ip) => `addr del ${ip}/32 dev v0\n`).join("") });
    await changeFrom(from, "none of the 20", (ips) => burst.every((ip) => !ips.includes(ip)));
    await sleep(300);
    assert.ok(changes.length - from <= 3, `${changes.length - from} calls for the removals`);
    assert.equal(watch!.current(), [NODE_IP]);
  });

  test("loopback, link-local and excluded interfaces' addresses are never reported", async () => {
    const from = changes.length;
    ipn("addr", "add", "127.0.0.5/8", "dev", "lo");
    ipn("addr", "add", "10.0.0.5/32", "dev", "lo"); // a global address, but on the loopback interface
    ipn("addr", "add", "169.254.7.7/16", "dev", "v0");
    ipn("addr", "add", "fe80::7/64", "dev", "v0", "nodad");
    ipn("addr", "add", "10.99.0.1/24", "dev", "x0");
    ipn("addr", "add", "2001:db8::99/64", "dev", "x0", "nodad");
    await sleep(400);
    assert.equal(changes.slice(from), [], "those changes changed nothing");
    // The monitor did see them: the next real change carries exactly the node's IPs, none of those.
    ipn("addr", "add", "10.75.8.110/24", "dev", "v0");
    const next = await changeFrom(from, "10.75.8.110", (ips) => ips.includes("10.75.8.110"));
    assert.equal(next.ips, ["10.75.8.110", NODE_IP]);
    ipn("addr", "del", "10.75.8.110/24", "dev", "v0");
    await changeFrom(from, "no 10.75.8.110", (ips) => !ips.includes("10.75.8.110"));
  });

  test("IPv6: added with nodad, reported at once; with DAD, only once it passed; a duplicate never", async () => {
    let from = changes.length;
    let t0 = performance.now();
    ipn("addr", "add", "2001:db8::101/64", "dev", "v0", "nodad");
    const v6 = await changeFrom(from, "2001:db8::101", (ips) => ips.includes("2001:db8::101"));
    console.log(`    IPv6 (nodad) add -> onChange: ${(v6.at - t0).toFixed(0)} ms`);
    assert.equal(v6.ips, [NODE_IP, "2001:db8::101"]);

    // x0 (excluded, so never reported itself) holds 2001:db8::77: v0's duplicate address detection for
    // the same address fails (dadfailed); 2001:db8::102 passes it after a second or two.
    ipn("addr", "add", "2001:db8::77/64", "dev", "x0", "nodad");
    from = changes.length;
    const tentativeWhenReported: boolean[] = [];
    duringChange = (ips) => {
      if (!ips.includes("2001:db8::102")) return;
      const v0 = JSON.parse(ipn("-json", "addr", "show", "dev", "v0")) as { addr_info: { local: string; tentative?: boolean }[] }[];
      tentativeWhenReported.push(v0[0]!.addr_info.some((a) => a.local === "2001:db8::102" && a.tentative === true));
    };
    t0 = performance.now();
    ipn("addr", "add", "2001:db8::77/64", "dev", "v0");
    ipn("addr", "add", "2001:db8::102/64", "dev", "v0");
    const passed = await changeFrom(from, "2001:db8::102 after DAD", (ips) => ips.includes("2001:db8::102"), 6000);
    duringChange = undefined;
    console.log(`    IPv6 with DAD: reported ${(passed.at - t0).toFixed(0)} ms after it was added`);
    assert.equal(tentativeWhenReported, [false], "reported once, after DAD");
    assert.equal(passed.ips, [NODE_IP, "2001:db8::101", "2001:db8::102"]);
    const v0 = ipn("-json", "addr", "show", "dev", "v0");
    assert.match(v0, /"local":"2001:db8::77","prefixlen":64,"scope":"global","dadfailed":true/);
    await sleep(300);
    assert.ok(changes.every((c) => !c.ips.includes("2001:db8::77")), "the duplicate is never reported");
    for (const ip of ["2001:db8::101", "2001:db8::102", "2001:db8::77"]) ipn("addr", "del", `${ip}/64`, "dev", "v0");
    await changeFrom(from, "no IPv6", (ips) => ips.every((ip) => !ip.includes(":")));
  });

  test("an interface that loses its carrier takes its addresses out of the set; they come back with it", async () => {
    let from = changes.length;
    ipn("link", "set", "x0", "down"); // v0's far end: v0 is up, without carrier
    const down = await changeFrom(from, `no ${NODE_IP}`, (ips) => !ips.includes(NODE_IP));
    assert.equal(down.ips, []);
    from = changes.length;
    const t0 = performance.now();
    ipn("link", "set", "x0", "up");
    const up = await changeFrom(from, NODE_IP, (ips) => ips.includes(NODE_IP));
    console.log(`    carrier back -> onChange: ${(up.at - t0).toFixed(0)} ms`);
    assert.equal(up.ips, [NODE_IP]);
  });

  test("a monitor that dies is restarted (reported), and changes are seen again", async () => {
    const [monitor] = ipChildren().filter((p) => p.args.includes(" monitor "));
    assert.ok(monitor, "the monitor runs");
    process.kill(monitor.pid, "SIGKILL");
    const end = performance.now() + 3000;
    while (!(problems.length > 0 && ipChildren().some((p) => p.pid !== monitor.pid && p.args.includes("monitor")))) {
      if (performance.now() > end) throw new Error(`no restart; problems: ${JSON.stringify(problems)}`);
      await sleep(10);
    }
    assert.equal(problems, ["ip monitor was ended by SIGKILL; restarting it in 100 ms"]);
    const from = changes.length;
    ipn("addr", "add", "10.75.8.120/24", "dev", "v0");
    const seen = await changeFrom(from, "10.75.8.120", (ips) => ips.includes("10.75.8.120"));
    assert.equal(seen.ips, ["10.75.8.120", NODE_IP]);
  });

  test("stop() leaves no ip process, and nothing is reported afterwards", async () => {
    assert.ok(ipChildren().length >= 1);
    await watch!.stop();
    assert.equal(ipChildren(), [], "no ip process left");
    const from = changes.length;
    ipn("addr", "add", "10.75.8.130/24", "dev", "v0");
    await sleep(300);
    assert.is(changes.length, from);
  });

  test("a namespace that does not exist: the start fails with iproute2's reason, nothing left running", async () => {
    const missing = `${ns}-missing`;
    await watchAddresses({ netns: missing }, () => {}).then(
      () => assert.unreachable("resolved"),
      (err: Error) => assert.match(err.message, new RegExp(`^ip -n ${missing} -json addr show failed \\(exit code \\d+\\): Cannot open network namespace "${missing}"`)),
    );
    const left = readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(missing);
      } catch {
        return false;
      }
    });
    assert.equal(left, []);
  });
});

test.run();
