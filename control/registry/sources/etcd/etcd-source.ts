// Registry documents from etcd (`serve --registry etcd://...`): one key per ServiceEntry or
// WorkloadEntry, validated like files (errors name the key), watched. It also takes the HTTP API's
// writes: each is a compare-and-swap transaction on the key's mod revision (the API's ETag) and on
// the whole prefix being as this replica last reported it, so neither a stale If-Match nor a
// replica's stale view can overwrite someone else's change, and the store's judgement of the whole
// registry holds in etcd too. A write is acknowledged once etcd has committed it and this replica
// has reported it; other replicas learn of it through their watches.
import type { Etcd3, ITxnResponse } from "etcd3";
import { etcdClient, firstLine } from "./etcd-client.ts";
import { etcdUrl, parseEtcdValue, prefixRange, resourceEtcdKey, type EtcdLocation, type ParsedValue } from "./etcd-layout.ts";
import { EtcdView } from "./etcd-view.ts";
import { MAX_KEPT_ERRORS } from "../../text-limits.ts";
import type { RegistryError, Resource } from "../../model.ts";
import { isProblem, type Committed, type RegistryProblem, type RegistrySource, type RegistryWrite, type SourceUpdate, type StagedWrite, type WritableSource } from "../../source.ts";
import { parseWrittenEntry } from "../../written-entry.ts";

export interface EtcdSourceOptions {
  /** Deadline of each attempt of an etcd call (a call tries up to 3 members). */
  callTimeoutMs?: number;
  /** How long a committed write waits to show up in this replica's registry before it is acknowledged anyway. */
  confirmTimeoutMs?: number;
}

export class EtcdSource implements RegistrySource, WritableSource {
  readonly name = "etcd";
  readonly writes = this;
  readonly url: string;
  private readonly client: Etcd3;
  private readonly view: EtcdView;
  private readonly parsed = new Map<string, { modRevision: number; result: ParsedValue }>();
  /** The resources of the last report, by etcd key (what a write is staged on). */
  private reported = new Map<string, Resource>();
  private onUpdate?: (u: SourceUpdate) => void;
  private readonly confirmTimeoutMs: number;

  constructor(readonly location: EtcdLocation, opts: EtcdSourceOptions = {}) {
    this.url = etcdUrl(location);
    const callTimeoutMs = opts.callTimeoutMs ?? 2000;
    this.confirmTimeoutMs = opts.confirmTimeoutMs ?? 5000;
    this.client = etcdClient(location.hosts, callTimeoutMs);
    this.view = new EtcdView(this.client, location.prefix, { changed: () => this.report() });
  }

  async start(onUpdate: (update: SourceUpdate) => void): Promise<void> {
    this.onUpdate = onUpdate;
    await this.view.start();
    // Unreachable at start: not loaded (not ready) until the first listing succeeds; the view keeps trying.
    if (!this.view.isListed) onUpdate({ resources: [], errors: [{ file: this.url, line: 0, reason: `cannot list the registry: ${this.view.lastError ?? "no answer"}` }], warnings: [] });
  }

  stop(): void {
    this.onUpdate = undefined;
    this.view.stop();
    this.client.close();
  }

  unavailable(): string | undefined {
    // While the watch moves to another member, writes go through: each is a compare-and-swap against
    // the revision this replica reported, and is confirmed once the watch is back.
    if (this.view.connected || this.view.reconnecting) return undefined;
    const since = this.view.lostAt ? ` since ${new Date(this.view.lostAt).toISOString()}` : "";
    return `etcd ${this.location.hosts.join(",")} unreachable${since} (${this.view.lastError ?? "connecting"}): writes are refused; the registry at etcd revision ${this.view.reportedRevision} keeps serving`;
  }

  /** The watch's state, for tests and debugging. */
  stats(): { revision: number; listings: number; connected: boolean } {
    return { revision: this.view.reportedRevision, listings: this.view.listings, connected: this.view.connected };
  }

  /** The key's mod revision, quoted: the HTTP API's ETag. */
  etag(r: { kind: string; namespace: string; name: string }): string | undefined {
    const v = this.view.kvs.get(resourceEtcdKey(this.location.prefix, r));
    return v && `"${v.modRevision}"`;
  }

