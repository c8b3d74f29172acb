// `serve --on-invalid skip`: invalid documents are left out one by one (and logged), the rest of the
// directory serves, /readyz says how many were left out; the default (reject) keeps the last good
// registry. HTTP writes stay all-or-nothing in both modes.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { parseServeArgs } from "../../control/cmd/cli.ts";
import { serve } from "../../control/serve/serve.ts";
import { tempRegistryDir } from "../support/control.ts";
import { waitFor } from "../support/net.ts";

const se = (name: string, spec: string) => `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${name}}\nspec:\n${spec}\n`;
const GOOD = se("good", "  hosts: [good.example]\n  ports: [{number: 80, name: http}]\n  resolution: STATIC\n  endpoints: [{address: 10.0.0.1}]");
const BAD_PORT = se("bad-port", "  hosts: [bad.example]\n  ports: [{number: 80, name: http_web}]");
const CLASH = se("clash", "  hosts: [good.example]\n  ports: [{number: 80, name: web}]");

test("serve flags: --on-invalid reject (default) or skip; anything else is a usage error", () => {
  assert.is(parseServeArgs(["--registry", "r"]).onInvalid, undefined);
  assert.is(parseServeArgs(["--registry", "r", "--on-invalid", "skip"]).onInvalid, "skip");
  assert.throws(() => parseServeArgs(["--registry", "r", "--on-invalid", "ignore"]), /--on-invalid: expected reject or skip, got "ignore"/);
});

test("skip: the invalid document and the clashing one are left out, each reported; the rest serves; /readyz counts them", async () => {
  const dir = tempRegistryDir({
    "a-good.yaml": GOOD,
    "b-bad.yaml": `${BAD_PORT}---\n${se("also-good", "  hosts: [also.example]\n  ports: [{number: 81, name: tcp}]\n  subjectAltNames: [spiffe://x]")}`,
    "c-clash.yaml": CLASH,
  });
  const logs: string[] = [];
  const cp = await serve({ registry: dir, xdsPort: 0, httpPort: 0, onInvalid: "skip", log: (l) => logs.push(l) });
  try {
    assert.equal(cp.store.registry.services.map((s) => s.host), ["also.example", "good.example"]);
    const status = cp.store.status();
    assert.is(status.leftOut.documents, 2);
    assert.equal(status.leftOut.errors.map((e) => e.replaceAll(dir, "DIR")), [
      "DIR/b-bad.yaml:6:24: invalid port name: \"http_web\" (a DNS-1123 label: letters, digits and '-', at most 63)",
      "DIR/c-clash.yaml:1: host good.example port 80 is already defined by ServiceEntry default/good at DIR/a-good.yaml:1",
    ]);
    assert.ok(logs.some((l) => /^registry: left out \(--on-invalid skip\): .*b-bad\.yaml:6:24: invalid port name/.test(l)), logs.join("\n"));
    assert.ok(logs.some((l) => /^registry: left out \(--on-invalid skip\): .*c-clash\.yaml:1: host good\.example port 80/.test(l)), logs.join("\n"));
    const ready = await fetch(`${cp.httpUrl}/readyz`);
    assert.is(ready.status, 200);
    assert.match(await ready.text(), /^ready: 2 invalid documents left out \(--on-invalid skip\): .*b-bad\.yaml:6:24/);
    const registry = await (await fetch(`${cp.httpUrl}/debug/registry`)).json();
    assert.is(registry.status.leftOut.documents, 2);
    assert.ok(registry.status.warnings.length > 0, "warnings show in /debug/registry too");

    // Fixing the file brings the document in; nothing is left out any more.
    writeFileSync(join(dir, "b-bad.yaml"), BAD_PORT.replace("http_web", "http-web"));
    rmSync(join(dir, "c-clash.yaml"));
    assert.ok(await waitFor(() => cp.store.registry.services.some((s) => s.host === "bad.example") && cp.store.status().leftOut.documents === 0, 5000));
    assert.is(await (await fetch(`${cp.httpUrl}/readyz`)).text(), "ready\n");
  } finally {
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("reject (default): one invalid document keeps the whole directory out, and says why", async () => {
  const dir = tempRegistryDir({ "a-good.yaml": GOOD, "b-bad.yaml": BAD_PORT });
  const cp = await serve({ registry: dir, xdsPort: 0, httpPort: 0, log: () => {} });
  try {
    assert.equal(cp.store.registry.services, []);
    const ready = await fetch(`${cp.httpUrl}/readyz`);
    assert.is(ready.status, 503);
    assert.match(await ready.text(), /not ready: registry not loaded: .*b-bad\.yaml:6:24: invalid port name/);
  } finally {
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("skip does not apply to an unreadable registry, nor to HTTP writes", async () => {
  const dir = tempRegistryDir({ "a-good.yaml": GOOD });
  const missing = await serve({ registry: join(dir, "nope"), xdsPort: 0, httpPort: 0, onInvalid: "skip", log: () => {} });
  try {
    assert.is(missing.view.readiness().ready, false);
  } finally {
    await missing.stop();
  }
  const apiDir = join(dir, "..", `${basename(dir)}-api`);
  const cp = await serve({ registry: dir, xdsPort: 0, httpPort: 0, onInvalid: "skip", token: "t", apiDir, log: () => {} });
  try {
    const put = await fetch(`${cp.httpUrl}/registry/serviceentries/default/clash`, { method: "PUT", body: CLASH, headers: { authorization: "Bearer t" } });
    assert.is(put.status, 409);
    const bad = await fetch(`${cp.httpUrl}/registry/serviceentries/default/bad-port`, { method: "PUT", body: BAD_PORT, headers: { authorization: "Bearer t" } });
    assert.is(bad.status, 400);
    assert.equal(cp.store.registry.services.map((s) => s.host), ["good.example"]);
  } finally {
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(apiDir, { recursive: true, force: true });
  }
});

test.run();
