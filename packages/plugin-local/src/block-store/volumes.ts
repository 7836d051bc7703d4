/**
 * Local volumes: a data file plus a JSON file of attributes. {@link createLocalVolume} makes them
 * for tools and tests; the BlockStore contract itself only restores and deletes volumes.
 *
 * @packageDocumentation
 */
import { Code, StowageError, type Volume } from "@stowage/sdk";
import { mkdir, type FileHandle } from "node:fs/promises";
import { ConfinedRoot, type Directory } from "../shared/confined-root.js";
import { DEFAULT_DIRECTORY_MODE, DEFAULT_FILE_MODE } from "../shared/config.js";
import { errnoCode, writeFully } from "../shared/fs.js";
import { ID_PATTERN, checkId, newId } from "../shared/ids.js";
import { TemporaryFile, writeFileAtomic, type SweepResult } from "../shared/temp-files.js";
import { COPY_CHUNK_BYTES } from "./copy.js";
import { VOLUMES_DIRECTORY, imageName, recordName, volumeImage } from "./layout.js";

/** The attributes stored next to a volume's data. */
export interface VolumeAttributes {
  /** Volume type; empty when unknown. */
  readonly volumeType: string;
  /** Provisioned IOPS, when set. */
  readonly iops?: number | undefined;
  /** Zone; empty when unknown. */
  readonly zone: string;
  /** Tags, copied onto snapshots of the volume. */
  readonly tags: Readonly<Record<string, string>>;
  /** Creation time, ISO 8601. */
  readonly createdAt: string;
  /** Snapshot the volume was restored from, if any. */
  readonly sourceSnapshotId?: string | undefined;
}

/** Reads a volume's attributes; a volume without an attribute file gets empty ones. */
export async function readVolumeAttributes(volumes: Directory, volumeId: string): Promise<VolumeAttributes> {
  const text = await volumes.readText(recordName(volumeId));
  if (text === undefined) return { volumeType: "", zone: "", tags: {}, createdAt: "" };
  const value = JSON.parse(text) as Partial<Record<keyof VolumeAttributes, unknown>>;
  const tags = typeof value.tags === "object" && value.tags !== null ? value.tags : {};
  return {
    volumeType: typeof value.volumeType === "string" ? value.volumeType : "",
    iops: typeof value.iops === "number" ? value.iops : undefined,
    zone: typeof value.zone === "string" ? value.zone : "",
    tags: Object.fromEntries(Object.entries(tags).filter((entry): entry is [string, string] => typeof entry[1] === "string")),
    createdAt: typeof value.createdAt === "string" ? value.createdAt : "",
    sourceSnapshotId: typeof value.sourceSnapshotId === "string" ? value.sourceSnapshotId : undefined,
  };
}

/** Writes a volume's attribute file atomically. */
export async function writeVolumeAttributes(volumes: Directory, volumeId: string, attributes: VolumeAttributes, mode: number): Promise<void> {
  await writeFileAtomic(volumes, recordName(volumeId), `${JSON.stringify(attributes, null, 2)}\n`, mode);
}

/**
 * Removes attribute files whose volume has no data file and that were last written more than
 * `staleMs` ago: a restore killed between writing the attributes and renaming the data into
 * place leaves one. Younger ones may belong to a volume being created, and stay.
 */
export async function sweepOrphanAttributes(volumes: Directory, staleMs: number, result: SweepResult, now = Date.now()): Promise<void> {
  const entries = await volumes.entries();
  const names = new Set(entries.map((entry) => entry.name));
  for (const entry of entries) {
    const id = entry.name.endsWith(".json") ? entry.name.slice(0, -".json".length) : "";
    if (!entry.isFile() || !ID_PATTERN.test(id) || names.has(imageName(id))) continue;
    const stats = await volumes.stat(entry.name);
    if (stats === undefined || now - stats.mtimeMs <= staleMs || (await volumes.stat(imageName(id))) !== undefined) continue;
    if (await volumes.unlink(entry.name)) {
      result.files++;
      result.bytes += stats.size;
    }
  }
}

/** Describes a volume, or returns `undefined` when it does not exist. */
export async function describeVolume(volumes: Directory, volumeId: string): Promise<Volume | undefined> {
  const opened = await volumes.openFile(imageName(volumeId));
  if (opened === undefined) return undefined;
  await opened.handle.close();
  const attributes = await readVolumeAttributes(volumes, volumeId);
  return { volumeId, volumeType: attributes.volumeType, iops: attributes.iops, zone: attributes.zone, sizeBytes: opened.stats.size };
}

