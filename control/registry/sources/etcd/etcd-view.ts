// A live copy of every key under an etcd prefix: listed once (in pages, at one revision), then kept
// current by one watch. After a disconnect the watch resumes from the last revision seen, so nothing
// is missed and nothing is read twice; if etcd compacted that history away, everything is listed
// again. Writers wait on it: a write is visible here once `reportedRevision` reaches its revision.
import type { Etcd3, IDuplexStream, IKeyValue, IWatchRequest, IWatchResponse } from "etcd3";
import { Conditions } from "../../../common/conditions.ts";
import { firstLine } from "./etcd-client.ts";
import { prefixRange } from "./etcd-layout.ts";

export interface StoredValue {
  value: string;
  modRevision: number;
}

export interface EtcdViewEvents {
  /** `kvs` changed; called once for a burst of changes. */
  changed(): void;
}

/** Keys per range request when listing: keeps each response far below gRPC's message limit. */
const PAGE = 1000;
const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2000;
/**
 * For this long after losing etcd the watch retries every MIN_BACKOFF_MS and counts as reconnecting,
 * not lost: when one member dies, each attempt picks a member at random, so a live one is found within
 * a few attempts. Only then does the back-off grow.
 */
const RECONNECT_GRACE_MS = 2000;
/** Listing a large registry takes seconds; every etcd call has its own deadline, so this only bounds a watch that is never confirmed. */
const START_TIMEOUT_MS = 60_000;

export class EtcdView {
  readonly kvs = new Map<string, StoredValue>();
  /** Every change under the prefix up to this revision is in `kvs` (0: never listed). */
  revision = 0;
  /** `revision` as of the last changed() call: what the source has reported. */
  reportedRevision = 0;
  /** The watch is established (a write can be confirmed). */
  connected = false;
  lastError?: string;
  /** When the view last lost etcd (ms since the epoch). */
  lostAt?: number;
  /** Full listings so far: 1 at start, one more after each compaction that outran the watch. */
  listings = 0;
  private listed = false;
  private stream?: IDuplexStream<IWatchRequest, IWatchResponse>;
  private retry?: NodeJS.Timeout;
  private emitting?: NodeJS.Immediate;
  private backoffMs = MIN_BACKOFF_MS;
  private stopped = false;
  private readonly conditions = new Conditions(() => this.stopped);

  constructor(private readonly client: Etcd3, private readonly prefix: string, private readonly events: EtcdViewEvents) {}

  /**
   * Lists and starts watching; resolves once the listing is reported and the watch is established, or
   * the first attempt failed (retries continue).
   */
  async start(): Promise<void> {
    await this.connect();
    await this.until(() => (this.connected && this.reportedRevision === this.revision) || this.lastError !== undefined, START_TIMEOUT_MS);
  }

  get isListed(): boolean {
    return this.listed;
  }

  /** Listed, and the watch was lost less than RECONNECT_GRACE_MS ago: it is moving to another member. */
  get reconnecting(): boolean {
    return !this.connected && this.listed && this.lostAt !== undefined && Date.now() - this.lostAt < RECONNECT_GRACE_MS;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    if (this.emitting) clearImmediate(this.emitting);
    this.dropStream();
    this.conditions.wake();
  }

  /** Resolves true once `check()` holds after a reported change, false after `timeoutMs` or stop(). */
  until(check: () => boolean, timeoutMs: number): Promise<boolean> {
    return this.conditions.until(check, timeoutMs);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    try {
      if (!this.listed) await this.list();
      await this.watch();
    } catch (err) {
      this.lost(this.stream, err as Error);
    }
  }

  /** Every key under the prefix at one revision. */
  private async list(): Promise<void> {
    const listed = await listPrefix(this.client, this.prefix);
    this.kvs.clear();
    for (const [k, v] of listed.kvs) this.kvs.set(k, v);
    this.revision = listed.revision;
    this.listed = true;
    this.listings++;
    this.emitChanged();
  }

