// Fuzzing the watched registry directory of a real control plane: files of garbage, YAML token soup, deep
// nesting, huge repetitive text and broken ServiceEntries appear, change and vanish next to the good file,
// or overwrite the good file itself. After every edit has been read: the log it caused stays small and
// the process is healthy (the last good registry serves over HTTP and to a connected xDS client, memory
// stays bounded).
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MAX_FILE_BYTES } from "../../control/registry/text-limits.ts";
import { parseRegistryText } from "../../control/registry/istio/parse.ts";
import { waitFor } from "../support/net.ts";
import { fuzzFor, GOOD_ENTRY, MAX_LOG_BYTES_PER_EVENT, startFuzzPlane, type FuzzPlane } from "../support/fuzz-plane.ts";
import { registryText } from "../support/fuzz-text.ts";

let plane: FuzzPlane;

const holdsResources = (text: string) => {
  const r = parseRegistryText(text, "oracle");
  return r.errors.length === 0 && r.resources.length > 0;
};

test.before(async () => {
  plane = await startFuzzPlane();
});

test.after(async () => {
  await plane?.stop();
});

/** Makes an edit, waits until the control plane has read it (applied, refused or held), then checks health. */
async function edit(change: () => void): Promise<string | undefined> {
  const before = plane.progress();
  const logged = plane.loggedBytes();
  change();
  const read = await waitFor(() => plane.progress() !== before, 20_000, 5);
  if (!read) return `the edit was not read within 20 s (${before})`;
  if (plane.loggedBytes() - logged > MAX_LOG_BYTES_PER_EVENT) return `${plane.loggedBytes() - logged} bytes of log for one edit`;
  return plane.healthy();
}

test("files of any text appear next to the good one: refused, held or applied, the good registry serves", async () => {
  let previous: string | undefined;
  let n = 0;
  const files = fc.tuple(fc.constantFrom("fuzz", "other", "list"), registryText("fuzzed"), fc.constantFrom(".yaml", ".json", ".yml"));
  const runs = await fuzzFor(6, files, async ([base, text, ext]) => {
    // A new name each time, so that every edit changes what the directory holds and is read.
    const file = join(plane.registryDir, `${base}-${++n}${ext}`);
    const gone = previous;
    previous = file;
    const problem = await edit(() => {
      if (gone) rmSync(gone, { force: true });
      writeFileSync(file, text);
    });
    assert.is(problem, undefined, `${text.length} characters: ${JSON.stringify(text.slice(0, 200))}`);
  });
  if (previous) await edit(() => rmSync(previous!, { force: true }));
  assert.ok(runs > 0);
  console.log(`    ${runs} registry files`);
});

test("the good file itself overwritten with any text, or over the size limit: the last good registry keeps serving", async () => {
  const goodFile = join(plane.registryDir, "good.yaml");
  let n = 0;
  const text = fc.oneof(
    // A valid replacement would change the good registry on purpose: only texts the parser refuses or that hold nothing.
    { arbitrary: registryText("other").filter((t) => !holdsResources(t)), weight: 9 },
    { arbitrary: fc.constant("#".repeat(MAX_FILE_BYTES + 1)), weight: 1 },
  );
  const runs = await fuzzFor(5, text, async (t) => {
    const problem = await edit(() => writeFileSync(goodFile, `${t}\n# ${++n}\n`));
    assert.is(problem, undefined, `${t.length} characters: ${JSON.stringify(t.slice(0, 200))}`);
  });
  writeFileSync(goodFile, GOOD_ENTRY);
  const readyz = () => plane.call("/readyz").then((r) => r.text(), (e: Error) => e.message);
  assert.ok(await waitFor(async () => (await readyz()) === "ready\n", 15_000), await readyz());
  assert.ok(runs > 0);
  console.log(`    ${runs} overwrites of the good file`);
});

test.run();
