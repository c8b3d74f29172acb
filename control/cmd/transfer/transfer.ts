// `multiplane registry import|export`: registry files <-> etcd. Both sides are validated first (an
// import of files that do not load is refused with file:line errors), then compared key by key by
// content; the plan (added, changed, removed) is what --apply writes. Writes to etcd go in small
// transactions, each conditional on its keys being as they were read, so a concurrent change is
// never overwritten: the import stops and says so.
import { parseAllDocuments, stringify } from "yaml";
import type { Etcd3, ICompare, IRequestOp } from "etcd3";
import { buildRegistry } from "../../registry/build.ts";
import { KINDS, parseEtcdValue, resourceEtcdKey } from "../../registry/sources/etcd/etcd-layout.ts";
import { listPrefix, type StoredValue } from "../../registry/sources/etcd/etcd-view.ts";
import { loadRegistry } from "../../registry/sources/files/load.ts";
import { formatError, type Resource } from "../../registry/model.ts";

/** One key's value on each side; undefined where the side does not have it. */
export interface PlannedKey {
  key: string;
  from?: string;
  to?: string;
}

export interface TransferPlan {
  added: PlannedKey[];
  changed: PlannedKey[];
  removed: PlannedKey[];
  unchanged: number;
}

/** etcd's txn limit is 128 operations by default; a key costs a compare and an operation. */
const KEYS_PER_TXN = 60;

/** Every key under the prefix with its value and mod revision. */
export async function readEtcd(client: Etcd3, prefix: string): Promise<Map<string, StoredValue>> {
  return (await listPrefix(client, prefix)).kvs;
}

/**
 * The registry at `path` as etcd values (key -> one YAML document), or its errors. Validated as the
 * control plane validates it, and each value checked to read back as the same resource.
 */
export async function filesAsValues(path: string, prefix: string): Promise<{ values: Map<string, string> } | { errors: string[] }> {
  const loaded = await loadRegistry(path);
  if (loaded.errors.length > 0) return { errors: loaded.errors.map(formatError) };
  const built = buildRegistry(loaded.resources);
  if (!built.ok) return { errors: built.errors.map(formatError) };
  const values = new Map<string, string>();
  const errors: string[] = [];
  // The texts loadRegistry read and validated (within its limits): each document as it was written.
  for (const [file, text] of loaded.texts) {
    for (const doc of parseAllDocuments(text)) {
      const value = doc.toJS() as unknown;
      const items = isList(value) ? value.items : [value];
      for (const item of items) {
        const kind = (item as { kind?: unknown } | null)?.kind;
        if (!(KINDS as readonly unknown[]).includes(kind)) continue;
        const meta = (item as { metadata?: { name?: string; namespace?: string } }).metadata ?? {};
        const key = resourceEtcdKey(prefix, { kind: String(kind), namespace: meta.namespace ?? "default", name: String(meta.name) });
        const text = stringify(item);
        const check = parseEtcdValue(prefix, key, text);
        if (check.errors.length > 0 || !check.resource) errors.push(`${file}: ${key} would not read back: ${check.errors.map(formatError).join("; ")}`);
        values.set(key, text);
      }
    }
  }
  return errors.length > 0 ? { errors } : { values };
}

/** What changes on the `to` side if it is made equal to `from`, by content (formatting and origins aside). */
export function plan(prefix: string, from: ReadonlyMap<string, string>, to: ReadonlyMap<string, string>): TransferPlan {
  const out: TransferPlan = { added: [], changed: [], removed: [], unchanged: 0 };
  for (const key of [...from.keys()].sort()) {
    const a = from.get(key)!;
    const b = to.get(key);
    if (b === undefined) out.added.push({ key, from: a });
    else if (sameContent(prefix, key, a, b)) out.unchanged++;
    else out.changed.push({ key, from: a, to: b });
  }
  for (const key of [...to.keys()].sort()) if (!from.has(key)) out.removed.push({ key, to: to.get(key)! });
  return out;
}

function sameContent(prefix: string, key: string, a: string, b: string): boolean {
  if (a === b) return true;
  const ra = parseEtcdValue(prefix, key, a).resource;
  const rb = parseEtcdValue(prefix, key, b).resource;
  return ra !== undefined && rb !== undefined && JSON.stringify(withoutOrigin(ra)) === JSON.stringify(withoutOrigin(rb));
}

function withoutOrigin(r: Resource): Omit<Resource, "origin"> {
  const { origin: _origin, ...rest } = r;
  return rest;
}

/**
 * Makes etcd match the plan, a few keys per transaction, each transaction conditional on its keys'
 * revisions as `read` saw them. Returns how many keys were written before a refusal, if one came.
 */
export async function applyToEtcd(client: Etcd3, p: TransferPlan, read: ReadonlyMap<string, StoredValue>): Promise<{ written: number; conflict?: string }> {
  const work = [...p.added, ...p.changed, ...p.removed];
  let written = 0;
  for (let i = 0; i < work.length; i += KEYS_PER_TXN) {
    const batch = work.slice(i, i + KEYS_PER_TXN);
    const compare: ICompare[] = batch.map((k) => ({ key: Buffer.from(k.key), target: "Mod", result: "Equal", mod_revision: String(read.get(k.key)?.modRevision ?? 0) }));
    const success: IRequestOp[] = batch.map((k) => k.from !== undefined
      ? { request_put: { key: Buffer.from(k.key), value: Buffer.from(k.from) } }
      : { request_delete_range: { key: Buffer.from(k.key) } });
    const res = await client.kv.txn({ compare, success });
    if (!res.succeeded) return { written, conflict: `one of ${batch[0]!.key} .. ${batch.at(-1)!.key} changed in etcd after it was read; nothing of that batch was written, run the import again` };
    written += batch.length;
  }
  return { written };
}

/** The registry in etcd as one file: every value in key order, as YAML documents. */
export function exportText(values: ReadonlyMap<string, string>): string {
  return [...values.keys()].sort().map((k) => `# ${k}\n${values.get(k)!.trimEnd()}\n`).join("---\n");
}

/** The plan as the CLI prints it: one line per key that changes, then the counts. */
export function describePlan(p: TransferPlan): string[] {
  return [
    ...p.added.map((k) => `  + ${k.key}`),
    ...p.changed.map((k) => `  ~ ${k.key}`),
    ...p.removed.map((k) => `  - ${k.key}`),
    `${p.added.length} added, ${p.changed.length} changed, ${p.removed.length} removed, ${p.unchanged} unchanged`,
  ];
}

function isList(v: unknown): v is { items: unknown[] } {
  return typeof v === "object" && v !== null && (v as { kind?: unknown }).kind === "List" && Array.isArray((v as { items?: unknown }).items);
}
