// Reads a registry from disk: one file, or every *.yaml, *.yml and *.json file directly inside a
// directory (hidden files and editor backups skipped), in name order.
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { RegistryError, Resource } from "./model.ts";
import { parseRegistryText } from "./parse.ts";

export interface LoadResult {
  files: string[];
  resources: Resource[];
  errors: RegistryError[];
  warnings: RegistryError[];
  /** Documents that do not parse or validate. */
  invalidDocuments: number;
}

export const REGISTRY_FILE = /^[^.].*\.(ya?ml|json)$/i;

export async function registryFiles(path: string): Promise<string[]> {
  const info = await stat(path);
  if (!info.isDirectory()) return [path];
  const names = (await readdir(path)).filter((n) => REGISTRY_FILE.test(n)).sort();
  return names.map((n) => join(path, n));
}

/** Parse results by file, kept by the caller across reloads: a file whose text did not change is not parsed again. Parse results are immutable, so sharing them is safe. */
export type ParseCache = Map<string, { text: string; result: ReturnType<typeof parseRegistryText> }>;

function parseCached(cache: ParseCache, file: string, text: string): ReturnType<typeof parseRegistryText> {
  const hit = cache.get(file);
  if (hit && hit.text === text) return hit.result;
  const result = parseRegistryText(text, file);
  cache.set(file, { text, result });
  return result;
}

export async function loadRegistry(path: string, cache: ParseCache = new Map()): Promise<LoadResult> {
  const out: LoadResult = { files: [], resources: [], errors: [], warnings: [], invalidDocuments: 0 };
  let files: string[];
  try {
    files = await registryFiles(path);
  } catch (err) {
    out.errors.push({ file: path, line: 0, reason: (err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file or directory" : (err as Error).message });
    return out;
  }
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      // A file deleted between readdir and readFile is simply gone; the next watch event reloads.
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      out.errors.push({ file, line: 0, reason: (err as Error).message });
      out.invalidDocuments++;
      continue;
    }
    out.files.push(file);
    const r = parseCached(cache, file, text);
    // Loops, not push(...list): spreading a list of 100,000+ items overflows the stack.
    for (const x of r.resources) out.resources.push(x);
    for (const x of r.errors) out.errors.push(x);
    for (const x of r.warnings) out.warnings.push(x);
    out.invalidDocuments += r.invalidDocuments;
  }
  const present = new Set(out.files);
  for (const file of cache.keys()) if (!present.has(file)) cache.delete(file);
  return out;
}
