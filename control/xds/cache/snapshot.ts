// An immutable set of xDS resources for one proxy, packed once, with a version per type that
// changes only when that type's content changes: the SotW and delta streams push by comparing them.
import { hash } from "node:crypto";
import type { Resources } from "../../generation/generate.ts";
import type { Encoder } from "./encode.ts";
import { TYPE_URL } from "./protos.ts";
import { deltaEntry, sotwEntry } from "./framing.ts";

export interface Any {
  type_url: string;
  value: Buffer;
}

export class PackedResource {
  // Each framed on first use: a control plane whose proxies all speak one protocol keeps one form.
  private sotw?: Buffer;
  private delta?: Buffer;

  constructor(
    readonly typeUrl: string,
    readonly name: string,
    readonly any: Any,
    /** Hash of the encoded resource (which holds its name): the delta protocol's per-resource version. */
    readonly hash: string,
    /** The same hash as a 52-bit number, summed into the type's version. */
    readonly mix: number,
  ) {}

  /** This resource as an entry of a state-of-the-world response, framed once for every stream. */
  get sotwEntry(): Buffer {
    return (this.sotw ??= sotwEntry(this.typeUrl, this.any.value));
  }

  /** This resource as an entry of a delta response, framed once for every stream. */
  get deltaEntry(): Buffer {
    return (this.delta ??= deltaEntry(this.typeUrl, this.any.value, this.name, this.hash));
  }
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
  private readonly packed = new WeakMap<object, PackedResource>();

  constructor(readonly encoder: Encoder) {}

  pack(typeUrl: string, name: string, item: object): PackedResource {
    const cached = this.packed.get(item);
    if (cached && cached.typeUrl === typeUrl && cached.name === name) return cached;
    const any = this.encoder.packAny(typeUrl, item);
    // Every type's name is a field of the resource (packType reads it from there), so the bytes cover it.
    // One-shot hashing: a Hash object per resource cost more than the hashing itself.
    const h = hash("sha256", any.value, "hex").slice(0, 16);
    const entry = new PackedResource(typeUrl, name, any, h, parseInt(h.slice(0, 13), 16));
    this.packed.set(item, entry);
    return entry;
  }
}

/** One type's resources in one layer, packed, with the sum of their hashes (mod 2^52). */
export class PackedType {
  private sotw?: Buffer;
  private delta?: Buffer;
  /** Changes since an older type, computed once per pair however many streams ask. */
  private readonly diffs = new WeakMap<PackedType, TypeChanges>();

  constructor(readonly resources: ReadonlyMap<string, PackedResource>, readonly sum: number) {}

  /** What changed since `older`: resources whose hash differs, and the names it no longer has. */
  changesSince(older: PackedType): TypeChanges {
    let c = this.diffs.get(older);
    if (c) return c;
    const updated: PackedResource[] = [];
    const removed: string[] = [];
    for (const [name, r] of this.resources) {
      const before = older.resources.get(name);
      if (before !== r && before?.hash !== r.hash) updated.push(r);
    }
    for (const name of older.resources.keys()) if (!this.resources.has(name)) removed.push(name);
    this.diffs.set(older, (c = { updated, removed }));
    return c;
  }

  /**
   * Every resource's response entry, concatenated once: a stream that wants all of them (the usual
   * first answer) copies one block instead of thousands of entries.
   */
  get sotwBlock(): Buffer {
    return (this.sotw ??= Buffer.concat([...this.resources.values()].map((r) => r.sotwEntry)));
  }

  get deltaBlock(): Buffer {
    return (this.delta ??= Buffer.concat([...this.resources.values()].map((r) => r.deltaEntry)));
  }
}

const MOD = 2 ** 52;

/** A set's version: the sum of its resources' hashes mod 2^52, then the count mod 4096; 16 hex digits. */
const setVersion = (sum: number, count: number) => sum.toString(16).padStart(13, "0") + (count % 4096).toString(16).padStart(3, "0");

/** The version of the named resources of `resources` (names it lacks do not count), as a type's version is of all. */
export function versionOfNames(resources: ReadonlyMap<string, PackedResource>, names: Iterable<string>): string {
  let sum = 0;
  let count = 0;
  for (const name of names) {
    const r = resources.get(name);
    if (!r) continue;
    sum += r.mix;
    if (sum >= MOD) sum -= MOD;
    count++;
  }
  return setVersion(sum, count);
}

/** Resources of one type packed on their own (a proxy's bound clusters' shared base: BoundType), none named as in `layer`. */
export function packBoundBase(packer: Packer, typeUrl: string, items: readonly object[], layer: Layer): PackedType {
  const packed = packType(packer, typeUrl, items, (x) => x.name);
  const shared = layer.get(typeUrl)?.resources;
  for (const name of packed.resources.keys()) if (shared?.has(name)) throw new Error(`${typeUrl}: two resources named ${name}`);
  return packed;
}

