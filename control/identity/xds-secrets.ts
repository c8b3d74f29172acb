// node.metadata.MULTIPLANE_XDS_SECRETS: where the proxy's filesystem SDS files for the xDS CA and
// certificate are (`multiplane bootstrap --xds-ca ... --out FILE` writes them), so that the loop guard
// module's cluster names the same secrets (control/generation/sds-secrets.ts). Absent: an older
// bootstrap with static secrets. A value that is not `{ ca: PATH, cert?: PATH }` with absolute paths is
// reported and ignored, never fatal; reports echo at most a short prefix of a value.
import { quote } from "../common/clip.ts";
/** Node metadata: where the proxy's SDS files are, `{ ca: PATH, cert?: PATH }` (absolute paths on the Envoy host). */
export const XDS_SECRETS_METADATA = "MULTIPLANE_XDS_SECRETS";

/** The SDS files, absolute paths on the Envoy host: the CA's and the certificate's. */
export interface XdsSdsPaths {
  ca: string;
  cert?: string;
}

/** Linux's PATH_MAX: no longer path can name a file. */
export const MAX_SDS_PATH_BYTES = 4096;
const ECHO_CHARS = 100;
const KEYS: ReadonlySet<string> = new Set(["ca", "cert"]);

const echo = (v: unknown): string => quote(typeof v === "string" ? v : JSON.stringify(v) ?? String(v), ECHO_CHARS);

/** Why `path` cannot be an SDS file's path on the Envoy host, or undefined. */
function pathProblem(key: string, path: unknown): string | undefined {
  if (typeof path !== "string") return `${key} must be a string (an absolute path), got ${echo(path)}`;
  if (Buffer.byteLength(path, "utf8") > MAX_SDS_PATH_BYTES) return `${key} is ${Buffer.byteLength(path, "utf8")} bytes, over the limit of ${MAX_SDS_PATH_BYTES}`;
  if (/[\u0000-\u001f\u007f]/.test(path)) return `${key} ${echo(path)} contains a control character`;
  if (!path.startsWith("/")) return `${key} ${echo(path)} is not an absolute path`;
  return undefined;
}

/**
 * The SDS paths the metadata value names, or why it is ignored (`problem`: one message). An unknown
 * key is reported (`warning`) and the rest used.
 */
export function parseXdsSecrets(value: unknown): { paths?: XdsSdsPaths; problem?: string; warning?: string } {
  if (value === undefined) return {};
  if (value === null || typeof value !== "object" || Array.isArray(value)) return { problem: `expected { ca: PATH, cert: PATH } (cert optional), got ${echo(value)}` };
  const v = value as Record<string, unknown>;
  const problem = pathProblem("ca", v.ca) ?? (v.cert === undefined ? undefined : pathProblem("cert", v.cert));
  if (problem) return { problem };
  const unknown = Object.keys(v).filter((k) => !KEYS.has(k));
  const shown = unknown.slice(0, 5).map((k) => echo(k)).join(", ") + (unknown.length > 5 ? ` and ${unknown.length - 5} more` : "");
  return {
    paths: { ca: v.ca as string, ...(v.cert === undefined ? {} : { cert: v.cert as string }) },
    ...(unknown.length > 0 ? { warning: `unknown key${unknown.length > 1 ? "s" : ""} ${shown} ignored` } : {}),
  };
}
