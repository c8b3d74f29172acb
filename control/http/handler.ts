// The HTTP API as one web-standard handler, `(Request) => Promise<Response>`: it uses only Request,
// Response, URL, streams and node:crypto (through auth.ts), so the same module runs under Deno.serve
// (test/integration/http-deno.test.ts runs it there) and behind node-adapter.ts.
import { requireToken } from "./auth.ts";
import type { RegistryProblem, WriteOutcome } from "../registry/source.ts";
import { capList } from "../common/clip.ts";
import { json, problem, text } from "./responses.ts";
import { serviceEntryDocument } from "../registry/istio/document.ts";
import type { ControlPlaneView } from "./view.ts";

export interface ApiOptions {
  /** Bearer token for PUT/DELETE; undefined disables writes. */
  token?: string;
}

export type Handler = (req: Request) => Promise<Response>;

/** Registry outcomes are domain terms; HTTP statuses are this module's business. */
const PROBLEM_STATUS: Record<RegistryProblem["kind"], number> = {
  invalid: 400, conflict: 409, "not-found": 404, disabled: 403, "precondition-failed": 412, unavailable: 503,
};

/** Larger request bodies get 413. Enforced here, so it holds under any server, and by node-adapter.ts while reading. */
export const MAX_BODY_BYTES = 1 << 20;

interface Context {
  req: Request;
  url: URL;
  /** The route's `{...}` segments, percent-decoded, in order. */
  params: string[];
  view: ControlPlaneView;
}

type Method = "GET" | "PUT" | "DELETE" | "POST";

interface Route {
  /** Literal segments and `{name}` segments; a `{name}` matches one non-empty segment. */
  path: string;
  /** Shown after the path in the 404 route list. */
  query?: string;
  /** HEAD is served wherever GET is. Every other method writes, so it needs the bearer token. */
  methods: Partial<Record<Method, (ctx: Context) => Response | Promise<Response>>>;
}

// The one route table: dispatch, 405 with Allow, and the 404 list all come from it.
const ROUTES: Route[] = [
  { path: "/healthz", methods: { GET: () => text("ok\n") } },
  {
    path: "/readyz",
    methods: {
      GET: ({ view }) => {
        const r = view.readiness();
        if (!r.ready) return text(`not ready: ${capList(r.reasons).join("; ")}\n`, 503);
        return text(r.reasons.length ? `ready: ${capList(r.reasons).join("; ")}\n` : "ready\n");
      },
    },
  },
  { path: "/metrics", methods: { GET: ({ view }) => text(view.metricsText(), 200, "text/plain; version=0.0.4; charset=utf-8") } },
  { path: "/debug/proxies", methods: { GET: ({ view }) => json({ proxies: view.proxies() }) } },
  { path: "/debug/agents", methods: { GET: ({ view }) => json({ reports: view.agentReports() }) } },
  { path: "/debug/config_dump", query: "?proxy=ID", methods: { GET: ({ url, view }) => perProxy(url, view, (id) => view.configDump(id)) } },
  {
    path: "/debug/decisions",
    query: "?proxy=ID",
    methods: {
      GET: ({ url, view }) => perProxy(url, view, (id) => {
        const decisions = view.decisions(id);
        return decisions && { proxy: id, decisions };
      }),
    },
  },
  { path: "/debug/registry", methods: { GET: ({ view }) => json({ status: view.registryStatus(), serviceEntries: view.serviceEntries() }) } },
  {
    // A change that would remove every registry service waits for a person's word, never a timer.
    path: "/registry/held/confirm",
    methods: {
      POST: async ({ view }) => {
        const r = await view.confirmHeld();
        return r.confirmed.length === 0
          ? problem(409, "no registry change is held back waiting for a confirmation")
          : json({ confirmed: r.confirmed, services: r.services });
      },
    },
  },
  { path: "/registry/serviceentries", methods: { GET: ({ view }) => json({ serviceEntries: view.serviceEntries() }) } },
  {
    path: "/registry/serviceentries/{namespace}/{name}",
    methods: {
      GET: ({ params: [namespace, name], view }) => {
        const found = view.serviceEntry(namespace!, name!);
        if (!found) return problem(404, `no ServiceEntry ${namespace}/${name} is serving`);
        // The Istio document itself, so that it can be edited and PUT back with If-Match: its ETag.
        const res = json(serviceEntryDocument(found.entry));
        res.headers.set("etag", found.etag);
        return res;
      },
      PUT: async ({ req, params: [namespace, name], view }) =>
        applied("PUT", namespace!, name!, await view.write({ op: "put", kind: "ServiceEntry", namespace: namespace!, name: name!, body: await readBody(req), ...ifMatch(req) })),
      DELETE: async ({ req, params: [namespace, name], view }) =>
        applied("DELETE", namespace!, name!, await view.write({ op: "delete", kind: "ServiceEntry", namespace: namespace!, name: name!, ...ifMatch(req) })),
    },
  },
];

