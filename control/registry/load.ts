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
}

export const REGISTRY_FILE = /^[^.].*\.(ya?ml|json)$/i;

export async function registryFiles(path: string): Promise<string[]> {
  const info = await stat(path);
  if (!info.isDirectory()) return [path];
  const names = (await readdir(path)).filter((n) => REGISTRY_FILE.test(n)).sort();
  return names.map((n) => join(path, n));
}

// A reload re-reads every file but re-parses only those whose text changed: editing one file of a
// large registry directory costs that file. Parse results are immutable, so sharing them is safe.
const parsed = new Map<string, { text: string; result: ReturnType<typeof parseRegistryText> }>();

function parseCached(file: string, text: string): ReturnType<typeof parseRegistryText> {
  const hit = parsed.get(file);
  if (hit && hit.text === text) return hit.result;
  const result = parseRegistryText(text, file);
  parsed.set(file, { text, result });
  return result;
}

export async function loadRegistry(path: string): Promise<LoadResult> {
  const out: LoadResult = { files: [], resources: [], errors: [], warnings: [] };
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
      continue;
    }
    out.files.push(file);
    const r = parseCached(file, text);
    out.resources.push(...r.resources);
    out.errors.push(...r.errors);
    out.warnings.push(...r.warnings);
  }
  const present = new Set(out.files);
  for (const file of parsed.keys()) if (!present.has(file) && file.startsWith(path)) parsed.delete(file);
  return out;
}