function packType(packer: Packer, typeUrl: string, items: readonly object[], nameOf: (r: any) => unknown): PackedType {
  const resources = new Map<string, PackedResource>();
  let sum = 0;
  for (const item of items) {
    const name = nameOf(item);
    if (typeof name !== "string" || name === "") throw new Error(`${typeUrl}: resource without a name: ${JSON.stringify(item).slice(0, 200)}`);
    if (resources.has(name)) throw new Error(`${typeUrl}: two resources named ${name}`);
    const r = packer.pack(typeUrl, name, item);
    resources.set(name, r);
    sum += r.mix;
    if (sum >= MOD) sum -= MOD;
  }
  return new PackedType(resources, sum);
}

const TYPES: [string, (r: Resources) => readonly object[], (x: any) => unknown][] = [
  [TYPE_URL.listener, (r) => r.listeners, (x) => x.name],
  [TYPE_URL.cluster, (r) => r.clusters, (x) => x.name],
  [TYPE_URL.endpoint, (r) => r.endpoints, (x) => x.cluster_name],
  [TYPE_URL.route, (r) => r.routes, (x) => x.name],
  [TYPE_URL.extensionConfig, (r) => r.extensionConfigs, (x) => x.name],
];

/**
 * Packed resources of every type. The config pipeline packs the part all proxies share into one
 * layer per registry version and each node-IP set's own resources into a small one; a snapshot joins
 * two layers, so a proxy costs memory for its own resources only.
 */
/** What changed in one type between an older and a newer layer. */
export interface TypeChanges {
  /** Resources that are new or whose content changed. */
  updated: readonly PackedResource[];
  removed: readonly string[];
}

export class Layer {
  static readonly EMPTY = new Layer(new Map());
  /** Changes since an older layer's type, computed once per pair however many streams ask. */
  private readonly changes = new WeakMap<PackedType, TypeChanges>();

  private constructor(private readonly types: ReadonlyMap<string, PackedType>) {}

  /**
   * What changed in `typeUrl` since `older` (a type of an earlier layer): resources whose hash
   * differs. Unchanged content is mostly the very same packed resource (generation interns it).
   */
  changesSince(typeUrl: string, older: PackedType): TypeChanges {
    const newer = this.types.get(typeUrl);
    if (newer) return newer.changesSince(older);
    let c = this.changes.get(older);
    if (!c) this.changes.set(older, (c = { updated: [], removed: [...older.resources.keys()] }));
    return c;
  }

  static pack(packer: Packer, r: Resources): Layer {
    return new Layer(new Map(TYPES.map(([url, items, nameOf]) => [url, packType(packer, url, items(r), nameOf)])));
  }

  get(typeUrl: string): PackedType | undefined {
    return this.types.get(typeUrl);
  }
}

/** The union of layers' resources of one type, which never share a name. */
class LayeredMap implements ReadonlyMap<string, PackedResource> {
  constructor(private readonly maps: readonly ReadonlyMap<string, PackedResource>[]) {}
  get size() { let n = 0; for (const m of this.maps) n += m.size; return n; }
  get(name: string) { for (const m of this.maps) { const r = m.get(name); if (r) return r; } return undefined; }
  has(name: string) { return this.maps.some((m) => m.has(name)); }
  *entries(): MapIterator<[string, PackedResource]> { for (const m of this.maps) yield* m.entries(); }
  *keys(): MapIterator<string> { for (const m of this.maps) yield* m.keys(); }
  *values(): MapIterator<PackedResource> { for (const m of this.maps) yield* m.values(); }
  [Symbol.iterator]() { return this.entries(); }
  forEach(fn: (value: PackedResource, key: string, map: ReadonlyMap<string, PackedResource>) => void): void {
    for (const [k, v] of this.entries()) fn(v, k, this);
  }
}

/**
 * Shared resources with bytes of one proxy appended to each: protobuf merges a message field written
 * twice, so a cluster's bytes followed by `upstream_bind_config { source_address }` are that cluster
 * bound to the address. The proxy holds the shared packed type and its suffix, not a copy per resource:
 * derived resources are made when sent. `mix` is the suffix's hash; a derived resource's is the sum.
 */
export interface BoundPart {
  base: PackedType;
  suffix: Buffer;
  mix: number;
}

export class BoundType {
  readonly resources: ReadonlyMap<string, PackedResource>;
  readonly sum: number;

  constructor(readonly typeUrl: string, readonly parts: readonly BoundPart[]) {
    let sum = 0;
    // Each derived resource's mix is its base's plus the suffix's: the sum is the base's plus count x suffix (exact, as bigint).
    for (const p of parts) sum = (sum + p.base.sum + Number((BigInt(p.base.resources.size) * BigInt(p.mix)) % BigInt(MOD))) % MOD;
    this.sum = sum;
    this.resources = new BoundMap(this);
  }

  /** The base resource as this proxy gets it. */
  derive(part: BoundPart, r: PackedResource): PackedResource {
    if (part.suffix.length === 0) return r;
    const mix = (r.mix + part.mix) % MOD;
    const hash = mix.toString(16).padStart(13, "0") + r.hash.slice(13);
    return new PackedResource(r.typeUrl, r.name, { type_url: r.any.type_url, value: Buffer.concat([r.any.value, part.suffix]) }, hash, mix);
  }

