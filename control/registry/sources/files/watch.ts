// Calls `onChange` (debounced) whenever the registry path changes. A single file is watched through its
// directory, so editors that save by writing a temp file and renaming it are seen too. A watch follows
// the directory it was set on (its inode), also when that directory is renamed away: when the watched
// directory is no longer the one at the path (replaced by another, or gone), the watch is set again on
// what is there now, or retried every second until something is.
import { watch, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";
import { statSync } from "node:fs";
import { Coalescer } from "../../../common/coalescer.ts";
import { REGISTRY_FILE } from "./load.ts";

export interface Watcher {
  close(): void;
}

/** The names (inside the watched directory) that changed, or "all" when that is not known. */
export type Changed = ReadonlySet<string> | "all";

/**
 * Changes are reported `debounceMs` after the last one, but never later than `maxWaitMs` after the
 * first: a file rewritten every few milliseconds must not hold back every other edit.
 */
export function watchRegistry(path: string, onChange: (changed: Changed) => void, debounceMs = 30, maxWaitMs = 200): Watcher {
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch { /* not there yet: watch the parent for it to appear */ }
  const dir = isDir ? path : dirname(path);
  const only = isDir ? undefined : basename(path);
  let watcher: FSWatcher | undefined;
  let watching: string | undefined;
  let retry: NodeJS.Timeout | undefined;
  let closed = false;
  let retried = false;
  // What changed since the last call: file names, so a reload reads only those, or everything.
  let pending: Set<string> | "all" = new Set();

  const flush = (): void => {
    if (watching !== identity(dir)) { restart(); pending = "all"; }
    const changed = pending;
    pending = new Set();
    onChange(changed);
  };
  const burst = new Coalescer(flush, { quietMs: debounceMs, maxWaitMs });
  const fire = (name?: string) => {
    if (name === undefined) pending = "all";
    else if (pending !== "all") pending.add(name);
    burst.poke();
  };
  const retryLater = () => {
    retried = true;
    clearTimeout(retry);
    retry = setTimeout(start, 1000);
  };
  const restart = () => {
    watcher?.close();
    watcher = undefined;
    start();
  };
  function start() {
    if (closed) return;
    try {
      watching = identity(dir);
      watcher = watch(dir, { persistent: false }, (_event, name) => {
        // The directory's own name: it was renamed or removed itself.
        if (name === null || name === basename(dir)) fire();
        // In a directory only registry files count: a log or an editor's swap file beside them is not a change.
        else if (only === undefined ? REGISTRY_FILE.test(name) : name === only) fire(name);
      });
      // The directory itself went away (or similar): keep trying, and reload when it is back.
      watcher.on("error", () => { watcher?.close(); watcher = undefined; fire(); retryLater(); });
      if (retried) fire();
    } catch {
      retryLater();
    }
  }
  start();
  return {
    close() {
      closed = true;
      burst.stop();
      clearTimeout(retry);
      watcher?.close();
    },
  };
}

/** Which directory is at `dir` now (device and inode), or undefined if none. */
function identity(dir: string): string | undefined {
  try {
    const s = statSync(dir);
    return `${s.dev}:${s.ino}`;
  } catch {
    return undefined;
  }
}
