/**
 * {@link BlockStore} over a plugin process speaking Stowage's own protocol. Internal: the host
 * hands it out as a {@link HostBlockStore}.
 */
import { BlockStoreService } from "../gen/stowage/v1/block_store_pb.js";
import type {
  CallOptions,
  CreateSnapshotInput,
  CreateVolumeFromSnapshotInput,
  ListSnapshotsInput,
  ListSnapshotsPage,
  PluginConfig,
  PluginDescriptor,
  Snapshot,
  Volume,
  VolumeRef,
} from "../types.js";
import { snapshotFromWire, volumeFromWire } from "../wire/convert.js";
import { PageListing } from "./page-listing.js";
import type { ClientSettings, HostBlockStore, ProcessSource } from "./protocol-adapter.js";
import {
  checkCallOptions,
  checkConfig,
  checkCreateSnapshotInput,
  checkCreateVolumeInput,
  checkListSnapshotsInput,
  checkSnapshotId,
  checkVolumeId,
  checkVolumeRef,
  persistentVolumeBytes,
} from "./validate.js";

/** A BlockStore served by a plugin process that speaks Stowage's protocol. */
export class BlockStoreClient implements HostBlockStore {
  /** What the plugin announced. */
  readonly descriptor: PluginDescriptor;
  /** Stowage's own protocol. */
  readonly protocol: string;
  readonly #supervisor: ProcessSource;
  readonly #options: ClientSettings;

  constructor(processes: ProcessSource, descriptor: PluginDescriptor, options: ClientSettings, protocol: string) {
    this.#supervisor = processes;
    this.descriptor = descriptor;
    this.#options = options;
    this.protocol = protocol;
  }

  #opts(options: CallOptions | undefined): CallOptions {
    checkCallOptions(options);
    const fallback = this.#options.defaultTimeoutMs > 0 ? this.#options.defaultTimeoutMs : undefined;
    return { signal: options?.signal, timeoutMs: options?.timeoutMs ?? fallback };
  }

  async #channel() {
    return (await this.#supervisor.acquire()).channel;
  }

  async init(config: PluginConfig, options?: CallOptions): Promise<void> {
    checkConfig(config);
    const proc = await this.#supervisor.acquire();
    await proc.channel.unary(BlockStoreService.method.init, { plugin: this.descriptor.name, config: { ...config } }, this.#opts(options));
    this.#supervisor.rememberInit("block-store", this.descriptor.name, config, proc);
  }

  async createSnapshot(input: CreateSnapshotInput, options?: CallOptions): Promise<Snapshot> {
    checkCreateSnapshotInput(input);
    const res = await (await this.#channel()).unary(
      BlockStoreService.method.createSnapshot,
      { plugin: this.descriptor.name, volumeId: input.volumeId, zone: input.zone ?? "", tags: { ...input.tags } },
      this.#opts(options),
    );
    return snapshotFromWire(res.snapshot);
  }

  async getSnapshot(snapshotId: string, options?: CallOptions): Promise<Snapshot> {
    checkSnapshotId(snapshotId);
    const res = await (await this.#channel()).unary(BlockStoreService.method.getSnapshot, { plugin: this.descriptor.name, snapshotId }, this.#opts(options));
    return snapshotFromWire(res.snapshot);
  }

  listSnapshots(input: ListSnapshotsInput, options?: CallOptions): PageListing<ListSnapshotsPage> {
    return new PageListing(
      async (pageToken) => {
        checkListSnapshotsInput(input);
        const res = await (await this.#channel()).unary(
          BlockStoreService.method.listSnapshots,
          { plugin: this.descriptor.name, tagFilter: { ...input.tagFilter }, pageSize: input.pageSize ?? 0, pageToken },
          this.#opts(options),
        );
        return { snapshots: res.snapshots.map((s) => snapshotFromWire(s)), nextPageToken: res.nextPageToken };
      },
      input?.pageToken ?? "",
      input?.maxPages ?? 0,
    );
  }

  async deleteSnapshot(snapshotId: string, options?: CallOptions): Promise<void> {
    checkSnapshotId(snapshotId);
    await (await this.#channel()).unary(BlockStoreService.method.deleteSnapshot, { plugin: this.descriptor.name, snapshotId }, this.#opts(options));
  }

  async createVolumeFromSnapshot(input: CreateVolumeFromSnapshotInput, options?: CallOptions): Promise<string> {
    checkCreateVolumeInput(input);
    const res = await (await this.#channel()).unary(
      BlockStoreService.method.createVolumeFromSnapshot,
      {
        plugin: this.descriptor.name,
        snapshotId: input.snapshotId,
        volumeType: input.volumeType ?? "",
        zone: input.zone ?? "",
        ...(input.iops === undefined ? {} : { iops: BigInt(input.iops) }),
        tags: { ...input.tags },
      },
      this.#opts(options),
    );
    return res.volumeId;
  }

  async getVolumeInfo(input: VolumeRef, options?: CallOptions): Promise<Volume> {
    checkVolumeRef(input);
    const res = await (await this.#channel()).unary(
      BlockStoreService.method.getVolumeInfo,
      { plugin: this.descriptor.name, volumeId: input.volumeId, zone: input.zone ?? "" },
      this.#opts(options),
    );
    return volumeFromWire(res.volume);
  }

  async deleteVolume(input: VolumeRef, options?: CallOptions): Promise<void> {
    checkVolumeRef(input);
    await (await this.#channel()).unary(BlockStoreService.method.deleteVolume, { plugin: this.descriptor.name, volumeId: input.volumeId, zone: input.zone ?? "" }, this.#opts(options));
  }

  async getVolumeId(persistentVolume: unknown, options?: CallOptions): Promise<string> {
    const pv = persistentVolumeBytes(persistentVolume);
    const res = await (await this.#channel()).unary(
      BlockStoreService.method.getVolumeID,
      { plugin: this.descriptor.name, persistentVolume: pv },
      this.#opts(options),
    );
    return res.volumeId;
  }

  async setVolumeId(persistentVolume: unknown, volumeId: string, options?: CallOptions): Promise<unknown> {
    const pv = persistentVolumeBytes(persistentVolume);
    checkVolumeId(volumeId);
    const res = await (await this.#channel()).unary(
      BlockStoreService.method.setVolumeID,
      { plugin: this.descriptor.name, persistentVolume: pv, volumeId },
      this.#opts(options),
    );
    return JSON.parse(Buffer.from(res.persistentVolume).toString("utf8")) as unknown;
  }
}
