// The registry that is serving, joined from every source (files, the HTTP API, ...). Every change is
// all-or-nothing: an update or write that does not parse, validate or fit with the rest is refused
// with file:line:reason and the last good registry keeps serving. A refused update is kept and tried
// again whenever another source changes, so it applies as soon as what blocked it is gone.
import { createHash } from "node:crypto";
import { buildRegistry, BuildMemo, type BuildResult } from "./build.ts";
import { capList, clip, moreLine } from "../common/clip.ts";
import { deepFreeze } from "../common/deep-freeze.ts";
import { MAX_ERROR_CHARS, MAX_KEPT_ERRORS } from "./text-limits.ts";
import { EMPTY_REGISTRY, formatError, resourceKey, type Registry, type RegistryError, type Resource } from "./model.ts";
import { isProblem, type Committed, type HeldChange, type RegistryProblem, type RegistrySource, type RegistryWrite, type SourceUpdate, type WriteOutcome } from "./source.ts";

/**
 * A write whose source was behind its storage (another replica wrote first) is staged again after it
 * caught up, for this long. A deadline, not a number of attempts: while another replica writes a burst
 * of its own, each of its commits can win the race again (ten attempts lost in a row were seen with
 * twenty writes split over two replicas on a busy machine); a pause that grows, with jitter, between
 * attempts lets the other side's burst drain.
 */
const WRITE_RETRY_MS = 10_000;
const retryPause = (attempt: number) => new Promise((r) => setTimeout(r, Math.random() * Math.min(10 * attempt, 100)));

export interface StoreEvents {
  /** A new registry version is serving; the first only once every source has loaded. */
  changed?(registry: Registry, version: number): void;
  /** An update or write was refused; the previous registry still serves. */
  rejected?(source: string, errors: string[]): void;
  /** Non-fatal remarks, e.g. skipped kinds. */
  warned?(source: string, warnings: string[]): void;
  /** A source holds a change back (it looks like a partial write or removes many services); the previous registry still serves. */
  held?(source: string, held: HeldChange): void;
  /** With `onInvalid: "skip"`: documents left out of a change that otherwise applied, one error each. */
  skipped?(source: string, errors: string[]): void;
}

/** What a change with invalid documents does: refuse the whole change (default), or leave those documents out. */
export type OnInvalid = "reject" | "skip";

export interface SourceStatus {
  name: string;
  /** The source's resources have been part of the serving registry at least once. */
  loaded: boolean;
  /** Errors of its last refused update; empty when what it reported last is serving. */
  refused: string[];
  /** A change the source holds back until it is stable; gone with the source's next update. */
  held?: HeldChange;
  /** Why the source cannot be reached right now (its last registry keeps serving). */
  unavailable?: string;
}

export interface LeftOut {
  /** Documents left out of the serving registry (`onInvalid: "skip"`). */
  documents: number;
  errors: string[];
}

export interface StoreStatus {
  /** Every source is loaded (readiness). */
  loaded: boolean;
  version: number;
  services: number;
  resources: number;
  /** Updates applied from sources (file reloads), and refused. */
  reloads: number;
  rejections: number;
  /** Errors of the last refused update of any source (the first 100, then "and N more"); cleared when its next update applies. */
  lastErrors: string[];
  sources: SourceStatus[];
  /** Remarks on what serves: documents accepted with a warning, and how documents combine. */
  warnings: string[];
  leftOut: LeftOut;
}

interface SourceState {
  source: RegistrySource;
  /** What the source reported last without errors (undefined: nothing yet). */
  latest?: readonly Resource[];
  /** Its part of the serving registry. */
  accepted?: readonly Resource[];
  /** Its last update had errors: refused until a good one comes. */
  failing: boolean;
  refused: string[];
  held?: HeldChange;
  warnings: string[];
  /** What its last update left out (skip mode). */
  leftOut: LeftOut;
}

