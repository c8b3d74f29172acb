// The control plane's own look at a --guard-wasm-url: does it answer, and with the bytes whose sha256
// Envoy will demand? Envoy fetches it from elsewhere, so this is a hint, not proof either way; but a
// wrong module shows up here (and in /debug/proxies) instead of only as listeners warming in Envoy.
import { createHash } from "node:crypto";
import { get as httpGet } from "node:http";
import { get as httpsGet } from "node:https";

const MAX_BYTES = 64 << 20;

/** "ok", or what is wrong. Never rejects. */
export function checkModuleUrl(url: string, sha256: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve) => {
    const u = new URL(url);
    // The server's certificate is not what matters (Envoy does not check it either): the bytes' sha256 is.
    const req = (u.protocol === "https:" ? httpsGet : httpGet)(u, { timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return resolve(`${url} answered HTTP ${res.statusCode}; Envoy needs 200 with the module`);
      }
      const h = createHash("sha256");
      let n = 0;
      res.on("data", (d: Buffer) => {
        n += d.length;
        if (n > MAX_BYTES) return req.destroy(new Error(`more than ${MAX_BYTES} bytes`));
        h.update(d);
      });
      res.on("end", () => {
        const got = h.digest("hex");
        resolve(got === sha256 ? "ok" : `${url} serves ${n} bytes with sha256 ${got}, not ${sha256}: Envoy refuses them, and its guarded listeners stay warming, then close every connection`);
      });
      res.on("error", (e) => resolve(`${url}: ${e.message}`));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (e) => resolve(`${url} is not reachable from the control plane: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
  });
}
