// Discovery responses as bytes. A resource's wire form (its Any, and its delta Resource wrapper) is
// encoded once and shared by every stream that sends it; a response is its header fields around
// those shared bytes, so a stream costs a copy, not a protobuf encoding of thousands of resources.
// The gRPC server passes Buffers through unchanged (xds/server/grpc-server.ts).

function varint(n: number, out: number[]): void {
  while (n > 127) { out.push((n & 127) | 128); n = Math.floor(n / 128); }
  out.push(n);
}

/** Tag and length of a length-delimited field. */
function head(field: number, length: number): Buffer {
  const out: number[] = [];
  varint((field << 3) | 2, out);
  varint(length, out);
  return Buffer.from(out);
}

function stringField(field: number, value: string, parts: Buffer[]): void {
  if (value === "") return;
  const b = Buffer.from(value);
  parts.push(head(field, b.length), b);
}

function bytesField(field: number, value: Buffer, parts: Buffer[]): void {
  parts.push(head(field, value.length), value);
}

/** google.protobuf.Any{type_url = 1, value = 2}. */
function anyBytes(typeUrl: string, value: Buffer): Buffer {
  const parts: Buffer[] = [];
  stringField(1, typeUrl, parts);
  if (value.length > 0) bytesField(2, value, parts);
  return Buffer.concat(parts);
}

/** A resource as field 2 of a DiscoveryResponse (its Any), tag and length included. */
export function sotwEntry(typeUrl: string, value: Buffer): Buffer {
  const any = anyBytes(typeUrl, value);
  return Buffer.concat([head(2, any.length), any]);
}

/** A resource as field 2 of a DeltaDiscoveryResponse (Resource{version = 1, resource = 2, name = 3}), tag and length included. */
export function deltaEntry(typeUrl: string, value: Buffer, name: string, version: string): Buffer {
  const resource: Buffer[] = [];
  stringField(1, version, resource);
  bytesField(2, anyBytes(typeUrl, value), resource);
  stringField(3, name, resource);
  const delta = Buffer.concat(resource);
  return Buffer.concat([head(2, delta.length), delta]);
}

/** DiscoveryResponse{version_info = 1, resources = 2, type_url = 4, nonce = 5}; `entries` from responseEntries().sotw. */
export function sotwResponse(version: string, typeUrl: string, nonce: string, entries: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  stringField(1, version, parts);
  for (const e of entries) parts.push(e);
  stringField(4, typeUrl, parts);
  stringField(5, nonce, parts);
  return Buffer.concat(parts);
}

/**
 * DeltaDiscoveryResponse{system_version_info = 1, resources = 2, type_url = 4, nonce = 5,
 * removed_resources = 6}; `entries` from responseEntries().delta.
 */
export function deltaResponse(systemVersion: string, typeUrl: string, nonce: string, entries: readonly Buffer[], removed: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  stringField(1, systemVersion, parts);
  for (const e of entries) parts.push(e);
  stringField(4, typeUrl, parts);
  stringField(5, nonce, parts);
  for (const name of removed) stringField(6, name, parts);
  return Buffer.concat(parts);
}
