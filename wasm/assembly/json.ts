// A small strict JSON reader for the plugin configuration. AssemblyScript has no exceptions
// we could catch (a throw aborts the VM), so errors are returned: parseJson gives null and
// sets jsonError to a message with the byte offset.

import { decimal } from "./decimal";

export enum JsonKind { Null, Bool, Number, String, Array, Object }

export class JsonValue {
  kind: JsonKind = JsonKind.Null;
  bool: bool = false;
  /** A number's value when `exact`: a whole number below 10^15 in magnitude (all the configuration takes). */
  int: i64 = 0;
  exact: bool = false;
  str: string = ""; // a string's value; a number's source text
  items: Array<JsonValue> = [];
  keys: Array<string> = [];

  static of(kind: JsonKind): JsonValue {
    const v = new JsonValue();
    v.kind = kind;
    return v;
  }

  kindName(): string {
    switch (this.kind) {
      case JsonKind.Null: return "null";
      case JsonKind.Bool: return "a boolean";
      case JsonKind.Number: return "a number";
      case JsonKind.String: return "a string";
      case JsonKind.Array: return "an array";
      default: return "an object";
    }
  }
}

export let jsonError = "";

class Reader {
  pos: i32 = 0;
  constructor(public text: string) {}

  fail(message: string): JsonValue | null {
    if (jsonError.length == 0) jsonError = message + " at offset " + decimal(this.pos);
    return null;
  }

