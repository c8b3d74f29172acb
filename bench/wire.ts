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

/** Calls `fn(field, wireType, start, end)` for each field of the message in buf[from, to). */
function scan(buf: Buffer, from: number, to: number, fn: (field: number, wire: number, start: number, end: number) => void): void {
  let i = from;
  const varint = (): number => {
    let n = 0, mul = 1, b: number;
    do { b = buf[i++]!; n += (b & 127) * mul; mul *= 128; } while (b & 128);
    return n;
  };
  while (i < to) {
    const tag = varint();
    const field = Math.floor(tag / 8), wire = tag & 7;
    if (wire === 0) { const s = i; varint(); fn(field, wire, s, i); }
    else if (wire === 2) { const len = varint(); fn(field, wire, i, i + len); i += len; }
    else if (wire === 1) { fn(field, wire, i, i + 8); i += 8; }
    else if (wire === 5) { fn(field, wire, i, i + 4); i += 4; }
    else throw new Error(`wire type ${wire} not expected`);
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
}

/** The Any's value inside an Any message's bytes. */
function anyValue(buf: Buffer, s: number, e: number): Buffer {
  let body: Buffer = Buffer.alloc(0);
  scan(buf, s, e, (f, _w, vs, ve) => { if (f === 2) body = buf.subarray(vs, ve); });
  return body;
}

/** Field 1 of an encoded message when it is written first, as the encoder writes a resource's name. */
function leadingName(buf: Buffer): string {
  if (buf[0] !== 0x0a) return "";
  let len = 0, mul = 1, i = 1, b: number;
  do { b = buf[i++]!; len += (b & 127) * mul; mul *= 128; } while (b & 128);
  return buf.toString("utf8", i, i + len);
}

function scanResponse(buf: Buffer, fields: { version: number; typeUrl: number; nonce: number; removed?: number }, resource: (s: number, e: number) => ScannedResource): ScannedResponse {
  const spans: [number, number][] = [];
  const r: ScannedResponse = { typeUrl: "", nonce: "", version: "", removed: [], resources: () => spans.map(([s, e]) => resource(s, e)) };
  scan(buf, 0, buf.length, (f, _w, s, e) => {
    if (f === 2) spans.push([s, e]);
    else if (f === fields.version) r.version = buf.toString("utf8", s, e);
    else if (f === fields.typeUrl) r.typeUrl = buf.toString("utf8", s, e);
    else if (f === fields.nonce) r.nonce = buf.toString("utf8", s, e);
    else if (f === fields.removed) r.removed.push(buf.toString("utf8", s, e));
  });
  return r;
}

/** DeltaDiscoveryResponse: system_version_info=1, resources=2 {version=1, resource=2 Any, name=3}, type_url=4, nonce=5, removed_resources=6. */
export function scanDeltaResponse(buf: Buffer): ScannedResponse {
  return scanResponse(buf, { version: 1, typeUrl: 4, nonce: 5, removed: 6 }, (s, e) => {
    let name = "", body: Buffer = Buffer.alloc(0);
    scan(buf, s, e, (f, _w, rs, re) => {
      if (f === 3) name = buf.toString("utf8", rs, re);
      else if (f === 2) body = anyValue(buf, rs, re);
    });
    return { name, body };
  });
}

/** DiscoveryResponse: version_info=1, resources=2 Any, type_url=4, nonce=5. Names come from the bodies (field 1 for every type here). */
export function scanSotwResponse(buf: Buffer): ScannedResponse {
  return scanResponse(buf, { version: 1, typeUrl: 4, nonce: 5 }, (s, e) => {
    const body = anyValue(buf, s, e);
    return { name: leadingName(body), body };
  });
}
