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
import type { FileHandle } from "node:fs/promises";
import { redactConfig, throwIfAborted } from "@stowage/sdk/plugin";
import { openRoot } from "../shared/config.js";
import type { ConfinedRoot, Directory } from "../shared/confined-root.js";
import { toStowageError } from "../shared/fs.js";
import { checkId, newId } from "../shared/ids.js";
import { Sweeper } from "../shared/sweeper.js";
import { TemporaryFile, sweepTemporaryFiles, type SweepResult } from "../shared/temp-files.js";
import { BLOCK_STORE_CONFIG_KEYS, parseBlockStoreConfig, type BlockStoreSettings } from "./config.js";
import { copyImage, type CopyImageOptions } from "./copy.js";
import { LEGACY_TEMPORARY_NAME, SNAPSHOTS_DIRECTORY, VOLUMES_DIRECTORY, imageName, legacyPartialName, recordName } from "./layout.js";
import { getPersistentVolumeId, setPersistentVolumeId } from "./persistent-volumes.js";
import { readAllSnapshotRecords, readSnapshotRecord, toSnapshot, writeSnapshotRecord, type SnapshotRecord } from "./snapshot-records.js";
import { describeVolume, readVolumeAttributes, sweepOrphanAttributes, writeVolumeAttributes } from "./volumes.js";

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

/** A configuration in force: the settings and the root they name, held open. */
interface Configured {
  readonly settings: BlockStoreSettings;
  readonly root: ConfinedRoot;
}

/** The two directories of a root, open. */
interface Areas {
  readonly volumes: Directory;
  readonly snapshots: Directory;
}

/**
 * A BlockStore on a local file system, laid out as `layout.ts` describes. Volumes are created with
 * `createLocalVolume` (or restored from snapshots); snapshots are taken in the background and
 * reported `pending` with progress until their data is copied.
 *
 * Every file-system call is confined to the root (`confined-root.ts`): a volume file, a snapshot
 * file or a directory that is a symbolic link or a mount point fails with `UNSAFE_PATH`. Data is
 * copied into temporary files named after their writer, so the copies of a process killed
 * mid-snapshot or mid-restore are reclaimed at `init` and periodically (`temp-files.ts`).
 *
 * A snapshot copies the volume file as it is when the copy runs: it is crash-consistent only if
 * nothing writes to the volume meanwhile (reflinks make the window tiny). A snapshot left
 * `pending` by a process that stopped is reported `failed` by the others, so one root should be
 * served by one process at a time.
 */
export class LocalBlockStore implements BlockStore {
  readonly #logger: Logger;
  readonly #copies = new Map<string, RunningCopy>();
  #configured: Configured | undefined;
  readonly #sweeper = new Sweeper(() => this.#sweep());

  /** @param options - Logger. */
  constructor(options: LocalBlockStoreOptions = {}) {
    this.#logger = options.logger ?? silentLogger;
  }

