// Web-standard Response helpers shared by the routes.
import { capList as capTo, clipText } from "../common/clip.ts";

export const json = (body: unknown, status = 200): Response =>
  new Response(JSON.stringify(body, null, 2) + "\n", { status, headers: { "content-type": "application/json; charset=utf-8" } });

export const text = (body: string, status = 200, contentType = "text/plain; charset=utf-8"): Response =>
  new Response(body, { status, headers: { "content-type": contentType } });

// A request can provoke any number of errors of any length (a 1 MiB body of bad ports, a huge host
// name); the answer must stay small whatever the input, so error lists and messages are capped here.
export const MAX_DETAILS = 20;
export const MAX_MESSAGE_CHARS = 500;

/** `s` cut to MAX_MESSAGE_CHARS, with a marker saying how much was cut. */
export const clip = (s: string): string => clipText(s, MAX_MESSAGE_CHARS);

/** At most MAX_DETAILS entries, each clipped, then one "and N more" line (counting what earlier caps left out). */
export const capList = (items: readonly string[]): string[] => capTo(items, MAX_DETAILS, MAX_MESSAGE_CHARS);

/** Every error body has the same shape: {error, details?}, both capped. */
export const problem = (status: number, error: string, details?: readonly string[]): Response =>
  json(details && details.length > 0 ? { error: clip(error), details: capList(details) } : { error: clip(error) }, status);
