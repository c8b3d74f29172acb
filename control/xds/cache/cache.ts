// Snapshots by stream, and the watcher each stream registers to learn when its snapshot changes.
// Keyed by stream, not node id: two Envoys that claim the same node id never share (or overwrite)
// each other's config, and a stream that goes away takes only its own snapshot with it.
import type { Snapshot } from "./snapshot.ts";

type Watcher = (snapshot: Snapshot) => void;

export class SnapshotCache {
  private readonly snapshots = new Map<number, Snapshot>();
  private readonly watchers = new Map<number, Watcher>();

  get(streamId: number): Snapshot | undefined {
    return this.snapshots.get(streamId);
  }

  /** Stores the stream's snapshot and tells the stream. */
  set(streamId: number, snapshot: Snapshot): void {
    this.snapshots.set(streamId, snapshot);
    this.watchers.get(streamId)?.(snapshot);
  }

  delete(streamId: number): void {
    this.snapshots.delete(streamId);
  }

  /** Streams that have a snapshot (leak checks). */
  streamIds(): number[] {
    return [...this.snapshots.keys()];
  }

  /** Calls `watcher` on every later set() for `streamId`; returns the function that stops it. */
  watch(streamId: number, watcher: Watcher): () => void {
    this.watchers.set(streamId, watcher);
    return () => {
      if (this.watchers.get(streamId) === watcher) this.watchers.delete(streamId);
    };
  }

  /** Number of registered watchers, for leak checks. */
  watcherCount(): number {
    return this.watchers.size;
  }
}
