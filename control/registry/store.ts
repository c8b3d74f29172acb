// The registry that is serving: files on disk plus ServiceEntries PUT over HTTP. Every change is
// all-or-nothing: a reload or request that does not parse, validate or fit with the rest is rejected
// with file:line:reason and the last good registry keeps serving.
import { buildRegistry } from "./build.ts";
import { loadRegistry } from "./load.ts";
import { EMPTY_REGISTRY, formatError, resourceKey, type Registry, type RegistryError, type Resource, type ServiceEntry } from "./model.ts";
import { parseRegistryText } from "./parse.ts";
import { watchRegistry, type Watcher } from "./watch.ts";

export const API_ORIGIN = "http-api";

export type Outcome = { ok: true; registry: Registry; changed: boolean } | { ok: false; status: number; errors: string[] };

export interface StoreEvents {
  /** A new registry is serving. */
  changed?(registry: Registry, version: number): void;
  /** A reload or request was refused; the previous registry still serves. */
  rejected?(source: "files" | "http-api", errors: string[]): void;
  /** Non-fatal remarks, e.g. skipped kinds. */
  warned?(warnings: string[]): void;
}

export interface StoreStatus {
  /** A registry loaded from disk at least once (readiness). */
  loaded: boolean;
  version: number;
  services: number;
  resources: number;
  reloads: number;
  rejections: number;
  /** Errors of the last refused file reload; cleared by the next good one. */
  lastErrors: string[];
}

export class RegistryStore {
  private fileResources: Resource[] = [];
  private apiEntries = new Map<string, ServiceEntry>();
  private current: Registry = EMPTY_REGISTRY;
  private status: StoreStatus = { loaded: false, version: 0, services: 0, resources: 0, reloads: 0, rejections: 0, lastErrors: [] };
  private watcher?: Watcher;
  private reloading?: Promise<Outcome>;
  private reloadAgain = false;

  constructor(private readonly path: string | undefined, private readonly events: StoreEvents = {}) {}

  get registry(): Registry {
    return this.current;
  }

  get version(): number {
    return this.status.version;
  }

  snapshotStatus(): StoreStatus {
    return { ...this.status, lastErrors: [...this.status.lastErrors] };
  }

  /** Loads the files once and reloads them on every change. */
  async start(): Promise<Outcome> {
    const first = await this.reload();
    if (this.path !== undefined) this.watcher = watchRegistry(this.path, () => void this.reload());
    return first;
  }

  stop(): void {
    this.watcher?.close();
  }

  /** Re-reads the files. Concurrent calls coalesce: one more reload runs after the current one. */
  reload(): Promise<Outcome> {
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      let outcome: Outcome;
      do {
        this.reloadAgain = false;
        outcome = await this.reloadOnce();
      } while (this.reloadAgain);
      this.reloading = undefined;
      return outcome;
    })();
    return this.reloading;
  }

  private async reloadOnce(): Promise<Outcome> {
    if (this.path === undefined) {
      this.status.loaded = true;
      return this.apply(this.fileResources, this.apiEntries, "files");
    }
    const loaded = await loadRegistry(this.path);
    if (loaded.warnings.length > 0) this.events.warned?.(loaded.warnings.map(formatError));
    if (loaded.errors.length > 0) return this.reject("files", 422, loaded.errors);
    const outcome = this.apply(loaded.resources, this.apiEntries, "files");
    if (outcome.ok) this.status.loaded = true;
    return outcome;
  }

  /** Creates or replaces the ServiceEntry `namespace/name` from a YAML or JSON body. */
  putServiceEntry(namespace: string, name: string, body: string): Outcome {
    const parsed = parseRegistryText(body, "request body");
    if (parsed.errors.length > 0) return this.reject("http-api", 400, parsed.errors);
    const entries = parsed.resources.filter((r): r is ServiceEntry => r.kind === "ServiceEntry");
    if (entries.length !== 1 || parsed.resources.length !== 1) {
      return this.reject("http-api", 400, [{ file: "request body", line: 1, reason: `expected exactly one ServiceEntry, got ${parsed.resources.length} ServiceEntry/WorkloadEntry documents${parsed.warnings.length ? ` (${parsed.warnings.map((w) => w.reason).join("; ")})` : ""}` }]);
    }
    const entry = entries[0]!;
    if (entry.namespace !== namespace || entry.name !== name) {
      return this.reject("http-api", 400, [{ file: "request body", line: entry.origin.line, reason: `metadata ${entry.namespace}/${entry.name} does not match the path ${namespace}/${name}` }]);
    }
    const key = resourceKey(entry);
    const fromFile = this.fileResources.find((r) => resourceKey(r) === key);
    if (fromFile) {
      return this.reject("http-api", 409, [{ file: "request body", line: 1, reason: `ServiceEntry ${namespace}/${name} is defined in ${fromFile.origin.file}:${fromFile.origin.line}; edit that file instead` }]);
    }
    const api = new Map(this.apiEntries);
    api.set(key, { ...entry, origin: { file: API_ORIGIN, line: 1 } });
    return this.apply(this.fileResources, api, "http-api");
  }

  deleteServiceEntry(namespace: string, name: string): Outcome {
    const key = resourceKey({ kind: "ServiceEntry", namespace, name });
    if (!this.apiEntries.has(key)) {
      const fromFile = this.fileResources.find((r) => resourceKey(r) === key);
      return fromFile
        ? { ok: false, status: 409, errors: [`ServiceEntry ${namespace}/${name} is defined in ${fromFile.origin.file}:${fromFile.origin.line}; edit that file instead`] }
        : { ok: false, status: 404, errors: [`no ServiceEntry ${namespace}/${name} was added over HTTP`] };
    }
    const api = new Map(this.apiEntries);
    api.delete(key);
    return this.apply(this.fileResources, api, "http-api");
  }

  private apply(files: Resource[], api: Map<string, ServiceEntry>, source: "files" | "http-api"): Outcome {
    const built = buildRegistry([...files, ...api.values()]);
    if (!built.ok) return this.reject(source, 409, built.errors);
    const changed = JSON.stringify(built.registry.resources) !== JSON.stringify(this.current.resources);
    this.fileResources = files;
    this.apiEntries = api;
    if (source === "files") {
      this.status.reloads++;
      this.status.lastErrors = [];
    }
    if (changed || this.status.version === 0) {
      this.current = built.registry;
      this.status.version++;
      this.status.services = built.registry.services.length;
      this.status.resources = built.registry.resources.length;
      this.events.changed?.(built.registry, this.status.version);
    }
    return { ok: true, registry: this.current, changed };
  }

  private reject(source: "files" | "http-api", status: number, errors: RegistryError[]): Outcome {
    const messages = errors.map(formatError);
    if (source === "files") {
      this.status.rejections++;
      this.status.lastErrors = messages;
    }
    this.events.rejected?.(source, messages);
    return { ok: false, status, errors: messages };
  }
}
