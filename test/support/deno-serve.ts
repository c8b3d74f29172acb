// Deno entry for test/integration/http-deno.test.ts: serves the unmodified control/http/handler.ts over the fixture
// view with Deno.serve on 127.0.0.1, on ports the kernel picks: one server with a bearer token
// (Deno.args[0]) and one without (writes disabled). Prints one JSON line once both listen.
import { createHandler } from "../../control/http/handler.ts";
import { fixtureView } from "./http-fixture.ts";

// The part of Deno's API used here, so `tsc -p .` (Node's types) checks this file too.
declare const Deno: {
  args: string[];
  version: { deno: string };
  permissions: { querySync(desc: { name: string; host?: string }): { state: string } };
  serve(
    options: { hostname: string; port: number; onListen(addr: { port: number }): void },
    handler: (req: Request) => Promise<Response>,
  ): unknown;
};

const listen = (handler: (req: Request) => Promise<Response>) =>
  new Promise<number>((resolve) => Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: ({ port }) => resolve(port) }, handler));

const token = Deno.args[0];
const [withToken, readOnly] = await Promise.all([
  listen(createHandler(fixtureView(), token !== undefined ? { token } : {})),
  listen(createHandler(fixtureView())),
]);
// What this process may do, as Deno sees it ("granted", or "prompt": refused, since it runs with --no-prompt).
const permissions = {
  "net 127.0.0.1": Deno.permissions.querySync({ name: "net", host: "127.0.0.1" }).state,
  ...Object.fromEntries(["net", "read", "write", "env", "run", "sys", "ffi"].map((name) => [name, Deno.permissions.querySync({ name }).state])),
};
console.log(JSON.stringify({
  deno: Deno.version.deno,
  // Where Deno resolved the handler from: the test checks it is the project's own file.
  handler: import.meta.resolve("../../control/http/handler.ts"),
  permissions,
  ports: { withToken, readOnly },
}));
