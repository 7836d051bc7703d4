/**
 * Where the local BlockStore keeps things under its root directory:
 *
 * ```text
 * <root>/volumes/<volumeId>.img            volume data (a plain, possibly sparse, file)
 * <root>/volumes/<volumeId>.json           volume attributes: type, IOPS, zone, tags, creation time
 * <root>/snapshots/<snapshotId>.json       snapshot record: state, progress source, tags...
 * <root>/snapshots/<snapshotId>.img        snapshot data, present once the snapshot is ready
 * <root>/snapshots/<snapshotId>.img.partial  snapshot data being copied
 * ```
 *
 * IDs are checked against `ID_PATTERN` before they become file names.
 *
 * @packageDocumentation
 */
import { join } from "node:path";

/** Directory of volumes. */
export function volumesDir(root: string): string {
  return join(root, "volumes");
}

/** Directory of snapshots. */
export function snapshotsDir(root: string): string {
  return join(root, "snapshots");
}

/** A volume's data file. */
export function volumeImage(root: string, volumeId: string): string {
  return join(root, "volumes", `${volumeId}.img`);
}

/** A volume's attribute file. */
export function volumeSidecar(root: string, volumeId: string): string {
  return join(root, "volumes", `${volumeId}.json`);
}

/** A volume's data file while it is being written. */
export function volumePartial(root: string, volumeId: string): string {
  return join(root, "volumes", `${volumeId}.img.partial`);
}

/** A snapshot's record. */
export function snapshotRecordPath(root: string, snapshotId: string): string {
  return join(root, "snapshots", `${snapshotId}.json`);
}

/** A ready snapshot's data file. */
export function snapshotImage(root: string, snapshotId: string): string {
  return join(root, "snapshots", `${snapshotId}.img`);
}

/** A snapshot's data file while it is being copied. */
export function snapshotPartial(root: string, snapshotId: string): string {
  return join(root, "snapshots", `${snapshotId}.img.partial`);
}
