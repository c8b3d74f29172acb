// What a failed request to the API server means for a reflector. The API server answers errors with
// a Status object ({code, reason, message}); watch streams carry the same object in an ERROR event.
// Only the status code decides what happens next; the message is kept for the operator (it names the
// user and the missing permission, never a credential).

/** An error answer of the API server: an HTTP status, or an ERROR event of a watch. */
export class KubeApiError extends Error {
  constructor(
    readonly code: number,
    /** The Status reason ("Forbidden", "Expired", "NotFound", ...), when the server gave one. */
    readonly reason: string | undefined,
    message: string,
    /** Retry-After, when the server asked for a pause (429, some 5xx). */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = "KubeApiError";
  }
}

const TOO_LARGE = /too large resource version/i;

export type Failure =
  /** 410: the resource version is older than the server's history (compacted, or the server restarted): list again. */
  | { kind: "gone"; message: string }
  /** 403: RBAC refuses the verb on the resource. */
  | { kind: "forbidden"; message: string }
  /** 401: the credentials were refused (expired token, wrong certificate). */
  | { kind: "unauthorized"; message: string }
  /** 404: the resource is not served (a custom resource whose definition is not installed). */
  | { kind: "not-found"; message: string }
  /** Anything else (connection refused or reset, timeouts, 5xx, 429): the server is out of reach for now. */
  | { kind: "unavailable"; message: string; retryAfterMs?: number };

export function classify(err: unknown): Failure {
  if (err instanceof KubeApiError) {
    const message = `${err.message} (${err.code}${err.reason ? ` ${err.reason}` : ""})`;
    // A server whose watch cache is behind the version asked for (another server of the cluster
    // answered the last time): its 504 means the same as 410 for a client, list again.
    if (err.code === 410 || TOO_LARGE.test(err.message)) return { kind: "gone", message };
    switch (err.code) {
      case 403: return { kind: "forbidden", message: err.message };
      case 401: return { kind: "unauthorized", message };
      case 404: return { kind: "not-found", message };
      default: return { kind: "unavailable", message, ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}) };
    }
  }
  return { kind: "unavailable", message: firstLine(err) };
}

/** An error's first line: Node's network errors ("connect ECONNREFUSED 10.0.0.1:6443") say all in it. */
export function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split("\n")[0]!.trim() || (err instanceof Error ? err.name : "unknown error");
}

/** Most of an error answer is read, this much at most: a Status is small, a proxy's HTML page is not wanted whole. */
export const MAX_ERROR_BODY = 64 << 10;

/** The KubeApiError for an answer with HTTP status `code` and body `text` (a Status object, or anything a proxy sent). */
export function apiErrorFromBody(code: number, text: string, retryAfter?: string): KubeApiError {
  let reason: string | undefined;
  let message: string | undefined;
  try {
    const status = JSON.parse(text) as { kind?: string; reason?: string; message?: string };
    if (status && typeof status === "object") {
      reason = typeof status.reason === "string" && status.reason ? status.reason : undefined;
      message = typeof status.message === "string" && status.message ? status.message : undefined;
    }
  } catch { /* not JSON: "404 page not found", an HTML error page */ }
  message ??= text.trim().split("\n")[0]?.slice(0, 200) || `HTTP ${code}`;
  return new KubeApiError(code, reason, message, parseRetryAfter(retryAfter));
}

/** The KubeApiError an ERROR watch event carries (its object is a Status). */
export function apiErrorFromStatus(status: unknown): KubeApiError {
  const s = (status ?? {}) as { code?: unknown; reason?: unknown; message?: unknown };
  const code = typeof s.code === "number" ? s.code : 500;
  return new KubeApiError(code, typeof s.reason === "string" ? s.reason : undefined, typeof s.message === "string" ? s.message : "watch error without a message");
}

/** Retry-After in seconds (the API server never sends an HTTP date), as ms. */
function parseRetryAfter(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const s = Number(value);
  return Number.isFinite(s) && s >= 0 ? Math.min(s, 300) * 1000 : undefined;
}
