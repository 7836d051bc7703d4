/**
 * The local BlockStore: volumes are files, snapshots are copies of them taken in the background.
 *
 * See `layout.ts` for the files under the root, `copy.ts` for how data is copied,
 * `snapshot-records.ts` for the persisted state and `persistent-volumes.ts` for PV handling.
 *
 * @packageDocumentation
 */
import {
  Code,
  Reason,
  StowageError,
  silentLogger,
  snapshotNotFound,
  volumeNotFound,
  type BlockStore,
  type CallOptions,
  type CreateSnapshotInput,
  type CreateVolumeFromSnapshotInput,
  type ListSnapshotsInput,
  type ListSnapshotsPage,
  type Logger,
  type PluginConfig,
  type Snapshot,
  type Volume,
  type VolumeRef,
} from "@stowage/sdk";
import { redactConfig } from "@stowage/sdk/plugin";
import { mkdir, rename, rm } from "node:fs/promises";
import { throwIfAborted } from "@stowage/sdk/plugin";
import { fsyncDirectory, isNotFound, toStowageError } from "../shared/fs.js";
import { checkId, newId } from "../shared/ids.js";
import { BLOCK_STORE_CONFIG_KEYS, parseBlockStoreConfig, type BlockStoreSettings } from "./config.js";
import { copyImage } from "./copy.js";
import { snapshotImage, snapshotPartial, snapshotRecordPath, snapshotsDir, volumeImage, volumePartial, volumeSidecar, volumesDir } from "./layout.js";
import { getPersistentVolumeId, setPersistentVolumeId } from "./persistent-volumes.js";
import { readAllSnapshotRecords, readSnapshotRecord, toSnapshot, writeSnapshotRecord, type SnapshotRecord } from "./snapshot-records.js";
import { describeVolume, readVolumeAttributes, writeVolumeAttributes } from "./volumes.js";

/** Default number of snapshots in a page. */
export const DEFAULT_SNAPSHOT_PAGE_SIZE = 100;
/** Largest number of snapshots in a page. */
export const MAX_SNAPSHOT_PAGE_SIZE = 1000;

/** The message of a snapshot whose copy stopped with the process that ran it. */
export const INTERRUPTED_MESSAGE = "the snapshot copy was interrupted: the process taking it stopped before it finished; delete it and take a new one";

/** Options of {@link LocalBlockStore}. */
export interface LocalBlockStoreOptions {
  /** Where to log; nothing is logged by default. */
  readonly logger?: Logger | undefined;
}

/** A snapshot copy running in this process. */
interface RunningCopy {
  /** Cancels it (deleting the snapshot does). */
  readonly controller: AbortController;
  /** Settles when it has finished, failed or been cancelled, its record written. */
  done: Promise<void>;
  /** Progress, 0 to 99. */
  progress: number;
}

/**
 * A BlockStore on a local file system, laid out as `layout.ts` describes. Volumes are created with
 * `createLocalVolume` (or restored from snapshots); snapshots are taken in the background and
 * reported `pending` with progress until their data is copied.
 *
 * A snapshot copies the volume file as it is when the copy runs: it is crash-consistent only if
 * nothing writes to the volume meanwhile (reflinks make the window tiny). One root should be
 * served by one process at a time: a snapshot left `pending` by a process that stopped is
 * reported `failed` by the others.
 */
export class LocalBlockStore implements BlockStore {
  readonly #logger: Logger;
  readonly #copies = new Map<string, RunningCopy>();
  #settings: BlockStoreSettings | undefined;

  /** @param options - Logger. */
  constructor(options: LocalBlockStoreOptions = {}) {
    this.#logger = options.logger ?? silentLogger;
  }

  /** Configures the store and creates `volumes/` and `snapshots/` under the root when missing. */
  async init(config: PluginConfig, options: CallOptions = {}): Promise<void> {
    try {
      throwIfAborted(options.signal);
      const settings = await parseBlockStoreConfig(config);
      await mkdir(volumesDir(settings.root), { recursive: true });
      await mkdir(snapshotsDir(settings.root), { recursive: true });
      this.#settings = settings;
      this.#logger.info({ config: redactConfig(config, BLOCK_STORE_CONFIG_KEYS) }, "local block store configured");
    } catch (error) {
      throw toStowageError(error);
    }
  }

