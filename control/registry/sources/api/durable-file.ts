// Files that must survive a crash or power loss whole or not at all: written to a temporary file in the
// same directory, flushed, renamed over the target (one step: a reader sees the old or the new text,
// never a mix), and the directory flushed so that the rename itself is on disk.
import { open, rename, unlink } from "node:fs/promises";
import { join } from "node:path";

/** Temporary files are hidden (registry loaders skip names starting with "."), and recognisable for clean-up. */
export const TEMP_FILE = /^\.tmp-\d+-\d+$/;

export class DurableDirectory {
  private written = 0;

  constructor(readonly dir: string) {}

  /** Replaces (or creates) `name` with `text`. Rejects if it could not be made durable; the old file is then untouched or already replaced whole. */
  async write(name: string, text: string): Promise<void> {
    const temp = join(this.dir, `.tmp-${process.pid}-${++this.written}`);
    try {
      const handle = await open(temp, "wx", 0o600);
      try {
        await handle.writeFile(text, "utf8");
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, join(this.dir, name));
    } catch (err) {
      await unlink(temp).catch(() => {});
      throw err;
    }
    await this.sync();
  }

  /** Removes `name` durably; a file already gone counts as removed. */
  async remove(name: string): Promise<void> {
    try {
      await unlink(join(this.dir, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    await this.sync();
  }

  /** Flushes the directory itself: creations, renames and removals of its entries. */
  private async sync(): Promise<void> {
    const handle = await open(this.dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}

