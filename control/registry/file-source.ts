// Registry documents from a file or a directory of *.yaml, *.yml and *.json files, watched: every
// change re-reads the files and reports the whole set. A file whose text did not change is not
// parsed again, so editing one file of a large directory costs that file.
import { loadRegistry, type ParseCache } from "./load.ts";
import type { RegistrySource, SourceUpdate } from "./source.ts";
import { watchRegistry, type Watcher } from "./watch.ts";

export class FileSource implements RegistrySource {
  readonly name = "files";
  private readonly cache: ParseCache = new Map();
  private watcher?: Watcher;
  private onUpdate?: (u: SourceUpdate) => void;
  private reloading?: Promise<SourceUpdate>;
  private reloadAgain = false;

  constructor(readonly path: string) {}

  async start(onUpdate: (update: SourceUpdate) => void): Promise<void> {
    this.onUpdate = onUpdate;
    await this.reload();
    this.watcher = watchRegistry(this.path, () => void this.reload());
  }

  stop(): void {
    this.onUpdate = undefined;
    this.watcher?.close();
  }

  /** Re-reads the files and reports them. Concurrent calls coalesce: one more read runs after the current one. */
  reload(): Promise<SourceUpdate> {
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      let update: SourceUpdate;
      try {
        do {
          this.reloadAgain = false;
          update = await loadRegistry(this.path, this.cache);
        } while (this.reloadAgain);
      } catch (err) {
        // Reported like any bad file; and `reloading` is cleared below, so the next change reloads.
        update = { resources: [], errors: [{ file: this.path, line: 0, reason: `reading the registry failed: ${(err as Error).message}` }], warnings: [] };
      } finally {
        this.reloading = undefined;
      }
      this.onUpdate?.(update);
      return update;
    })();
    return this.reloading;
  }
}
