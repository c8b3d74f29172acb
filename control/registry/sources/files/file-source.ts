// Registry documents from a file or a directory of *.yaml, *.yml and *.json files, watched: every
// change re-reads the files and reports the whole set. A file whose text did not change is not
// parsed again, so editing one file of a large directory costs that file. A reload that looks like a
// partial write or a mistaken removal (removal-check.ts) is held until it has stayed unchanged for the
// settle period (settle-gate.ts), or, when it would remove every service, until it is confirmed;
// unless removals are accepted at once.
import { loadRegistry, type LoadResult, type ParseCache } from "./load.ts";
import { RemovalCheck, type FilesState } from "./removal-check.ts";
import { SettleGate } from "./settle-gate.ts";
import type { HeldChange, RegistrySource, SourceUpdate } from "../../source.ts";
import { watchRegistry, type Changed, type Watcher } from "./watch.ts";

export interface FileSourceOptions {
  /** A reload removing more than this share (0..1) of the services is held; removing all always is. Default 1. */
  maxRemovalShare?: number;
  /** How long a held reload must stay unchanged before it applies. Default 10 s. */
  settleMs?: number;
  /** Apply every reload at once, suspicious or not. */
  acceptRemovals?: boolean;
}

const DEFAULT_SETTLE_MS = 10_000;

export class FileSource implements RegistrySource {
  readonly name = "files";
  private readonly cache: ParseCache = new Map();
  private readonly gate: SettleGate;
  private readonly removals: RemovalCheck;
  private readonly acceptRemovals: boolean;
  private watcher?: Watcher;
  private onUpdate?: (u: SourceUpdate) => void;
  private onHeld?: (h: HeldChange) => void;
  private reloading?: Promise<SourceUpdate>;
  private reloadAgain = false;
  /** File names changed since the last read (see watch.ts), or "all". */
  private changed: Set<string> | "all" = "all";
  /** What this source reported last without errors: held reloads are judged against it. */
  private reported?: FilesState;

  constructor(readonly path: string, opts: FileSourceOptions = {}) {
    this.removals = new RemovalCheck({ maxRemovalShare: opts.maxRemovalShare ?? 1 });
    this.acceptRemovals = opts.acceptRemovals ?? false;
    this.gate = new SettleGate(opts.settleMs ?? DEFAULT_SETTLE_MS, (h) => this.onHeld?.(h), () => void this.reload());
  }

  async start(onUpdate: (update: SourceUpdate) => void, onHeld?: (held: HeldChange) => void): Promise<void> {
    this.onUpdate = onUpdate;
    this.onHeld = onHeld;
    await this.reload();
    this.watcher = watchRegistry(this.path, (changed) => void this.reload(changed));
  }

  /** Applies the reload held back for a confirmation, if the files are still as they were when it was held (else the new state is judged afresh). */
  async confirm(): Promise<boolean> {
    if (!this.gate.confirm()) return false;
    await this.reload();
    return true;
  }

  stop(): void {
    this.onUpdate = undefined;
    this.onHeld = undefined;
    this.watcher?.close();
    this.gate.release();
  }

  /**
   * Re-reads the files and reports them (or holds them): those named in `changed`, or all. Concurrent
   * calls coalesce: one more read runs after the current one.
   */
  reload(changed: Changed = "all"): Promise<SourceUpdate> {
    if (this.changed !== "all") {
      if (changed === "all") this.changed = "all";
      else for (const name of changed) this.changed.add(name);
    }
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      let update: LoadResult;
      try {
        do {
          this.reloadAgain = false;
          const changed = this.changed;
          this.changed = new Set();
          update = await loadRegistry(this.path, this.cache, changed);
        } while (this.reloadAgain);
      } catch (err) {
        // Reported like any bad file; and `reloading` is cleared below, so the next change reloads (all of it).
        this.changed = "all";
        const reason = `reading the registry failed: ${(err as Error).message}`;
        update = { files: [], texts: new Map(), resources: [], errors: [{ file: this.path, line: 0, reason }], warnings: [], moreErrors: 0, moreWarnings: 0, invalidDocuments: 0 };
      } finally {
        this.reloading = undefined;
      }
      this.deliver(update);
      return update;
    })();
    return this.reloading;
  }

  private deliver(update: LoadResult): void {
    if (update.errors.length === 0) {
      const state: FilesState = { resources: update.resources, texts: update.texts };
      const concerns = this.reported && !this.acceptRemovals ? this.removals.concerns(this.reported, state) : undefined;
      if (concerns && concerns.reasons.length > 0 && !this.gate.pass(state.texts, concerns.reasons, concerns.confirm)) return;
      this.reported = state;
    }
    this.gate.release();
    this.onUpdate?.(update);
  }
}