const TABLE = ROUTES.map((route) => {
  const methods = Object.keys(route.methods);
  return {
    route,
    segments: route.path.split("/"),
    allow: (methods.includes("GET") ? [...methods, "HEAD"] : methods).join(", "),
  };
});

const ROUTE_LIST = TABLE.map((t) => `${t.allow} ${t.route.path}${t.route.query ?? ""}`);

/** A request the handler refuses with `status` before it reaches the view. */
class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export function createHandler(view: ControlPlaneView, opts: ApiOptions = {}): Handler {
  return async (req) => {
    const url = new URL(req.url);
    const path = url.pathname;
    try {
      const found = match(path);
      if (!found) return problem(404, `no route ${path}`, ROUTE_LIST);
      const { entry, raw } = found;
      const method = req.method === "HEAD" ? "GET" : req.method;
      const run = Object.hasOwn(entry.route.methods, method) ? entry.route.methods[method as Method] : undefined;
      if (!run) {
        const res = problem(405, `${req.method} is not allowed on ${path}; allowed: ${entry.allow}`);
        res.headers.set("allow", entry.allow);
        return res;
      }
      if (method !== "GET") {
        // Before the path is decoded or the body read: nothing about a write is looked at for a client that may not write.
        const denied = requireToken(req, opts.token);
        if (denied) return denied;
      }
      const res = await run({ req, url, params: raw.map(decodeSegment), view });
      return req.method === "HEAD" ? new Response(null, { status: res.status, headers: res.headers }) : res;
    } catch (err) {
      if (err instanceof HttpError) return problem(err.status, err.message);
      // A bug in a view must not take the process down: report it to the client instead.
      return problem(500, `internal error: ${(err as Error).message}`);
    }
  };
}

/** The route whose segments fit `path`, with its `{...}` segments still percent-encoded. */
function match(path: string): { entry: (typeof TABLE)[number]; raw: string[] } | undefined {
  const parts = path.split("/");
  for (const entry of TABLE) {
    if (entry.segments.length !== parts.length) continue;
    const raw: string[] = [];
    const fits = entry.segments.every((seg, i) => {
      if (!seg.startsWith("{")) return seg === parts[i];
      raw.push(parts[i]!);
      return parts[i] !== "";
    });
    if (fits) return { entry, raw };
  }
  return undefined;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, `path segment "${segment}" is not valid percent-encoding (UTF-8)`);
  }
}

/** The body as text, refusing more than MAX_BODY_BYTES without buffering past it. */
async function readBody(req: Request): Promise<string> {
  const tooLarge = () => new HttpError(413, `body larger than ${MAX_BODY_BYTES} bytes`);
  if (Number(req.headers.get("content-length") ?? 0) > MAX_BODY_BYTES) throw tooLarge();
  if (!req.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      void reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all);
}

/** If-Match makes a write conditional on the entry's ETag: two writers cannot overwrite each other unseen. */
function ifMatch(req: Request): { ifMatch?: string } {
  const v = req.headers.get("if-match");
  return v === null ? {} : { ifMatch: v };
}

function applied(method: Method, namespace: string, name: string, outcome: WriteOutcome): Response {
  if (!outcome.ok) return problem(PROBLEM_STATUS[outcome.problem.kind], `${method} ${namespace}/${name} refused; nothing was changed`, outcome.problem.errors);
  const res = json({ applied: `${method} ${namespace}/${name}`, changed: outcome.changed, services: outcome.registry.services.length });
  if (outcome.etag) res.headers.set("etag", outcome.etag);
  return res;
}

function perProxy(url: URL, view: ControlPlaneView, get: (id: string) => unknown): Response {
  const id = url.searchParams.get("proxy");
  const known = view.proxies().map((p) => p.id);
  // One detail per proxy, so a large fleet is capped like any other list.
  const connected = known.map((p) => `connected: ${p}`);
  if (!id) return problem(400, "query parameter proxy=<node id> is required", known.length ? connected : ["no proxy is connected"]);
  const body = get(id);
  return body === undefined ? problem(404, `no connected proxy ${id}`, connected) : json(body);
}
