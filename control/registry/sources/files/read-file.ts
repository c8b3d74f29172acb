// Reads one registry file without ever blocking on it. readFile() on a FIFO waits for a writer forever
// (and holds a libuv thread while it waits), so a FIFO dropped into the registry directory froze every
// later reload. Anything but a regular file is refused after stat(), without being opened; the open
// itself is non-blocking, so a path swapped for a FIFO after stat() cannot block either, and fstat()
// on the open file refuses it. Files are read up to a size limit, also if they grow while read.
import { constants, type Stats } from "node:fs";
import { open, stat } from "node:fs/promises";

export type FileRead =
  | { ok: true; text: string; bytes: number }
  /** `gone`: the file disappeared (deleted between listing and reading); the next watch event reloads. */
  | { ok: false; gone: boolean; reason: string };

const CHUNK = 64 * 1024;

export async function readRegistryFile(file: string, maxBytes: number): Promise<FileRead> {
  let info: Stats;
  try {
    info = await stat(file);
  } catch (err) {
    return failed(err);
  }
  const refused = refusal(info, maxBytes);
  if (refused) return refused;
  try {
    const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const opened = refusal(await handle.stat(), maxBytes);
      if (opened) return opened;
      const chunks: Buffer[] = [];
      let total = 0;
      let want = Math.min(info.size, maxBytes) + 1;
      for (;;) {
        const buf = Buffer.allocUnsafe(want);
        const { bytesRead } = await handle.read(buf, 0, want, null);
        if (bytesRead === 0) break;
        chunks.push(buf.subarray(0, bytesRead));
        total += bytesRead;
        if (total > maxBytes) return tooLarge(`more than ${maxBytes}`, maxBytes);
        if (bytesRead < want) break; // a short read of a regular file is its end: no round trip to be told so
        want = Math.min(CHUNK, maxBytes + 1 - total);
      }
      return { ok: true, text: Buffer.concat(chunks, total).toString("utf8"), bytes: total };
    } finally {
      await handle.close();
    }
  } catch (err) {
    return failed(err);
  }
}

function refusal(info: Stats, maxBytes: number): FileRead | undefined {
  if (!info.isFile()) return { ok: false, gone: false, reason: `${kindOf(info)}, not a regular file; refused without opening it` };
  if (info.size > maxBytes) return tooLarge(String(info.size), maxBytes);
  return undefined;
}

const tooLarge = (size: string, maxBytes: number): FileRead =>
  ({ ok: false, gone: false, reason: `${size} bytes, over the limit of ${maxBytes} bytes per registry file; not read` });

function kindOf(info: Stats): string {
  if (info.isFIFO()) return "a FIFO (named pipe)";
  if (info.isSocket()) return "a socket";
  if (info.isCharacterDevice()) return "a character device";
  if (info.isBlockDevice()) return "a block device";
  if (info.isDirectory()) return "a directory";
  return "an unknown kind of file";
}

function failed(err: unknown): FileRead {
  const e = err as NodeJS.ErrnoException;
  return { ok: false, gone: e.code === "ENOENT", reason: e.code === "ENOENT" ? "no such file or directory" : e.message };
}