  /**
   * Starts a snapshot and returns it `pending`. The copy runs in the background (a reflink when
   * possible, else a streamed copy reporting progress) and ends `ready` or `failed`. Tags are the
   * volume's tags overridden by `input.tags`.
   */
  async createSnapshot(input: CreateSnapshotInput, options: CallOptions = {}): Promise<Snapshot> {
    try {
      throwIfAborted(options.signal);
      const settings = this.#requireSettings();
      checkId("volume", input.volumeId);
      const { root } = settings;
      const volume = await describeVolume(root, input.volumeId);
      if (volume === undefined) throw volumeNotFound(input.volumeId);
      const attributes = await readVolumeAttributes(root, input.volumeId);
      const record: SnapshotRecord = {
        snapshotId: newId("snap"),
        volumeId: input.volumeId,
        state: "pending",
        message: "",
        sizeBytes: volume.sizeBytes,
        tags: { ...attributes.tags, ...input.tags },
        createdAt: new Date().toISOString(),
        zone: input.zone === undefined || input.zone === "" ? volume.zone : input.zone,
        volumeType: volume.volumeType,
        iops: volume.iops,
      };
      // Registered before the record is written, so that no reader takes it for an orphan.
      const copy: RunningCopy = { controller: new AbortController(), done: Promise.resolve(), progress: 0 };
      this.#copies.set(record.snapshotId, copy);
      try {
        throwIfAborted(options.signal);
        await writeSnapshotRecord(root, record);
      } catch (error) {
        this.#copies.delete(record.snapshotId);
        throw error;
      }
      copy.done = this.#copySnapshot(settings, record, copy).finally(() => this.#copies.delete(record.snapshotId));
      this.#logger.info({ snapshotId: record.snapshotId, volumeId: record.volumeId }, "snapshot started");
      return toSnapshot(record, 0);
    } catch (error) {
      throw toStowageError(error);
    }
  }

  /** Reports a snapshot; a missing one fails with `SNAPSHOT_NOT_FOUND`. */
  async getSnapshot(snapshotId: string, options: CallOptions = {}): Promise<Snapshot> {
    try {
      throwIfAborted(options.signal);
      const { root } = this.#requireSettings();
      checkId("snapshot", snapshotId);
      const record = await readSnapshotRecord(root, snapshotId);
      if (record === undefined) throw snapshotNotFound(snapshotId);
      return await this.#current(root, record);
    } catch (error) {
      throw toStowageError(error);
    }
  }

