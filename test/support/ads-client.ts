// A minimal ADS client on @grpc/grpc-js (what bench and leak tests use in place of Envoy): opens
// streams with a node id and INSTANCE_IPS, reads responses, ACKs them.
import * as grpc from "@grpc/grpc-js";
import { adsServiceDefinition } from "../../control/xds/cache/protos.ts";

export type AdsClient = grpc.Client & {
  StreamAggregatedResources(): grpc.ClientDuplexStream<any, any>;
  DeltaAggregatedResources(): grpc.ClientDuplexStream<any, any>;
};

export function adsClient(address: string): AdsClient {
  const pkg = grpc.loadPackageDefinition(adsServiceDefinition()) as any;
  return new pkg.envoy.service.discovery.v3.AggregatedDiscoveryService(address, grpc.credentials.createInsecure(), {
    "grpc.max_receive_message_length": 64 << 20,
  }) as AdsClient;
}

/** node in the request's object form; google.protobuf.Struct goes through protobufjs's camelCase wrapper. */
export function node(id: string, instanceIps?: string): object {
  return { id, cluster: "test", ...(instanceIps ? { metadata: { fields: { INSTANCE_IPS: { stringValue: instanceIps } } } } : {}) };
}
