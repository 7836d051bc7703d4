/**
 * The plugin side of Stowage's own protocol: selected by Stowage's magic cookie, it serves
 * `stowage.v1.PluginInfoService`, `ObjectStoreService` and `BlockStoreService` (the services of
 * `src/plugin/`) and, when asked, the bulk data channel; also over the network (mTLS, one registry
 * per caller's session, no data channel).
 */
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import type { sendUnaryData, ServerUnaryCall, UntypedServiceImplementation } from "@grpc/grpc-js";
import { BlockStoreService } from "../../gen/stowage/v1/block_store_pb.js";
import { ObjectStoreService } from "../../gen/stowage/v1/object_store_pb.js";
import { GetPluginInfoResponseSchema, PluginInfoService, type GetPluginInfoRequest, type GetPluginInfoResponse } from "../../gen/stowage/v1/plugin_info_pb.js";
import { blockStoreService } from "../../plugin/block-store-service.js";
import { callScope } from "../../plugin/call-context.js";
import { DataChannelServer } from "../../plugin/data-channel-server.js";
import type { ServiceDeps } from "../../plugin/handler.js";
import { objectStoreService } from "../../plugin/object-store-service.js";
import type { ServeProtocolAdapter, ServiceCall } from "../../plugin/protocol-adapter.js";
import type { PluginRegistry } from "../../plugin/registry.js";
import { tracedService } from "../../plugin/tracing.js";
import { APP_PROTOCOL_VERSION, CONTRACT_VERSION, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, STOWAGE_PROTOCOL } from "../../protocol/constants.js";
import type { PluginDescriptor } from "../../types.js";
import { descriptorToWire } from "../../wire/convert.js";
import { serviceDefinition } from "../../wire/rpc.js";

/** stowage.v1.PluginInfoService: the plugins `visible` gives for the call. */
function pluginInfoService(visible: (call: ServiceCall) => readonly PluginDescriptor[], dataChannelAddress: string): UntypedServiceImplementation {
  return {
    getPluginInfo(call: ServerUnaryCall<GetPluginInfoRequest, GetPluginInfoResponse>, callback: sendUnaryData<GetPluginInfoResponse>) {
      callback(
        null,
        create(GetPluginInfoResponseSchema, {
          contractVersion: CONTRACT_VERSION,
          plugins: visible(call).map(descriptorToWire),
          runtime: `stowage-sdk-ts node/${process.versions.node}`,
          dataChannelAddress,
        }),
      );
    },
  };
}

/**
 * Stowage's own services: PluginInfo, ObjectStore and BlockStore, plus the data channel; in
 * network mode the same services for each caller's session, without the data channel.
 */
export const stowageServeAdapter: ServeProtocolAdapter = {
  name: STOWAGE_PROTOCOL,
  cookie: { key: MAGIC_COOKIE_KEY, value: MAGIC_COOKIE_VALUE },
  appVersion: APP_PROTOCOL_VERSION,
  peer: "the host",
  async register(server, { registry, logger, shutdown, socketDir, dataChannel: offerDataChannel }) {
    const deps: ServiceDeps = { logger, scope: (call) => callScope(call, shutdown) };
    const dataChannel = offerDataChannel ? await DataChannelServer.listen(join(socketDir, `data-${String(process.pid)}.sock`), logger) : undefined;
    const descriptors = registry.descriptors();
    const registryFor = (): PluginRegistry => registry;
    server.addService(serviceDefinition(PluginInfoService), pluginInfoService(() => descriptors, dataChannel?.address ?? ""));
    server.addService(serviceDefinition(ObjectStoreService), tracedService(objectStoreService(registryFor, descriptors, dataChannel, deps)));
    server.addService(serviceDefinition(BlockStoreService), tracedService(blockStoreService(registryFor, deps)));
    return dataChannel === undefined ? undefined : () => dataChannel.close();
  },
  registerNetwork(server, { descriptors, registryFor, pluginsFor, bindSessions, logger, shutdown }) {
    const deps: ServiceDeps = { logger, scope: (call) => callScope(call, shutdown) };
    // No data channel across the network: bodies travel in the gRPC messages, over TLS.
    server.addService(serviceDefinition(PluginInfoService), pluginInfoService(pluginsFor, ""));
    server.addService(serviceDefinition(ObjectStoreService), tracedService(bindSessions(objectStoreService(registryFor, descriptors, undefined, deps))));
    server.addService(serviceDefinition(BlockStoreService), tracedService(bindSessions(blockStoreService(registryFor, deps))));
  },
};
