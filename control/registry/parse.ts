// Registry text (YAML or JSON; one or many documents; `kind: List` too) -> validated resources, with
// every error and warning at file:line.
import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node } from "yaml";
import type { RegistryError, Resource } from "./model.ts";
import { validateDocument, type Issue, type Path } from "./validate.ts";

export interface ParseResult {
  resources: Resource[];
  errors: RegistryError[];
  warnings: RegistryError[];
  /** Documents left out because they do not parse or validate (what `--on-invalid skip` skips). */
  invalidDocuments: number;
}

/** Enough for any hand-written registry; stops a runaway file from eating the process. */
const MAX_ALIAS_COUNT = 100;

export function parseRegistryText(text: string, file: string): ParseResult {
  const out: ParseResult = { resources: [], errors: [], warnings: [], invalidDocuments: 0 };
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, strict: true });
  const at = (offset: number) => lines.linePos(offset);
  for (const doc of Array.isArray(docs) ? docs : []) {
    if (doc.errors.length > 0) {
      out.invalidDocuments++;
      for (const e of doc.errors) {
        const pos = e.linePos?.[0] ?? at(e.pos[0]);
        out.errors.push({ file, line: pos.line, column: pos.col, reason: firstLine(e.message) });
      }
      continue;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      out.invalidDocuments++;
      const pos = at(doc.contents?.range[0] ?? 0);
      out.errors.push({ file, line: pos.line, column: pos.col, reason: (err as Error).message });
      continue;
    }
    if (value === null || value === undefined) continue; // an empty document, e.g. a trailing `---`
    const locate = (path: Path) => at(offsetOf(doc, path));
    const items = isList(value) ? value.items.map((item, i) => ({ item, path: ["items", i] as Path })) : [{ item: value, path: [] as Path }];
    for (const { item, path } of items) {
      const docLine = locate(path).line;
      const v = validateDocument(item, { file, line: docLine }, path);
      const at = (issue: Issue) => {
        const pos = locate(issue.path);
        return { file, line: pos.line, column: pos.col, reason: issue.reason };
      };
      if (v.kind === "skipped") {
        out.warnings.push(at(v.warning));
        continue;
      }
      for (const w of v.warnings) out.warnings.push(at(w));
      if (v.kind === "resource") out.resources.push(v.resource);
      else {
        out.invalidDocuments++;
        for (const issue of v.errors) out.errors.push(at(issue));
      }
    }
  }
  return out;
}

function isList(v: unknown): v is { items: unknown[] } {
  return typeof v === "object" && v !== null && (v as { kind?: unknown }).kind === "List" && Array.isArray((v as { items?: unknown }).items);
}

function firstLine(message: string): string {
  return message.split("\n")[0]!.trim();
}

/** Source offset of the deepest node on `path` that exists: a map entry's key, a list item, or the document. */
function offsetOf(doc: Document, path: Path): number {
  let node: unknown = doc.contents;
  let offset = (doc.contents as Node | null)?.range?.[0] ?? 0;
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