  /**
   * What changed since `older`: where a part kept its suffix, what changed in its base (computed once
   * per pair of bases for every stream); otherwise every resource.
   */
  changesSince(older: BoundType): TypeChanges {
    const updated: PackedResource[] = [];
    const removed: string[] = [];
    // Usually every part kept its suffix (a registry change): then only what changed in the bases,
    // computed once per pair of bases for every stream. Nothing here walks all resources per stream.
    for (const p of this.parts) {
      const o = older.parts.find((x) => x.suffix.equals(p.suffix));
      if (o) {
        const c = p.base.changesSince(o.base);
        for (const r of c.updated) updated.push(this.derive(p, r));
        for (const n of c.removed) if (!this.resources.has(n)) removed.push(n);
      } else {
        for (const r of p.base.resources.values()) updated.push(this.derive(p, r));
      }
    }
    for (const o of older.parts) {
      if (this.parts.some((p) => p.suffix.equals(o.suffix))) continue;
      for (const n of o.base.resources.keys()) if (!this.resources.has(n)) removed.push(n);
    }
    return { updated, removed: [...new Set(removed)] };
  }

  /** Every resource's response entry (made for this call: nothing per resource is kept). */
  sotwEntries(): Buffer[] {
    const out: Buffer[] = [];
    for (const p of this.parts) for (const r of p.base.resources.values()) out.push(p.suffix.length === 0 ? r.sotwEntry : this.derive(p, r).sotwEntry);
    return out;
  }
}

class BoundMap implements ReadonlyMap<string, PackedResource> {
  constructor(private readonly type: BoundType) {}
  get size() { let n = 0; for (const p of this.type.parts) n += p.base.resources.size; return n; }
  get(name: string) {
    for (const p of this.type.parts) { const r = p.base.resources.get(name); if (r) return this.type.derive(p, r); }
    return undefined;
  }
  has(name: string) { return this.type.parts.some((p) => p.base.resources.has(name)); }
  *entries(): MapIterator<[string, PackedResource]> { for (const p of this.type.parts) for (const r of p.base.resources.values()) yield [r.name, this.type.derive(p, r)]; }
  *keys(): MapIterator<string> { for (const p of this.type.parts) yield* p.base.resources.keys(); }
  *values(): MapIterator<PackedResource> { for (const [, r] of this.entries()) yield r; }
  [Symbol.iterator]() { return this.entries(); }
  forEach(fn: (value: PackedResource, key: string, map: ReadonlyMap<string, PackedResource>) => void): void {
    for (const [k, v] of this.entries()) fn(v, k, this);
  }
}

export class Snapshot {
  private readonly views = new Map<string, TypeSnapshot>();
  private readonly boundByType: ReadonlyMap<string, BoundType>;

  /**
   * `own` must not name a resource `shared` or `bound` has (shared resources this proxy gets with its
   * own bytes appended: BoundType): that would be a generation bug. Whoever packs a bound part checks
   * it against its shared layer once (assertDisjoint), not once per proxy.
   */
  constructor(readonly shared: Layer, readonly own: Layer, bound: readonly BoundType[] = []) {
    this.boundByType = new Map(bound.map((b) => [b.typeUrl, b]));
    for (const [url] of TYPES) {
      const o = own.get(url)?.resources;
      if (!o) continue;
      const others = [shared.get(url)?.resources, this.boundByType.get(url)?.resources];
      for (const name of o.keys()) if (others.some((m) => m?.has(name))) throw new Error(`${url}: two resources named ${name}`);
    }
  }

  /** The type's bound resources, if this proxy has any. */
  bound(typeUrl: string): BoundType | undefined {
    return this.boundByType.get(typeUrl);
  }

  /** One layer holding everything (tests, and callers with nothing to share). */
  static fromResources(r: Resources, packer: Packer): Snapshot {
    return new Snapshot(Layer.EMPTY, Layer.pack(packer, r));
  }

  /**
   * The type's snapshot, or undefined for a type this control plane does not serve. The version is a
   * hash of the set, independent of order and of how it is split in layers: the sum of the resources'
   * hashes mod 2^52 (each covers name and content), then the count mod 4096; 16 hex digits.
   */
  get(typeUrl: string): TypeSnapshot | undefined {
    let view = this.views.get(typeUrl);
    if (view) return view;
    const sh = this.shared.get(typeUrl);
    const own = this.own.get(typeUrl);
    const bound = this.boundByType.get(typeUrl);
    if (!sh && !own && !bound) return undefined;
    const sum = ((sh?.sum ?? 0) + (own?.sum ?? 0) + (bound?.sum ?? 0)) % MOD;
    const maps = [sh?.resources, bound?.resources, own?.resources].filter((m) => m !== undefined);
    const resources = maps.length === 1 ? maps[0]! : new LayeredMap(maps);
    const version = setVersion(sum, resources.size);
    this.views.set(typeUrl, (view = { version, resources }));
    return view;
  }

  typeUrls(): string[] {
    return TYPES.map(([url]) => url).filter((url) => this.get(url));
  }
}
