// Web-standard Response helpers shared by the routes.

export const json = (body: unknown, status = 200): Response =>
  new Response(JSON.stringify(body, null, 2) + "\n", { status, headers: { "content-type": "application/json; charset=utf-8" } });

export const text = (body: string, status = 200, contentType = "text/plain; charset=utf-8"): Response =>
  new Response(body, { status, headers: { "content-type": contentType } });

/** Every error body has the same shape: {error, details?}. */
export const problem = (status: number, error: string, details?: string[]): Response =>
  json(details && details.length > 0 ? { error, details } : { error }, status);
