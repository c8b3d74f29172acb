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

/** The path of the value being written, as error messages name it; built only when one is thrown. */
class Path {
  private root = "";
  /** Field names, list indexes, and map keys (as one-element arrays). */
  private readonly segments: (string | number | [string])[] = [];

  reset(root: string): void {
    this.root = root;
    this.segments.length = 0;
  }

  push(segment: string | number | [string]): void {
    this.segments.push(segment);
  }

  pop(): void {
    this.segments.pop();
  }

  toString(): string {
    let s = this.root;
    for (const seg of this.segments) s += typeof seg === "number" ? `[${seg}]` : typeof seg === "string" ? `.${seg}` : `[${seg[0]}]`;
    return s;
  }
}

function writeScalar(w: protobuf.Writer, type: string, value: unknown, where: Path): void {
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

const enum Kind { Message, Enum, Scalar }

/** How one field is written: its kind, its tag (number and wire type) and what it refers to. */
interface FieldPlan {
  readonly field: protobuf.Field;
  readonly kind: Kind;
  readonly tag: number;
  /** The message type of a message field, and its plan once worked out. */
  readonly type?: protobuf.Type;
  typePlan?: TypePlan;
  /** The values of an enum field, by name, and the enum's name. */
  readonly values?: Readonly<Record<string, number>>;
  readonly enumName?: string;
  /** The scalar type of a scalar field (protobufjs's name, which is also the Writer's method). */
  readonly scalar: string;
  /** A map field's values, written as field 2 of each entry. */
  mapValue?: FieldPlan;
}

/** A message type's field plans, by field name, filled in as fields are met. */
interface TypePlan {
  readonly type: protobuf.Type;
  readonly fields: Map<string, FieldPlan>;
}

function fieldPlan(field: protobuf.Field, id: number): FieldPlan {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return { field, kind: Kind.Message, tag: (id << 3) | WIRE.bytes, type: rt, scalar: "" };
  if (rt instanceof protobuf.Enum) return { field, kind: Kind.Enum, tag: (id << 3) | WIRE.varint, values: rt.values, enumName: rt.name, scalar: "" };
  return { field, kind: Kind.Scalar, tag: (id << 3) | wireType(field.type), scalar: field.type };
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
  private readonly types = new Map<string, TypePlan>();
  // Shared constants (e.g. the loop guard's ECDS reference, in every guarded chain) carry the
  // ENCODE_ONCE mark: their bytes are computed once per encoder.
  private readonly constantBytes = new WeakMap<object, Uint8Array>();
  // Where the encoder is, for error messages: a stack, not a string per field (that was most of the garbage).
  private readonly where = new Path();
  // How each field is written, per message type: reflection asked once, not per value.
  private readonly plans = new Map<protobuf.Type, TypePlan>();

  constructor(root: protobuf.Root = loadEnvoyProtos()) {
    this.root = root;
    this.any = root.lookupType("google.protobuf.Any");
  }

  /** Encodes `obj` as a message of the type `typeUrl` names. */
  encode(typeUrl: string, obj: object): Uint8Array {
    const w = protobuf.Writer.create();
    this.where.reset(typeUrl.slice(typeUrl.lastIndexOf(".") + 1));
    this.message(this.planOfUrl(typeUrl), obj, w);
    return w.finish();
  }

  /** `obj` packed into a google.protobuf.Any of type `typeUrl`. */
  packAny(typeUrl: string, obj: object): { type_url: string; value: Buffer } {
    const bytes = this.encode(typeUrl, obj);
    return { type_url: typeUrl, value: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
  }

  private planOfUrl(typeUrl: string): TypePlan {
    let plan = this.types.get(typeUrl);
    if (!plan) this.types.set(typeUrl, (plan = this.typePlan(this.root.lookupType(typeUrl.slice(typeUrl.lastIndexOf("/") + 1)))));
    return plan;
  }

  private typePlan(type: protobuf.Type): TypePlan {
    let plan = this.plans.get(type);
    if (!plan) this.plans.set(type, (plan = { type, fields: new Map() }));
    return plan;
  }

  private encodeAny(value: any, w: protobuf.Writer): void {
    const typeUrl = value["@type"];
    if (typeof typeUrl === "string") {
      w.uint32((1 << 3) | WIRE.bytes).string(typeUrl);
      w.uint32((2 << 3) | WIRE.bytes).fork();
      this.message(this.planOfUrl(typeUrl), value, w, "@type");
      w.ldelim();
      return;
    }
    // Already packed: {type_url, value} with value as bytes ("" for an empty config).
    w.uint32((1 << 3) | WIRE.bytes).string(String(value.type_url));
    const bytes = typeof value.value === "string" ? Buffer.from(value.value, "base64") : value.value;
    if (bytes?.length) w.uint32((2 << 3) | WIRE.bytes).bytes(bytes);
  }

  private messageField(plan: FieldPlan, value: object, w: protobuf.Writer): void {
    const type = plan.type!;
    const typePlan = (plan.typePlan ??= this.typePlan(type));
    if ((value as Record<symbol, unknown>)[ENCODE_ONCE] === true) {
      let bytes = this.constantBytes.get(value);
      if (!bytes) {
        const inner = protobuf.Writer.create();
        if (type === this.any) this.encodeAny(value, inner);
        else this.message(typePlan, value, inner);
        this.constantBytes.set(value, (bytes = inner.finish()));
      }
      w.uint32(plan.tag).bytes(bytes);
      return;
    }
    w.uint32(plan.tag).fork();
    if (type === this.any) this.encodeAny(value, w);
    else this.message(typePlan, value, w);
    w.ldelim();
  }

  private field(plan: FieldPlan, value: unknown, w: protobuf.Writer): void {
    switch (plan.kind) {
      case Kind.Message:
        if (typeof value !== "object" || value === null) throw new TypeError(`${this.where}: expected a ${plan.type!.name} object, got ${JSON.stringify(value)}`);
        this.messageField(plan, value, w);
        return;
      case Kind.Enum: {
        const n = typeof value === "number" ? value : plan.values![value as string];
        if (n === undefined) throw new TypeError(`${this.where}: ${JSON.stringify(value)} is not a ${plan.enumName} value`);
        w.uint32(plan.tag).int32(n);
        return;
      }
      default:
        w.uint32(plan.tag);
        writeScalar(w, plan.scalar, value, this.where);
    }
  }

  /** The plan of a type's field `key`, worked out on first use; undefined when there is no such field. */
  private fieldOf(tp: TypePlan, key: string): FieldPlan | undefined {
    const field = tp.type.fields[key];
    if (!field) return undefined;
    if (!field.resolved) field.resolve();
    const plan = fieldPlan(field, field.id);
    if (field.map) plan.mapValue = fieldPlan(field, 2);
    tp.fields.set(key, plan);
    return plan;
  }

  /** Writes obj's set fields; `skip` names a key that is not a field (an Any's "@type"). */
  private message(tp: TypePlan, obj: object, w: protobuf.Writer, skip?: string): void {
    const where = this.where;
    for (const key in obj) {
      const value = (obj as Record<string, unknown>)[key];
      if (value === undefined || value === null || key === skip) continue;
      const plan = tp.fields.get(key) ?? this.fieldOf(tp, key);
      if (!plan) throw new TypeError(`${where}: ${tp.type.fullName.slice(1)} has no field ${JSON.stringify(key)}`);
      where.push(key);
      if (plan.mapValue) {
        const keyType = (plan.field as unknown as protobuf.MapField).keyType;
        for (const [k, v] of Object.entries(value as object)) {
          const entry = protobuf.Writer.create();
          entry.uint32((1 << 3) | wireType(keyType));
          writeScalar(entry, keyType, k, where);
          where.push([k]);
          this.field(plan.mapValue, v, entry);
          where.pop();
          w.uint32((plan.field.id << 3) | WIRE.bytes).bytes(entry.finish());
        }
      } else if (plan.field.repeated) {
        if (!Array.isArray(value)) throw new TypeError(`${where}: expected a list`);
        for (let i = 0; i < value.length; i++) {
          where.push(i);
          this.field(plan, value[i], w);
          where.pop();
        }
      } else {
        this.field(plan, value, w);
      }
      where.pop();
    }
  }
}
