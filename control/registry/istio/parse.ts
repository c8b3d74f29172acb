// Registry text (YAML or JSON; one or many documents; `kind: List` too) -> validated resources, with
// every error and warning at file:line. Documents are validated as they are read, within the limits of
// limits.ts.
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from "yaml";
import { clip } from "../../common/clip.ts";
import { FILE_LIMITS, MAX_ERROR_CHARS, MAX_KEPT_ERRORS, type TextLimits } from "../text-limits.ts";
import type { RegistryError, Resource } from "../model.ts";
import { validateDocument, type Issue, type Path } from "./validate.ts";
import { readDocuments } from "./yaml-documents.ts";
import { readJsonDocuments } from "./json-documents.ts";

export interface ParseResult {
  resources: Resource[];
  /** The first MAX_KEPT_ERRORS errors, reasons clipped to MAX_ERROR_CHARS; `moreErrors` counts the rest. */
  errors: RegistryError[];
  warnings: RegistryError[];
  moreErrors: number;
  moreWarnings: number;
  /** Documents left out because they do not parse or validate (what `--on-invalid skip` skips). */
  invalidDocuments: number;
}

/** Enough for any hand-written registry; stops a runaway file from eating the process. */
const MAX_ALIAS_COUNT = 100;

/**
 * `jsonFastPath` (the default) reads a text of JSON documents with JSON.parse when every document
 * validates without a word (json-documents.ts); anything else takes the YAML path, which places every
 * error and warning. Tests turn it off to compare the two.
 */
export function parseRegistryText(text: string, file: string, limits: TextLimits = FILE_LIMITS, jsonFastPath = true): ParseResult {
  if (jsonFastPath) {
    const fast = parseJsonText(text, file, limits);
    if (fast) return fast;
  }
  const out: ParseResult = { resources: [], errors: [], warnings: [], moreErrors: 0, moreWarnings: 0, invalidDocuments: 0 };
  const lines = new LineCounter();
  const at = (offset: number) => lines.linePos(offset);
  const warn = (pos: { line: number; col: number }, reason: string) => {
    if (out.warnings.length >= MAX_KEPT_ERRORS) return void out.moreWarnings++;
    out.warnings.push({ file, line: pos.line, column: pos.col, reason: clip(reason, MAX_ERROR_CHARS) });
  };
  const error = (offset: number | { line: number; col: number }, reason: string) => {
    if (out.errors.length >= MAX_KEPT_ERRORS) return void out.moreErrors++;
    const pos = typeof offset === "number" ? at(offset) : offset;
    out.errors.push({ file, line: pos.line, column: pos.col, reason: clip(reason, MAX_ERROR_CHARS) });
  };
  const read = readDocuments(text, limits, lines, (doc) => addDocument(doc));
  for (const e of read.streamErrors) error(e.pos[0], firstLine(e.message));
  // Kept past the cap: it says why the rest of the text was not read.
  if (read.exceeded) {
    const pos = at(read.exceeded.offset);
    out.errors.push({ file, line: pos.line, column: pos.col, reason: read.exceeded.reason });
  }
  return out;

  function addDocument(doc: Document.Parsed): void {
    if (doc.errors.length > 0) {
      out.invalidDocuments++;
      for (const e of doc.errors) error(e.pos[0], firstLine(e.message));
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      out.invalidDocuments++;
      error(doc.contents?.range[0] ?? 0, (err as Error).message);
      return;
    }
    if (value === null || value === undefined) return; // an empty document, e.g. a trailing `---`
    const locate = (path: Path) => at(offsetOf(doc.contents as Node | null, path));
    for (const { item, path } of documentItems(value)) {
      const docLine = locate(path).line;
      const v = validateDocument(item, { file, line: docLine }, path);
      // Locating an issue walks the document; past the caps they are only counted.
      const warnAt = (issue: Issue) => (out.warnings.length < MAX_KEPT_ERRORS ? warn(locate(issue.path), issue.reason) : void out.moreWarnings++);
      if (v.kind === "skipped") {
        warnAt(v.warning);
        continue;
      }
      for (const w of v.warnings) warnAt(w);
      if (v.kind === "resource") out.resources.push(v.resource);
      else {
        out.invalidDocuments++;
        for (const issue of v.errors) error(out.errors.length < MAX_KEPT_ERRORS ? locate(issue.path) : 0, issue.reason);
      }
    }
  }
}

/** The JSON fast path: its result when the text is JSON documents that all validate cleanly, else null. */
function parseJsonText(text: string, file: string, limits: TextLimits): ParseResult | null {
  const docs = readJsonDocuments(text, limits);
  if (!docs) return null;
  const out: ParseResult = { resources: [], errors: [], warnings: [], moreErrors: 0, moreWarnings: 0, invalidDocuments: 0 };
  for (const doc of docs) {
    for (const { item, path } of documentItems(doc.value)) {
      const line = path.length === 0 ? doc.line : doc.itemLines[path[1] as number];
      if (line === undefined) return null;
      const v = validateDocument(item, { file, line }, path);
      if (v.kind !== "resource" || v.warnings.length > 0) return null; // the YAML path places what there is to say
      out.resources.push(v.resource);
    }
  }
  return out;
}

/** What a document holds: a List's items, or the document itself, each with its path in the document. */
function documentItems(value: unknown): { item: unknown; path: Path }[] {
  return isList(value) ? value.items.map((item, i) => ({ item, path: ["items", i] as Path })) : [{ item: value, path: [] as Path }];
}

function isList(v: unknown): v is { items: unknown[] } {
  return typeof v === "object" && v !== null && (v as { kind?: unknown }).kind === "List" && Array.isArray((v as { items?: unknown }).items);
}

function firstLine(message: string): string {
  return message.split("\n")[0]!.trim();
}

/**
 * One YAML or JSON document that is not a registry (meshNetworks, the planes file): its value, an `at`
 * that places a problem on the line and column of a path in it, and its syntax errors (then no value).
 */
export function readSingleDocument(text: string, file: string): { value: unknown; at(path: Path, reason: string): RegistryError; syntaxErrors: RegistryError[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (path: Path, reason: string): RegistryError => {
    const pos = lines.linePos(offsetOf(doc.contents as Node | null, path));
    return { file, line: pos.line, column: pos.col, reason };
  };
  const syntaxErrors = doc.errors.map((e) => at([], e.message.split("\n")[0]!));
  return { value: syntaxErrors.length > 0 ? undefined : doc.toJS(), at, syntaxErrors };
}

/** Source offset of the deepest node on `path` under `root` that exists: a map entry's key, a list item, or the root. */
export function offsetOf(root: Node | null, path: Path): number {
  let node: unknown = root;
  let offset = root?.range?.[0] ?? 0;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === seg);
      if (!pair) break;
      offset = (pair.key as Node | null)?.range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === "number") {
      const item = node.items[seg] as Node | undefined;
      if (!item) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else break;
  }
  return offset;
}
