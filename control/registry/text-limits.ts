// Bounds on the work one registry text may cause. Registry files and HTTP bodies come from people and
// programs that make mistakes (or worse): nesting, document and value counts are checked while the
// text is read, so the parser never builds more than the limits allow; each error names its limit.

export interface TextLimits {
  /** Names the text in errors: "per registry file", "per request body". */
  readonly scope: string;
  /** Collections inside collections (YAML block or flow, JSON). A ServiceEntry needs about 8. */
  readonly maxDepth: number;
  /** Documents (`---` separated) in one text. */
  readonly maxDocuments: number;
  /** Scalars, collections and aliases in one text. */
  readonly maxNodes: number;
  /**
   * The same in one document. The `yaml` package holds a whole document's syntax tree (about 1 KB a
   * value) while composing it, so this bounds memory: 100,000 values is about 100 MB at the peak.
   */
  readonly maxDocumentNodes: number;
}

/** Per registry file: room for about 25,000 ServiceEntries in one file, as `---` separated documents (a `kind: List` of about 4,000). */
export const FILE_LIMITS: TextLimits = Object.freeze({ scope: "per registry file", maxDepth: 64, maxDocuments: 50_000, maxNodes: 2_000_000, maxDocumentNodes: 100_000 });

/** Per HTTP request body, which holds one ServiceEntry. */
export const BODY_LIMITS: TextLimits = Object.freeze({ scope: "per request body", maxDepth: 64, maxDocuments: 10, maxNodes: 100_000, maxDocumentNodes: 100_000 });

/** Per etcd value, which holds one ServiceEntry, WorkloadEntry or Sidecar (etcd itself refuses requests over 1.5 MiB by default). */
export const ETCD_VALUE_LIMITS: TextLimits = Object.freeze({ scope: "per etcd value", maxDepth: 64, maxDocuments: 10, maxNodes: 100_000, maxDocumentNodes: 100_000 });

/** One registry file: about 25,000 ServiceEntries; larger registries are split into several files. */
export const MAX_FILE_BYTES = 8 * 1024 * 1024;

/** All files of a registry directory together. */
export const MAX_REGISTRY_BYTES = 64 * 1024 * 1024;

/** Errors (and warnings) kept per text, per reload and per refused update; the rest are counted. */
export const MAX_KEPT_ERRORS = 100;

/** Characters kept of one error: reasons quote the offending value, which can be megabytes long. */
export const MAX_ERROR_CHARS = 1000;