  private async watch(): Promise<void> {
    const stream = await this.client.watchClient.watch();
    if (this.stopped) return stream.cancel();
    this.stream = stream;
    stream.on("data", (res: IWatchResponse) => this.onResponse(stream, res));
    stream.on("error", (err: Error) => this.lost(stream, err));
    stream.on("end", () => this.lost(stream, new Error("watch stream ended")));
    stream.write({ create_request: { ...prefixRange(this.prefix), start_revision: String(this.revision + 1), progress_notify: true } });
  }

  private onResponse(stream: IDuplexStream<IWatchRequest, IWatchResponse>, res: IWatchResponse): void {
    if (stream !== this.stream) return;
    if (Number(res.compact_revision) > 0) {
      // The history after `revision` is gone: list everything again, then watch from there.
      this.listed = false;
      this.lost(stream, new Error(`etcd compacted the history up to revision ${res.compact_revision}; listing again`), 0);
      return;
    }
    if (res.canceled) return this.lost(stream, new Error(`watch canceled by etcd: ${res.cancel_reason || "no reason given"}`));
    if (res.created) {
      this.backoffMs = MIN_BACKOFF_MS;
      this.setStatus(true, undefined);
      return;
    }
    for (const ev of res.events) {
      const key = ev.kv.key.toString();
      if (String(ev.type).toLowerCase() === "delete") this.kvs.delete(key);
      else this.kvs.set(key, stored(ev.kv));
      this.revision = Math.max(this.revision, Number(ev.kv.mod_revision));
    }
    // A progress notification (no events) is only sent once the watch has caught up.
    if (res.events.length === 0) this.revision = Math.max(this.revision, Number(res.header.revision));
    this.emitChanged();
  }

  /** Coalesces a burst of watch responses into one report. */
  private emitChanged(): void {
    this.emitting ??= setImmediate(() => {
      this.emitting = undefined;
      if (this.stopped) return;
      this.reportedRevision = this.revision;
      this.events.changed();
      this.conditions.wake();
    });
  }

  private lost(stream: IDuplexStream<IWatchRequest, IWatchResponse> | undefined, err: Error, delayMs = this.backoffMs): void {
    if (stream !== this.stream || this.stopped) return;
    this.dropStream();
    this.setStatus(false, firstLine(err));
    if (!this.reconnecting) this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
    clearTimeout(this.retry);
    this.retry = setTimeout(() => void this.connect(), delayMs);
  }

  private dropStream(): void {
    const s = this.stream;
    this.stream = undefined;
    s?.cancel();
  }

  private setStatus(connected: boolean, error: string | undefined): void {
    if (connected === this.connected && error === this.lastError) return;
    if (!connected && this.connected) this.lostAt = Date.now();
    if (!connected && this.lostAt === undefined) this.lostAt = Date.now();
    if (connected) this.lostAt = undefined;
    this.connected = connected;
    this.lastError = error;
    this.conditions.wake();
  }
}

/** Every key under `prefix/` with its value and mod revision, read page by page at one revision. */
export async function listPrefix(client: Etcd3, prefix: string): Promise<{ revision: number; kvs: Map<string, StoredValue> }> {
  const range = prefixRange(prefix);
  const kvs = new Map<string, StoredValue>();
  let revision: string | undefined;
  let from = range.key;
  for (;;) {
    const res = await client.kv.range({ key: from, range_end: range.range_end, limit: PAGE, ...(revision ? { revision } : {}) });
    revision ??= res.header.revision;
    for (const kv of res.kvs) kvs.set(kv.key.toString(), stored(kv));
    if (!res.more || res.kvs.length === 0) return { revision: Number(revision), kvs };
    from = Buffer.concat([res.kvs.at(-1)!.key, Buffer.from([0])]);
  }
}

function stored(kv: IKeyValue): StoredValue {
  return { value: kv.value.toString(), modRevision: Number(kv.mod_revision) };
}