  /**
   * Lists one page of snapshots, oldest first (by creation time, then ID), keeping those that carry
   * all of `tagFilter`. Pages hold {@link DEFAULT_SNAPSHOT_PAGE_SIZE} snapshots by default and at
   * most {@link MAX_SNAPSHOT_PAGE_SIZE}.
   */
  async listSnapshots(input: ListSnapshotsInput, options: CallOptions = {}): Promise<ListSnapshotsPage> {
    try {
      throwIfAborted(options.signal);
      const { root } = this.#requireSettings();
      const pageSize = checkPageSize(input.pageSize);
      const after = input.pageToken === undefined || input.pageToken === "" ? undefined : decodeSnapshotPageToken(input.pageToken);
      const filter = Object.entries(input.tagFilter ?? {});
      const records = await readAllSnapshotRecords(root, (path) => this.#logger.warn({ path }, "skipping damaged snapshot record"));
      const matching = records
        .filter((record) => filter.every(([name, value]) => record.tags[name] === value))
        .map((record) => ({ record, position: positionOf(record) }))
        .filter(({ position }) => after === undefined || comparePositions(position, after) > 0)
        .sort((a, b) => comparePositions(a.position, b.position));
      const page = matching.slice(0, pageSize);
      const last = page.at(-1);
      const snapshots: Snapshot[] = [];
      for (const { record } of page) snapshots.push(await this.#current(root, record));
      return {
        snapshots,
        nextPageToken: matching.length > pageSize && last !== undefined ? encodeSnapshotPageToken(last.position) : "",
      };
    } catch (error) {
      throw toStowageError(error);
    }
  }

  /** Deletes a snapshot, cancelling its copy if it is still running; a missing one is success. */
  async deleteSnapshot(snapshotId: string, options: CallOptions = {}): Promise<void> {
    try {
      throwIfAborted(options.signal);
      const { root } = this.#requireSettings();
      checkId("snapshot", snapshotId);
      const copy = this.#copies.get(snapshotId);
      if (copy !== undefined) {
        copy.controller.abort();
        await copy.done;
      }
      // The record goes first: from then on the snapshot does not exist, whatever happens next.
      await rm(snapshotRecordPath(root, snapshotId), { force: true });
      await rm(snapshotImage(root, snapshotId), { force: true });
      await rm(snapshotPartial(root, snapshotId), { force: true });
      await fsyncDirectory(snapshotsDir(root));
    } catch (error) {
      throw toStowageError(error);
    }
  }

  /**
   * Creates a volume holding a ready snapshot's data and returns its ID. The volume keeps the
   * source volume's type, IOPS and zone unless the input overrides them. A snapshot that is not
   * ready fails with `FAILED_PRECONDITION`/`SNAPSHOT_NOT_READY`.
   */
  async createVolumeFromSnapshot(input: CreateVolumeFromSnapshotInput, options: CallOptions = {}): Promise<string> {
    try {
      throwIfAborted(options.signal);
      const { root } = this.#requireSettings();
      checkId("snapshot", input.snapshotId);
      if (input.iops !== undefined && (!Number.isSafeInteger(input.iops) || input.iops < 0)) {
        throw new StowageError(Code.InvalidArgument, `iops must be a non-negative integer, got ${String(input.iops)}`);
      }
      const record = await readSnapshotRecord(root, input.snapshotId);
      if (record === undefined) throw snapshotNotFound(input.snapshotId);
      const snapshot = await this.#current(root, record);
      if (snapshot.state !== "ready") {
        throw new StowageError(
          Code.FailedPrecondition,
          `snapshot ${JSON.stringify(input.snapshotId)} is ${snapshot.state}${snapshot.message === "" ? "" : ` (${snapshot.message})`}; only a ready snapshot can be restored`,
          { reason: Reason.SnapshotNotReady, metadata: { snapshot_id: input.snapshotId, state: snapshot.state } },
        );
      }
      const volumeId = newId("vol");
      const partial = volumePartial(root, volumeId);
      let sidecarWritten = false;
      try {
        await copyImage(snapshotImage(root, input.snapshotId), partial, { signal: options.signal });
        await writeVolumeAttributes(root, volumeId, {
          volumeType: input.volumeType === undefined || input.volumeType === "" ? record.volumeType : input.volumeType,
          iops: input.iops ?? record.iops,
          zone: input.zone === undefined || input.zone === "" ? record.zone : input.zone,
          tags: { ...input.tags },
          createdAt: new Date().toISOString(),
          sourceSnapshotId: input.snapshotId,
        });
        sidecarWritten = true;
        throwIfAborted(options.signal);
        await rename(partial, volumeImage(root, volumeId));
        await fsyncDirectory(volumesDir(root));
      } catch (error) {
        await rm(partial, { force: true });
        if (sidecarWritten) await rm(volumeSidecar(root, volumeId), { force: true });
        if (isNotFound(error)) {
          throw new StowageError(Code.DataLoss, `the data of snapshot ${JSON.stringify(input.snapshotId)} is missing`, { cause: error });
        }
        throw error;
      }
      this.#logger.info({ volumeId, snapshotId: input.snapshotId }, "volume restored from snapshot");
      return volumeId;
    } catch (error) {
      throw toStowageError(error);
    }
  }

  /** Reports a volume's type, IOPS, zone and size; a missing one fails with `VOLUME_NOT_FOUND`. */
  async getVolumeInfo(input: VolumeRef, options: CallOptions = {}): Promise<Volume> {
    try {
      throwIfAborted(options.signal);
      const { root } = this.#requireSettings();
      checkId("volume", input.volumeId);
      const volume = await describeVolume(root, input.volumeId);
      if (volume === undefined) throw volumeNotFound(input.volumeId);
      return volume;
    } catch (error) {
      throw toStowageError(error);
    }
  }

  /** Deletes a volume; a missing one is success. */
  async deleteVolume(input: VolumeRef, options: CallOptions = {}): Promise<void> {
    try {
      throwIfAborted(options.signal);
      const { root } = this.#requireSettings();
      checkId("volume", input.volumeId);
      // The data file goes first: from then on the volume does not exist.
      await rm(volumeImage(root, input.volumeId), { force: true });
      await rm(volumeSidecar(root, input.volumeId), { force: true });
      await fsyncDirectory(volumesDir(root));
    } catch (error) {
      throw toStowageError(error);
    }
  }

  /** The volume ID of a PV this plugin owns, or `""`; see `persistent-volumes.ts`. */
  async getVolumeId(persistentVolume: unknown, options: CallOptions = {}): Promise<string> {
    throwIfAborted(options.signal);
    this.#requireSettings();
    return getPersistentVolumeId(persistentVolume);
  }

  /** A copy of the PV with its volume ID replaced; see `persistent-volumes.ts`. */
  async setVolumeId(persistentVolume: unknown, volumeId: string, options: CallOptions = {}): Promise<unknown> {
    throwIfAborted(options.signal);
    this.#requireSettings();
    return setPersistentVolumeId(persistentVolume, volumeId);
  }

  /**
   * Waits for every snapshot copy running in this process to settle. Copies are not cancelled;
   * meant for orderly shutdowns and tests.
   */
  async idle(): Promise<void> {
    await Promise.all([...this.#copies.values()].map((copy) => copy.done));
  }

  #requireSettings(): BlockStoreSettings {
    if (this.#settings === undefined) {
      throw new StowageError(Code.FailedPrecondition, "the local block store is not configured; call init first", {
        reason: Reason.NotInitialized,
      });
    }
    return this.#settings;
  }

  /**
   * The snapshot as it stands: a pending record is pending with live progress while its copy runs
   * here, and failed (interrupted) when no copy runs for it.
   */
  async #current(root: string, record: SnapshotRecord): Promise<Snapshot> {
    if (record.state !== "pending") return toSnapshot(record);
    const copy = this.#copies.get(record.snapshotId);
    if (copy !== undefined) return toSnapshot(record, copy.progress);
    // A copy of this process writes its final record before it leaves the map: read again, so a
    // copy that just finished is not mistaken for an interrupted one.
    const fresh = await readSnapshotRecord(root, record.snapshotId);
    if (fresh === undefined) throw snapshotNotFound(record.snapshotId);
    if (fresh.state !== "pending") return toSnapshot(fresh);
    return toSnapshot({ ...fresh, state: "failed", message: INTERRUPTED_MESSAGE });
  }

  /** Copies the volume into the snapshot and records the outcome (unless the snapshot was deleted). */
  async #copySnapshot(settings: BlockStoreSettings, record: SnapshotRecord, copy: RunningCopy): Promise<void> {
    const { root } = settings;
    const { signal } = copy.controller;
    const partial = snapshotPartial(root, record.snapshotId);
    try {
      const method = await copyImage(volumeImage(root, record.volumeId), partial, {
        delayPerMiBMs: settings.copyDelayMs,
        signal,
        onProgress: (copied, total) => {
          copy.progress = total === 0 ? 0 : Math.min(99, Math.floor((copied * 100) / total));
        },
      });
      throwIfAborted(signal);
      await rename(partial, snapshotImage(root, record.snapshotId));
      await fsyncDirectory(snapshotsDir(root));
      await writeSnapshotRecord(root, { ...record, state: "ready" });
      this.#logger.info({ snapshotId: record.snapshotId, method }, "snapshot ready");
    } catch (error) {
      await rm(partial, { force: true }).catch(() => undefined);
      if (signal.aborted) return; // deleted: there is nothing left to record
      const message = `copying the volume data failed: ${StowageError.from(error).rawMessage}`;
      this.#logger.error({ err: error, snapshotId: record.snapshotId }, "snapshot failed");
      await writeSnapshotRecord(root, { ...record, state: "failed", message }).catch((writeError: unknown) => {
        this.#logger.error({ err: writeError, snapshotId: record.snapshotId }, "cannot record the snapshot's failure");
      });
    }
  }
}

/** Where a snapshot stands in listing order. */
interface Position {
  readonly createdAtMs: number;
  readonly snapshotId: string;
}

function positionOf(record: SnapshotRecord): Position {
  return { createdAtMs: Date.parse(record.createdAt), snapshotId: record.snapshotId };
}

function comparePositions(a: Position, b: Position): number {
  if (a.createdAtMs !== b.createdAtMs) return a.createdAtMs - b.createdAtMs;
  return a.snapshotId < b.snapshotId ? -1 : a.snapshotId > b.snapshotId ? 1 : 0;
}

function encodeSnapshotPageToken(position: Position): string {
  return Buffer.from(JSON.stringify([position.createdAtMs, position.snapshotId]), "utf8").toString("base64url");
}

function decodeSnapshotPageToken(token: string): Position {
  let value: unknown;
  try {
    value = /^[A-Za-z0-9_-]+$/.test(token) ? JSON.parse(Buffer.from(token, "base64url").toString("utf8")) : undefined;
  } catch {
    value = undefined;
  }
  if (!Array.isArray(value) || value.length !== 2 || !Number.isSafeInteger(value[0]) || typeof value[1] !== "string") {
    throw new StowageError(Code.InvalidArgument, `page token ${JSON.stringify(token)} is invalid; pass back a token a listing returned`, {
      reason: Reason.InvalidPageToken,
    });
  }
  return { createdAtMs: value[0] as number, snapshotId: value[1] };
}

function checkPageSize(pageSize: number | undefined): number {
  const size = pageSize ?? 0;
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new StowageError(Code.InvalidArgument, `pageSize must be an integer from 1 to ${MAX_SNAPSHOT_PAGE_SIZE}, got ${String(pageSize)}`);
  }
  return size === 0 ? DEFAULT_SNAPSHOT_PAGE_SIZE : Math.min(size, MAX_SNAPSHOT_PAGE_SIZE);
}
