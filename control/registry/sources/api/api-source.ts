// ServiceEntries written over the HTTP API (PUT/DELETE). Each write is staged: the store applies it only
// if the whole registry still builds, and only after commit() has made it durable. With a directory
// (serve --api-dir) every entry is a file there, written atomically and read back at start through the
// same parser and validation as a PUT body; a file there that fails is reported like any registry error,
// and the directory is watched until it reads cleanly. Without a directory, writes are refused: entries
// held only in memory would be lost, silently, at the next restart.
import { mkdir, readdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import { moreLine } from "../../../common/clip.ts";
import { DurableDirectory, TEMP_FILE } from "./durable-file.ts";
import { entryFileName } from "./entry-file-name.ts";
import { REGISTRY_FILE } from "../files/load.ts";
import { MAX_FILE_BYTES, MAX_KEPT_ERRORS } from "../../text-limits.ts";
import { formatError, resourceKey, type RegistryError, type ServiceEntry } from "../../model.ts";
import { readRegistryFile } from "../files/read-file.ts";
import { isProblem, type RegistryProblem, type RegistrySource, type RegistryWrite, type SourceUpdate, type StagedWrite, type WritableSource } from "../../source.ts";
import { watchRegistry, type Watcher } from "../files/watch.ts";
import { parseOneServiceEntry, parseWrittenEntry } from "../../written-entry.ts";

/** The origin ("file") of entries written over the API, as errors and /registry/serviceentries show it. */
export const API_ORIGIN = "http-api";

export class ApiSource implements RegistrySource, WritableSource {
  readonly name = "http-api";
  readonly writes = this;
  private entries = new Map<string, ServiceEntry>();
  private readonly files?: DurableDirectory;
  private onUpdate?: (u: SourceUpdate) => void;
  /** Errors of reading the directory back; writes wait until they are fixed. */
  private unreadable: string[] = [];
  private watcher?: Watcher;
  private reading: Promise<void> = Promise.resolve();

  /** `dir`: where entries are stored; undefined refuses writes. */
  constructor(readonly dir?: string) {
    if (dir !== undefined) this.files = new DurableDirectory(dir);
  }

  async start(onUpdate: (update: SourceUpdate) => void): Promise<void> {
    this.onUpdate = onUpdate;
    if (this.dir === undefined) return onUpdate({ resources: [], errors: [], warnings: [] });
    await mkdir(this.dir, { recursive: true });
    // Left by a write that a crash interrupted; the entry it would have replaced is still whole.
    for (const name of await readdir(this.dir)) if (TEMP_FILE.test(name)) await unlink(join(this.dir, name)).catch(() => {});
    await this.readBack();
  }

  stop(): void {
    this.onUpdate = undefined;
    this.watcher?.close();
  }

  stage(write: RegistryWrite): StagedWrite | RegistryProblem {
    const files = this.files;
    if (!files) return { kind: "disabled", errors: ["writes over the HTTP API are disabled: start the control plane with --api-dir DIR, where they are stored, to allow them"] };
    if (this.unreadable.length > 0) {
      return { kind: "unavailable", errors: [`the entries stored in ${this.dir} could not be read back; writes resume once those files are fixed or removed`, ...this.unreadable] };
    }
    const key = resourceKey(write);
    const next = new Map(this.entries);
    const file = entryFileName(write.namespace, write.name);
    if (write.op === "delete") {
      if (!next.delete(key)) return { kind: "not-found", errors: [`no ${write.kind} ${write.namespace}/${write.name} was added over HTTP`] };
    } else {
      const parsed = parseWrittenEntry(write);
      if (isProblem(parsed)) return parsed;
      next.set(key, apiEntry(parsed.entry));
    }
    return {
      resources: [...next.values()],
      commit: async () => {
        if (write.op === "delete") await files.remove(file);
        else await files.write(file, write.body);
        this.entries = next;
        this.onUpdate?.({ resources: [...next.values()], errors: [], warnings: [] });
        return {};
      },
    };
  }

  /** Reads every stored entry; on errors reports them and watches the directory to try again. */
  private readBack(): Promise<void> {
    // Chained so reads never overlap; a failed read does not stop the next one.
    this.reading = this.reading.catch(() => {}).then(async () => {
      const dir = this.dir!;
      const read = await readEntries(dir);
      if (read.errors.length > 0) {
        this.unreadable = read.errors.map(formatError);
        if (read.moreErrors > 0) this.unreadable.push(moreLine(read.moreErrors));
        this.watcher ??= watchRegistry(dir, () => void this.readBack());
        this.onUpdate?.({ resources: [], errors: read.errors, warnings: [], moreErrors: read.moreErrors });
        return;
      }
      this.unreadable = [];
      this.watcher?.close();
      this.watcher = undefined;
      this.entries = read.entries;
      this.onUpdate?.({ resources: [...read.entries.values()], errors: [], warnings: [] });
    });
    return this.reading;
  }
}

const apiEntry = (entry: ServiceEntry): ServiceEntry => ({ ...entry, origin: { file: API_ORIGIN, line: 1 } });

/** The stored entries by key; every file must hold one ServiceEntry and be named after it. */
async function readEntries(dir: string): Promise<{ entries: Map<string, ServiceEntry>; errors: RegistryError[]; moreErrors: number }> {
  const entries = new Map<string, ServiceEntry>();
  const errors: RegistryError[] = [];
  let moreErrors = 0;
  const fail = (e: RegistryError) => (errors.length < MAX_KEPT_ERRORS ? void errors.push(e) : void moreErrors++);
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => REGISTRY_FILE.test(n)).sort();
  } catch (err) {
    fail({ file: dir, line: 0, reason: (err as Error).message });
    return { entries, errors, moreErrors };
  }
  for (const name of names) {
    const path = join(dir, name);
    const read = await readRegistryFile(path, MAX_FILE_BYTES);
    if (!read.ok) {
      if (!read.gone) fail({ file: path, line: 0, reason: read.reason });
      continue;
    }
    const parsed = parseOneServiceEntry(read.text, path);
    if ("errors" in parsed) {
      for (const e of parsed.errors) fail(e);
      moreErrors += parsed.moreErrors;
      continue;
    }
    const expected = entryFileName(parsed.entry.namespace, parsed.entry.name);
    if (name !== expected) {
      fail({ file: path, line: parsed.entry.origin.line, reason: `holds ServiceEntry ${parsed.entry.namespace}/${parsed.entry.name}, so it must be named ${expected}` });
      continue;
    }
    entries.set(resourceKey(parsed.entry), apiEntry(parsed.entry));
  }
  return { entries, errors, moreErrors };
}
