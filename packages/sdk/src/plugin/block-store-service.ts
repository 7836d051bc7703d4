/**
 * Serves stowage.v1.BlockStoreService on top of {@link BlockStore} implementations.
 */
import { create } from "@bufbuild/protobuf";
import type { handleUnaryCall, sendUnaryData, ServerUnaryCall, UntypedServiceImplementation } from "@grpc/grpc-js";
import { Code, Reason, StowageError } from "../errors.js";
import {
  BlockStoreServiceInitResponseSchema,
  CreateSnapshotResponseSchema,
  CreateVolumeFromSnapshotResponseSchema,
  DeleteSnapshotResponseSchema,
  DeleteVolumeResponseSchema,
  GetSnapshotResponseSchema,
  GetVolumeIDResponseSchema,
  GetVolumeInfoResponseSchema,
  ListSnapshotsResponseSchema,
  SetVolumeIDResponseSchema,
  type BlockStoreServiceInitRequest,
  type CreateSnapshotRequest,
  type CreateVolumeFromSnapshotRequest,
  type DeleteSnapshotRequest,
  type DeleteVolumeRequest,
  type GetSnapshotRequest,
  type GetVolumeIDRequest,
  type GetVolumeInfoRequest,
  type ListSnapshotsRequest,
  type SetVolumeIDRequest,
} from "../gen/stowage/v1/block_store_pb.js";
import { snapshotToWire, toNumber, volumeToWire } from "../wire/convert.js";
import { handleUnary, type ServiceDeps } from "./handler.js";
import type { RegistryLookup } from "./protocol-adapter.js";
import type { PluginRegistry } from "./registry.js";

const KIND = "block-store";

function required(value: string, field: string): string {
  if (value === "") throw new StowageError(Code.InvalidArgument, `${field} is required`, { reason: Reason.InvalidName });
  return value;
}

/** Parses PersistentVolume JSON bytes; malformed JSON is INVALID_ARGUMENT. */
function parsePv(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString("utf8")) as unknown;
  } catch (error) {
    throw new StowageError(Code.InvalidArgument, `persistent_volume is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * The implementation object for `grpc.Server.addService(serviceDefinition(BlockStoreService), …)`.
 *
 * @param registryFor - The registry that serves a call (the process's one, or the caller's session in network mode).
 */
export function blockStoreService(registryFor: RegistryLookup, deps: ServiceDeps): UntypedServiceImplementation {
  // Each handler gets the registry of its call, looked up inside the handler so a lookup failure is the call's error.
  const unary =
    <Req, Res>(fn: (req: Req, signal: AbortSignal, registry: PluginRegistry) => Promise<Res>): handleUnaryCall<Req, Res> =>
    (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      handleUnary(call, callback, deps, (req, signal) => fn(req, signal, registryFor(call)));
    };
  const store = (registry: PluginRegistry, plugin: string) => registry.get(KIND, plugin);
  return {
    init: unary(async (req: BlockStoreServiceInitRequest, signal, registry) => {
      await registry.init(KIND, req.plugin, req.config, signal);
      return create(BlockStoreServiceInitResponseSchema);
    }),
    createSnapshot: unary(async (req: CreateSnapshotRequest, signal, registry) => {
      const snapshot = await store(registry, req.plugin).createSnapshot({ volumeId: required(req.volumeId, "volume_id"), zone: req.zone, tags: req.tags }, { signal });
      return create(CreateSnapshotResponseSchema, { snapshot: snapshotToWire(snapshot) });
    }),
    getSnapshot: unary(async (req: GetSnapshotRequest, signal, registry) => {
      const snapshot = await store(registry, req.plugin).getSnapshot(required(req.snapshotId, "snapshot_id"), { signal });
      return create(GetSnapshotResponseSchema, { snapshot: snapshotToWire(snapshot) });
    }),
    listSnapshots: unary(async (req: ListSnapshotsRequest, signal, registry) => {
      if (req.pageSize < 0 || req.pageSize > 1000) throw new StowageError(Code.InvalidArgument, `page_size must be between 0 and 1000, got ${String(req.pageSize)}`);
      const page = await store(registry, req.plugin).listSnapshots(
        { tagFilter: req.tagFilter, pageSize: req.pageSize === 0 ? undefined : req.pageSize, pageToken: req.pageToken === "" ? undefined : req.pageToken },
        { signal },
      );
      return create(ListSnapshotsResponseSchema, { snapshots: page.snapshots.map(snapshotToWire), nextPageToken: page.nextPageToken });
    }),
    deleteSnapshot: unary(async (req: DeleteSnapshotRequest, signal, registry) => {
      await store(registry, req.plugin).deleteSnapshot(required(req.snapshotId, "snapshot_id"), { signal });
      return create(DeleteSnapshotResponseSchema);
    }),
    createVolumeFromSnapshot: unary(
      async (req: CreateVolumeFromSnapshotRequest, signal, registry) => {
        const volumeId = await store(registry, req.plugin).createVolumeFromSnapshot(
          {
            snapshotId: required(req.snapshotId, "snapshot_id"),
            volumeType: req.volumeType,
            zone: req.zone,
            iops: req.iops === undefined ? undefined : toNumber(req.iops),
            tags: req.tags,
          },
          { signal },
        );
        return create(CreateVolumeFromSnapshotResponseSchema, { volumeId });
      },
    ),
    getVolumeInfo: unary(async (req: GetVolumeInfoRequest, signal, registry) => {
      const volume = await store(registry, req.plugin).getVolumeInfo({ volumeId: required(req.volumeId, "volume_id"), zone: req.zone }, { signal });
      return create(GetVolumeInfoResponseSchema, { volume: volumeToWire(volume) });
    }),
    deleteVolume: unary(async (req: DeleteVolumeRequest, signal, registry) => {
      await store(registry, req.plugin).deleteVolume({ volumeId: required(req.volumeId, "volume_id"), zone: req.zone }, { signal });
      return create(DeleteVolumeResponseSchema);
    }),
    getVolumeID: unary(async (req: GetVolumeIDRequest, signal, registry) => {
      const volumeId = await store(registry, req.plugin).getVolumeId(parsePv(req.persistentVolume), { signal });
      return create(GetVolumeIDResponseSchema, { volumeId });
    }),
    setVolumeID: unary(async (req: SetVolumeIDRequest, signal, registry) => {
      const pv = await store(registry, req.plugin).setVolumeId(parsePv(req.persistentVolume), required(req.volumeId, "volume_id"), { signal });
      return create(SetVolumeIDResponseSchema, { persistentVolume: Buffer.from(JSON.stringify(pv)) });
    }),
  };
}
