// The HTTP API as one web-standard handler, `(Request) => Promise<Response>`, as in Deno and Hono:
// it runs unchanged under Deno.serve or behind node-adapter.ts.
import { requireToken } from "./auth.ts";
import { json, problem, text } from "./responses.ts";
import type { RegistryProblem } from "../registry/source.ts";
import type { ControlPlaneView } from "./view.ts";

export interface ApiOptions {
  /** Bearer token for PUT/DELETE; undefined disables writes. */
  token?: string;
}

export type Handler = (req: Request) => Promise<Response>;

/** Registry outcomes are domain terms; HTTP statuses are this module's business. */
const PROBLEM_STATUS: Record<RegistryProblem["kind"], number> = { invalid: 400, conflict: 409, "not-found": 404, disabled: 403 };

const ENTRY_PATH = /^\/registry\/serviceentries\/([^/]+)\/([^/]+)$/;

export function createHandler(view: ControlPlaneView, opts: ApiOptions = {}): Handler {
  return async (req) => {
    const url = new URL(req.url);
    const path = url.pathname;
    try {
      if (req.method === "GET" || req.method === "HEAD") {
        switch (path) {
          case "/healthz": return text("ok\n");
          case "/readyz": {
            const r = view.readiness();
            return r.ready ? text("ready\n") : text(`not ready: ${r.reasons.join("; ")}\n`, 503);
          }
          case "/metrics": return text(view.metricsText(), 200, "text/plain; version=0.0.4; charset=utf-8");
          case "/debug/registry": return json({ status: view.registryStatus(), serviceEntries: view.serviceEntries() });
          case "/debug/proxies": return json({ proxies: view.proxies() });
          case "/debug/config_dump": return perProxy(url, view, (id) => view.configDump(id));
          case "/debug/decisions": return perProxy(url, view, (id) => view.decisions(id) && { proxy: id, decisions: view.decisions(id) });
          case "/registry/serviceentries": return json({ serviceEntries: view.serviceEntries() });
        }
      }
      const entry = ENTRY_PATH.exec(path);
      if (entry && (req.method === "PUT" || req.method === "DELETE")) {
        const denied = requireToken(req, opts.token);
        if (denied) return denied;
        const [namespace, name] = [decodeURIComponent(entry[1]!), decodeURIComponent(entry[2]!)];
        const outcome = await view.write(req.method === "PUT"
          ? { op: "put", kind: "ServiceEntry", namespace, name, body: await req.text() }
          : { op: "delete", kind: "ServiceEntry", namespace, name });
        if (!outcome.ok) return problem(PROBLEM_STATUS[outcome.problem.kind], `${req.method} ${namespace}/${name} refused; nothing was changed`, outcome.problem.errors);
        return json({ applied: `${req.method} ${namespace}/${name}`, changed: outcome.changed, services: outcome.registry.services.length });
      }
      if (entry || KNOWN_PATHS.has(path)) return problem(405, `${req.method} is not allowed on ${path}`);
      return problem(404, `no route ${path}; see /healthz /readyz /metrics /debug/proxies /debug/config_dump?proxy=ID /debug/decisions?proxy=ID /debug/registry /registry/serviceentries`);
    } catch (err) {
      // A bug in a view must not take the process down: report it to the client instead.
      return problem(500, `internal error: ${(err as Error).message}`);
    }
  };
}

const KNOWN_PATHS = new Set(["/healthz", "/readyz", "/metrics", "/debug/registry", "/debug/proxies", "/debug/config_dump", "/debug/decisions", "/registry/serviceentries"]);

function perProxy(url: URL, view: ControlPlaneView, get: (id: string) => unknown): Response {
  const id = url.searchParams.get("proxy");
  const known = view.proxies().map((p) => p.id);
  if (!id) return problem(400, "query parameter proxy=<node id> is required", known.length ? [`connected: ${known.join(", ")}`] : ["no proxy is connected"]);
  const body = get(id);
  return body === undefined ? problem(404, `no connected proxy ${id}`, known.length ? [`connected: ${known.join(", ")}`] : undefined) : json(body);
}
