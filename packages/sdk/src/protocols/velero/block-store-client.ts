/**
 * The host's BlockStore over a Velero VolumeSnapshotter plugin (docs/velero.md).
 */
import { VolumeSnapshotter } from "../../gen/generated/VolumeSnapshotter_pb.js";
import { PageListing } from "../../host/page-listing.js";
import type { ClientSettings, HostBlockStore, ProcessSource } from "../../host/protocol-adapter.js";
import type { RpcChannel } from "../../host/rpc-channel.js";
import { checkConfig, checkCreateSnapshotInput, checkCreateVolumeInput, checkSnapshotId, checkVolumeId, checkVolumeRef, persistentVolumeBytes } from "../../host/validate.js";
import type { CallOptions, CreateSnapshotInput, CreateVolumeFromSnapshotInput, ListSnapshotsPage, PluginConfig, PluginDescriptor, Snapshot, Volume, VolumeRef } from "../../types.js";
import { InitTracker, unsupported, veleroCall, withDefault } from "./client-support.js";
import { VELERO_PROTOCOL } from "./constants.js";

/**
 * A `BlockStore` served by a Velero VolumeSnapshotter plugin. Velero has no snapshot state,
 * progress, listing or volume deletion: `getSnapshot`, `listSnapshots` and `deleteVolume` throw
 * UNIMPLEMENTED/UNSUPPORTED, and `createSnapshot` returns the snapshot as `pending` with unknown
 * size (Velero itself treats a created snapshot as usable).
 */
export class VeleroBlockStore implements HostBlockStore {
  /** What the plugin announced. */
  readonly descriptor: PluginDescriptor;
  /** Velero's protocol. */
  readonly protocol = VELERO_PROTOCOL;
  readonly #tracker: InitTracker;
  readonly #timeoutMs: number;

  constructor(supervisor: ProcessSource, descriptor: PluginDescriptor, options: ClientSettings) {
    this.descriptor = descriptor;
    this.#timeoutMs = options.defaultTimeoutMs;
    this.#tracker = new InitTracker(supervisor, async (proc, config, opts) => {
      await veleroCall(() => proc.channel.unary(VolumeSnapshotter.method.init, { plugin: descriptor.name, config: { ...config } }, opts));
    });
  }

  async #call<T>(options: CallOptions | undefined, fn: (channel: RpcChannel, opts: CallOptions) => Promise<T>): Promise<T> {
    const opts = withDefault(options, this.#timeoutMs);
    const channel = await this.#tracker.channel(opts);
    return veleroCall(() => fn(channel, opts));
  }

  async init(config: PluginConfig, options?: CallOptions): Promise<void> {
    checkConfig(config);
    await this.#tracker.init(config, withDefault(options, this.#timeoutMs));
  }

  async createSnapshot(input: CreateSnapshotInput, options?: CallOptions): Promise<Snapshot> {
    checkCreateSnapshotInput(input);
    const res = await this.#call(options, (c, o) =>
      c.unary(VolumeSnapshotter.method.createSnapshot, { plugin: this.descriptor.name, volumeID: input.volumeId, volumeAZ: input.zone ?? "", tags: { ...input.tags } }, o),
    );
    return {
      snapshotId: res.snapshotID,
      volumeId: input.volumeId,
      state: "pending",
      sizeBytes: 0,
      tags: { ...input.tags },
      zone: input.zone ?? "",
      message: "Velero plugins do not report snapshot state",
    };
  }

  async getSnapshot(): Promise<Snapshot> {
    throw unsupported("reading a snapshot's state");
  }

  listSnapshots(): PageListing<ListSnapshotsPage> {
    return new PageListing(() => Promise.reject(unsupported("listing snapshots")));
  }

  async deleteSnapshot(snapshotId: string, options?: CallOptions): Promise<void> {
    checkSnapshotId(snapshotId);
    await this.#call(options, (c, o) => c.unary(VolumeSnapshotter.method.deleteSnapshot, { plugin: this.descriptor.name, snapshotID: snapshotId }, o));
  }

  /** Tags cannot be carried by Velero's CreateVolumeFromSnapshot and are dropped. */
  async createVolumeFromSnapshot(input: CreateVolumeFromSnapshotInput, options?: CallOptions): Promise<string> {
    checkCreateVolumeInput(input);
    const res = await this.#call(options, (c, o) =>
      c.unary(
        VolumeSnapshotter.method.createVolumeFromSnapshot,
        { plugin: this.descriptor.name, snapshotID: input.snapshotId, volumeType: input.volumeType ?? "", volumeAZ: input.zone ?? "", iops: BigInt(Math.trunc(input.iops ?? 0)) },
        o,
      ),
    );
    return res.volumeID;
  }

  /** Type and IOPS from the plugin (IOPS 0 = unset); zone echoed from the input; size unknown (0). */
  async getVolumeInfo(input: VolumeRef, options?: CallOptions): Promise<Volume> {
    checkVolumeRef(input);
    const res = await this.#call(options, (c, o) => c.unary(VolumeSnapshotter.method.getVolumeInfo, { plugin: this.descriptor.name, volumeID: input.volumeId, volumeAZ: input.zone ?? "" }, o));
    return { volumeId: input.volumeId, volumeType: res.volumeType, ...(res.iops === 0n ? {} : { iops: Number(res.iops) }), zone: input.zone ?? "", sizeBytes: 0 };
  }

  async deleteVolume(): Promise<void> {
    throw unsupported("deleting a volume");
  }

  async getVolumeId(persistentVolume: unknown, options?: CallOptions): Promise<string> {
    const pv = persistentVolumeBytes(persistentVolume);
    const res = await this.#call(options, (c, o) => c.unary(VolumeSnapshotter.method.getVolumeID, { plugin: this.descriptor.name, persistentVolume: pv }, o));
    return res.volumeID;
  }

  async setVolumeId(persistentVolume: unknown, volumeId: string, options?: CallOptions): Promise<unknown> {
    const pv = persistentVolumeBytes(persistentVolume);
    checkVolumeId(volumeId);
    const res = await this.#call(options, (c, o) => c.unary(VolumeSnapshotter.method.setVolumeID, { plugin: this.descriptor.name, persistentVolume: pv, volumeID: volumeId }, o));
    return JSON.parse(Buffer.from(res.persistentVolume).toString("utf8")) as unknown;
  }
}
