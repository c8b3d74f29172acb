// Packs generated resources into a Snapshot for tests that drive the xDS server directly. One encoder
// for the test process: loading Envoy's protos takes a few hundred ms.
import { Encoder } from "../../control/xds/cache/encode.ts";
import { Packer, Snapshot, type Resources } from "../../control/xds/cache/snapshot.ts";

let packer: Packer | undefined;

export function snapshotOf(resources: Resources): Snapshot {
  return Snapshot.fromResources(resources, (packer ??= new Packer(new Encoder())));
}
