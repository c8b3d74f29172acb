// Just enough of the ADS wire format for a load generator that must not be the bottleneck: requests
// are written by hand, responses are scanned for the fields a client needs (type, nonce, version,
// resource names) and resource bodies are left as bytes. 1,000 Envoys' worth of full decoding would
// cost the client more than the control plane spends.

/** Protobuf writer for the few request fields we send. */
class Out {
  private parts: Buffer[] = [];
  private static varint(n: number): Buffer {
    const bytes: number[] = [];
    while (n > 127) { bytes.push((n & 127) | 128); n = Math.floor(n / 128); }
    bytes.push(n);
    return Buffer.from(bytes);
  }
  bytes(field: number, value: Buffer): this {
    this.parts.push(Out.varint((field << 3) | 2), Out.varint(value.length), value);
    return this;
  }
  string(field: number, value: string): this {
    return this.bytes(field, Buffer.from(value));
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function nodeBytes(id: string, instanceIps: string): Buffer {
  // Node{id=1, cluster=2, metadata=3: Struct{fields=1: map entry {key=1, value=2: Value{string_value=3}}}}
  const value = new Out().string(3, instanceIps).done();
  const entry = new Out().string(1, "INSTANCE_IPS").bytes(2, value).done();
  return new Out().string(1, id).string(2, "bench").bytes(3, new Out().bytes(1, entry).done()).done();
}

export interface DeltaRequest {
  node?: { id: string; instanceIps: string };
  typeUrl: string;
  subscribe?: string[];
  nonce?: string;
}

/** DeltaDiscoveryRequest: node=1, type_url=2, resource_names_subscribe=3, response_nonce=6. */
export function encodeDeltaRequest(r: DeltaRequest): Buffer {
  const out = new Out();
  if (r.node) out.bytes(1, nodeBytes(r.node.id, r.node.instanceIps));
  out.string(2, r.typeUrl);
  for (const name of r.subscribe ?? []) out.string(3, name);
  if (r.nonce) out.string(6, r.nonce);
  return out.done();
}

export interface SotwRequest {
  node?: { id: string; instanceIps: string };
  typeUrl: string;
  version?: string;
  names?: string[];
  nonce?: string;
}

/** DiscoveryRequest: version_info=1, node=2, resource_names=3, type_url=4, response_nonce=5. */
export function encodeSotwRequest(r: SotwRequest): Buffer {
  const out = new Out();
  if (r.version) out.string(1, r.version);
  if (r.node) out.bytes(2, nodeBytes(r.node.id, r.node.instanceIps));
  for (const name of r.names ?? []) out.string(3, name);
  out.string(4, r.typeUrl);
  if (r.nonce) out.string(5, r.nonce);
  return out.done();
}

/**
 * Walks the fields of a message in buf[from, to): after next() returns true, `field`, `wire`,
 * `start` and `end` describe one field. A cursor, not callbacks: this runs for every resource of
 * every response, and closures per call cost more than the scan.
 */
class Fields {
  field = 0;
  wire = 0;
  start = 0;
  end = 0;
  private i: number;

  constructor(private readonly buf: Buffer, from: number, private readonly to: number) {
    this.i = from;
  }

  private varint(): number {
    let n = 0, mul = 1, b: number;
    do { b = this.buf[this.i++]!; n += (b & 127) * mul; mul *= 128; } while (b & 128);
    return n;
  }

  next(): boolean {
    if (this.i >= this.to) return false;
    const tag = this.varint();
    this.field = Math.floor(tag / 8);
    this.wire = tag & 7;
    if (this.wire === 0) { this.start = this.i; this.varint(); this.end = this.i; }
    else if (this.wire === 2) { const len = this.varint(); this.start = this.i; this.end = this.i += len; }
    else if (this.wire === 1) { this.start = this.i; this.end = this.i += 8; }
    else if (this.wire === 5) { this.start = this.i; this.end = this.i += 4; }
    else throw new Error(`wire type ${this.wire} not expected`);
    return true;
  }
}

export interface ScannedResource {
  name: string;
  /** The resource's encoded body (the Any's value), not decoded. */
  body: Buffer;
}

/** A response's header fields; its resources are only located (offsets), read on demand by resources(). */
export interface ScannedResponse {
  typeUrl: string;
  nonce: string;
  version: string;
  removed: string[];
  resources(): ScannedResource[];
  /** The resources' names only. */
  names(): string[];
}

/** The Any's value inside an Any message's bytes. */
function anyValue(buf: Buffer, s: number, e: number): Buffer {
  const f = new Fields(buf, s, e);
  while (f.next()) if (f.field === 2) return buf.subarray(f.start, f.end);
  return Buffer.alloc(0);
}

/** Field 1 of an encoded message when it is written first, as the encoder writes a resource's name. */
function leadingName(buf: Buffer): string {
  const f = new Fields(buf, 0, buf.length);
  return f.next() && f.field === 1 ? buf.toString("utf8", f.start, f.end) : "";
}

interface Layout {
  version: number;
  typeUrl: number;
  nonce: number;
  removed: number;
  resource: (buf: Buffer, s: number, e: number, withBody: boolean) => ScannedResource;
}

function scanResponse(buf: Buffer, layout: Layout): ScannedResponse {
  const spans: number[] = [];
  const r: ScannedResponse = {
    typeUrl: "", nonce: "", version: "", removed: [],
    resources: () => { const out: ScannedResource[] = []; for (let k = 0; k < spans.length; k += 2) out.push(layout.resource(buf, spans[k]!, spans[k + 1]!, true)); return out; },
    names: () => { const out: string[] = []; for (let k = 0; k < spans.length; k += 2) out.push(layout.resource(buf, spans[k]!, spans[k + 1]!, false).name); return out; },
  };
  const f = new Fields(buf, 0, buf.length);
  while (f.next()) {
    if (f.field === 2) spans.push(f.start, f.end);
    else if (f.field === layout.version) r.version = buf.toString("utf8", f.start, f.end);
    else if (f.field === layout.typeUrl) r.typeUrl = buf.toString("utf8", f.start, f.end);
    else if (f.field === layout.nonce) r.nonce = buf.toString("utf8", f.start, f.end);
    else if (f.field === layout.removed) r.removed.push(buf.toString("utf8", f.start, f.end));
  }
  return r;
}

/** DeltaDiscoveryResponse: system_version_info=1, resources=2 {version=1, resource=2 Any, name=3}, type_url=4, nonce=5, removed_resources=6. */
export function scanDeltaResponse(buf: Buffer): ScannedResponse {
  return scanResponse(buf, {
    version: 1, typeUrl: 4, nonce: 5, removed: 6,
    resource(b, s, e, withBody) {
      let name = "", body: Buffer = EMPTY;
      const f = new Fields(b, s, e);
      while (f.next()) {
        if (f.field === 3) name = b.toString("utf8", f.start, f.end);
        else if (f.field === 2 && withBody) body = anyValue(b, f.start, f.end);
      }
      return { name, body };
    },
  });
}

/** DiscoveryResponse: version_info=1, resources=2 Any, type_url=4, nonce=5. Names come from the bodies (field 1 for every type here). */
export function scanSotwResponse(buf: Buffer): ScannedResponse {
  return scanResponse(buf, {
    version: 1, typeUrl: 4, nonce: 5, removed: -1,
    resource(b, s, e) {
      const body = anyValue(b, s, e);
      return { name: leadingName(body), body };
    },
  });
}

const EMPTY = Buffer.alloc(0);
