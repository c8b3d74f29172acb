// An immutable set of xDS resources for one proxy, packed once, with a version per type that
// changes only when that type's content changes: the SotW and delta streams push by comparing them.
import { createHash } from "node:crypto";
import { packAny, TYPE_URL } from "./protos.ts";

/** Generated resources in protobufjs object form (snake_case, nested Any as {"@type": ...}). */
export interface Resources {
  listeners: object[];
  clusters: object[];
  endpoints: object[];
  /** TypedExtensionConfig resources served by ECDS. */
  extensionConfigs: object[];
}

export interface Any {
  type_url: string;
  value: Buffer;
}

export interface PackedResource {
  name: string;
  any: Any;
  /** Content hash of the encoded resource: the delta protocol's per-resource version. */
  hash: string;
}

export interface TypeSnapshot {
  version: string;
  resources: ReadonlyMap<string, PackedResource>;
}

const hash = (data: Buffer | string) => createHash("sha256").update(data).digest("hex").slice(0, 16);

// Generation shares the objects that are the same for every proxy (outbound listeners, clusters,
// endpoints) and never mutates them, so each is packed once, however many proxies hold it.
const packed = new WeakMap<object, PackedResource & { typeUrl: string }>();

function pack(typeUrl: string, name: string, item: object): PackedResource {
  const cached = packed.get(item);
  if (cached && cached.typeUrl === typeUrl && cached.name === name) return cached;
  const any = packAny(typeUrl, item);
  const entry = { typeUrl, name, any, hash: hash(any.value) };
  packed.set(item, entry);
  return entry;
}

function packType(typeUrl: string, items: object[], nameOf: (r: any) => unknown): TypeSnapshot {
  const resources = new Map<string, PackedResource>();
  for (const item of items) {
    const name = nameOf(item);
    if (typeof name !== "string" || name === "") throw new Error(`${typeUrl}: resource without a name: ${JSON.stringify(item).slice(0, 200)}`);
    if (resources.has(name)) throw new Error(`${typeUrl}: two resources named ${name}`);
    resources.set(name, pack(typeUrl, name, item));
  }
  const names = [...resources.keys()].sort();
  const version = hash(names.map((n) => `${n}=${resources.get(n)!.hash}`).join("\n"));
  return { version, resources };
}

export class Snapshot {
  private constructor(private readonly types: ReadonlyMap<string, TypeSnapshot>) {}

  static fromResources(r: Resources): Snapshot {
    return new Snapshot(new Map([
      [TYPE_URL.listener, packType(TYPE_URL.listener, r.listeners, (x) => x.name)],
      [TYPE_URL.cluster, packType(TYPE_URL.cluster, r.clusters, (x) => x.name)],
      [TYPE_URL.endpoint, packType(TYPE_URL.endpoint, r.endpoints, (x) => x.cluster_name)],
      [TYPE_URL.extensionConfig, packType(TYPE_URL.extensionConfig, r.extensionConfigs, (x) => x.name)],
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
