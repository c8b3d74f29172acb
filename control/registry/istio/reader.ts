// Reading a plain JSON document field by field: each read names the path it reads, so every problem
// (an error, or a warning for something accepted but not served as written) lands on its own line.

export type Path = (string | number)[];

export interface Issue {
  path: Path;
  reason: string;
}

export type Obj = Record<string, unknown>;

export const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
export const describe = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "a list" : typeof v === "object" ? "a map" : JSON.stringify(v));

export function pathName(path: Path): string {
  return path.reduce<string>((acc, p) => (typeof p === "number" ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), "");
}

export class Reader {
  readonly issues: Issue[] = [];
  readonly warnings: Issue[] = [];

  fail(path: Path, reason: string): undefined {
    this.issues.push({ path, reason });
    return undefined;
  }

  warn(path: Path, reason: string): void {
    this.warnings.push({ path, reason });
  }

  /** Fields a message does not have are refused, as Kubernetes' strict decoding refuses them: a typo must not vanish. */
  known(o: Obj, path: Path, fields: readonly string[]): void {
    for (const k of Object.keys(o)) if (!fields.includes(k)) this.fail([...path, k], `${pathName([...path, k])}: unknown field (known: ${fields.join(", ")})`);
  }

  obj(v: unknown, path: Path, required: boolean): Obj | undefined {
    if (v === undefined || v === null) return required ? this.fail(path, `${pathName(path)} is required`) : undefined;
    return isObj(v) ? v : this.fail(path, `${pathName(path)} must be a map, got ${describe(v)}`);
  }

  list(v: unknown, path: Path, required: boolean, max?: number): unknown[] | undefined {
    if (v === undefined || v === null) return required ? this.fail(path, `${pathName(path)} is required`) : undefined;
    if (!Array.isArray(v)) return this.fail(path, `${pathName(path)} must be a list, got ${describe(v)}`);
    // Too long is an error, but the items are still read: every other problem is reported too.
    if (max !== undefined && v.length > max) this.fail(path, `${pathName(path)} may list at most ${max} items, got ${v.length}`);
    return v;
  }

  str(v: unknown, path: Path, required: boolean, maxLength?: number): string | undefined {
    if (v === undefined || v === null) return required ? this.fail(path, `${pathName(path)} is required`) : undefined;
    if (typeof v !== "string") return this.fail(path, `${pathName(path)} must be a string, got ${describe(v)}`);
    if (maxLength !== undefined && v.length > maxLength) return this.fail(path, `${pathName(path)} may be at most ${maxLength} characters, got ${v.length}`);
    return v;
  }

  /** A uint32 as protobuf JSON carries it (a number, or a string of digits). */
  uint32(v: unknown, path: Path): number | undefined {
    if (v === undefined || v === null) return undefined;
    const n = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
    return typeof n === "number" && Number.isInteger(n) && n >= 0 && n <= 0xffffffff ? n : this.fail(path, `${pathName(path)} must be an integer 0..4294967295, got ${describe(v)}`);
  }

  port(v: unknown, path: Path, required: boolean): number | undefined {
    if (v === undefined || v === null) return required ? this.fail(path, `${pathName(path)} is required`) : undefined;
    return typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= 65535
      ? v : this.fail(path, `${pathName(path)} must be a port number 1..65535, got ${describe(v)}`);
  }

  stringMap(v: unknown, path: Path, maxEntries = 256): Record<string, string> {
    const m = this.obj(v, path, false);
    const out: Record<string, string> = {};
    if (m && Object.keys(m).length > maxEntries) this.fail(path, `${pathName(path)} may hold at most ${maxEntries} entries`);
    for (const [k, val] of Object.entries(m ?? {})) {
      const s = this.str(val, [...path, k], true);
      if (s !== undefined) out[k] = s;
    }
    return out;
  }
}
