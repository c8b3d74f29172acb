// Bearer-token check for the write routes. The token is compared in constant time.
import { createHash, timingSafeEqual } from "node:crypto";
import { problem } from "./responses.ts";

const digest = (s: string) => createHash("sha256").update(s).digest();

/** undefined when the request may write; otherwise the 401/403 response to send. */
export function requireToken(req: Request, token: string | undefined): Response | undefined {
  if (token === undefined) return problem(403, "writes are disabled: start the control plane with --token-file (and --api-dir, where writes are stored) to allow them");
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.get("authorization") ?? "");
  if (m && timingSafeEqual(digest(m[1]!), digest(token))) return undefined;
  const res = problem(401, m ? "wrong bearer token" : "missing Authorization: Bearer <token>");
  res.headers.set("www-authenticate", 'Bearer realm="multiplane"');
  return res;
}
