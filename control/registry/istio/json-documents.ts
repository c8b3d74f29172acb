// Registry text made only of JSON documents (one, or several on their own between `---` lines, as
// concatenated `kubectl get -o json` output is): read with JSON.parse, several times faster than the
// YAML path, which builds a syntax tree with a position for every value. Positions are still needed
// for the lines resources remember (a document's, or each `items` element's of a List), so one pass
// over the characters finds those lines and enforces the text limits before JSON.parse runs. Whatever
// this reader does not take for certain (a comment, a duplicate or escaped key, a limit nearly reached,
// text JSON.parse refuses) returns null, and the YAML path reads the text with its exact errors.
import type { TextLimits } from "../text-limits.ts";

export interface JsonDocument {
  value: unknown;
  /** 1-based line of the document's first character. */
  line: number;
  /** For a top-level object's `items` array (a List): the line each element starts on. */
  itemLines: number[];
}

/**
 * Values are counted as the YAML path counts them (every key and every value, collections included), so
 * a text over a value limit is handed to it, and it names the limit. Depth and documents are left to it
 * a little before their limits.
 */
const LIMIT_MARGIN = 0.9;

/** Character codes. */
const LONE_CR = /\r(?!\n)/;
const C = { Newline: 10, Space: 32, Tab: 9, Return: 13, Quote: 34, Backslash: 92, Comma: 44, Colon: 58, OpenBrace: 123, CloseBrace: 125, OpenBracket: 91, CloseBracket: 93, Dash: 45 } as const;

interface Open {
  array: boolean;
  /** An object's keys so far (duplicates are an error on the YAML path, silently the last on JSON.parse's). */
  keys?: Set<string>;
  /** The top-level object's `items` array: its elements' lines are recorded. */
  items: boolean;
  /** In an object: the next string is a key. */
  expectKey: boolean;
}

export function readJsonDocuments(text: string, limits: TextLimits): JsonDocument[] | null {
  // A carriage return that does not end a line is whitespace to JSON but not to YAML (a stray `\r`
  // after a cut is a scalar there): the YAML path decides, so both paths agree.
  if (LONE_CR.test(text)) return null;
  const maxDepth = Math.floor(limits.maxDepth * LIMIT_MARGIN);
  const maxNodes = limits.maxNodes;
  const maxDocumentNodes = limits.maxDocumentNodes;
  const maxDocuments = Math.floor(limits.maxDocuments * LIMIT_MARGIN);
  const docs: JsonDocument[] = [];
  const n = text.length;
  let i = 0, line = 1, nodes = 0;
  let lineStart = true; // nothing but the line's start since the last newline (for `---`)
  for (;;) {
    // Between documents: blank space and `---` lines only.
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === C.Newline) { line++; i++; lineStart = true; continue; }
      if (c === C.Space || c === C.Tab || c === C.Return) { i++; lineStart = false; continue; }
      if (c === C.Dash && lineStart && text.startsWith("---", i) && endsLine(text, i + 3)) { i += 3; lineStart = false; continue; }
      break;
    }
    if (i >= n) return docs;
    const c = text.charCodeAt(i);
    if (c !== C.OpenBrace && c !== C.OpenBracket) return null;
    if (docs.length >= maxDocuments) return null;
    const start = i, startLine = line;
    const itemLines: number[] = [];
    const stack: Open[] = [];
    let documentNodes = 0;
    let pendingItems = false; // the top-level object's last key was "items"
    // One value: a collection, scanned to its end.
    do {
      const ch = text.charCodeAt(i);
      if (ch === C.Newline) { line++; i++; continue; }
      if (ch === C.Space || ch === C.Tab || ch === C.Return || ch === C.Colon) { i++; continue; }
      const top = stack[stack.length - 1];
      if (ch === C.Comma) {
        if (top && !top.array) top.expectKey = true;
        i++;
        continue;
      }
      if (ch === C.CloseBrace || ch === C.CloseBracket) {
        stack.pop();
        i++;
        continue;
      }
      // A key or a value starts here.
      if (++nodes > maxNodes || ++documentNodes > maxDocumentNodes) return null;
      if (top && !top.array && top.expectKey) {
        if (ch !== C.Quote) return null;
        const end = stringEnd(text, i);
        if (end < 0) return null;
        const key = text.slice(i + 1, end - 1);
        if (key.includes("\\") || top.keys!.has(key)) return null;
        top.keys!.add(key);
        top.expectKey = false;
        pendingItems = stack.length === 1 && key === "items";
        i = end;
        continue;
      }
      if (top?.items) itemLines.push(line);
      const isItems = pendingItems && stack.length === 1 && ch === C.OpenBracket;
      pendingItems = false;
      if (ch === C.OpenBrace || ch === C.OpenBracket) {
        if (stack.length + 1 > maxDepth) return null;
        const array = ch === C.OpenBracket;
        stack.push({ array, items: isItems, expectKey: !array, ...(array ? {} : { keys: new Set<string>() }) });
        i++;
      } else if (ch === C.Quote) {
        const end = stringEnd(text, i);
        if (end < 0) return null;
        i = end;
      } else {
        // A number, true, false or null (JSON.parse judges which): up to the next delimiter.
        const from = i;
        while (i < n && !isDelimiter(text.charCodeAt(i))) i++;
        if (i === from) return null;
      }
    } while (stack.length > 0 && i < n);
    if (stack.length > 0) return null; // unterminated: the YAML path says where
    // The rest of the document's last line must be blank.
    if (!endsLine(text, i)) return null;
    let value: unknown;
    try {
      value = JSON.parse(text.slice(start, i));
    } catch {
      return null;
    }
    docs.push({ value, line: startLine, itemLines });
    lineStart = false;
  }
}

/** Whether only blanks follow `at` up to the end of its line (or of the text). */
function endsLine(text: string, at: number): boolean {
  for (let i = at; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === C.Newline) return true;
    if (c !== C.Space && c !== C.Tab && c !== C.Return) return false;
  }
  return true;
}

/** The index after the closing quote of the string opening at `at`; -1 when the line ends first. */
function stringEnd(text: string, at: number): number {
  for (let i = at + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === C.Quote) return i + 1;
    if (c === C.Backslash) i++;
    else if (c === C.Newline) return -1;
  }
  return -1;
}

function isDelimiter(c: number): boolean {
  return c === C.Comma || c === C.CloseBrace || c === C.CloseBracket || c === C.Space || c === C.Newline || c === C.Tab || c === C.Return || c === C.Colon || c === C.Quote || c === C.OpenBrace || c === C.OpenBracket;
}
