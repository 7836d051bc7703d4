/**
 * Where the local BlockStore keeps things under its root directory:
 *
 * ```text
 * <root>/volumes/<volumeId>.img            volume data (a plain, possibly sparse, file)
 * <root>/volumes/<volumeId>.json           volume attributes: type, IOPS, zone, tags, creation time
 * <root>/snapshots/<snapshotId>.json       snapshot record: state, source volume, size, tags...
 * <root>/snapshots/<snapshotId>.img        snapshot data, present once the snapshot is ready
 * <root>/{volumes,snapshots}/<name>.<owner>.<random>.part
 *                                          a file being written (see shared/temp-files.ts)
 * ```
 *
 * IDs are checked against `ID_PATTERN` before they become file names, and every file is reached
 * through the confined root (`shared/confined-root.ts`).
 *
 * @packageDocumentation
 */
import { join } from "node:path";

/** Directory of volumes, under the root. */
export const VOLUMES_DIRECTORY = "volumes";
/** Directory of snapshots, under the root. */
export const SNAPSHOTS_DIRECTORY = "snapshots";

/** The data file of a volume or snapshot, in its directory. */
export function imageName(id: string): string {
  return `${id}.img`;
}

/** The attribute file of a volume, or the record of a snapshot, in its directory. */
export function recordName(id: string): string {
  return `${id}.json`;
}

/** The data file of a volume snapshotted by an earlier version while it copied (reclaimed on delete). */
export function legacyPartialName(id: string): string {
  return `${id}.img.partial`;
}

/** Names of files being written by earlier versions (no owner in the name). */
export const LEGACY_TEMPORARY_NAME = /(?:\.img\.partial|\.[0-9a-f]{12}\.(?:tmp|partial))$/;

/** Absolute path of a volume's data file under a root (for tools, and PersistentVolumes' local paths). */
export function volumeImage(root: string, volumeId: string): string {
  return join(root, VOLUMES_DIRECTORY, imageName(volumeId));
}
