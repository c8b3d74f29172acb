// Protobuf encoding of generated resources, driven by protobufjs reflection but walking only the
// fields an object sets. protobufjs's own fromObject+encode visits every field of a type (a Cluster
// has ~60) and silently drops unknown names; this is several times faster and treats an unknown
// field as the generation bug it is.
import protobuf from "protobufjs";

const WIRE = { varint: 0, fixed64: 1, bytes: 2, fixed32: 5 } as const;

// protobufjs lookups walk the namespace tree; resolve each type once per root.
const typesByUrl = new WeakMap<protobuf.Root, Map<string, protobuf.Type>>();
const anyTypes = new WeakMap<protobuf.Root, protobuf.Type>();

function typeOfUrl(root: protobuf.Root, typeUrl: string): protobuf.Type {
  let byUrl = typesByUrl.get(root);
  if (!byUrl) typesByUrl.set(root, (byUrl = new Map()));
  let type = byUrl.get(typeUrl);
  if (!type) byUrl.set(typeUrl, (type = root.lookupType(typeUrl.slice(typeUrl.lastIndexOf("/") + 1))));
  return type;
}

function isAny(root: protobuf.Root, type: protobuf.Type): boolean {
  let any = anyTypes.get(root);
  if (!any) anyTypes.set(root, (any = root.lookupType("google.protobuf.Any")));
  return type === any;
}

function wireType(type: string): number {
  switch (type) {
    case "double": case "fixed64": case "sfixed64": return WIRE.fixed64;
    case "float": case "fixed32": case "sfixed32": return WIRE.fixed32;
    case "string": case "bytes": return WIRE.bytes;
    default: return WIRE.varint;
  }
}

function writeScalar(w: protobuf.Writer, type: string, value: unknown, where: string): void {
  switch (type) {
    case "string":
      if (typeof value !== "string") throw new TypeError(`${where}: expected a string, got ${JSON.stringify(value)}`);
      w.string(value);
      return;
    case "bool":
      w.bool(Boolean(value));
      return;
    case "bytes":
      w.bytes(typeof value === "string" ? Buffer.from(value, "base64") : (value as Uint8Array));
      return;
    default:
      if (typeof value !== "number" && typeof value !== "string" && typeof value !== "bigint") {
        throw new TypeError(`${where}: expected a number, got ${JSON.stringify(value)}`);
      }
      (w as any)[type](typeof value === "number" ? value : Number(value));
  }
}

function encodeAny(root: protobuf.Root, value: any, w: protobuf.Writer, where: string): void {
  const typeUrl = value["@type"];
  if (typeof typeUrl === "string") {
    w.uint32((1 << 3) | WIRE.bytes).string(typeUrl);
    w.uint32((2 << 3) | WIRE.bytes).fork();
    encodeMessage(root, typeOfUrl(root, typeUrl), value, w, where, "@type");
    w.ldelim();
    return;
  }
  // Already packed: {type_url, value} with value as bytes ("" for an empty config).
  w.uint32((1 << 3) | WIRE.bytes).string(String(value.type_url));
  const bytes = typeof value.value === "string" ? Buffer.from(value.value, "base64") : value.value;
  if (bytes?.length) w.uint32((2 << 3) | WIRE.bytes).bytes(bytes);
}

// Frozen objects are shared constants (e.g. the loop guard's ECDS reference, in every guarded
// chain): their bytes are computed once. Freezing is the promise that they never change.
const frozenBytes = new WeakMap<object, Uint8Array>();

function writeMessageField(root: protobuf.Root, id: number, type: protobuf.Type, value: object, w: protobuf.Writer, where: string): void {
  if (Object.isFrozen(value)) {
    let bytes = frozenBytes.get(value);
    if (!bytes) {
      const inner = protobuf.Writer.create();
      if (isAny(root, type)) encodeAny(root, value, inner, where);
      else encodeMessage(root, type, value, inner, where);
      frozenBytes.set(value, (bytes = inner.finish()));
    }
    w.uint32((id << 3) | WIRE.bytes).bytes(bytes);
    return;
  }
  w.uint32((id << 3) | WIRE.bytes).fork();
  if (isAny(root, type)) encodeAny(root, value, w, where);
  else encodeMessage(root, type, value, w, where);
  w.ldelim();
}

function writeField(root: protobuf.Root, field: protobuf.Field, value: unknown, w: protobuf.Writer, where: string): void {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) {
    if (typeof value !== "object" || value === null) throw new TypeError(`${where}: expected a ${rt.name} object, got ${JSON.stringify(value)}`);
    writeMessageField(root, field.id, rt, value, w, where);
  } else if (rt instanceof protobuf.Enum) {
    const n = typeof value === "number" ? value : rt.values[value as string];
    if (n === undefined) throw new TypeError(`${where}: ${JSON.stringify(value)} is not a ${rt.name} value`);
    w.uint32((field.id << 3) | WIRE.varint).int32(n);
  } else {
    w.uint32((field.id << 3) | wireType(field.type));
    writeScalar(w, field.type, value, where);
  }
}

/** Writes obj's set fields; `skip` names a key that is not a field (an Any's "@type"). */
export function encodeMessage(root: protobuf.Root, type: protobuf.Type, obj: object, w: protobuf.Writer, where = type.name, skip?: string): void {
  for (const key in obj) {
    const value = (obj as Record<string, unknown>)[key];
    if (value === undefined || value === null || key === skip) continue;
    const field = type.fields[key];
    if (!field) throw new TypeError(`${where}: ${type.fullName.slice(1)} has no field ${JSON.stringify(key)}`);
    if (!field.resolved) field.resolve();
    const at = `${where}.${key}`;
    if (field.map) {
      const keyType = (field as unknown as protobuf.MapField).keyType;
      for (const [k, v] of Object.entries(value as object)) {
        const entry = protobuf.Writer.create();
        entry.uint32((1 << 3) | wireType(keyType));
        writeScalar(entry, keyType, k, at);
        writeField(root, Object.assign(Object.create(field), { id: 2, map: false }), v, entry, `${at}[${k}]`);
        w.uint32((field.id << 3) | WIRE.bytes).bytes(entry.finish());
      }
    } else if (field.repeated) {
      if (!Array.isArray(value)) throw new TypeError(`${at}: expected a list`);
      for (let i = 0; i < value.length; i++) writeField(root, field, value[i], w, `${at}[${i}]`);
    } else {
      writeField(root, field, value, w, at);
    }
  }
}

/** Encodes `obj` (protobufjs object form) as a message of the type `typeUrl` names. */
export function encode(root: protobuf.Root, typeUrl: string, obj: object): Uint8Array {
  const w = protobuf.Writer.create();
  encodeMessage(root, typeOfUrl(root, typeUrl), obj, w, typeUrl.slice(typeUrl.lastIndexOf(".") + 1));
  return w.finish();
}
