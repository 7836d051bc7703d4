/**
 * Snapshot records: the JSON file that describes each snapshot and survives the process, so that
 * a new plugin process sees the snapshots an earlier one took.
 *
 * @packageDocumentation
 */
import { Code, StowageError, type Snapshot, type SnapshotState } from "@stowage/sdk";
import type { Directory } from "../shared/confined-root.js";
import { ID_PATTERN } from "../shared/ids.js";
import { writeFileAtomic } from "../shared/temp-files.js";
import { recordName } from "./layout.js";

/** What is stored about a snapshot. */
export interface SnapshotRecord {
  /** Snapshot ID. */
  readonly snapshotId: string;
  /** Source volume ID. */
  readonly volumeId: string;
  /** State as last written. `pending` is only true while the copier that wrote it runs. */
  readonly state: SnapshotState;
  /** Why it failed. */
  readonly message: string;
  /** Size of the source volume in bytes. */
  readonly sizeBytes: number;
  /** Tags. */
  readonly tags: Readonly<Record<string, string>>;
  /** Creation time, ISO 8601. */
  readonly createdAt: string;
  /** Zone. */
  readonly zone: string;
  /** The source volume's type, given to restored volumes unless overridden. */
  readonly volumeType: string;
  /** The source volume's IOPS, given to restored volumes unless overridden. */
  readonly iops?: number | undefined;
}

/** The contract's view of a record. `progressPercent` applies to pending snapshots. */
export function toSnapshot(record: SnapshotRecord, progressPercent?: number): Snapshot {
  return {
    snapshotId: record.snapshotId,
    volumeId: record.volumeId,
    state: record.state,
    progressPercent: record.state === "ready" ? 100 : record.state === "pending" ? (progressPercent ?? 0) : undefined,
    sizeBytes: record.sizeBytes,
    tags: record.tags,
    createdAt: new Date(record.createdAt),
    zone: record.zone,
    message: record.message,
  };
}

/** Writes a record atomically. */
export async function writeSnapshotRecord(snapshots: Directory, record: SnapshotRecord, mode: number): Promise<void> {
  await writeFileAtomic(snapshots, recordName(record.snapshotId), `${JSON.stringify(record, null, 2)}\n`, mode);
}

/**
 * Reads a record, or returns `undefined` when there is none. A file that is not a valid record
 * fails with `DATA_LOSS`.
 */
export async function readSnapshotRecord(snapshots: Directory, snapshotId: string): Promise<SnapshotRecord | undefined> {
  const text = await snapshots.readText(recordName(snapshotId));
  if (text === undefined) return undefined;
  const record = parseRecord(text);
  if (record?.snapshotId !== snapshotId) {
    const path = snapshots.pathOf(recordName(snapshotId));
    throw new StowageError(Code.DataLoss, `snapshot record ${path} is damaged`, { metadata: { path } });
  }
  return record;
}

/**
 * Reads every record. Damaged files are passed to `onDamaged` and skipped, so one bad file does
 * not hide the other snapshots.
 */
export async function readAllSnapshotRecords(snapshots: Directory, onDamaged: (path: string) => void): Promise<SnapshotRecord[]> {
  const records: SnapshotRecord[] = [];
  for (const entry of await snapshots.entries()) {
    const id = entry.name.endsWith(".json") ? entry.name.slice(0, -".json".length) : "";
    if (!ID_PATTERN.test(id) || !entry.isFile()) continue;
    try {
      const record = await readSnapshotRecord(snapshots, id);
      if (record !== undefined) records.push(record);
    } catch (error) {
      if (!(error instanceof StowageError && error.code === Code.DataLoss)) throw error;
      onDamaged(snapshots.pathOf(recordName(id)));
    }
  }
  return records;
}

function parseRecord(text: string): SnapshotRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const strings = ["snapshotId", "volumeId", "message", "createdAt", "zone", "volumeType"] as const;
  if (!strings.every((name) => typeof v[name] === "string")) return undefined;
  if (v.state !== "pending" && v.state !== "ready" && v.state !== "failed") return undefined;
  if (typeof v.sizeBytes !== "number" || (v.iops !== undefined && typeof v.iops !== "number")) return undefined;
  if (Number.isNaN(Date.parse(v.createdAt as string))) return undefined;
  const tags = v.tags;
  if (typeof tags !== "object" || tags === null || !Object.values(tags).every((t) => typeof t === "string")) return undefined;
  return value as SnapshotRecord;
}
