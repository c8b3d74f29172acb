// `multiplane registry import PATH --to etcd://...` and `multiplane registry export --from etcd://... PATH`:
// print the plan (dry run by default), and with --apply carry it out.
import { existsSync, statSync } from "node:fs";
import { basename, dirname } from "node:path";
import { parseArgs } from "node:util";
import { DurableDirectory } from "../../registry/sources/api/durable-file.ts";
import { etcdClient, firstLine } from "../../registry/sources/etcd/etcd-client.ts";
import { etcdUrl, parseEtcdUrl, parseEtcdValue, type EtcdLocation } from "../../registry/sources/etcd/etcd-layout.ts";
import { formatError } from "../../registry/model.ts";
import { applyToEtcd, describePlan, exportText, filesAsValues, plan, readEtcd } from "./transfer.ts";

export const REGISTRY_USAGE = `  registry import PATH --to etcd://HOST:PORT[,HOST:PORT...]/PREFIX [--apply]
  registry export --from etcd://HOST:PORT[,HOST:PORT...]/PREFIX FILE [--apply]
      copy a registry between files (a file or directory) and etcd; prints the keys that would be
      added (+), changed (~) and removed (-); nothing is written without --apply`;

/** Thrown for bad arguments: the CLI prints usage. */
export class TransferUsageError extends Error {}

export async function registryCommand(args: string[], print: (line: string) => void): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== "import" && sub !== "export") throw new TransferUsageError(`registry: expected import, export or confirm, got ${JSON.stringify(sub ?? "")}`);
  const { values, positionals } = parseArgs({
    args: rest, strict: true, allowPositionals: true,
    options: { to: { type: "string" }, from: { type: "string" }, apply: { type: "boolean" } },
  });
  const apply = values.apply ?? false;
  const path = positionals[0];
  if (positionals.length !== 1 || !path) throw new TransferUsageError(`registry ${sub}: expected one PATH`);
  if (sub === "import") {
    if (!values.to || values.from) throw new TransferUsageError("registry import: --to etcd://... is required (and --from is for export)");
    return importFiles(path, values.to, apply, print);
  }
  if (!values.from || values.to) throw new TransferUsageError("registry export: --from etcd://... is required (and --to is for import)");
  return exportEtcd(values.from, path, apply, print);
}

/** An etcd call that fails is one line naming the cluster, not grpc-js's multi-line message. */
async function fromEtcd<T>(loc: EtcdLocation, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    throw new Error(`${etcdUrl(loc)}: ${firstLine(err as Error)}`);
  }
}

async function importFiles(path: string, url: string, apply: boolean, print: (line: string) => void): Promise<number> {
  const loc = parseUrl(url);
  const files = await filesAsValues(path, loc.prefix);
  if ("errors" in files) {
    print(`registry import: ${path} does not load; nothing was written:`);
    for (const e of files.errors) print(`  ${e}`);
    return 1;
  }
  const client = etcdClient(loc.hosts);
  try {
    const read = await fromEtcd(loc, readEtcd(client, loc.prefix));
    const p = plan(loc.prefix, files.values, new Map([...read].map(([k, v]) => [k, v.value])));
    print(`import ${path} -> ${etcdUrl(loc)}${apply ? "" : " (dry run: --apply writes it)"}`);
    for (const line of describePlan(p)) print(line);
    if (!apply) return 0;
    const r = await fromEtcd(loc, applyToEtcd(client, p, read));
    if (r.conflict) {
      print(`registry import: ${r.conflict} (${r.written} keys written before)`);
      return 1;
    }
    print(`applied: ${r.written} keys written`);
    return 0;
  } finally {
    client.close();
  }
}

async function exportEtcd(url: string, path: string, apply: boolean, print: (line: string) => void): Promise<number> {
  const loc = parseUrl(url);
  if (existsSync(path) && statSync(path).isDirectory()) throw new TransferUsageError(`registry export: ${path} is a directory; export writes one registry file (e.g. ${path}/registry.yaml)`);
  const client = etcdClient(loc.hosts);
  let stored: Map<string, string>;
  try {
    stored = new Map([...(await fromEtcd(loc, readEtcd(client, loc.prefix)))].map(([k, v]) => [k, v.value]));
  } finally {
    client.close();
  }
  const bad = [...stored].flatMap(([k, v]) => parseEtcdValue(loc.prefix, k, v).errors.map(formatError));
  if (bad.length > 0) {
    print(`registry export: ${etcdUrl(loc)} holds values that do not validate; nothing was written:`);
    for (const e of bad) print(`  ${e}`);
    return 1;
  }
  let current = new Map<string, string>();
  if (existsSync(path)) {
    const files = await filesAsValues(path, loc.prefix);
    // A file that does not load is replaced as a whole: every key counts as added.
    if ("values" in files) current = files.values;
  }
  const p = plan(loc.prefix, stored, current);
  print(`export ${etcdUrl(loc)} -> ${path}${apply ? "" : " (dry run: --apply writes it)"}`);
  for (const line of describePlan(p)) print(line);
  if (!apply) return 0;
  // Whole or not at all: a control plane watching the file never reads half of it.
  await new DurableDirectory(dirname(path)).write(basename(path), exportText(stored));
  print(`applied: ${path} written (${stored.size} documents)`);
  return 0;
}

function parseUrl(url: string) {
  try {
    return parseEtcdUrl(url);
  } catch (err) {
    throw new TransferUsageError((err as Error).message);
  }
}