/** Options of {@link createLocalVolume}. */
export interface CreateLocalVolumeOptions {
  /** ID of the new volume; a random `vol-…` ID when absent. */
  readonly volumeId?: string | undefined;
  /** Size in bytes. */
  readonly sizeBytes: number;
  /** Volume type. */
  readonly volumeType?: string | undefined;
  /** Provisioned IOPS. */
  readonly iops?: number | undefined;
  /** Zone. */
  readonly zone?: string | undefined;
  /** Tags. */
  readonly tags?: Readonly<Record<string, string>> | undefined;
  /**
   * Content: a byte value repeated over the whole volume, or a pattern repeated from offset 0.
   * Absent: the volume reads as zeroes and takes no space (a sparse file).
   */
  readonly fill?: number | Uint8Array | undefined;
  /** Mode of the data and attribute files (default 0600, like the store's `fileMode`). */
  readonly fileMode?: number | undefined;
}

/** A volume made by {@link createLocalVolume}. */
export interface LocalVolume extends Volume {
  /** Absolute path of its data file. */
  readonly path: string;
  /** Its tags. */
  readonly tags: Readonly<Record<string, string>>;
}

/**
 * Creates a volume under a local BlockStore's `root` (creating `root` and `root/volumes`, mode
 * 0700, if needed). Meant for tools and tests: the BlockStore contract has no call that creates
 * an empty volume. Fails with `ALREADY_EXISTS` when a volume of that ID exists, and with
 * `UNSAFE_PATH` when `root/volumes` is a link or a mount point.
 *
 * @example
 * ```ts
 * const volume = await createLocalVolume("/var/lib/stowage-blocks", { sizeBytes: 8 << 20, zone: "z1", fill: 0xab });
 * ```
 */
export async function createLocalVolume(root: string, options: CreateLocalVolumeOptions): Promise<LocalVolume> {
  const volumeId = options.volumeId ?? newId("vol");
  checkId("volume", volumeId);
  const { sizeBytes } = options;
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) {
    throw new StowageError(Code.InvalidArgument, `sizeBytes must be a non-negative integer, got ${String(sizeBytes)}`);
  }
  const fileMode = options.fileMode ?? DEFAULT_FILE_MODE;
  const attributes: VolumeAttributes = {
    volumeType: options.volumeType ?? "",
    iops: options.iops,
    zone: options.zone ?? "",
    tags: { ...options.tags },
    createdAt: new Date().toISOString(),
  };
  await mkdir(root, { recursive: true, mode: DEFAULT_DIRECTORY_MODE });
  const confined = await ConfinedRoot.open(root);
  const top = confined.acquire();
  try {
    const volumes = await top.child(VOLUMES_DIRECTORY, { create: DEFAULT_DIRECTORY_MODE, sync: true });
    if (volumes === undefined) throw new StowageError(Code.Internal, "bug: the volumes directory was not created");
    try {
      const temp = await TemporaryFile.create(volumes, imageName(volumeId), fileMode);
      try {
        await temp.handle.truncate(sizeBytes);
        if (options.fill !== undefined) await fillFile(temp.handle, sizeBytes, options.fill);
        await temp.handle.sync();
        await temp.close();
        if ((await volumes.stat(imageName(volumeId))) !== undefined) throw alreadyExists(volumeId);
        await writeVolumeAttributes(volumes, volumeId, attributes, fileMode);
        try {
          // link() refuses to replace an existing file, unlike rename(): two creators cannot clobber.
          await volumes.link(temp.name, volumes, imageName(volumeId));
        } catch (error) {
          if (errnoCode(error) === "EEXIST") throw alreadyExists(volumeId);
          throw error;
        }
        await volumes.sync();
      } finally {
        await temp.discard();
      }
    } finally {
      volumes.close();
    }
  } finally {
    top.close();
    confined.retire();
  }
  const path = volumeImage(root, volumeId);
  return { volumeId, volumeType: attributes.volumeType, iops: attributes.iops, zone: attributes.zone, sizeBytes, path, tags: attributes.tags };
}

async function fillFile(file: FileHandle, sizeBytes: number, fill: number | Uint8Array): Promise<void> {
  const pattern = typeof fill === "number" ? Uint8Array.of(fill) : fill;
  if (pattern.length === 0) return;
  // A block that is a whole number of patterns, so every block starts at the pattern's start.
  const repeats = Math.max(1, Math.floor(COPY_CHUNK_BYTES / pattern.length));
  const block = Buffer.alloc(repeats * pattern.length);
  for (let i = 0; i < repeats; i++) block.set(pattern, i * pattern.length);
  for (let position = 0; position < sizeBytes; position += block.length) {
    await writeFully(file, block.subarray(0, Math.min(block.length, sizeBytes - position)), position);
  }
}

function alreadyExists(volumeId: string): StowageError {
  return new StowageError(Code.AlreadyExists, `volume ${JSON.stringify(volumeId)} already exists`, { metadata: { volume_id: volumeId } });
}