export class RegistryStore {
  private readonly states: SourceState[];
  private current: Registry = EMPTY_REGISTRY;
  private counts = { version: 0, reloads: 0, rejections: 0 };
  private lastErrors: string[] = [];
  /** The write in progress (writes are serialized). */
  private writing: Promise<unknown> = Promise.resolve();
  /** The source whose commit is in progress: what it reports meanwhile is the write, not a reload. */
  private committing?: SourceState;
  /** Documents the last build left out because they clash with others (skip mode). */
  private buildLeftOut: LeftOut = { documents: 0, errors: [] };
  /** Unchanged documents keep their Service objects from build to build (see build.ts). */
  private readonly buildMemo = new BuildMemo();

  constructor(sources: RegistrySource[], private readonly events: StoreEvents = {}, private readonly onInvalid: OnInvalid = "reject") {
    const names = new Set(sources.map((s) => s.name));
    if (names.size !== sources.length) throw new Error(`registry sources need distinct names, got ${sources.map((s) => s.name).join(", ")}`);
    this.states = sources.map((source) => ({ source, failing: false, refused: [], warnings: [], leftOut: { documents: 0, errors: [] } }));
  }

  get registry(): Registry {
    return this.current;
  }

  get version(): number {
    return this.counts.version;
  }

  status(): StoreStatus {
    return {
      loaded: this.states.every((s) => s.accepted !== undefined),
      version: this.counts.version,
      services: this.current.services.length,
      resources: this.current.resources.length,
      reloads: this.counts.reloads,
      rejections: this.counts.rejections,
      lastErrors: [...this.lastErrors],
      sources: this.states.map((s) => {
        const unavailable = s.source.unavailable?.();
        return { name: s.source.name, loaded: s.accepted !== undefined, refused: [...s.refused], ...(s.held ? { held: s.held } : {}), ...(unavailable ? { unavailable } : {}) };
      }),
      warnings: capped([...this.states.flatMap((s) => s.warnings), ...this.current.warnings.map(formatError)]),
      leftOut: {
        documents: this.states.reduce((n, s) => n + s.leftOut.documents, this.buildLeftOut.documents),
        errors: capped([...this.states.flatMap((s) => s.leftOut.errors), ...this.buildLeftOut.errors]),
      },
    };
  }

  /** Starts every source in order; each delivers its first update before the next starts. */
  async start(): Promise<void> {
    for (const state of this.states) await state.source.start((u) => this.onUpdate(state, u), (h) => this.onHeld(state, h));
  }

  stop(): void {
    for (const s of this.states) s.source.stop();
  }

  /** Confirms every change held back waiting for a confirmation (it then applies, if it still builds); the sources' names and what they held. */
  async confirmHeld(): Promise<{ source: string; reasons: string[] }[]> {
    const confirmed: { source: string; reasons: string[] }[] = [];
    for (const s of this.states) {
      const held = s.held;
      if (held && held.appliesAt === undefined && (await s.source.confirm?.())) confirmed.push({ source: s.source.name, reasons: held.reasons });
    }
    return confirmed;
  }

  /**
   * Applies a write to the source that takes it, if the whole registry still builds with it, once the
   * source has made it durable. Writes run one at a time: each is staged on the state the last left.
   */
  write(w: RegistryWrite): Promise<WriteOutcome> {
    const run = this.writing.then(() => this.applyWrite(w));
    this.writing = run.catch(() => undefined);
    return run;
  }

