// Keeps an in-memory copy of one kind of object (in every namespace, or in one) current, the way
// Kubernetes' own clients do: LIST the collection in pages, then WATCH it from the list's resource
// version, applying each event; when a watch ends, watch again from the last version seen; when the
// server says that version is too old (410 Gone: etcd compacted past it, or the server restarted and
// its watch cache starts later), LIST again and swap the copy whole.
//
// Why not the client library's informer (makeInformer / ListWatch): it lists in one request (no
// `limit`/`continue`, so one answer holds every pod of the cluster), does not ask for bookmarks (its
// resource version then goes stale on a quiet kind, and every re-watch after a compaction costs a
// full list), reports an error by stopping (the caller must restart it, and knows neither why nor
// when), loses the server's message on HTTP errors (a 403's text names the missing permission), and
// its watch has no deadline, so a connection that died silently would hang forever. This file does
// those things itself, over ./kube-http.ts.
//
// Faults, and what the copy and the status do:
// - Server unreachable, 5xx, 429, timeouts: the copy stays as it was; status.unavailable says what
//   failed; retried with back-off (200 ms doubling to 30 s, jittered; reset after a success).
// - 410 Gone (an ERROR event of the watch, or the HTTP status): listed again at once; the new copy
//   replaces the old in one change (never an empty one in between). A continue token that expired
//   mid-listing (410 too) restarts the listing once without pages.
// - 403: status.forbidden names the verb and the resource ("forbidden: cannot list pods (v1) in all
//   namespaces: <the server's message>"); retried every `forbiddenRetryMs` (RBAC is fixed by a person).
// - 404 on a custom resource: the definition is not installed (or was removed): status.absent, the
//   copy empty, and checked again every `absentRecheckMs`, so installing it later is picked up.
// Changes (objects or status) are reported through a Coalescer: one call for a burst of events.
import { Conditions } from "../../../common/conditions.ts";
import { Backoff, DEFAULT_BACKOFF, type BackoffTiming } from "./backoff.ts";
import { Coalescer, type CoalesceTiming } from "../../../common/coalescer.ts";
import { apiErrorFromStatus, classify, KubeApiError } from "./errors.ts";
import type { KubeHttp } from "./kube-http.ts";
import { objectKey, type KubeObject } from "./api-objects.ts";
import { collectionPath, describeResource, groupVersion, type ResourceRef } from "./resource.ts";

/** A burst of watch events is one change: 15 ms after the last, at most 100 ms after the first. */
export const DEFAULT_COALESCE: Readonly<CoalesceTiming> = Object.freeze({ quietMs: 15, maxWaitMs: 100 });

export interface ReflectorStatus {
  /** The first listing is done (or the kind is absent): the copy is the cluster's, not a blank. */
  synced: boolean;
  /** Why the server cannot be reached right now; the copy is the last one seen. */
  unavailable?: string;
  /** RBAC refuses a verb this needs: "forbidden: cannot <verb> <resource> <scope>: <message>". */
  forbidden?: string;
  /** The kind is a custom resource that the server does not serve (its definition is not installed). */
  absent?: boolean;
  /** The group/version being watched ("v1", "networking.istio.io/v1"), once known. */
  version?: string;
}

export interface ReflectorSnapshot<T> {
  /** By "namespace/name". Never changes after it is handed out: the reflector copies before its next write. */
  objects: ReadonlyMap<string, T>;
  status: Readonly<ReflectorStatus>;
  /** The resource version the copy is current to ("" before the first listing). */
  resourceVersion: string;
}

/** Counters, for tests and debugging. */
export interface ReflectorStats {
  /** Complete listings (the first, and one after each 410 or reappearance). */
  lists: number;
  /** Pages read by those listings. */
  pages: number;
  /** Objects and milliseconds of the last listing. */
  lastList?: { objects: number; ms: number };
  /** 410 answers (watch events or HTTP) that made it list again. */
  gone: number;
  /** Watches the server accepted. */
  watches: number;
  events: number;
  bookmarks: number;
}

