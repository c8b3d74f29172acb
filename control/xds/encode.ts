// Protobuf encoding of generated resources, driven by protobufjs reflection but walking only the
// fields an object sets. protobufjs's own fromObject+encode visits every field of a type (a Cluster
// has ~60) and silently drops unknown names; this is several times faster and treats an unknown
// field as the generation bug it is.
import protobuf from "protobufjs";
import { loadEnvoyProtos } from "./protos.ts";

/**
 * Marks a deep-frozen object that recurs in many resources (generation/envoy-objects.ts encodeOnce).
 * A registered symbol, so generation can set it without depending on the transport.
 */
export const ENCODE_ONCE = Symbol.for("multiplane.encode-once");

const WIRE = { varint: 0, fixed64: 1, bytes: 2, fixed32: 5 } as const;

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

/**
 * Encodes objects in protobufjs object form (snake_case, enums as strings, nested Any as
 * {"@type": ...}) with the Envoy types of one protobufjs root. Each control plane owns one; its
 * caches (type lookups, bytes of shared constants) live and die with it.
 */
export class Encoder {
  readonly root: protobuf.Root;
  private readonly any: protobuf.Type;
  // protobufjs lookups walk the namespace tree: resolve each type once.
  private readonly types = new Map<string, protobuf.Type>();
  // Shared constants (e.g. the loop guard's ECDS reference, in every guarded chain) carry the
  // ENCODE_ONCE mark: their bytes are computed once per encoder.
  private readonly constantBytes = new WeakMap<object, Uint8Array>();

  constructor(root: protobuf.Root = loadEnvoyProtos()) {
    this.root = root;
    this.any = root.lookupType("google.protobuf.Any");
  }

  /** Encodes `obj` as a message of the type `typeUrl` names. */
  encode(typeUrl: string, obj: object): Uint8Array {
    const w = protobuf.Writer.create();
    this.message(this.typeOfUrl(typeUrl), obj, w, typeUrl.slice(typeUrl.lastIndexOf(".") + 1));
    return w.finish();
  }

  /** `obj` packed into a google.protobuf.Any of type `typeUrl`. */
  packAny(typeUrl: string, obj: object): { type_url: string; value: Buffer } {
    const bytes = this.encode(typeUrl, obj);
    return { type_url: typeUrl, value: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
  }

  typeOfUrl(typeUrl: string): protobuf.Type {
    let type = this.types.get(typeUrl);
    if (!type) this.types.set(typeUrl, (type = this.root.lookupType(typeUrl.slice(typeUrl.lastIndexOf("/") + 1))));
    return type;
  }

  private encodeAny(value: any, w: protobuf.Writer, where: string): void {
    const typeUrl = value["@type"];
    if (typeof typeUrl === "string") {
      w.uint32((1 << 3) | WIRE.bytes).string(typeUrl);
      w.uint32((2 << 3) | WIRE.bytes).fork();
      this.message(this.typeOfUrl(typeUrl), value, w, where, "@type");
      w.ldelim();
      return;
    }
    // Already packed: {type_url, value} with value as bytes ("" for an empty config).
    w.uint32((1 << 3) | WIRE.bytes).string(String(value.type_url));
    const bytes = typeof value.value === "string" ? Buffer.from(value.value, "base64") : value.value;
    if (bytes?.length) w.uint32((2 << 3) | WIRE.bytes).bytes(bytes);
  }

  private messageField(id: number, type: protobuf.Type, value: object, w: protobuf.Writer, where: string): void {
    if ((value as Record<symbol, unknown>)[ENCODE_ONCE] === true) {
      let bytes = this.constantBytes.get(value);
      if (!bytes) {
        const inner = protobuf.Writer.create();
        if (type === this.any) this.encodeAny(value, inner, where);
        else this.message(type, value, inner, where);
        this.constantBytes.set(value, (bytes = inner.finish()));
      }
      w.uint32((id << 3) | WIRE.bytes).bytes(bytes);
      return;
    }
    w.uint32((id << 3) | WIRE.bytes).fork();
    if (type === this.any) this.encodeAny(value, w, where);
    else this.message(type, value, w, where);
    w.ldelim();
  }

  private field(field: protobuf.Field, value: unknown, w: protobuf.Writer, where: string): void {
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Type) {
      if (typeof value !== "object" || value === null) throw new TypeError(`${where}: expected a ${rt.name} object, got ${JSON.stringify(value)}`);
      this.messageField(field.id, rt, value, w, where);
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
  private message(type: protobuf.Type, obj: object, w: protobuf.Writer, where: string, skip?: string): void {
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
          this.field(Object.assign(Object.create(field), { id: 2, map: false }), v, entry, `${at}[${k}]`);
          w.uint32((field.id << 3) | WIRE.bytes).bytes(entry.finish());
        }
      } else if (field.repeated) {
        if (!Array.isArray(value)) throw new TypeError(`${at}: expected a list`);
        for (let i = 0; i < value.length; i++) this.field(field, value[i], w, `${at}[${i}]`);
      } else {
        this.field(field, value, w, at);
      }
    }
  }
}
