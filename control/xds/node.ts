// The proxy's node as the transport hands it to the rest of the control plane: plain JSON, no protobuf Struct.

export interface XdsNode {
  id: string;
  cluster: string;
  /** node.metadata with google.protobuf.Struct unwrapped to plain JSON values. */
  metadata: Record<string, unknown>;
}

type StructValue = { kind?: string; [k: string]: unknown };

// protobufjs's built-in google.protobuf.Struct uses camelCase field names even with keepCase.
function valueToJson(v: StructValue | undefined): unknown {
  if (!v) return null;
  switch (v.kind) {
    case "stringValue": return v.stringValue;
    case "numberValue": return Number(v.numberValue);
    case "boolValue": return Boolean(v.boolValue);
    case "structValue": return structToJson(v.structValue as { fields?: Record<string, StructValue> });
    case "listValue": return ((v.listValue as { values?: StructValue[] })?.values ?? []).map(valueToJson);
    default: return null;
  }
}

export function structToJson(s: { fields?: Record<string, StructValue> } | undefined | null): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = valueToJson(v);
  return out;
}

/** Converts the node of a DiscoveryRequest (as @grpc/proto-loader decodes it) to an XdsNode. */
export function nodeFromRequest(node: any): XdsNode {
  return {
    id: typeof node?.id === "string" ? node.id : "",
    cluster: typeof node?.cluster === "string" ? node.cluster : "",
    metadata: structToJson(node?.metadata),
  };
}
