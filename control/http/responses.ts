// Web-standard Response helpers shared by the routes.
import { capList, clip, MAX_ITEM_CHARS } from "../common/clip.ts";

export const json = (body: unknown, status = 200): Response =>
  new Response(JSON.stringify(body, null, 2) + "\n", { status, headers: { "content-type": "application/json; charset=utf-8" } });

export const text = (body: string, status = 200, contentType = "text/plain; charset=utf-8"): Response =>
  new Response(body, { status, headers: { "content-type": contentType } });

// A request can provoke any number of errors of any length (a 1 MiB body of bad ports, a huge host
// name); the answer must stay small whatever the input, so error lists and messages are capped
// (common/clip.ts: MAX_ITEMS entries of MAX_ITEM_CHARS, then one "and N more" line).

/** Every error body has the same shape: {error, details?}, both capped. */
export const problem = (status: number, error: string, details?: readonly string[]): Response =>
  json(details && details.length > 0 ? { error: clip(error, MAX_ITEM_CHARS), details: capList(details) } : { error: clip(error, MAX_ITEM_CHARS) }, status);
