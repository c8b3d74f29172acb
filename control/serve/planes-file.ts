// `serve --planes FILE`: read at start (an invalid file stops the start with every problem), then
// watched; a reload that does not parse, or a file that is gone, is reported and the last good planes
// keep serving, as with the registry.
import { readFileSync } from "node:fs";
import { parsePlanes } from "../planes/parse.ts";
import type { Planes } from "../planes/plane.ts";
import { formatError } from "../registry/model.ts";
import { readRegistryFile } from "../registry/sources/files/read-file.ts";
import { watchRegistry, type Watcher } from "../registry/sources/files/watch.ts";

/** A planes file is a page of text; more is a mistake (the wrong file). */
const MAX_PLANES_BYTES = 1024 * 1024;

export class PlanesFileError extends Error {}

/** The file's planes, or a PlanesFileError naming every problem. */
export function readPlanesFile(path: string): Planes {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new PlanesFileError(`--planes: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (Buffer.byteLength(text) > MAX_PLANES_BYTES) throw new PlanesFileError(`--planes: ${path} is larger than ${MAX_PLANES_BYTES} bytes`);
  const r = parsePlanes(text, path);
  if (!r.planes) throw new PlanesFileError(`--planes: ${path} is invalid:\n  ${r.errors.map(formatError).join("\n  ")}`);
  return r.planes;
}

/** Calls `apply` with each good reload; logs what it refused. */
export function watchPlanesFile(path: string, apply: (planes: Planes) => void, log: (line: string) => void): Watcher {
  let last = "";
  const reload = async () => {
    const read = await readRegistryFile(path, MAX_PLANES_BYTES);
    if (!read.ok) return log(`planes: ${path}: ${read.reason}; the last good planes keep serving`);
    if (read.text === last) return;
    const r = parsePlanes(read.text, path);
    if (!r.planes) return log(`planes: ${path} is invalid; the last good planes keep serving:\n  ${r.errors.map(formatError).join("\n  ")}`);
    last = read.text;
    apply(r.planes);
    log(`planes: ${describePlanes(r.planes)} (from ${path})`);
  };
  try {
    last = readFileSync(path, "utf8");
  } catch { /* read at start already; a reload says what is wrong */ }
  return watchRegistry(path, () => void reload().catch((err) => log(`planes: reload failed: ${(err as Error).message}`)));
}

export function describePlanes(planes: Planes): string {
  if (planes.empty) return "no planes";
  return planes.list.map((p) => `${p.name} (${p.cidrs.join(", ")}${p.dscp !== undefined ? `, DSCP ${p.dscp}` : ""}${p.bindSource ? ", source bound" : ""}${p.isolated ? ", isolated" : ""})`).join("; ");
}
