// Interning across registry versions: an object generation builds for a given key (a cluster's name
// and settings, an endpoint set's addresses) is the very object it built for the same key in the
// previous version. The snapshot packs each object once, so after a registry change only what changed
// is encoded again. Output is unchanged by this: same key, same content.

export class Interner {
  private previous = new Map<string, object>();
  private current = new Map<string, object>();

  /** The object built for `key` in this or the previous round, else `build()`'s. */
  get<T extends object>(key: string, build: () => T): T {
    let o = this.current.get(key) ?? this.previous.get(key);
    if (o === undefined) o = build();
    this.current.set(key, o);
    return o as T;
  }

  /** Ends a round: keys not used in it are forgotten at the end of the next, so the table never outgrows two rounds. */
  nextRound(): void {
    this.previous = this.current;
    this.current = new Map();
  }
}
