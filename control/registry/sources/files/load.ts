// Reads a registry from disk: one file, or every *.yaml, *.yml and *.json file directly inside a
// directory (hidden files and editor backups skipped), in name order.
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { MAX_FILE_BYTES, MAX_KEPT_ERRORS, MAX_REGISTRY_BYTES } from "../../text-limits.ts";
import type { RegistryError } from "../../model.ts";
import { parseRegistryText, type ParseResult } from "../../istio/parse.ts";
import { readRegistryFile, type FileRead } from "./read-file.ts";

/** Files read at once while loading: enough to keep the file-system threads busy, at most 16 x MAX_FILE_BYTES held. */
const READ_AHEAD = 16;

/** Every file's parse results together: at most MAX_KEPT_ERRORS errors and warnings over all files. */
export interface LoadResult extends ParseResult {
  files: string[];
  /** The text of each file read. */
  texts: Map<string, string>;
}

export const REGISTRY_FILE = /^[^.].*\.(ya?ml|json)$/i;

export async function registryFiles(path: string): Promise<string[]> {
  const info = await stat(path);
  if (!info.isDirectory()) return [path];
  const names = (await readdir(path)).filter((n) => REGISTRY_FILE.test(n)).sort();
  const dir = join(path, "/"); // normalised once: 10,000 joins cost more than the rest of a one-file reload
  return names.map((n) => dir + n);
}

/** Parse results by file, kept by the caller across reloads: a file whose text did not change is not parsed again. Parse results are immutable, so sharing them is safe. */
export type ParseCache = Map<string, { text: string; bytes: number; result: ReturnType<typeof parseRegistryText> }>;

function parseCached(cache: ParseCache, file: string, text: string, bytes: number): ReturnType<typeof parseRegistryText> {
  const hit = cache.get(file);
  if (hit && hit.text === text) return hit.result;
  const result = parseRegistryText(text, file);
  cache.set(file, { text, bytes, result });
  return result;
}

/**
 * Reads the registry at `path`. With `changed` (names inside the directory that changed since the
 * files in `cache` were read), a listed file not named there is taken from the cache without being
 * read again: an edit of one file of 10,000 reads that file.
 */
export async function loadRegistry(path: string, cache: ParseCache = new Map(), changed: ReadonlySet<string> | "all" = "all"): Promise<LoadResult> {
  const out: LoadResult = { files: [], texts: new Map(), resources: [], errors: [], warnings: [], moreErrors: 0, moreWarnings: 0, invalidDocuments: 0 };
  const fail = (file: string, reason: string) => void (out.moreErrors += keep(out.errors, [{ file, line: 0, reason }]));
  let files: string[];
  try {
    files = await registryFiles(path);
  } catch (err) {
    fail(path, (err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file or directory" : (err as Error).message);
    return out;
  }
  let total = 0;
  const readAt = (i: number): FileRead | Promise<FileRead> => {
    const file = files[i]!;
    const cached = changed !== "all" && !changed.has(file.slice(file.lastIndexOf("/") + 1)) ? cache.get(file) : undefined;
    return cached ? { ok: true as const, text: cached.text, bytes: cached.bytes } : readRegistryFile(file, MAX_FILE_BYTES);
  };
  // Files are read READ_AHEAD at a time and taken in order: one by one, a cold start of 10,000 files
  // waited for 50,000 file-system round trips in a row.
  const ahead = new Map<number, FileRead | Promise<FileRead>>();
  for (let i = 0; i < files.length; i++) {
    for (let j = i; j < Math.min(files.length, i + READ_AHEAD); j++) if (!ahead.has(j)) ahead.set(j, readAt(j));
    const file = files[i]!;
    const next = ahead.get(i)!;
    const read = next instanceof Promise ? await next : next; // unchanged files need no turn of the event loop
    ahead.delete(i);
    if (!read.ok) {
      // A file deleted between readdir and reading is simply gone; the next watch event reloads.
      if (!read.gone) {
        fail(file, read.reason);
        out.invalidDocuments++;
      }
      continue;
    }
    total += read.bytes;
    if (total > MAX_REGISTRY_BYTES) {
      fail(file, `the registry's files are over the limit of ${MAX_REGISTRY_BYTES} bytes in total; this file and the ones after it were not loaded`);
      break;
    }
    out.files.push(file);
    out.texts.set(file, read.text);
    const r = parseCached(cache, file, read.text, read.bytes);
    // Loops, not push(...list): spreading a list of 100,000+ items overflows the stack.
    for (const x of r.resources) out.resources.push(x);
    out.moreErrors += r.moreErrors + keep(out.errors, r.errors);
    out.moreWarnings += r.moreWarnings + keep(out.warnings, r.warnings);
    out.invalidDocuments += r.invalidDocuments;
  }
  const present = new Set(out.files);
  for (const file of cache.keys()) if (!present.has(file)) cache.delete(file);
  return out;
}

/** Appends up to MAX_KEPT_ERRORS in all; returns how many did not fit. */
function keep(into: RegistryError[], from: readonly RegistryError[]): number {
  let left = 0;
  for (const e of from) {
    if (into.length < MAX_KEPT_ERRORS) into.push(e);
    else left++;
  }
  return left;
}
