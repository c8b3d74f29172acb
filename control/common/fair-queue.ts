// A queue served group by group in turn, first come first served within a group. The xDS server's
// groups are its HTTP/2 connections: a connect storm arrives on the connections that carry it, so a
// proxy on another connection (a new Envoy starting, a healthy one asking again) waits for one item
// per busy connection rather than behind everything that came before it.

export class FairQueue<T> {
  /** Per group, its items in arrival order; groups in the order they are served next. */
  private readonly groups = new Map<string, Set<T>>();
  private readonly groupOf = new Map<T, string>();

  /** Adds `item` to `group` unless it waits already (then it keeps its place). */
  add(item: T, group: string): void {
    if (this.groupOf.has(item)) return;
    let items = this.groups.get(group);
    if (!items) this.groups.set(group, (items = new Set()));
    items.add(item);
    this.groupOf.set(item, group);
  }

  has(item: T): boolean {
    return this.groupOf.has(item);
  }

  delete(item: T): boolean {
    const group = this.groupOf.get(item);
    if (group === undefined) return false;
    this.groupOf.delete(item);
    const items = this.groups.get(group)!;
    items.delete(item);
    if (items.size === 0) this.groups.delete(group);
    return true;
  }

  /** The first item of the group whose turn it is (that group then goes to the back), or undefined when empty. */
  shift(): T | undefined {
    const next = this.groups.entries().next();
    if (next.done) return undefined;
    const [group, items] = next.value;
    const item: T = items.values().next().value!;
    this.delete(item);
    if (this.groups.delete(group)) this.groups.set(group, items);
    return item;
  }

  get size(): number {
    return this.groupOf.size;
  }

  clear(): void {
    this.groups.clear();
    this.groupOf.clear();
  }
}
