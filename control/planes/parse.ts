// The planes file (`serve --planes FILE`), YAML or JSON: text in, planes and file:line:column problems
// out; no I/O. Strict like the registry: an unknown key, a range that overlaps another (which plane an
// address is on would depend on the order) or a value Envoy cannot carry is an error.
import { parseCidr } from "../identity/ip.ts";
import type { RegistryError } from "../registry/model.ts";
import { readSingleDocument } from "../registry/istio/parse.ts";
import { describe, pathName, Reader, type Obj, type Path } from "../registry/istio/reader.ts";
import { networkAddress, Planes, type CircuitBreakers, type Plane } from "./plane.ts";

export interface PlanesResult {
  /** Set only when there is no error. */
  planes?: Planes;
  errors: RegistryError[];
}

const PLANE_FIELDS = ["name", "cidrs", "dscp", "bindSource", "isolated", "connectTimeout", "maxConnections", "maxPendingRequests", "maxRequests", "maxRetries", "maxConnectionPools"] as const;
const BREAKERS = ["maxConnections", "maxPendingRequests", "maxRequests", "maxRetries", "maxConnectionPools"] as const;
/** A plane's name is in cluster names and /debug output: a DNS label. */
const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const MAX_PLANES = 64;
const MAX_CIDRS = 1024;

export function parsePlanes(text: string, file: string): PlanesResult {
  const { value, at, syntaxErrors } = readSingleDocument(text, file);
  if (syntaxErrors.length > 0) return { errors: syntaxErrors };
  const r = new Reader();
  const root = r.obj(value, [], true);
  if (root) r.known(root, [], ["planes"]);
  const planes: Plane[] = [];
  const names = new Map<string, number>();
  const ranges: { cidr: ReturnType<typeof parseCidr> & { ok: true }; text: string; plane: string; path: Path }[] = [];
  r.list(root?.planes, ["planes"], true, MAX_PLANES)?.forEach((item, i) => {
    const pa: Path = ["planes", i];
    const o = r.obj(item, pa, true);
    if (!o) return;
    r.known(o, pa, PLANE_FIELDS);
    const name = r.str(o.name, [...pa, "name"], true, 63);
    if (name !== undefined && !NAME.test(name)) r.fail([...pa, "name"], `${pathName([...pa, "name"])} ${JSON.stringify(name)} must be a DNS label (lowercase letters, digits and '-')`);
    if (name !== undefined && names.has(name)) r.fail([...pa, "name"], `plane ${name} is defined twice (planes[${names.get(name)}] and planes[${i}])`);
    if (name !== undefined && !names.has(name)) names.set(name, i);
    const cidrs: string[] = [];
    const list = r.list(o.cidrs, [...pa, "cidrs"], true, MAX_CIDRS);
    if (list && list.length === 0) r.fail([...pa, "cidrs"], `${pathName([...pa, "cidrs"])} must list at least one range`);
    list?.forEach((c, j) => {
      const ca = [...pa, "cidrs", j];
      const s = r.str(c, ca, true, 64);
      if (s === undefined) return;
      const p = parseCidr(s);
      if (!p.ok) return void r.fail(ca, `${pathName(ca)}: ${s} is not a CIDR range (${p.reason})`);
      const canonical = `${p.cidr.address}/${p.cidr.prefixLen}`;
      const network = networkAddress(p.cidr.address, p.cidr.prefixLen, p.cidr.family);
      if (network !== p.cidr.address) return void r.fail(ca, `${pathName(ca)}: ${s} has host bits set (the range is ${network}/${p.cidr.prefixLen})`);
      cidrs.push(canonical);
      ranges.push({ cidr: p, text: canonical, plane: name ?? `planes[${i}]`, path: ca });
    });
    const dscp = o.dscp === undefined ? undefined : integer(r, o.dscp, [...pa, "dscp"], 0, 63);
    const bindSource = bool(r, o.bindSource, [...pa, "bindSource"]);
    const isolated = bool(r, o.isolated, [...pa, "isolated"]);
    const connectTimeoutMs = o.connectTimeout === undefined ? undefined : durationMs(r, o.connectTimeout, [...pa, "connectTimeout"]);
    const breakers = circuitBreakers(r, o, pa);
    if (name === undefined) return;
    planes.push({
      name, cidrs, bindSource, isolated,
      ...(dscp !== undefined ? { dscp } : {}),
      ...(connectTimeoutMs !== undefined ? { connectTimeoutMs } : {}),
      ...(breakers ? { circuitBreakers: breakers } : {}),
    });
  });
  // Every pair of ranges: overlapping ones (nested or equal) are refused, in one plane or across two.
  for (let a = 0; a < ranges.length; a++) {
    for (let b = a + 1; b < ranges.length; b++) {
      const x = ranges[a]!, y = ranges[b]!;
      if (x.cidr.cidr.family !== y.cidr.cidr.family) continue;
      const len = Math.min(x.cidr.cidr.prefixLen, y.cidr.cidr.prefixLen);
      if (networkAddress(x.cidr.cidr.address, len, x.cidr.cidr.family) !== networkAddress(y.cidr.cidr.address, len, y.cidr.cidr.family)) continue;
      r.fail(y.path, `${y.text} (plane ${y.plane}) overlaps ${x.text} (plane ${x.plane}): an address must be on one plane`);
    }
  }
  const errors = r.issues.map((i) => at(i.path, i.reason));
  return errors.length > 0 ? { errors } : { planes: new Planes(planes), errors };
}

function bool(r: Reader, v: unknown, path: Path): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === "boolean") return v;
  r.fail(path, `${pathName(path)} must be true or false, got ${describe(v)}`);
  return false;
}

function integer(r: Reader, v: unknown, path: Path, min: number, max: number): number | undefined {
  return typeof v === "number" && Number.isInteger(v) && v >= min && v <= max ? v : r.fail(path, `${pathName(path)} must be an integer ${min}..${max}, got ${describe(v)}`);
}

function circuitBreakers(r: Reader, o: Obj, pa: Path): CircuitBreakers | undefined {
  const out: CircuitBreakers = {};
  let any = false;
  for (const k of BREAKERS) {
    if (o[k] === undefined) continue;
    const n = integer(r, o[k], [...pa, k], 0, 0xffffffff);
    if (n !== undefined) { out[k] = n; any = true; }
  }
  return any ? out : undefined;
}

const UNITS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, "µs": 0.001, ns: 0.000001 };

/** A Go duration as Istio writes them ("250ms", "1.5s", "1m30s"): whole milliseconds, more than 0. */
function durationMs(r: Reader, v: unknown, path: Path): number | undefined {
  const bad = (why: string) => r.fail(path, `${pathName(path)} ${why}, got ${describe(v)}`);
  if (typeof v !== "string" || !/^(\d+(\.\d+)?(h|ms|m|s|us|µs|ns))+$/.test(v)) return bad("must be a duration like 250ms, 1.5s or 1m30s");
  let ms = 0;
  for (const m of v.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) ms += Number(m[1]) * UNITS[m[2]!]!;
  if (Math.abs(ms - Math.round(ms)) > 1e-6) return bad("must be a whole number of milliseconds");
  ms = Math.round(ms);
  if (ms < 1) return bad("must be at least 1ms");
  if (ms > 86_400_000) return bad("must be at most 24h");
  return ms;
}
