// The etcd rows of bench/control.ts: the same ServiceEntries as the meshes (bench/mesh.ts), in a
// 3-member etcd cluster on loopback, and two control-plane replicas on it.
//  1. `multiplane registry import --apply` of the registry into etcd.
//  2. Cold load: serve() on etcd://... in this process until the registry serves (list, parse, build).
//  3. One key changed in etcd until that control plane serves the new registry version (no proxies):
//     what etcd, the watch, parsing and the store cost, before any generation.
//  4. Two replicas (processes of the multiplane bin), each with N proxies in a child process
//     (bench/mesh-clients.ts): one key changes in etcd (one endpoint moves); every proxy of both
//     replicas is timed until it has received and ACKed the new address.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { createInterface, type Interface } from "node:readline";
import { fileURLToPath } from "node:url";
import { etcdClient } from "../control/registry/sources/etcd/etcd-client.ts";
import { serve } from "../control/serve/serve.ts";
import { registryCommand } from "../control/cmd/transfer/command.ts";
import { startEtcdCluster } from "../test/support/etcd.ts";
import { waitFor } from "../test/support/net.ts";
import { replica, type Replica } from "../test/support/replica.ts";
import { serviceEntryYaml } from "./mesh.ts";

export interface EtcdResult {
  services: number;
  proxiesPerReplica: number;
  protocol: "sotw" | "delta";
  importMs: number;
  /** Per round: serve() until every service serves. */
  loadMs: number[];
  /** Per change: etcd put -> that control plane's new registry version. */
  watchMs: number[];
  /** Both replicas' clients started -> every proxy has ACKed LDS, CDS, EDS and ECDS. */
  connectMs: number;
  /** Per change and proxy of either replica: etcd put -> ACK of the EDS response carrying the new address. */
  latenciesMs: number[];
}

const PREFIX = "bench";
const key = (i: number) => `${PREFIX}/ServiceEntry/bench/svc-${i}`;

interface Clients {
  child: ChildProcess;
  lines: Interface;
}

function meshClients(r: Replica, proxies: number, protocol: string): Clients {
  const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./mesh-clients.ts", import.meta.url)), `127.0.0.1:${r.xdsPort}`, String(proxies), protocol], { stdio: ["pipe", "pipe", "inherit"] });
  return { child, lines: createInterface({ input: child.stdout! }) };
}

const nextLine = (c: Clients) => new Promise<any>((resolve, reject) => {
  c.lines.once("line", (l) => resolve(JSON.parse(l)));
  c.child.once("exit", (code) => reject(new Error(`mesh clients exited (${code})`)));
});

export async function etcdBench(services: number, proxiesPerReplica: number, protocol: "sotw" | "delta", rounds: number): Promise<EtcdResult> {
  const etcd = await startEtcdCluster(3);
  const dir = mkdtempSync(join(os.tmpdir(), "mp-bench-etcd-"));
  const replicas: Replica[] = [];
  const clients: Clients[] = [];
  const writer = etcdClient(etcd.endpoints);
  try {
    const file = join(dir, "registry.yaml");
    writeFileSync(file, Array.from({ length: services }, (_, i) => serviceEntryYaml(i)).join("---\n"));
    writeFileSync(join(dir, "token"), "bench");
    const url = etcd.url(PREFIX);

    const tImport = performance.now();
    if ((await registryCommand(["import", file, "--to", url, "--apply"], () => {})) !== 0) throw new Error("registry import failed");
    const importMs = performance.now() - tImport;

    const loadMs: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      const cp = await serve({ registry: url, xdsPort: 0, httpPort: false, log: () => {} });
      loadMs.push(performance.now() - t0);
      const served = cp.store.registry.services.length;
      await cp.stop();
      if (served !== services) throw new Error(`cold load served ${served} of ${services} services`);
    }

    const watchMs: number[] = [];
    {
      let servedAt = 0;
      const cp = await serve({ registry: url, xdsPort: 0, httpPort: false, log: (l) => { if (l.startsWith("registry v")) servedAt = performance.now(); } });
      try {
        for (let round = 1; round <= rounds; round++) {
          const i = (round * 991) % services;
          servedAt = 0;
          const t0 = performance.now();
          await writer.put(key(i)).value(serviceEntryYaml(i, `10.251.${round}.${(i % 250) + 1}`));
          if (!(await waitFor(() => servedAt > 0, 10_000, 1))) throw new Error("the change was not served within 10 s");
          watchMs.push(servedAt - t0);
        }
      } finally {
        await cp.stop();
      }
    }

    for (const name of ["a", "b"]) {
      const r = await replica(name, { registry: url, tokenFile: join(dir, "token"), token: "bench" });
      replicas.push(r);
      await r.start();
      if (!(await waitFor(async () => (await fetch(`${r.httpUrl}/readyz`)).ok, 60_000, 100))) throw new Error(`replica ${name} not ready`);
    }
    const tConnect = performance.now();
    for (const r of replicas) clients.push(meshClients(r, proxiesPerReplica, protocol));
    await Promise.all(clients.map(nextLine)); // {"ready": N, ...}
    const connectMs = performance.now() - tConnect;

    const latenciesMs: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      // Service i's first endpoint moves; proxy i (if there is one) hosts it.
      const i = (round * 997) % services;
      const address = `10.250.${round}.${(i % 250) + 1}`;
      const results = clients.map(nextLine);
      const t0 = process.hrtime.bigint();
      for (const c of clients) c.child.stdin!.write(JSON.stringify({ t0: t0.toString(), cluster: `outbound|${10000 + (i % 500)}||svc-${i}.bench.svc.cluster.local`, address }) + "\n");
      await writer.put(key(i)).value(serviceEntryYaml(i, address));
      for (const r of await Promise.all(results) as { latenciesMs: number[]; checked: number }[]) {
        if (r.checked !== proxiesPerReplica) throw new Error(`only ${r.checked} of ${proxiesPerReplica} proxies saw the new address`);
        for (const x of r.latenciesMs) latenciesMs.push(x);
      }
    }
    return { services, proxiesPerReplica, protocol, importMs, loadMs, watchMs, connectMs, latenciesMs };
  } finally {
    writer.close();
    for (const c of clients) c.child.kill();
    await Promise.all(replicas.map((r) => r.kill()));
    await etcd.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