  /**
   * Configures the store, creates `volumes/` and `snapshots/` under the root when missing, and
   * reclaims what dead writers left there (then does so periodically).
   */
  async init(config: PluginConfig, options: CallOptions = {}): Promise<void> {
    try {
      throwIfAborted(options.signal);
      const settings = parseBlockStoreConfig(config);
      const root = await openRoot(settings.root);
      try {
        const configured = { settings, root };
        await this.#inAreas(configured, () => Promise.resolve());
        const previous = this.#configured;
        this.#configured = configured;
        previous?.root.retire();
      } catch (error) {
        root.retire();
        throw error;
      }
      this.#logger.info({ config: redactConfig(config, BLOCK_STORE_CONFIG_KEYS), confinement: root.mode }, "local block store configured");
      await this.#sweeper.now();
      this.#sweeper.schedule(settings.files.sweepIntervalMs);
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
      const configured = this.#require();
      checkId("volume", input.volumeId);
      return await this.#inAreas(configured, async ({ volumes, snapshots }) => {
        const volume = await describeVolume(volumes, input.volumeId);
        if (volume === undefined) throw volumeNotFound(input.volumeId);
        const attributes = await readVolumeAttributes(volumes, input.volumeId);
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
          await writeSnapshotRecord(snapshots, record, configured.settings.files.fileMode);
        } catch (error) {
          this.#copies.delete(record.snapshotId);
          throw error;
        }
        copy.done = this.#copySnapshot(configured, record, copy).finally(() => this.#copies.delete(record.snapshotId));
        this.#logger.info({ snapshotId: record.snapshotId, volumeId: record.volumeId }, "snapshot started");
        return toSnapshot(record, 0);
      });
    } catch (error) {
      throw toStowageError(error);
    }
  }

  /** Reports a snapshot; a missing one fails with `SNAPSHOT_NOT_FOUND`. */
  async getSnapshot(snapshotId: string, options: CallOptions = {}): Promise<Snapshot> {
    try {
      throwIfAborted(options.signal);
      const configured = this.#require();
      checkId("snapshot", snapshotId);
      return await this.#inAreas(configured, async ({ snapshots }) => {
        const record = await readSnapshotRecord(snapshots, snapshotId);
        if (record === undefined) throw snapshotNotFound(snapshotId);
        return await this.#current(snapshots, record);
      });
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
      const configured = this.#require();
      const pageSize = checkPageSize(input.pageSize);
      const after = input.pageToken === undefined || input.pageToken === "" ? undefined : decodeSnapshotPageToken(input.pageToken);
      const filter = Object.entries(input.tagFilter ?? {});
      return await this.#inAreas(configured, async ({ snapshots }) => {
        const records = await readAllSnapshotRecords(snapshots, (path) => this.#logger.warn({ path }, "skipping damaged snapshot record"));
        const matching = records
          .filter((record) => filter.every(([name, value]) => record.tags[name] === value))
          .map((record) => ({ record, position: positionOf(record) }))
          .filter(({ position }) => after === undefined || comparePositions(position, after) > 0)
          .sort((a, b) => comparePositions(a.position, b.position));
        const page = matching.slice(0, pageSize);
        const last = page.at(-1);
        const result: Snapshot[] = [];
        for (const { record } of page) result.push(await this.#current(snapshots, record));
        return {
          snapshots: result,
          nextPageToken: matching.length > pageSize && last !== undefined ? encodeSnapshotPageToken(last.position) : "",
        };
      });
    } catch (error) {
      throw toStowageError(error);
    }
  }

  /** Deletes a snapshot, cancelling its copy if it is still running; a missing one is success. */
  async deleteSnapshot(snapshotId: string, options: CallOptions = {}): Promise<void> {
    try {
      throwIfAborted(options.signal);
      const configured = this.#require();
      checkId("snapshot", snapshotId);
      const copy = this.#copies.get(snapshotId);
      if (copy !== undefined) {
        copy.controller.abort();
        await copy.done;
      }
      await this.#inAreas(configured, async ({ snapshots }) => {
        // The record goes first: from then on the snapshot does not exist, whatever happens next.
        await snapshots.unlink(recordName(snapshotId));
        await snapshots.unlink(imageName(snapshotId));
        await snapshots.unlink(legacyPartialName(snapshotId));
        await snapshots.sync();
      });
    } catch (error) {
      throw toStowageError(error);
    }
  }

  /**
   * Creates a volume holding a ready snapshot's data and returns its ID. The volume keeps the
   * source volume's type, IOPS and zone unless the input overrides them. A snapshot that is not
   * ready fails with `FAILED_PRECONDITION`/`SNAPSHOT_NOT_READY`. The data is copied into a
   * temporary file and renamed into place: a failed, cancelled or killed restore leaves no volume.
   */
  async createVolumeFromSnapshot(input: CreateVolumeFromSnapshotInput, options: CallOptions = {}): Promise<string> {
    try {
      throwIfAborted(options.signal);
      const configured = this.#require();
      const { files, copyDelayMs } = configured.settings;
      checkId("snapshot", input.snapshotId);
      if (input.iops !== undefined && (!Number.isSafeInteger(input.iops) || input.iops < 0)) {
        throw new StowageError(Code.InvalidArgument, `iops must be a non-negative integer, got ${String(input.iops)}`);
      }
      return await this.#inAreas(configured, async ({ volumes, snapshots }) => {
        const record = await readSnapshotRecord(snapshots, input.snapshotId);
        if (record === undefined) throw snapshotNotFound(input.snapshotId);
        const snapshot = await this.#current(snapshots, record);
        if (snapshot.state !== "ready") {
          throw new StowageError(
            Code.FailedPrecondition,
            `snapshot ${JSON.stringify(input.snapshotId)} is ${snapshot.state}${snapshot.message === "" ? "" : ` (${snapshot.message})`}; only a ready snapshot can be restored`,
            { reason: Reason.SnapshotNotReady, metadata: { snapshot_id: input.snapshotId, state: snapshot.state } },
          );
        }
        const source = await snapshots.openFile(imageName(input.snapshotId));
        if (source === undefined) throw new StowageError(Code.DataLoss, `the data of snapshot ${JSON.stringify(input.snapshotId)} is missing`);
        const volumeId = newId("vol");
        let sidecarWritten = false;
        let renamed = false;
        try {
          const temp = await TemporaryFile.create(volumes, imageName(volumeId), files.fileMode);
          try {
            await copyImage(source.handle, temp.handle, this.#copyOptions(configured, source.handle, temp, { delayPerMiBMs: copyDelayMs, signal: options.signal }));
            await temp.close();
            await writeVolumeAttributes(
              volumes,
              volumeId,
              {
                volumeType: input.volumeType === undefined || input.volumeType === "" ? record.volumeType : input.volumeType,
                iops: input.iops ?? record.iops,
                zone: input.zone === undefined || input.zone === "" ? record.zone : input.zone,
                tags: { ...input.tags },
                createdAt: new Date().toISOString(),
                sourceSnapshotId: input.snapshotId,
              },
              files.fileMode,
            );
            sidecarWritten = true;
            throwIfAborted(options.signal);
            await volumes.rename(temp.name, volumes, imageName(volumeId));
            renamed = true;
            await volumes.sync();
          } finally {
            if (!renamed) await temp.discard();
          }
        } catch (error) {
          if (sidecarWritten && !renamed) await volumes.unlink(recordName(volumeId)).catch(() => undefined);
          throw error;
        } finally {
          await source.handle.close();
        }
        this.#logger.info({ volumeId, snapshotId: input.snapshotId }, "volume restored from snapshot");
        return volumeId;
      });
    } catch (error) {
      throw toStowageError(error);
    }
  }

  /** Reports a volume's type, IOPS, zone and size; a missing one fails with `VOLUME_NOT_FOUND`. */
  async getVolumeInfo(input: VolumeRef, options: CallOptions = {}): Promise<Volume> {
    try {
      throwIfAborted(options.signal);
      const configured = this.#require();
      checkId("volume", input.volumeId);
      const volume = await this.#inAreas(configured, ({ volumes }) => describeVolume(volumes, input.volumeId));
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
      const configured = this.#require();
      checkId("volume", input.volumeId);
      await this.#inAreas(configured, async ({ volumes }) => {
        // The data file goes first: from then on the volume does not exist.
        await volumes.unlink(imageName(input.volumeId));
        await volumes.unlink(recordName(input.volumeId));
        await volumes.sync();
      });
    } catch (error) {
      throw toStowageError(error);
    }
  }

  /** The volume ID of a PV this plugin owns, or `""`; see `persistent-volumes.ts`. */
  async getVolumeId(persistentVolume: unknown, options: CallOptions = {}): Promise<string> {
    throwIfAborted(options.signal);
    this.#require();
    return getPersistentVolumeId(persistentVolume);
  }

  /** A copy of the PV with its volume ID replaced; see `persistent-volumes.ts`. */
  async setVolumeId(persistentVolume: unknown, volumeId: string, options: CallOptions = {}): Promise<unknown> {
    throwIfAborted(options.signal);
    this.#require();
    return setPersistentVolumeId(persistentVolume, volumeId);
  }

  /**
   * Waits for every snapshot copy running in this process to settle. Copies are not cancelled;
   * meant for orderly shutdowns and tests.
   */
  async idle(): Promise<void> {
    await Promise.all([...this.#copies.values()].map((copy) => copy.done));
  }

  /** Stops the periodic sweep (running copies go on; see {@link idle}). The store stays usable. */
  async close(): Promise<void> {
    await this.#sweeper.stop();
  }

  #require(): Configured {
    if (this.#configured === undefined) {
      throw new StowageError(Code.FailedPrecondition, "the local block store is not configured; call init first", {
        reason: Reason.NotInitialized,
      });
    }
    return this.#configured;
  }

  /**
   * Runs `fn` with `volumes/` and `snapshots/` open (created when missing), then closes them. A
   * link or mount point in their place fails with `UNSAFE_PATH`.
   */
  async #inAreas<T>(configured: Configured, fn: (areas: Areas) => Promise<T>): Promise<T> {
    const { dirMode } = configured.settings.files;
    const top = configured.root.acquire();
    let volumes: Directory | undefined;
    let snapshots: Directory | undefined;
    try {
      volumes = await top.child(VOLUMES_DIRECTORY, { create: dirMode, sync: true });
      snapshots = await top.child(SNAPSHOTS_DIRECTORY, { create: dirMode, sync: true });
      if (volumes === undefined || snapshots === undefined) throw new StowageError(Code.Internal, "bug: the store's directories were not created");
      return await fn({ volumes, snapshots });
    } finally {
      snapshots?.close();
      volumes?.close();
      top.close();
    }
  }

  /** Copy options, with the descriptor paths a reflink needs when the root offers them. */
  #copyOptions(configured: Configured, source: FileHandle, destination: TemporaryFile, options: CopyImageOptions): CopyImageOptions {
    const sourcePath = configured.root.descriptorPath(source);
    const destinationPath = configured.root.descriptorPath(destination.handle);
    return {
      ...options,
      mode: configured.settings.files.fileMode,
      descriptorPaths: sourcePath === undefined || destinationPath === undefined ? undefined : { source: sourcePath, destination: destinationPath },
    };
  }

  /**
   * The snapshot as it stands: a pending record is pending with live progress while its copy runs
   * here, and failed (interrupted) when no copy runs for it.
   */
  async #current(snapshots: Directory, record: SnapshotRecord): Promise<Snapshot> {
    if (record.state !== "pending") return toSnapshot(record);
    const copy = this.#copies.get(record.snapshotId);
    if (copy !== undefined) return toSnapshot(record, copy.progress);
    // A copy of this process writes its final record before it leaves the map: read again, so a
    // copy that just finished is not mistaken for an interrupted one.
    const fresh = await readSnapshotRecord(snapshots, record.snapshotId);
    if (fresh === undefined) throw snapshotNotFound(record.snapshotId);
    if (fresh.state !== "pending") return toSnapshot(fresh);
    return toSnapshot({ ...fresh, state: "failed", message: INTERRUPTED_MESSAGE });
  }

  /** Copies the volume into the snapshot and records the outcome (unless the snapshot was deleted). */
  async #copySnapshot(configured: Configured, record: SnapshotRecord, copy: RunningCopy): Promise<void> {
    const { signal } = copy.controller;
    const { files, copyDelayMs } = configured.settings;
    await this.#inAreas(configured, async ({ volumes, snapshots }) => {
      try {
        const source = await volumes.openFile(imageName(record.volumeId));
        if (source === undefined) throw volumeNotFound(record.volumeId);
        try {
          const temp = await TemporaryFile.create(snapshots, imageName(record.snapshotId), files.fileMode);
          let renamed = false;
          try {
            const method = await copyImage(
              source.handle,
              temp.handle,
              this.#copyOptions(configured, source.handle, temp, {
                delayPerMiBMs: copyDelayMs,
                signal,
                onProgress: (copied, total) => {
                  copy.progress = total === 0 ? 0 : Math.min(99, Math.floor((copied * 100) / total));
                },
              }),
            );
            await temp.close();
            throwIfAborted(signal);
            await snapshots.rename(temp.name, snapshots, imageName(record.snapshotId));
            renamed = true;
            await snapshots.sync();
            await writeSnapshotRecord(snapshots, { ...record, state: "ready" }, files.fileMode);
            this.#logger.info({ snapshotId: record.snapshotId, method }, "snapshot ready");
          } finally {
            if (!renamed) await temp.discard();
          }
        } finally {
          await source.handle.close();
        }
      } catch (error) {
        if (signal.aborted) return; // deleted: there is nothing left to record
        const message = `copying the volume data failed: ${StowageError.from(error).rawMessage}`;
        this.#logger.error({ err: error, snapshotId: record.snapshotId }, "snapshot failed");
        await writeSnapshotRecord(snapshots, { ...record, state: "failed", message }, files.fileMode).catch((writeError: unknown) => {
          this.#logger.error({ err: writeError, snapshotId: record.snapshotId }, "cannot record the snapshot's failure");
        });
      }
    }).catch((error: unknown) => {
      this.#logger.error({ err: error, snapshotId: record.snapshotId }, "snapshot failed and its failure cannot be recorded");
    });
  }

  /** Reclaims dead writers' temporary files; failures are logged, never thrown. */
  async #sweep(): Promise<void> {
    const configured = this.#configured;
    if (configured === undefined) return;
    const options = { staleMs: configured.settings.files.staleTempMs, legacy: LEGACY_TEMPORARY_NAME };
    try {
      await this.#inAreas(configured, async ({ volumes, snapshots }) => {
        const result: SweepResult = { files: 0, bytes: 0 };
        await sweepTemporaryFiles(volumes, options, result);
        await sweepTemporaryFiles(snapshots, options, result);
        await sweepOrphanAttributes(volumes, options.staleMs, result);
        if (result.files > 0) this.#logger.info({ ...result }, "reclaimed temporary files left by dead writers");
      });
    } catch (error) {
      this.#logger.warn({ err: error }, "sweeping temporary files failed");
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
