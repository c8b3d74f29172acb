// Where registry documents come from. Each source (files, the HTTP API, etcd) reports its whole
// current set of resources; the store joins them into one registry version. Domain outcomes are typed
// here and mapped to HTTP statuses only in control/http/.
import type { Registry, RegistryError, Resource } from "./model.ts";

/** What a source reports: its resources as they are now, or why it could not read them. */
export interface SourceUpdate {
  resources: readonly Resource[];
  /** Parse and validation errors: the update is refused and the source's last good resources keep serving. */
  errors: readonly RegistryError[];
  /** Non-fatal remarks (e.g. skipped kinds). */
  warnings: readonly RegistryError[];
  /** Errors and warnings left out of the lists above (they are capped), counted. */
  moreErrors?: number;
  moreWarnings?: number;
  /** How many documents `errors` stand for (what `--on-invalid skip` leaves out). */
  invalidDocuments?: number;
}

/**
 * A change a source holds back: it looks like a partial write or removes many services. It applies
 * once it has stayed unchanged until `appliesAt`; one that would remove every service (or a
 * truncation removing more than the allowed share) has no `appliesAt`: it waits for a confirmation.
 */
export interface HeldChange {
  reasons: string[];
  /** ISO time when the change was first seen as it is. */
  since: string;
  /** ISO time when it applies if it stays so; absent when it waits for a confirmation. */
  appliesAt?: string;
}

export interface RegistrySource {
  /** Names the source in logs, metrics and errors: "files", "http-api", "etcd". */
  readonly name: string;
  /**
   * Delivers the first update before resolving, then one per change until stop(). `onHeld` is told of
   * a change held back; the next update (applied or refused) ends the hold.
   */
  start(onUpdate: (update: SourceUpdate) => void, onHeld?: (held: HeldChange) => void): Promise<void>;
  stop(): void;
  /** Present on sources that take writes. */
  readonly writes?: WritableSource;
  /** Applies the change it holds back waiting for a confirmation, as it is now; false when there is none. */
  confirm?(): Promise<boolean>;
  /** Why the source cannot be reached right now (its last registry keeps serving, writes are refused); undefined when it can. */
  unavailable?(): string | undefined;
  /** The ETag of one of its resources, when the source versions them itself (etcd: the key's revision); else the store hashes the content. */
  etag?(r: { kind: string; namespace: string; name: string }): string | undefined;
}

/** A change asked of a writable source. */
export type RegistryWrite = (
  | { op: "put"; kind: "ServiceEntry"; namespace: string; name: string; body: string }
  | { op: "delete"; kind: "ServiceEntry"; namespace: string; name: string }
) & {
  /** HTTP If-Match: the write applies only if the entry's ETag is this one (`*`: if the entry exists). */
  ifMatch?: string;
};

/** Why a write or reload was refused. */
export type RegistryProblem = {
  /**
   * invalid: the input does not parse or validate; conflict: it clashes with what is there; not-found:
   * nothing to delete; disabled: the store takes no writes; precondition-failed: If-Match names
   * another version of the entry; unavailable: the write could not be made durable now (storage
   * failing, unreadable or unreachable), try again later.
   */
  kind: "invalid" | "conflict" | "not-found" | "disabled" | "precondition-failed" | "unavailable";
  errors: string[];
  /** The source's state was behind its storage (another writer came first) and has caught up: the write is staged again. */
  retry?: boolean;
};

/** A write checked against the source's own state, applied only if the whole registry still builds. */
export interface StagedWrite {
  /** The source's resources as they would be after the write. */
  resources: readonly Resource[];
  /**
   * Makes the write durable and the source's state, and reports that state (onUpdate) before it
   * resolves: the store judges it as any update. Resolves with a problem when the write was refused,
   * and rejects when it could not be stored: either way the source's state is unchanged.
   */
  commit(): Promise<Committed | RegistryProblem>;
}

export interface Committed {
  /** The entry's new ETag, when the source versions its resources itself (RegistrySource.etag). */
  etag?: string;
}

export interface WritableSource {
  stage(write: RegistryWrite): StagedWrite | RegistryProblem;
}

export type WriteOutcome = { ok: true; registry: Registry; changed: boolean; etag?: string } | { ok: false; problem: RegistryProblem };

export const isProblem = (x: object): x is RegistryProblem => "kind" in x;
