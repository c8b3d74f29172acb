// How Envoy gets the loop guard module, from serve's flags. Pure.
//
//   --guard-wasm-path PATH  a file on the Envoy hosts (local code source)
//   --guard-wasm-url URL    fetched from any HTTP(S) server (remote, pinned by the module's sha256)
//   --guard-wasm-port N     fetched from this control plane, which serves it on the xDS host, port N
//   none of them            xDS on loopback: Envoy runs here and reads dist/loop-guard.wasm (local);
//                           otherwise: served by this control plane on the xDS host, port 15013
import { isLoopbackHost } from "../tls/exposure.ts";

export const DEFAULT_GUARD_WASM_PORT = 15013;

export type GuardDelivery =
  | { kind: "local"; path: string }
  | { kind: "url"; url: string }
  | { kind: "serve"; host: string; port: number };

export interface GuardDeliveryFlags {
  xdsHost: string;
  path?: string;
  url?: string;
  port?: number;
  /** dist/loop-guard.wasm */
  defaultPath: string;
}

export function guardDelivery(f: GuardDeliveryFlags): GuardDelivery {
  const given = [f.path !== undefined && "--guard-wasm-path", f.url !== undefined && "--guard-wasm-url", f.port !== undefined && "--guard-wasm-port"].filter(Boolean);
  if (given.length > 1) throw new Error(`${given.join(" and ")} contradict each other: the module comes from one place`);
  if (f.path !== undefined) return { kind: "local", path: f.path };
  if (f.url !== undefined) {
    let u: URL;
    try {
      u = new URL(f.url);
    } catch {
      throw new Error(`--guard-wasm-url: ${JSON.stringify(f.url)} is not a URL`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`--guard-wasm-url: expected an http:// or https:// URL, got ${JSON.stringify(f.url)}`);
    return { kind: "url", url: u.href };
  }
  if (f.port !== undefined) return { kind: "serve", host: f.xdsHost, port: f.port };
  return isLoopbackHost(f.xdsHost) ? { kind: "local", path: f.defaultPath } : { kind: "serve", host: f.xdsHost, port: DEFAULT_GUARD_WASM_PORT };
}