export interface ReflectorOptions<T> {
  http: KubeHttp;
  /** Names the resource in errors and logs before it is resolved. */
  group: string;
  plural: string;
  /** The resource to list and watch, or undefined when the server does not serve it. Asked before every listing. */
  resolve(signal: AbortSignal): Promise<ResourceRef | undefined>;
  /** A custom resource: a 404 means "absent", not a fault. */
  custom?: boolean;
  /** One namespace; all when undefined. */
  namespace?: string;
  /** Keeps what is needed of a freshly parsed object (may change it in place). */
  trim?(o: KubeObject): T;
  /** Objects per page when listing. */
  pageSize?: number;
  /** The server ends each watch after this long, randomized up to twice it (as Kubernetes' clients do, so watches do not all end together). */
  watchTimeoutSeconds?: number;
  absentRecheckMs?: number;
  forbiddenRetryMs?: number;
  backoff?: BackoffTiming;
  /** Where changes are reported: a shared coalescer (several reflectors, one report) ... */
  coalescer?: Coalescer;
  /** ... or this callback, through the reflector's own coalescer with `coalesce` timing. */
  onChange?(snapshot: ReflectorSnapshot<T>): void;
  coalesce?: CoalesceTiming;
  /** Status transitions, one line each (never a credential). */
  log?(line: string): void;
}

/** A watch that ends sooner than this with no event counts as a failure (back-off), not as a normal end. */
const SHORT_WATCH_MS = 1000;
/** A watch still open this long after the server should have ended it is presumed stuck. */
const WATCH_GRACE_S = 30;

export class Reflector<T extends KubeObject = KubeObject> {
  private objects = new Map<string, T>();
  /** `objects` was handed out in a snapshot: copy it before writing. */
  private shared = false;
  private resourceVersion = "";
  private status: Readonly<ReflectorStatus> = Object.freeze({ synced: false });
  private ref?: ResourceRef;
  private needList = true;
  /** What the current request does, for error messages. */
  private verb: "discover" | "list" | "watch" = "list";
  private lastGoneAt = 0;
  private readonly backoff: Backoff;
  private readonly coalescer: Coalescer;
  private readonly ownCoalescer: boolean;
  private readonly stats_: ReflectorStats = { lists: 0, pages: 0, gone: 0, watches: 0, events: 0, bookmarks: 0 };
  private attempt?: AbortController;
  private wake?: () => void;
  private running?: Promise<void>;
  private stopped = false;
  private paused = false;
  private parked = false;
  private readonly conditions = new Conditions(() => this.stopped);
  private readonly pageSize: number;
  private readonly watchTimeoutSeconds: number;
  private readonly absentRecheckMs: number;
  private readonly forbiddenRetryMs: number;
  private readonly trim: (o: KubeObject) => T;

  constructor(private readonly opts: ReflectorOptions<T>) {
    this.pageSize = opts.pageSize ?? 500;
    this.watchTimeoutSeconds = opts.watchTimeoutSeconds ?? 300;
    this.absentRecheckMs = opts.absentRecheckMs ?? 30_000;
    this.forbiddenRetryMs = opts.forbiddenRetryMs ?? 30_000;
    this.trim = opts.trim ?? ((o) => o as T);
    this.backoff = new Backoff(opts.backoff ?? DEFAULT_BACKOFF);
    this.ownCoalescer = !opts.coalescer;
    this.coalescer = opts.coalescer ?? new Coalescer(() => opts.onChange?.(this.snapshot()), opts.coalesce ?? DEFAULT_COALESCE);
  }

  /** Starts listing and watching (in the background: see whenSynced()). */
  start(): void {
    this.running ??= this.run();
  }

  /** Ends the watch and every retry; resolves once nothing is left running. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.attempt?.abort();
    this.wake?.();
    if (this.ownCoalescer) this.coalescer.stop();
    this.notify();
    await this.running;
  }

  /** Holds the watch (closes it, reads nothing) until resume(); the copy stays. For tests and maintenance. */
  async pause(): Promise<void> {
    this.paused = true;
    this.attempt?.abort();
    this.wake?.();
    if (this.running) await this.until(() => this.parked || this.stopped, Infinity);
  }

  /** Watches again from where it was (or lists again, if the server has forgotten that version). */
  resume(): void {
    this.paused = false;
    this.wake?.();
  }

  /** The copy and the status as they are now; O(1): the map is copied only when it next changes. */
  snapshot(): ReflectorSnapshot<T> {
    this.shared = true;
    return { objects: this.objects, status: this.status, resourceVersion: this.resourceVersion };
  }

  stats(): Readonly<ReflectorStats> {
    return { ...this.stats_ };
  }

  /** Resolves true once the first listing is done (or the kind found absent), false after `timeoutMs` or stop(). */
  whenSynced(timeoutMs: number): Promise<boolean> {
    return this.until(() => this.status.synced, timeoutMs);
  }

