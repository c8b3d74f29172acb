// What one xDS client may ask of the control plane. Any client that can reach the xDS port is
// served without authentication, so every value a request carries is bounded before it is used,
// stored or logged; a request over a limit ends its stream with a status that names the limit.
import * as grpc from "@grpc/grpc-js";
import type { AdsRequest, DeltaDiscoveryRequest, DiscoveryRequest } from "./requests.ts";

export interface XdsLimits {
  /** Largest request message grpc-js decodes (bytes); a bigger one ends the stream with RESOURCE_EXHAUSTED. */
  maxRequestBytes: number;
  /** node.id and node.cluster (UTF-8 bytes). */
  maxNodeIdBytes: number;
  /** node.metadata: keys and string values (UTF-8 bytes), 8 per number, boolean or null. */
  maxMetadataBytes: number;
  /** node.metadata nesting (structs and lists). */
  maxMetadataDepth: number;
  maxTypeUrlBytes: number;
  /** response_nonce, version_info and the versions in initial_resource_versions. */
  maxNonceBytes: number;
  maxResourceNameBytes: number;
  /** Names in one request (resource_names, resource_names_subscribe + _unsubscribe, initial_resource_versions). */
  maxResourceNamesPerRequest: number;
  /** Names a delta stream may hold subscribed per type. */
  maxSubscribedNames: number;
  /** Distinct type URLs one stream may ask for. */
  maxTypesPerStream: number;
  /** A NACK's error_detail.message is cut to this many characters before anything stores or reports it. */
  maxErrorDetailChars: number;
  /** Node ids one node agent may report for, and IPs in one of its reports (agent-protocol.ts). */
  maxAgentNodeIds: number;
  maxAgentIps: number;
}

export const DEFAULT_XDS_LIMITS: Readonly<XdsLimits> = Object.freeze({
  maxRequestBytes: 4 * 1024 * 1024,
  maxNodeIdBytes: 1024,
  maxMetadataBytes: 64 * 1024,
  maxMetadataDepth: 16,
  maxTypeUrlBytes: 256,
  maxNonceBytes: 128,
  maxResourceNameBytes: 1024,
  maxResourceNamesPerRequest: 100_000,
  maxSubscribedNames: 100_000,
  maxTypesPerStream: 16,
  maxErrorDetailChars: 2048,
  maxAgentNodeIds: 64,
  maxAgentIps: 256,
});

/** Why a stream is ended: a gRPC status and a message for the client (and the log). */
export interface Refusal {
  code: grpc.status;
  details: string;
}

export const invalid = (details: string): Refusal => ({ code: grpc.status.INVALID_ARGUMENT, details });
/** "INVALID_ARGUMENT" for 3: how logs name a status. */
export const statusName = (code: grpc.status): string => grpc.status[code] ?? String(code);
export const exhausted = (details: string): Refusal => ({ code: grpc.status.RESOURCE_EXHAUSTED, details });

/** `what` as a refusal if it is longer than `limit` bytes; the check costs O(limit), not O(value). */
export function checkLength(what: string, value: string, limit: number): Refusal | undefined {
  // A UTF-8 character is at most 3 bytes per UTF-16 unit, so short strings need no byte count.
  if (value.length * 3 <= limit) return undefined;
  const bytes = Buffer.byteLength(value, "utf8");
  return bytes > limit ? invalid(`${what} is ${bytes} bytes, over the limit of ${limit} bytes`) : undefined;
}

/** Each name within the length limit and at most maxResourceNamesPerRequest of them; `total` counts names already checked in this request. */
export function checkNames(field: string, names: readonly unknown[], limits: XdsLimits, total = 0): Refusal | undefined {
  if (total + names.length > limits.maxResourceNamesPerRequest) {
    return exhausted(`the request names ${total + names.length} resources, over the limit of ${limits.maxResourceNamesPerRequest} per request`);
  }
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    if (typeof name !== "string") return invalid(`${field}[${i}] is not a string`);
    const r = checkLength(`${field}[${i}]`, name, limits.maxResourceNameBytes);
    if (r) return r;
  }
  return undefined;
}

/** The fields every ADS request carries, both flavours. */
export function checkCommon(req: AdsRequest, limits: XdsLimits): Refusal | undefined {
  return checkLength("type_url", String(req.type_url ?? ""), limits.maxTypeUrlBytes)
    ?? checkLength("response_nonce", String(req.response_nonce ?? ""), limits.maxNonceBytes);
}

/** A state-of-the-world DiscoveryRequest. */
export function checkSotwRequest(req: DiscoveryRequest, limits: XdsLimits): Refusal | undefined {
  return checkCommon(req, limits)
    ?? checkLength("version_info", String(req.version_info ?? ""), limits.maxNonceBytes)
    ?? checkNames("resource_names", req.resource_names ?? [], limits);
}

/** A DeltaDiscoveryRequest. */
export function checkDeltaRequest(req: DeltaDiscoveryRequest, limits: XdsLimits): Refusal | undefined {
  const subscribe: unknown[] = req.resource_names_subscribe ?? [];
  const unsubscribe: unknown[] = req.resource_names_unsubscribe ?? [];
  const initial = Object.entries<unknown>(req.initial_resource_versions ?? {});
  const common = checkCommon(req, limits)
    ?? checkNames("resource_names_subscribe", subscribe, limits)
    ?? checkNames("resource_names_unsubscribe", unsubscribe, limits, subscribe.length)
    ?? checkNames("initial_resource_versions", initial.map(([name]) => name), limits, subscribe.length + unsubscribe.length);
  if (common) return common;
  for (const [name, version] of initial) {
    const r = checkLength(`initial_resource_versions[${JSON.stringify(name)}]`, String(version ?? ""), limits.maxNonceBytes);
    if (r) return r;
  }
  return undefined;
}

/** A NACK's error_detail.message, cut to the limit with a marker saying how much was cut. */
export function errorDetailOf(req: AdsRequest, limits: XdsLimits): string | undefined {
  if (!req.error_detail) return undefined;
  const message = req.error_detail.message;
  const text = typeof message === "string" ? message : String(message ?? "");
  if (text.length <= limits.maxErrorDetailChars) return text;
  return `${text.slice(0, limits.maxErrorDetailChars)}… [${text.length - limits.maxErrorDetailChars} more characters]`;
}
