// Packs generated resources into a Snapshot for tests that drive the xDS server directly. One encoder
// for the test process: loading Envoy's protos takes a few hundred ms.
import { Encoder } from "../../control/xds/cache/encode.ts";
import type { Resources } from "../../control/generation/generate.ts";
import { Packer, Snapshot } from "../../control/xds/cache/snapshot.ts";

let packer: Packer | undefined;

/** Hand-written resources too (JSON Any with "@type"), which the encoder checks as strictly as generated ones. */
export type AnyResources = { readonly [K in keyof Resources]: readonly object[] };

export function snapshotOf(resources: AnyResources): Snapshot {
  return Snapshot.fromResources(resources as Resources, (packer ??= new Packer(new Encoder())));
}
