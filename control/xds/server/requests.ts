// The ADS requests as @grpc/proto-loader decodes them with protos.ts's options (keepCase, longs and
// enums as strings, oneofs, no defaults): the __Output types generated from the same .proto files by
// `npm install` (scripts/generate-types.ts). Without defaults the decoder leaves out every field the
// client did not set, so every field is optional; limits.ts bounds the values before anything uses them.
import type { DiscoveryRequest__Output } from "../../../.envoy-types/envoy/service/discovery/v3/DiscoveryRequest.ts";
import type { DeltaDiscoveryRequest__Output } from "../../../.envoy-types/envoy/service/discovery/v3/DeltaDiscoveryRequest.ts";

export type DiscoveryRequest = DiscoveryRequest__Output;
export type DeltaDiscoveryRequest = DeltaDiscoveryRequest__Output;
/** Either flavour's request: what the stream skeleton reads of both. */
export type AdsRequest = DiscoveryRequest | DeltaDiscoveryRequest;
export type { Node__Output as Node } from "../../../.envoy-types/envoy/config/core/v3/Node.ts";
// node.metadata: google.protobuf.Struct comes from protobufjs's own descriptor, so its fields are camelCase even with keepCase.
export type { Struct__Output as Struct } from "../../../.envoy-types/google/protobuf/Struct.ts";
export type { Value__Output as StructValue } from "../../../.envoy-types/google/protobuf/Value.ts";
