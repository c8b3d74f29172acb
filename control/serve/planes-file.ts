// `serve --planes FILE`: read at start (an invalid file stops the start with every problem), then
// watched; a reload that does not parse, or a file that is gone, is reported and the last good planes
// keep serving, as with the registry.
import { parsePlanes } from "../planes/parse.ts";
import type { Planes } from "../planes/plane.ts";
import { formatError } from "../registry/model.ts";
import { readRegistryFile } from "../registry/sources/files/read-file.ts";
import { watchRegistry, type Watcher } from "../registry/sources/files/watch.ts";

/** A planes file is a page of text; more is a mistake (the wrong file). */
const MAX_PLANES_BYTES = 1024 * 1024;

export class PlanesFileError extends Error {}

/** The file's planes and the text they came from, or a PlanesFileError naming every problem. */
export async function readPlanesFile(path: string): Promise<{ planes: Planes; text: string }> {
  // Read as reloads read it (and registry files are): never blocking on a FIFO, within a size limit.
  const read = await readRegistryFile(path, MAX_PLANES_BYTES);
  if (!read.ok) throw new PlanesFileError(`--planes: cannot read ${path}: ${read.reason}`);
  const r = parsePlanes(read.text, path);
  if (!r.planes) throw new PlanesFileError(`--planes: ${path} is invalid:\n  ${r.errors.map(formatError).join("\n  ")}`);
  return { planes: r.planes, text: read.text };
}

/** Calls `apply` with each good reload of a text other than `loaded` (what the start read); logs what it refused. */
export function watchPlanesFile(path: string, loaded: string, apply: (planes: Planes) => void, log: (line: string) => void): Watcher {
  let last = loaded;
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
  return watchRegistry(path, () => void reload().catch((err) => log(`planes: reload failed: ${(err as Error).message}`)));
}

export function describePlanes(planes: Planes): string {
  if (planes.empty) return "no planes";
  return planes.list.map((p) => `${p.name} (${p.cidrs.join(", ")}${p.dscp !== undefined ? `, DSCP ${p.dscp}` : ""}${p.bindSource ? ", source bound" : ""}${p.isolated ? ", isolated" : ""})`).join("; ");
}