  /** Etcd's state under the prefix: every key parsed (a value is parsed again only when its revision changed), in key order. */
  private report(): void {
    const errors = new CappedList();
    const warnings = new CappedList();
    let invalidDocuments = 0;
    const byKey = new Map<string, Resource>();
    // Key order, whatever order the watch delivered changes in: every replica reports the same list.
    for (const key of [...this.view.kvs.keys()].sort()) {
      const v = this.view.kvs.get(key)!;
      let hit = this.parsed.get(key);
      if (!hit || hit.modRevision !== v.modRevision) {
        hit = { modRevision: v.modRevision, result: parseEtcdValue(this.location.prefix, key, v.value) };
        this.parsed.set(key, hit);
      }
      const r = hit.result;
      if (r.resource) byKey.set(key, r.resource);
      if (r.errors.length > 0) invalidDocuments++;
      for (const e of r.errors) errors.add(e);
      for (const w of r.warnings) warnings.add(w);
    }
    for (const key of this.parsed.keys()) if (!this.view.kvs.has(key)) this.parsed.delete(key);
    this.reported = byKey;
    this.onUpdate?.({
      resources: [...byKey.values()], errors: errors.kept, warnings: warnings.kept,
      moreErrors: errors.more, moreWarnings: warnings.more, invalidDocuments,
    });
  }

  stage(write: RegistryWrite): StagedWrite | RegistryProblem {
    const down = this.unavailable();
    if (down) return { kind: "unavailable", errors: [down] };
    const key = resourceEtcdKey(this.location.prefix, write);
    const next = new Map(this.reported);
    if (write.op === "delete") {
      if (!next.delete(key)) return { kind: "not-found", errors: [`no ${write.kind} ${write.namespace}/${write.name} in ${this.url}`] };
    } else {
      const parsed = parseWrittenEntry(write);
      if (isProblem(parsed)) return parsed;
      // As the watch will read it back: named by its key.
      next.set(key, { ...parsed.entry, origin: { file: key, line: parsed.entry.origin.line } });
    }
    const known = this.view.kvs.get(key)?.modRevision ?? 0;
    const seen = this.view.reportedRevision;
    return { resources: [...next.values()], commit: () => this.commit(write, key, known, seen) };
  }

  /**
   * One transaction: the key is at the revision the write was staged on, and nothing under the prefix
   * changed after what this replica reported. Otherwise this replica is behind: it catches up and the
   * store stages the write again (and checks If-Match again).
   */
  private async commit(write: RegistryWrite, key: string, known: number, seen: number): Promise<Committed | RegistryProblem> {
    const keyBuf = Buffer.from(key);
    const range = prefixRange(this.location.prefix);
    let res: ITxnResponse;
    try {
      res = await this.client.kv.txn({
        compare: [
          { key: keyBuf, target: "Mod", result: "Equal", mod_revision: String(known) },
          { ...range, target: "Mod", result: "Less", mod_revision: String(seen + 1) },
        ],
        success: [write.op === "put" ? { request_put: { key: keyBuf, value: Buffer.from(write.body) } } : { request_delete_range: { key: keyBuf } }],
        failure: [{ request_range: { key: keyBuf, keys_only: true } }, { request_range: { ...range, min_mod_revision: String(seen + 1), keys_only: true } }],
      });
    } catch (err) {
      // Unreachable, or no answer in time: the write may still have been committed, so it is not acknowledged either way.
      return { kind: "unavailable", errors: [`etcd did not confirm the write (${firstLine(err as Error)}); read the entry to see whether it was applied`] };
    }
    if (res.succeeded) {
      const revision = Number(res.header.revision);
      // Acknowledged once this replica serves it (the store has judged the report).
      await this.view.until(() => this.view.reportedRevision >= revision, this.confirmTimeoutMs);
      return write.op === "put" ? { etag: `"${revision}"` } : {};
    }
    const current = Number(res.responses[0]?.response_range.kvs[0]?.mod_revision ?? 0);
    // A loop, not Math.max(...list): any number of keys may have changed meanwhile.
    let newer = current;
    for (const kv of res.responses[1]?.response_range.kvs ?? []) newer = Math.max(newer, Number(kv.mod_revision));
    await this.view.until(() => (this.view.kvs.get(key)?.modRevision ?? 0) === current && this.view.reportedRevision >= newer, this.confirmTimeoutMs);
    return { kind: "conflict", retry: true, errors: [`the registry in ${this.url} changed while ${write.kind} ${write.namespace}/${write.name} was being written; try again`] };
  }
}

/** The first MAX_KEPT_ERRORS items, and how many more there were. */
class CappedList {
  readonly kept: RegistryError[] = [];
  more = 0;

  add(e: RegistryError): void {
    if (this.kept.length < MAX_KEPT_ERRORS) this.kept.push(e);
    else this.more++;
  }
}
