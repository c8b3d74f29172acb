// An immutable set of xDS resources for one proxy, packed once, with a version per type that
// changes only when that type's content changes: the SotW and delta streams push by comparing them.
import { createHash } from "node:crypto";
import type { Encoder } from "./encode.ts";
import { TYPE_URL } from "./protos.ts";

/** Generated resources in protobufjs object form (snake_case, nested Any as {"@type": ...}). */
export interface Resources {
  readonly listeners: readonly object[];
  readonly clusters: readonly object[];
  readonly endpoints: readonly object[];
  /** TypedExtensionConfig resources served by ECDS. */
  readonly extensionConfigs: readonly object[];
}

export interface Any {
  type_url: string;
  value: Buffer;
}

export interface PackedResource {
  name: string;
  any: Any;
  /** Hash of the name and the encoded resource: the delta protocol's per-resource version. */
  hash: string;
  /** The same hash as a 52-bit number, summed into the type's version. */
  mix: number;
}

export interface TypeSnapshot {
  version: string;
  resources: ReadonlyMap<string, PackedResource>;
}

/**
 * Packs generated objects into Anys with their hashes, once per object: generation hands every proxy
 * the same objects for what they share and never mutates them, so an object seen before costs a
 * lookup. One per control plane; the cache is weak, so objects no snapshot holds are forgotten.
 */
export class Packer {
  private readonly packed = new WeakMap<object, PackedResource & { typeUrl: string }>();

  constructor(readonly encoder: Encoder) {}

  pack(typeUrl: string, name: string, item: object): PackedResource {
    const cached = this.packed.get(item);
    if (cached && cached.typeUrl === typeUrl && cached.name === name) return cached;
    const any = this.encoder.packAny(typeUrl, item);
    const h = createHash("sha256").update(name).update("\0").update(any.value).digest("hex").slice(0, 16);
    const entry = { typeUrl, name, any, hash: h, mix: parseInt(h.slice(0, 13), 16) };
    this.packed.set(item, entry);
    return entry;
  }
}

function packType(packer: Packer, typeUrl: string, items: readonly object[], nameOf: (r: any) => unknown): TypeSnapshot {
  const resources = new Map<string, PackedResource>();
  for (const item of items) {
    const name = nameOf(item);
    if (typeof name !== "string" || name === "") throw new Error(`${typeUrl}: resource without a name: ${JSON.stringify(item).slice(0, 200)}`);
    if (resources.has(name)) throw new Error(`${typeUrl}: two resources named ${name}`);
    resources.set(name, packer.pack(typeUrl, name, item));
  }
  // The version is a hash of the set, independent of order: the sum of the resources' hashes mod 2^52
  // (each covers name and content), then the count mod 4096; 16 hex digits. O(n) additions, so a proxy
  // whose resources were all packed before (the shared part) costs no hashing at all.
  let sum = 0;
  for (const r of resources.values()) {
    sum += r.mix;
    if (sum >= 2 ** 52) sum -= 2 ** 52;
  }
  const version = sum.toString(16).padStart(13, "0") + (resources.size % 4096).toString(16).padStart(3, "0");
  return { version, resources };
}

export class Snapshot {
  private constructor(private readonly types: ReadonlyMap<string, TypeSnapshot>) {}

  static fromResources(r: Resources, packer: Packer): Snapshot {
    return new Snapshot(new Map([
      [TYPE_URL.listener, packType(packer, TYPE_URL.listener, r.listeners, (x) => x.name)],
      [TYPE_URL.cluster, packType(packer, TYPE_URL.cluster, r.clusters, (x) => x.name)],
      [TYPE_URL.endpoint, packType(packer, TYPE_URL.endpoint, r.endpoints, (x) => x.cluster_name)],
      [TYPE_URL.extensionConfig, packType(packer, TYPE_URL.extensionConfig, r.extensionConfigs, (x) => x.name)],
    ]));
  }

  /** The type's snapshot, or undefined for a type this control plane does not serve. */
  get(typeUrl: string): TypeSnapshot | undefined {
    return this.types.get(typeUrl);
  }

  typeUrls(): string[] {
    return [...this.types.keys()];
  }
}
