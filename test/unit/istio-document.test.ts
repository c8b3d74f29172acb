// GET of an entry answers its Istio document, which PUT must take back: every ServiceEntry of the
// examples and of Istio's own documentation parses, written as a document and parsed again, to the
// same entry.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { PROJECT_ROOT } from "../../envoy/paths.ts";
import { serviceEntryDocument } from "../../control/registry/istio/document.ts";
import { loadRegistry } from "../../control/registry/sources/files/load.ts";
import { parseOneServiceEntry } from "../../control/registry/written-entry.ts";
import type { ServiceEntry } from "../../control/registry/model.ts";

const yamlIn = (dir: string) => readdirSync(join(PROJECT_ROOT, dir)).filter((f) => f.endsWith(".yaml")).map((f) => join(PROJECT_ROOT, dir, f));
const FILES = [...yamlIn("examples/registry"), ...yamlIn("examples/istio"), join(PROJECT_ROOT, "test/fixtures/istio/valid.yaml"), ...yamlIn("test/fixtures/istio/docs")];

const withoutOrigin = ({ origin: _, ...rest }: ServiceEntry) => rest;

test("every ServiceEntry of the examples and Istio's documentation comes back the same through its document", async () => {
  let checked = 0;
  for (const file of FILES) {
    const loaded = await loadRegistry(file);
    for (const entry of loaded.resources.filter((r): r is ServiceEntry => r.kind === "ServiceEntry")) {
      const text = JSON.stringify(serviceEntryDocument(entry));
      const again = parseOneServiceEntry(text, "document");
      assert.ok("entry" in again, `${entry.namespace}/${entry.name} (${file}): ${JSON.stringify(again)}`);
      assert.equal(withoutOrigin((again as { entry: ServiceEntry }).entry), withoutOrigin(entry), `${entry.namespace}/${entry.name} (${file})`);
      checked++;
    }
  }
  assert.ok(checked >= 30, `only ${checked} ServiceEntries checked`);
});

test("the document is Istio's: apiVersion, kind, metadata, spec with Istio's defaults written out", async () => {
  const loaded = await loadRegistry(join(PROJECT_ROOT, "examples", "registry", "seed.yaml"));
  const entry = loaded.resources.find((r): r is ServiceEntry => r.kind === "ServiceEntry")!;
  const doc = serviceEntryDocument(entry);
  assert.is(doc.apiVersion, "networking.istio.io/v1");
  assert.is(doc.kind, "ServiceEntry");
  assert.equal(doc.metadata, { name: entry.name, namespace: entry.namespace });
  assert.is(doc.spec.resolution, entry.resolution);
  assert.is(doc.spec.location, entry.location);
  assert.not.ok("origin" in doc.spec, "no multiplane bookkeeping in the document");
});

test.run();
