// bench:control's file registry rows: a directory of one file per service (as the meshes use), served
// by a control plane with no proxy: the load at start, and one file edited (written beside, renamed
// over) until the new version serves, which includes the watcher's 30 ms debounce. What the edit costs
// besides the debounce is the source re-reporting the whole directory and the store rebuilding the
// registry: O(directory), not O(changed file).
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { serve } from "../control/serve/serve.ts";
import { serviceEntryYaml } from "./mesh.ts";

export interface RegistryFilesResult {
  files: number;
  loadMs: number;
  /** From the rename to the new version serving, per edit. */
  editMs: number[];
}

export async function registryFilesBench(files: number, edits: number): Promise<RegistryFilesResult> {
  const dir = mkdtempSync(join(os.tmpdir(), "mp-files-"));
  try {
    for (let i = 0; i < files; i++) writeFileSync(join(dir, `svc-${i}.yaml`), serviceEntryYaml(i));
    let applied: (() => void) | undefined;
    const t = performance.now();
    const cp = await serve({ registry: dir, xdsPort: 0, httpPort: false, loopGuard: false, log: (l) => { if (l.startsWith("registry v")) applied?.(); } });
    const loadMs = performance.now() - t;
    const editMs: number[] = [];
    try {
      for (let k = 1; k <= edits; k++) {
        const moved = `10.250.${k >> 8}.${k & 255}`;
        const done = new Promise<void>((r) => (applied = r));
        writeFileSync(join(dir, ".svc-7.yaml.tmp"), serviceEntryYaml(7, moved));
        const t0 = performance.now();
        renameSync(join(dir, ".svc-7.yaml.tmp"), join(dir, "svc-7.yaml"));
        await done;
        editMs.push(performance.now() - t0);
        const served = cp.store.registry.services.find((s) => s.host === "svc-7.bench.svc.cluster.local")?.endpoints[0]?.address;
        if (served !== moved) throw new Error(`edit ${k}: the registry serves ${served}, not ${moved}`);
        await new Promise((r) => setTimeout(r, 100)); // apart, so each edit is its own reload
      }
    } finally {
      await cp.stop();
    }
    return { files, loadMs, editMs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
