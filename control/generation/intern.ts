// Reuse across registry versions, two ways, both owned by one config pipeline (one set of options):
// - interning: an object generation builds for a given key (a listener's chains, a fixed cluster) is
//   the very object it built for the same key in the previous version;
// - memoising per registry object: what generation derives from one frozen Service (its clusters,
//   endpoints, destinations) is kept as long as that Service is, so a version that changed one
//   service computes that service again, not the 10,000 others (registry builds keep unchanged
//   services' objects; see registry/build.ts).
// The snapshot packs each object once, so after a registry change only what changed is encoded
// again. Output is unchanged by either: same key or same frozen input, same content.

export class Interner {
  private previous = new Map<string, object>();
  private current = new Map<string, object>();
  /** By key, then by object: a handful of keys (what is derived, a network view), so no table per object. */
  private readonly derived = new Map<string, WeakMap<object, unknown>>();
  private serials = 0;

  /** The object built for `key` in this or the previous round, else `build()`'s. */
  get<T extends object>(key: string, build: () => T): T {
    let o = this.current.get(key) ?? this.previous.get(key);
    if (o === undefined) o = build();
    this.current.set(key, o);
    return o as T;
  }

  /**
   * What `build()` derives from the frozen `from` (and `key`, for whatever else it depends on), built
   * once while `from` lives.
   */
  derive<T>(from: object, key: string, build: () => T): T {
    let of = this.derived.get(key);
    if (!of) this.derived.set(key, (of = new WeakMap()));
    if (of.has(from)) return of.get(from) as T;
    const value = build();
    of.set(from, value);
    return value;
  }

  /** A key no other object of this pipeline has, to stand for a longer one. */
  serial(): string {
    return `#${++this.serials}`;
  }

  /** Ends a round: keys not used in it are forgotten at the end of the next, so the table never outgrows two rounds. */
  nextRound(): void {
    this.previous = this.current;
    this.current = new Map();
  }
}
