// Snapshots by node id, and watchers that streams register to learn when a node's snapshot changes.
import type { Snapshot } from "./snapshot.ts";

type Watcher = (snapshot: Snapshot) => void;

export class SnapshotCache {
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly watchers = new Map<string, Set<Watcher>>();

  get(nodeId: string): Snapshot | undefined {
    return this.snapshots.get(nodeId);
  }

  /** Stores the node's snapshot and tells every stream of that node. */
  set(nodeId: string, snapshot: Snapshot): void {
    this.snapshots.set(nodeId, snapshot);
    for (const w of this.watchers.get(nodeId) ?? []) w(snapshot);
  }

  delete(nodeId: string): void {
    this.snapshots.delete(nodeId);
  }

  nodeIds(): string[] {
    return [...this.snapshots.keys()];
  }

  /** Calls `watcher` on every later set() for `nodeId`; returns the function that stops it. */
  watch(nodeId: string, watcher: Watcher): () => void {
    let set = this.watchers.get(nodeId);
    if (!set) this.watchers.set(nodeId, (set = new Set()));
    set.add(watcher);
    return () => {
      set!.delete(watcher);
      if (set!.size === 0) this.watchers.delete(nodeId);
    };
  }

  /** Number of registered watchers, for leak checks. */
  watcherCount(): number {
    let n = 0;
    for (const s of this.watchers.values()) n += s.size;
    return n;
  }
}