  private get description(): string {
    return describeResource(this.ref ?? this.opts, this.opts.namespace);
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (this.paused) {
        this.parked = true;
        this.notify();
        await this.sleep(Infinity);
        this.parked = false;
        continue;
      }
      const attempt = (this.attempt = new AbortController());
      let delay = 0;
      try {
        delay = this.needList || !this.ref ? await this.listOrAbsent(attempt.signal) : await this.watch(this.ref, attempt.signal);
      } catch (err) {
        if (this.stopped || this.paused) continue;
        delay = this.failed(err);
      }
      if (delay > 0 && !this.stopped && !this.paused) await this.sleep(delay);
    }
  }

  /** Resolves the resource and lists it; returns the delay before the next step. */
  private async listOrAbsent(signal: AbortSignal): Promise<number> {
    this.verb = "discover";
    const ref = await this.opts.resolve(signal);
    if (!ref) {
      this.becomeAbsent();
      return this.absentRecheckMs;
    }
    this.ref = ref;
    this.verb = "list";
    await this.list(ref, signal);
    return 0;
  }

  /** Every object, page by page at one resource version; the copy is replaced only once all are read. */
  private async list(ref: ResourceRef, signal: AbortSignal): Promise<void> {
    const began = performance.now();
    const path = collectionPath(ref, this.opts.namespace);
    const fresh = new Map<string, T>();
    let limit: number | undefined = this.pageSize;
    let cont: string | undefined;
    let resourceVersion = "";
    for (;;) {
      let page: KubeList;
      try {
        page = await this.opts.http.getJson<KubeList>(path, { limit, continue: cont }, signal);
      } catch (err) {
        // The continue token outlived the server's history (a listing slower than etcd's compaction
        // interval): list once more without pages, which needs no token.
        if (cont !== undefined && limit !== undefined && err instanceof KubeApiError && err.code === 410) {
          fresh.clear();
          resourceVersion = "";
          cont = undefined;
          limit = undefined;
          continue;
        }
        throw err;
      }
      this.stats_.pages++;
      for (const item of page.items ?? []) {
        const o = this.trim(item);
        fresh.set(objectKey(o), o);
      }
      resourceVersion ||= page.metadata?.resourceVersion ?? "";
      cont = page.metadata?.continue || undefined;
      if (!cont) break;
    }
    const ms = Math.round(performance.now() - began);
    const first = this.stats_.lists === 0;
    this.objects = fresh;
    this.shared = false;
    this.resourceVersion = resourceVersion;
    this.needList = false;
    this.stats_.lists++;
    this.stats_.lastList = { objects: fresh.size, ms };
    this.backoff.reset();
    const recovering = this.status.unavailable ?? this.status.forbidden;
    this.setStatus({ synced: true, version: groupVersion(ref) });
    if (first || recovering) this.opts.log?.(`kubernetes: ${this.description}: listed ${fresh.size} objects in ${ms} ms`);
    this.coalescer.poke();
  }

  /** One watch from the current resource version, until it ends; returns the delay before the next step. */
  private async watch(ref: ResourceRef, signal: AbortSignal): Promise<number> {
    this.verb = "watch";
    const began = Date.now();
    let events = 0;
    let gone = false;
    const timeoutSeconds = Math.round(this.watchTimeoutSeconds * (1 + Math.random()));
    await this.opts.http.watch(
      collectionPath(ref, this.opts.namespace),
      { watch: "true", resourceVersion: this.resourceVersion, allowWatchBookmarks: "true", timeoutSeconds },
      {
        onOpen: () => {
          this.stats_.watches++;
          if (this.status.unavailable !== undefined || this.status.forbidden !== undefined) {
            this.opts.log?.(`kubernetes: ${this.description}: watching again`);
            this.setStatus({});
          }
        },
        onEvent: (ev) => {
          events++;
          this.stats_.events++;
          if (events === 1) this.backoff.reset();
          if (ev.type === "ERROR") {
            const err = apiErrorFromStatus(ev.object);
            if (err.code !== 410) throw err;
            gone = true;
            return "stop";
          }
          const o = ev.object as KubeObject | undefined;
          if (!o?.metadata) throw new Error(`a ${ev.type} event without an object`);
          if (ev.type === "BOOKMARK") this.stats_.bookmarks++;
          else if (ev.type === "ADDED" || ev.type === "MODIFIED") this.write((m) => { const t = this.trim(o); m.set(objectKey(t), t); });
          else if (ev.type === "DELETED") this.write((m) => m.delete(objectKey(o)));
          else throw new Error(`unknown watch event type ${JSON.stringify(ev.type)}`);
          this.resourceVersion = o.metadata.resourceVersion ?? this.resourceVersion;
          // A bookmark changes no object: only where the next watch starts.
          if (ev.type !== "BOOKMARK") this.coalescer.poke();
        },
      },
      (timeoutSeconds + WATCH_GRACE_S) * 1000,
      signal,
    );
    if (gone) return this.gone();
    // Ended by the server (its timeout) or by a proxy: watch again at once, unless it ends at once every time.
    return events === 0 && Date.now() - began < SHORT_WATCH_MS ? this.backoff.next() : 0;
  }

  private write(change: (m: Map<string, T>) => void): void {
    if (this.shared) {
      this.objects = new Map(this.objects);
      this.shared = false;
    }
    change(this.objects);
  }

  /** The server no longer has our resource version: list again, at once unless that just happened. */
  private gone(): number {
    this.stats_.gone++;
    this.needList = true;
    const again = Date.now() - this.lastGoneAt < SHORT_WATCH_MS * 5;
    this.lastGoneAt = Date.now();
    return again ? this.backoff.next() : 0;
  }

  private becomeAbsent(): void {
    this.ref = undefined;
    this.resourceVersion = "";
    if (!this.status.absent) this.opts.log?.(`kubernetes: ${this.description}: not served (its CustomResourceDefinition is not installed); checking again every ${this.absentRecheckMs >= 1000 ? `${Math.round(this.absentRecheckMs / 1000)} s` : `${this.absentRecheckMs} ms`}`);
    if (this.objects.size > 0) {
      this.objects = new Map();
      this.shared = false;
    }
    this.backoff.reset();
    this.setStatus({ synced: true, absent: true });
  }

  /** What a failure means (see the top of this file); returns the delay before the next attempt. */
  private failed(err: unknown): number {
    const failure = classify(err);
    const what = `cannot ${this.verb} ${this.description}`;
    switch (failure.kind) {
      case "gone":
        return this.gone();
      case "forbidden":
        this.report({ forbidden: `forbidden: ${what}: ${failure.message}` });
        return Math.max(this.forbiddenRetryMs, this.backoff.next());
      case "unauthorized":
        this.report({ unavailable: `unauthorized: ${what}: ${failure.message}` });
        return Math.max(this.forbiddenRetryMs, this.backoff.next());
      case "not-found":
        if (this.opts.custom) {
          // Its definition was removed, or discovery was ahead of the API: resolve again.
          this.needList = true;
          this.ref = undefined;
          return this.backoff.next();
        }
        this.report({ unavailable: `${what}: ${failure.message}` });
        return this.backoff.next();
      case "unavailable":
        this.report({ unavailable: `${what}: ${failure.message}` });
        return Math.max(this.backoff.next(), failure.retryAfterMs ?? 0);
    }
  }

  /** Sets a fault (the copy and `synced` stay), logging it when it is new. */
  private report(fault: Pick<ReflectorStatus, "unavailable" | "forbidden">): void {
    const text = fault.forbidden ?? fault.unavailable;
    if (text !== (this.status.forbidden ?? this.status.unavailable)) this.opts.log?.(`kubernetes: ${text}`);
    this.setStatus(fault);
  }

  /** Replaces the status (faults not in `next` are cleared), reporting a change. */
  private setStatus(next: Partial<ReflectorStatus>): void {
    const status = Object.freeze({ synced: this.status.synced, ...(this.status.version && !next.absent ? { version: this.status.version } : {}), ...next });
    if (JSON.stringify(status) === JSON.stringify(this.status)) return;
    this.status = status;
    this.coalescer.poke();
    this.notify();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === Infinity ? undefined : setTimeout(() => done(), ms);
      const done = () => {
        clearTimeout(timer);
        if (this.wake === done) this.wake = undefined;
        resolve();
      };
      this.wake = done;
    });
  }

  private until(check: () => boolean, timeoutMs: number): Promise<boolean> {
    return this.conditions.until(check, timeoutMs);
  }

  private notify(): void {
    this.conditions.wake();
  }
}

interface KubeList {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: KubeObject[];
}
