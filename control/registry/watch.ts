// Calls `onChange` (debounced) whenever the registry path changes. A single file is watched through its
// directory, so editors that save by writing a temp file and renaming it are seen too.
import { watch, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";
import { statSync } from "node:fs";

export interface Watcher {
  close(): void;
}

export function watchRegistry(path: string, onChange: () => void, debounceMs = 30): Watcher {
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch { /* not there yet: watch the parent for it to appear */ }
  const dir = isDir ? path : dirname(path);
  const only = isDir ? undefined : basename(path);
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  let retry: NodeJS.Timeout | undefined;
  let closed = false;
  let retried = false;

  const fire = () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  };
  const start = () => {
    if (closed) return;
    try {
      watcher = watch(dir, { persistent: false }, (_event, name) => {
        if (only === undefined || name === null || name === only) fire();
      });
      // The directory itself went away (or similar): keep trying, and reload when it is back.
      watcher.on("error", () => { watcher?.close(); watcher = undefined; fire(); retried = true; retry = setTimeout(start, 1000); });
      if (retried) fire();
    } catch {
      retried = true;
      retry = setTimeout(start, 1000);
    }
  };
  start();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      clearTimeout(retry);
      watcher?.close();
    },
  };
}
