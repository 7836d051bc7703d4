/**
 * The host's guard around every BlockStore client it hands out, as for ObjectStore clients
 * (`guarded-object-store.ts`): a slot per call within the plugin's limits, retries of the
 * idempotent calls (contract 4.6: snapshot and volume reads, deletes, the PersistentVolume
 * functions, Init; never `createSnapshot` or `createVolumeFromSnapshot`), and each operation's span
 * and metrics. A listing is guarded page by page.
 */
import type { CallOptions, CreateSnapshotInput, CreateVolumeFromSnapshotInput, ListSnapshotsInput, ListSnapshotsPage, PluginConfig, PluginDescriptor, Snapshot, Volume, VolumeRef } from "../types.js";
import { GuardRunner, type Guard } from "./guard-runner.js";
import { PageListing } from "./page-listing.js";
import type { HostBlockStore } from "./protocol-adapter.js";
import { checkListSnapshotsInput } from "./validate.js";

/** A BlockStore client with limits, retries and telemetry around another. */
export class GuardedBlockStore implements HostBlockStore {
  /** What the plugin announced. */
  readonly descriptor: PluginDescriptor;
  /** The protocol the executable speaks. */
  readonly protocol: string;
  readonly #inner: HostBlockStore;
  readonly #run: GuardRunner;

  constructor(inner: HostBlockStore, guard: Guard) {
    this.#inner = inner;
    this.#run = new GuardRunner(guard);
    this.descriptor = inner.descriptor;
    this.protocol = inner.protocol;
  }

  init(config: PluginConfig, options?: CallOptions): Promise<void> {
    return this.#run.call("init", undefined, options, true, () => this.#inner.init(config, options));
  }

  createSnapshot(input: CreateSnapshotInput, options?: CallOptions): Promise<Snapshot> {
    return this.#run.call("create-snapshot", undefined, options, false, () => this.#inner.createSnapshot(input, options));
  }

  getSnapshot(snapshotId: string, options?: CallOptions): Promise<Snapshot> {
    return this.#run.call("get-snapshot", undefined, options, true, () => this.#inner.getSnapshot(snapshotId, options));
  }

  /** Each page is one guarded call, retried on its own. */
  listSnapshots(input: ListSnapshotsInput, options?: CallOptions): PageListing<ListSnapshotsPage> {
    return new PageListing(
      (pageToken) =>
        this.#run.call("list-snapshots", undefined, options, true, async () => {
          checkListSnapshotsInput(input);
          return await this.#inner.listSnapshots({ ...input, pageToken, maxPages: 1 }, options);
        }),
      input?.pageToken ?? "",
      input?.maxPages ?? 0,
    );
  }

  deleteSnapshot(snapshotId: string, options?: CallOptions): Promise<void> {
    return this.#run.call("delete-snapshot", undefined, options, true, () => this.#inner.deleteSnapshot(snapshotId, options));
  }

  createVolumeFromSnapshot(input: CreateVolumeFromSnapshotInput, options?: CallOptions): Promise<string> {
    return this.#run.call("create-volume", undefined, options, false, () => this.#inner.createVolumeFromSnapshot(input, options));
  }

  getVolumeInfo(input: VolumeRef, options?: CallOptions): Promise<Volume> {
    return this.#run.call("get-volume", undefined, options, true, () => this.#inner.getVolumeInfo(input, options));
  }

  deleteVolume(input: VolumeRef, options?: CallOptions): Promise<void> {
    return this.#run.call("delete-volume", undefined, options, true, () => this.#inner.deleteVolume(input, options));
  }

  getVolumeId(persistentVolume: unknown, options?: CallOptions): Promise<string> {
    return this.#run.call("get-volume-id", undefined, options, true, () => this.#inner.getVolumeId(persistentVolume, options));
  }

  setVolumeId(persistentVolume: unknown, volumeId: string, options?: CallOptions): Promise<unknown> {
    return this.#run.call("set-volume-id", undefined, options, true, () => this.#inner.setVolumeId(persistentVolume, volumeId, options));
  }
}