  skipSpace(): void {
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos);
      if (c != 32 && c != 9 && c != 10 && c != 13) break;
      this.pos++;
    }
  }

  peek(): i32 {
    return this.pos < this.text.length ? this.text.charCodeAt(this.pos) : -1;
  }

  literal(word: string): bool {
    if (this.text.substr(this.pos, word.length) != word) return false;
    this.pos += word.length;
    return true;
  }

  value(depth: i32): JsonValue | null {
    if (depth > 16) return this.fail("nesting too deep");
    this.skipSpace();
    const c = this.peek();
    if (c == 123 /* { */) return this.object(depth);
    if (c == 91 /* [ */) return this.array(depth);
    if (c == 34 /* " */) {
      const s = this.string();
      if (s === null) return null;
      const v = JsonValue.of(JsonKind.String);
      v.str = s;
      return v;
    }
    if (c == 45 /* - */ || (c >= 48 && c <= 57)) return this.number();
    if (this.literal("true")) { const v = JsonValue.of(JsonKind.Bool); v.bool = true; return v; }
    if (this.literal("false")) return JsonValue.of(JsonKind.Bool);
    if (this.literal("null")) return JsonValue.of(JsonKind.Null);
    return this.fail(c < 0 ? "unexpected end of input" : "unexpected character '" + String.fromCharCode(c) + "'");
  }

  /**
   * A number, read exactly as digits times a power of ten (no floating point: the configuration
   * takes whole numbers only, and a float parser would double this module's size for them).
   */
  number(): JsonValue | null {
    const start = this.pos;
    const negative = this.peek() == 45;
    if (negative) this.pos++;
    const digitsStart = this.pos;
    // digits: the significant digits while they fit; scale: the power of ten they are multiplied by.
    let digits: u64 = 0, scale: i32 = 0, inexact = false;
    while (this.peek() >= 48 && this.peek() <= 57) {
      const d = <u64>(this.peek() - 48);
      if (digits < 100_000_000_000_000_000) digits = digits * 10 + d;
      else { scale++; if (d != 0) inexact = true; }
      this.pos++;
    }
    const intDigits = this.pos - digitsStart;
    if (intDigits == 0 || (intDigits > 1 && this.text.charCodeAt(digitsStart) == 48)) return this.fail("invalid number");
    if (this.peek() == 46 /* . */) {
      this.pos++;
      const f = this.pos;
      while (this.peek() >= 48 && this.peek() <= 57) {
        const d = <u64>(this.peek() - 48);
        if (digits < 100_000_000_000_000_000) { digits = digits * 10 + d; scale--; }
        else if (d != 0) inexact = true;
        this.pos++;
      }
      if (this.pos == f) return this.fail("invalid number");
    }
    if (this.peek() == 101 || this.peek() == 69 /* e E */) {
      this.pos++;
      const minus = this.peek() == 45;
      if (this.peek() == 43 || minus) this.pos++;
      const e = this.pos;
      let exponent: i32 = 0;
      while (this.peek() >= 48 && this.peek() <= 57) {
        if (exponent < 100_000) exponent = exponent * 10 + (this.peek() - 48);
        this.pos++;
      }
      if (this.pos == e) return this.fail("invalid number");
      scale += minus ? -exponent : exponent;
    }
    const v = JsonValue.of(JsonKind.Number);
    v.str = this.text.substring(start, this.pos); // as written, for error messages
    while (digits != 0 && digits % 10 == 0) { digits /= 10; scale++; }
    if (digits == 0) v.exact = true;
    else if (!inexact && scale >= 0 && scale < 15) {
      let value = digits;
      for (let i = 0; i < scale && value < 1_000_000_000_000_000; i++) value *= 10;
      if (value < 1_000_000_000_000_000) { v.int = negative ? -<i64>value : <i64>value; v.exact = true; }
    }
    return v;
  }

  string(): string | null {
    this.pos++; // opening quote
    let out = "";
    let run = this.pos;
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos);
      if (c == 34) {
        out += this.text.substring(run, this.pos);
        this.pos++;
        return out;
      }
      if (c < 32) { this.fail("control character in string"); return null; }
      if (c != 92 /* \ */) { this.pos++; continue; }
      out += this.text.substring(run, this.pos);
      const e = this.pos + 1 < this.text.length ? this.text.charCodeAt(this.pos + 1) : -1;
      this.pos += 2;
      if (e == 34) out += "\"";
      else if (e == 92) out += "\\";
      else if (e == 47) out += "/";
      else if (e == 98) out += "\b";
      else if (e == 102) out += "\f";
      else if (e == 110) out += "\n";
      else if (e == 114) out += "\r";
      else if (e == 116) out += "\t";
      else if (e == 117 /* u */) {
        let code = 0;
        for (let i = 0; i < 4; i++) {
          const h = this.pos < this.text.length ? this.text.charCodeAt(this.pos) : -1;
          let d = -1;
          if (h >= 48 && h <= 57) d = h - 48;
          else if ((h | 0x20) >= 97 && (h | 0x20) <= 102) d = (h | 0x20) - 87;
          if (d < 0) { this.fail("invalid \\u escape"); return null; }
          code = (code << 4) | d;
          this.pos++;
        }
        out += String.fromCharCode(code);
      } else { this.pos--; this.fail("invalid escape"); return null; }
      run = this.pos;
    }
    this.fail("unterminated string");
    return null;
  }

  array(depth: i32): JsonValue | null {
    this.pos++;
    const v = JsonValue.of(JsonKind.Array);
    this.skipSpace();
    if (this.peek() == 93) { this.pos++; return v; }
    for (;;) {
      const item = this.value(depth + 1);
      if (item === null) return null;
      v.items.push(item);
      this.skipSpace();
      const c = this.peek();
      this.pos++;
      if (c == 93 /* ] */) return v;
      if (c != 44 /* , */) { this.pos--; return this.fail("expected ',' or ']'"); }
    }
    return null; // unreachable
  }

  object(depth: i32): JsonValue | null {
    this.pos++;
    const v = JsonValue.of(JsonKind.Object);
    this.skipSpace();
    if (this.peek() == 125) { this.pos++; return v; }
    for (;;) {
      this.skipSpace();
      if (this.peek() != 34) return this.fail("expected a string key");
      const key = this.string();
      if (key === null) return null;
      this.skipSpace();
      if (this.peek() != 58 /* : */) return this.fail("expected ':'");
      this.pos++;
      const item = this.value(depth + 1);
      if (item === null) return null;
      v.keys.push(key);
      v.items.push(item);
      this.skipSpace();
      const c = this.peek();
      this.pos++;
      if (c == 125 /* } */) return v;
      if (c != 44) { this.pos--; return this.fail("expected ',' or '}'"); }
    }
    return null; // unreachable
  }
}

export function parseJson(text: string): JsonValue | null {
  jsonError = "";
  const r = new Reader(text);
  const v = r.value(0);
  if (v === null) return null;
  r.skipSpace();
  if (r.pos != text.length) return r.fail("trailing characters");
  return v;
}
