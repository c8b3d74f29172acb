import { test } from "uvu";
import * as assert from "uvu/assert";
import { resolveEnvoy, EnvoyNotFoundError } from "../../envoy/resolve.ts";

test("ENVOY_BIN pointing nowhere is an error naming ENVOY_BIN and the install command", () => {
  try {
    resolveEnvoy({ ENVOY_BIN: "/nonexistent/envoy", PATH: "" });
    assert.unreachable("should have thrown");
  } catch (err) {
    assert.instance(err, EnvoyNotFoundError);
    assert.match((err as Error).message, "ENVOY_BIN=/nonexistent/envoy");
    assert.match((err as Error).message, "npm install");
  }
});

test.run();