  private async applyWrite(w: RegistryWrite): Promise<WriteOutcome> {
    const target = this.states.find((s) => s.source.writes);
    if (!target) return this.refuseWrite("", { kind: "disabled", errors: ["no registry source here takes writes"] });
    const key = resourceKey(w);
    for (const other of this.states) {
      if (other === target) continue;
      // A PUT must not take an entry another source defines, even in a change of its that waits (it
      // would clash). A DELETE is judged by what serves: removing this source's own entry is what lets
      // another source's waiting change that defines it apply.
      const owned = (w.op === "delete" ? other.accepted : other.latest ?? other.accepted)?.find((r) => resourceKey(r) === key);
      if (owned) return this.refuseWrite(target.source.name, { kind: "conflict", errors: [`${w.kind} ${w.namespace}/${w.name} is defined in ${owned.origin.file}:${owned.origin.line}; edit that file instead`] });
    }
    const retryUntil = performance.now() + WRITE_RETRY_MS;
    for (let attempt = 1; ; attempt++) {
      // Against the ETag the source is staged on: a source that versions its entries compares that version again when it commits.
      const stale = w.ifMatch !== undefined && this.preconditionFailed(w, w.ifMatch);
      if (stale) return this.refuseWrite(target.source.name, stale);
      const staged = target.source.writes!.stage(w);
      if (isProblem(staged)) return this.refuseWrite(target.source.name, staged);
      // Judged against what serves: another source's refused update is not this write's business.
      const built = this.build(this.states.map((s) => (s === target ? staged.resources : s.accepted ?? [])));
      if (!built.ok) return this.refuseWrite(target.source.name, { kind: "conflict", errors: built.errors.map(formatError) });
      const before = this.current;
      let committed: Committed | RegistryProblem;
      this.committing = target;
      try {
        committed = await staged.commit();
      } catch (err) {
        return this.refuseWrite(target.source.name, { kind: "unavailable", errors: [`the write could not be stored durably, so the registry did not change: ${(err as Error).message}`] });
      } finally {
        this.committing = undefined;
      }
      if (isProblem(committed)) {
        if (committed.retry && performance.now() < retryUntil) {
          await retryPause(attempt);
          continue;
        }
        return this.refuseWrite(target.source.name, committed);
      }
      // The source has reported its state with the write (onUpdate). A change that landed meanwhile may
      // clash with it: the write is stored and waits, like any refused update, until what blocks it is gone.
      if (target.refused.length > 0) {
        return { ok: false, problem: { kind: "conflict", errors: capped([`${w.kind} ${w.namespace}/${w.name} is stored but not serving: a registry change that arrived meanwhile clashes with it; it applies once that is resolved`, ...target.refused]) } };
      }
      const etag = committed.etag ?? this.etag(w);
      return { ok: true, registry: this.current, changed: this.current !== before, ...(w.op === "put" && etag ? { etag } : {}) };
    }
  }

  /** The ETag of a resource that is serving: its source's version of it, or a hash of its content. */
  etag(r: { kind: string; namespace: string; name: string }): string | undefined {
    const key = resourceKey(r);
    for (const s of this.states) {
      const found = s.accepted?.find((x) => resourceKey(x) === key);
      if (found) return s.source.etag?.(r) ?? `"${createHash("sha256").update(JSON.stringify(found)).digest("hex").slice(0, 16)}"`;
    }
    return undefined;
  }

  /** If-Match: `*` needs the entry to exist, anything else to be its ETag. */
  private preconditionFailed(w: RegistryWrite, ifMatch: string): RegistryProblem | undefined {
    const tag = this.etag(w);
    const wanted = ifMatch.trim();
    if (wanted === "*" ? tag !== undefined : wanted === tag) return undefined;
    return { kind: "precondition-failed", errors: [`${w.kind} ${w.namespace}/${w.name} is ${tag ? `at ETag ${tag}` : "absent"}, not If-Match ${clip(wanted, 100)}; read it again`] };
  }

  private onHeld(state: SourceState, held: HeldChange): void {
    state.held = held;
    this.events.held?.(state.source.name, held);
  }

  private onUpdate(state: SourceState, u: SourceUpdate): void {
    state.held = undefined;
    if (u.warnings.length > 0) this.events.warned?.(state.source.name, capped(formatted(u.warnings, u.moreWarnings)));
    // Skip mode leaves out invalid documents, but not an unreadable registry (no document to leave out).
    const skip = this.onInvalid === "skip" && u.errors.length > 0 && (u.invalidDocuments ?? 0) > 0;
    state.failing = u.errors.length > 0 && !skip;
    if (state.failing) return this.refuse(state, formatted(u.errors, u.moreErrors));
    state.warnings = formatted(u.warnings, u.moreWarnings);
    state.leftOut = { documents: skip ? u.invalidDocuments! : 0, errors: formatted(u.errors, u.moreErrors) };
    if (skip) this.events.skipped?.(state.source.name, state.leftOut.errors);
    state.latest = u.resources;
    // Reloads: every update of a source that is only read (files), and every later update of one that
    // is also written elsewhere (etcd); not a source's report of a write made here.
    this.tryApply(state, state !== this.committing && (!state.source.writes || state.accepted !== undefined));
  }

