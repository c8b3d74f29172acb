// The proxy's node as the transport hands it to the rest of the control plane: plain JSON, no protobuf
// Struct. The node comes from an unauthenticated client, so its id, cluster and metadata are checked
// against the limits here, and metadata is converted without recursion and with a byte budget.
import type { XdsNode } from "../../identity/proxy.ts";
import { checkLength, invalid, type Refusal, type XdsLimits } from "./limits.ts";
import type { Node, Struct, StructValue } from "./requests.ts";

/** Numbers, booleans and nulls count this much against maxMetadataBytes, as does every entry. */
const ENTRY_BYTES = 8;

/** An own property even for keys such as "__proto__", which plain assignment would treat specially. */
function setKey(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * google.protobuf.Struct as @grpc/proto-loader decodes it (camelCase oneof fields even with keepCase)
 * to plain JSON. Containers are filled from an explicit stack, so hostile nesting cannot exhaust the
 * call stack; depth and size are bounded by the limits.
 */
export function structToJson(s: Struct | undefined, limits: Pick<XdsLimits, "maxMetadataBytes" | "maxMetadataDepth">, what = "node.metadata"): { json: Record<string, unknown> } | { refusal: Refusal } {
  let bytes = 0;
  const root: Record<string, unknown> = {};
  type Work = { depth: number; fill: Record<string, unknown> | unknown[]; from: [string, StructValue | undefined][] };
  const stack: Work[] = [{ depth: 1, fill: root, from: Object.entries(s?.fields ?? {}) }];
  while (stack.length > 0) {
    const work = stack.pop()!;
    if (work.depth > limits.maxMetadataDepth) return { refusal: invalid(`${what} nests deeper than the limit of ${limits.maxMetadataDepth} levels`) };
    for (const [key, v] of work.from) {
      bytes += ENTRY_BYTES + (Array.isArray(work.fill) ? 0 : Buffer.byteLength(key, "utf8"));
      let value: unknown = null;
      switch (v?.kind) {
        case "stringValue": value = String(v.stringValue ?? ""); bytes += Buffer.byteLength(value as string, "utf8"); break;
        case "numberValue": value = Number(v.numberValue); break;
        case "boolValue": value = Boolean(v.boolValue); break;
        case "structValue": {
          const fields = v.structValue?.fields ?? {};
          value = {};
          stack.push({ depth: work.depth + 1, fill: value as Record<string, unknown>, from: Object.entries(fields) });
          break;
        }
        case "listValue": {
          const values = v.listValue?.values ?? [];
          value = [];
          stack.push({ depth: work.depth + 1, fill: value as unknown[], from: values.map((x, i) => [String(i), x]) });
          break;
        }
      }
      if (bytes > limits.maxMetadataBytes) return { refusal: invalid(`${what} is over the limit of ${limits.maxMetadataBytes} bytes`) };
      if (Array.isArray(work.fill)) work.fill.push(value);
      else setKey(work.fill, key, value);
    }
  }
  return { json: root };
}

/** Converts the node of a first DiscoveryRequest (as @grpc/proto-loader decodes it) to an XdsNode, or says which limit it breaks. */
export function nodeFromRequest(node: Node | undefined, limits: XdsLimits): { node: XdsNode } | { refusal: Refusal } {
  const id = typeof node?.id === "string" ? node.id : "";
  const cluster = typeof node?.cluster === "string" ? node.cluster : "";
  const tooLong = checkLength("node.id", id, limits.maxNodeIdBytes) ?? checkLength("node.cluster", cluster, limits.maxNodeIdBytes);
  if (tooLong) return { refusal: tooLong };
  const metadata = structToJson(node?.metadata, limits);
  if ("refusal" in metadata) return metadata;
  return { node: { id, cluster, metadata: metadata.json } };
}
