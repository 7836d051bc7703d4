/**
 * Snapshot records: the JSON file that describes each snapshot and survives the process, so that
 * a new plugin process sees the snapshots an earlier one took.
 *
 * @packageDocumentation
 */
import { Code, StowageError, type Snapshot, type SnapshotState } from "@stowage/sdk";
import { readFile, readdir } from "node:fs/promises";
import { ID_PATTERN } from "../shared/ids.js";
import { isNotFound, writeFileAtomic } from "../shared/fs.js";
import { snapshotRecordPath, snapshotsDir } from "./layout.js";

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
export async function writeSnapshotRecord(root: string, record: SnapshotRecord): Promise<void> {
  await writeFileAtomic(snapshotRecordPath(root, record.snapshotId), `${JSON.stringify(record, null, 2)}\n`);
}

/**
 * Reads a record, or returns `undefined` when there is none. A file that is not a valid record
 * fails with `DATA_LOSS`.
 */
export async function readSnapshotRecord(root: string, snapshotId: string): Promise<SnapshotRecord | undefined> {
  const path = snapshotRecordPath(root, snapshotId);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  const record = parseRecord(text);
  if (record?.snapshotId !== snapshotId) throw new StowageError(Code.DataLoss, `snapshot record ${path} is damaged`, { metadata: { path } });
  return record;
}

/**
 * Reads every record. Damaged files are passed to `onDamaged` and skipped, so one bad file does
 * not hide the other snapshots.
 */
export async function readAllSnapshotRecords(root: string, onDamaged: (path: string) => void): Promise<SnapshotRecord[]> {
  let names: string[];
  try {
    names = await readdir(snapshotsDir(root));
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
  const records: SnapshotRecord[] = [];
  for (const name of names) {
    const id = name.endsWith(".json") ? name.slice(0, -".json".length) : "";
    if (!ID_PATTERN.test(id)) continue;
    try {
      const record = await readSnapshotRecord(root, id);
      if (record !== undefined) records.push(record);
    } catch (error) {
      if (!(error instanceof StowageError && error.code === Code.DataLoss)) throw error;
      onDamaged(snapshotRecordPath(root, id));
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