  /**
   * Every source's latest update together; failing that, the trigger's latest with what the others
   * have serving (their refused updates wait for a later try).
   */
  private tryApply(trigger: SourceState, counted: boolean): void {
    const lenient = this.onInvalid === "skip";
    let built = this.build(this.states.map((s) => s.latest ?? s.accepted ?? []), lenient);
    let applied = this.states;
    if (!built.ok && this.states.some((s) => s !== trigger && s.latest !== s.accepted)) {
      const own = this.build(this.states.map((s) => (s === trigger ? trigger.latest ?? [] : s.accepted ?? [])), lenient);
      if (own.ok) {
        built = own;
        applied = [trigger];
      }
    }
    if (!built.ok) return this.refuse(trigger, built.errors.map(formatError));
    this.buildLeftOut = built.leftOut ?? { documents: 0, errors: [] };
    if (built.leftOut) this.events.skipped?.("registry", built.leftOut.errors);
    for (const s of applied) {
      if (s.failing || s.latest === undefined) continue;
      s.accepted = s.latest;
      s.refused = [];
    }
    if (counted) this.counts.reloads++;
    if (trigger.refused.length === 0 && this.states.every((s) => s.refused.length === 0)) this.lastErrors = [];
    // Nothing serves before every source has loaded once: a registry file that is broken or missing at
    // start must not hand every Envoy that reconnects an empty configuration.
    if (this.counts.version === 0 && this.states.some((s) => s.accepted === undefined)) return;
    if (this.counts.version > 0 && sameResources(built.registry.resources, this.current.resources)) return;
    this.current = deepFreeze(built.registry);
    this.counts.version++;
    this.events.changed?.(this.current, this.counts.version);
  }

  /** `lenient` (skip mode, for source updates): documents that clash with earlier ones are left out and the rest builds. */
  private build(parts: (readonly Resource[])[], lenient = false): BuildResult & { leftOut?: LeftOut } {
    const all: Resource[] = [];
    for (const part of parts) for (const r of part) all.push(r);
    const built = buildRegistry(all, this.buildMemo);
    if (built.ok || !lenient) return built;
    const offenders = new Set(built.offenders);
    const rest = buildRegistry(all.filter((r) => !offenders.has(r)), this.buildMemo);
    return rest.ok ? { ...rest, leftOut: { documents: offenders.size, errors: built.errors.map(formatError) } } : built;
  }

  private refuse(state: SourceState, errors: readonly string[]): void {
    const kept = capped(errors);
    state.refused = kept;
    this.lastErrors = kept;
    this.counts.rejections++;
    this.events.rejected?.(state.source.name, kept);
  }

  private refuseWrite(source: string, problem: RegistryProblem): WriteOutcome {
    const kept = { ...problem, errors: capped(problem.errors) };
    this.events.rejected?.(source, kept.errors);
    return { ok: false, problem: kept };
  }
}

/** Error lists are kept, logged and reported capped: a 2 MB file of bad hosts yields 125,000 of them. */
const capped = (errors: readonly string[]) => capList(errors, MAX_KEPT_ERRORS, MAX_ERROR_CHARS);

function formatted(list: readonly RegistryError[], more = 0): string[] {
  const out = list.map(formatError);
  if (more > 0) out.push(moreLine(more));
  return out;
}

/** Same resources in the same order: objects a source re-reported unchanged are the same objects, others compare by content. */
function sameResources(a: readonly Resource[], b: readonly Resource[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && JSON.stringify(a[i]) !== JSON.stringify(b[i])) return false;
  return true;
}
