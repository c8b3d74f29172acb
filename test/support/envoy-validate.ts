// `envoy --mode validate` on generated resources: one static bootstrap holding them (EDS clusters with
// their endpoints inline, RDS route configurations inline, ECDS filters with their configuration),
// encoded as binary protobuf with the control plane's own encoder, so what Envoy validates is
// byte for byte what it would be sent.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Resources } from "../../control/generation/generate.ts";
import { Encoder } from "../../control/xds/cache/encode.ts";
import { loadEnvoyProtos } from "../../control/xds/cache/protos.ts";
import { resolveEnvoy } from "../../envoy/resolve.ts";

const BOOTSTRAP = "type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap";

/** Resources as one bootstrap that needs no management server. */
export function staticBootstrap(r: Resources): object {
  const endpoints = new Map(r.endpoints.map((e) => [e.cluster_name!, e]));
  const routes = new Map(r.routes.map((x) => [x.name!, x]));
  const extensions = new Map(r.extensionConfigs.map((x) => [x.name!, x]));
  const inline = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(inline);
    if (typeof v !== "object" || v === null || ArrayBuffer.isView(v)) return v;
    const o = v as Record<string, any>;
    if (o.config_discovery && typeof o.name === "string") {
      const x = extensions.get(o.name);
      if (!x) throw new Error(`no extension config ${o.name}`);
      return { name: o.name, typed_config: x.typed_config };
    }
    const out: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(o)) {
      if (k === "rds") {
        const rc = routes.get(val.route_config_name);
        if (!rc) throw new Error(`no route configuration ${val.route_config_name}`);
        out.route_config = rc;
      } else out[k] = inline(val);
    }
    return out;
  };
  const clusters = r.clusters.map((c) => {
    if (c.type !== "EDS") return c;
    const { eds_cluster_config: _, ...rest } = c;
    return { ...rest, type: "STATIC", load_assignment: endpoints.get(c.name!) ?? { cluster_name: c.name, endpoints: [] } };
  });
  return { node: { id: "validate", cluster: "validate" }, static_resources: { listeners: r.listeners.map(inline), clusters } };
}

/** Envoy's verdict on the resources: ok, or its output. */
export function envoyValidates(r: Resources): { ok: boolean; output: string } {
  const encoder = new Encoder(loadEnvoyProtos(["envoy/config/bootstrap/v3/bootstrap.proto"]));
  const dir = mkdtempSync(join(tmpdir(), "multiplane-validate-"));
  try {
    const file = join(dir, "bootstrap.pb");
    writeFileSync(file, encoder.encode(BOOTSTRAP, staticBootstrap(r)));
    const p = spawnSync(resolveEnvoy().path, ["--mode", "validate", "-c", file, "-l", "error"], { encoding: "utf8", timeout: 60_000 });
    return { ok: p.status === 0, output: `${p.stdout}${p.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
