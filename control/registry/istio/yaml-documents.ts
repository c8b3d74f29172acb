// YAML or JSON text -> documents, handed over one at a time, with the limits of limits.ts enforced
// token by token. The `yaml` package composes nodes recursively: 2,000 nested brackets overflow the
// stack (and can leave V8 unable to recover), and a 1 MB text of them costs seconds and hundreds of MB.
// So its lexer, parser and composer are driven here by hand: after every token the parser's stack (the
// nesting being built) and the counts are checked, and reading stops at the first limit exceeded,
// before anything deeper or larger is built.
import { Composer, Lexer, Parser, type Document, type LineCounter, type YAMLError } from "yaml";
import type { TextLimits } from "../text-limits.ts";

export interface LimitExceeded {
  /** Where in the text reading stopped. */
  offset: number;
  reason: string;
}

export interface ReadOutcome {
  /** Set when a limit stopped the reading; the documents handed over before it are complete. */
  exceeded?: LimitExceeded;
  /** Errors outside any document (the `yaml` package attaches the rest to their document). */
  streamErrors: YAMLError[];
}

const SCALAR = "\x1f"; // the lexer's "a scalar follows" marker

/** A value node starts: a plain, quoted or block scalar, a flow collection or an alias (block collections hold these). */
const NODE_START: ReadonlySet<string> = new Set([SCALAR, "[", "{", "*", '"', "'", "|", ">"]);
const startsNode = (lexeme: string) => NODE_START.has(lexeme[0]!);

/** Reads `text`, calling `onDocument` for each document as soon as it is complete. `lines` learns every line start. */
export function readDocuments(text: string, limits: TextLimits, lines: LineCounter, onDocument: (doc: Document.Parsed) => void): ReadOutcome {
  const parser = new Parser(lines.addNewLine);
  // logLevel "error": the yaml package would print a process warning to stderr per document with a
  // collection as a map key, so a hostile text could write unbounded output; such keys are only stringified.
  const composer = new Composer({ prettyErrors: false, uniqueKeys: true, strict: true, logLevel: "error" });
  let documents = 0;
  let nodes = 0;
  let documentNodes = 0;
  let emitted = false;
  const compose = (tokens: Iterable<Parameters<Composer["next"]>[0]>) => {
    for (const token of tokens) {
      if (token.type === "document") {
        documents++;
        documentNodes = 0;
      }
      for (const doc of composer.next(token)) {
        emitted = true;
        onDocument(doc);
      }
    }
  };
  // A text full of errors makes the `yaml` package construct an Error per problem; their stack traces
  // are never shown and cost most of the time. Synchronous, and restored before returning.
  const traceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    lines.addNewLine(0); // Parser.parse() records the first line itself; next() does not
    for (const lexeme of new Lexer().lex(text)) {
      if (startsNode(lexeme)) {
        if (++nodes > limits.maxNodes) return stop(parser.offset, `more than ${limits.maxNodes} values (scalars, collections, aliases): the limit ${limits.scope}; not read further`);
        if (++documentNodes > limits.maxDocumentNodes) {
          return stop(parser.offset, `more than ${limits.maxDocumentNodes} values (scalars, collections, aliases) in one document: the limit per document; split it into documents (---) or files`);
        }
      }
      compose(parser.next(lexeme));
      if (depth(parser) > limits.maxDepth) {
        return stop(parser.offset, `nested deeper than ${limits.maxDepth} levels: the limit ${limits.scope}; not read further`);
      }
      if (documents >= limits.maxDocuments && parser.stack.length > 0) {
        return stop(parser.offset, `more than ${limits.maxDocuments} documents: the limit ${limits.scope}; not read further`);
      }
    }
    compose(parser.end());
    for (const doc of composer.end()) {
      emitted = true;
      onDocument(doc);
    }
    return { streamErrors: emitted ? [] : composer.streamInfo().errors };
  } finally {
    Error.stackTraceLimit = traceLimit;
  }
}

/** Collections being built: the parser's stack holds the document, each collection, and maybe a scalar on top. */
function depth(parser: Parser): number {
  const top = parser.stack.at(-1);
  return parser.stack.length - 1 - (top && !("items" in top) && top.type !== "document" ? 1 : 0);
}

function stop(offset: number, reason: string): ReadOutcome {
  return { exceeded: { offset, reason }, streamErrors: [] };
}
