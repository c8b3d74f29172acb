// Istio's own validation rules (test/fixtures/istio/valid.yaml, invalid.yaml): every document Istio
// accepts loads, every document it refuses is refused with the reason its annotation names.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { buildRegistry } from "../../control/registry/build.ts";
import { formatError } from "../../control/registry/model.ts";
import { parseRegistryText } from "../../control/registry/istio/parse.ts";
import { PROJECT_ROOT } from "../../envoy/paths.ts";

const FIXTURES = join(PROJECT_ROOT, "test", "fixtures", "istio");
/** The documents of a file, each with its text (parsed alone, so one's errors are its own). */
const documents = (file: string) => readFileSync(join(FIXTURES, file), "utf8").split(/^---$/m).filter((d) => /^kind:/m.test(d));

test("every document Istio accepts loads (warnings allowed), and they build together", () => {
  const resources = [];
  for (const doc of documents("valid.yaml")) {
    const r = parseRegistryText(doc, "valid.yaml");
    assert.equal(r.errors.map(formatError), [], doc);
    assert.is(r.resources.length, 1, doc);
    resources.push(...r.resources);
  }
  assert.ok(resources.length >= 29, String(resources.length));
  const built = buildRegistry(resources);
  assert.ok(built.ok, built.ok ? "" : built.errors.map(formatError).join("\n"));
});

test("every document Istio refuses is refused, with the reason named", () => {
  const docs = documents("invalid.yaml");
  assert.ok(docs.length >= 66, String(docs.length));
  for (const doc of docs) {
    const expected: string = parse(doc).metadata.annotations["expect-error"];
    const r = parseRegistryText(doc, "invalid.yaml");
    assert.is(r.resources.length, 0, `accepted: ${doc}`);
    const errors = r.errors.map(formatError);
    assert.ok(errors.some((e) => e.includes(expected)), `${parse(doc).metadata.name}: expected ${JSON.stringify(expected)} in\n  ${errors.join("\n  ")}`);
  }
});

test("accepted but not served as written: each such field is warned about by name", () => {
  const warnings = parseRegistryText(readFileSync(join(FIXTURES, "valid.yaml"), "utf8"), "valid.yaml").warnings.map((w) => w.reason);
  for (const expected of [
    "spec.subjectAltNames is ignored", "spec.serviceAccount is ignored", "spec.endpoints[0].serviceAccount is ignored",
    "workload selector specified without labels", "partial wildcard \"*x\"", "port 3 is UDP: no listener or cluster is built for it",
    "spec.endpoints[0].labels select nothing here", "spec.endpoints[2].address is unset with network \"n2\"", "spec.ports is empty",
    "sidecar: workloadSelector has no labels, will be applied to all services in namespace", "spec.ingress is ignored",
    "spec.egress[1].bind is ignored", "spec.egress[1].captureMode NONE is ignored", "unix domain socket egress listeners are not served by multiplane; its hosts are not imported",
  ]) assert.ok(warnings.some((w) => w.includes(expected)), `no warning ${JSON.stringify(expected)} among\n  ${warnings.join("\n  ")}`);
});

test.run();
