/**
 * Snapshot helpers shared by `stowage snapshot` and `stowage demo`: waiting for a snapshot to
 * settle, and showing snapshots and volumes.
 *
 * @packageDocumentation
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Code, StowageError, type BlockStore, type Snapshot, type Volume } from "@stowage/sdk";
import { formatBytes, formatDate } from "./output.js";
import type { PercentProgress } from "./progress.js";

/** Options of {@link waitForSnapshot}. */
export interface WaitOptions {
  /** Cancels the wait. */
  readonly signal?: AbortSignal | undefined;
  /** Pause between polls (default 250 ms). */
  readonly intervalMs?: number | undefined;
  /** Shows the progress. */
  readonly progress?: PercentProgress | undefined;
}

/**
 * Polls `getSnapshot` until the snapshot is `ready` and returns it. Fails with the plugin's
 * message when the snapshot ends `failed`.
 */
export async function waitForSnapshot(store: BlockStore, snapshotId: string, options: WaitOptions = {}): Promise<Snapshot> {
  for (;;) {
    const snapshot = await store.getSnapshot(snapshotId, { signal: options.signal });
    options.progress?.update(snapshot.state === "ready" ? 100 : (snapshot.progressPercent ?? 0), snapshot.state);
    if (snapshot.state === "ready") return snapshot;
    if (snapshot.state === "failed") {
      throw new StowageError(Code.Aborted, `snapshot ${snapshotId} failed${snapshot.message === "" ? "" : `: ${snapshot.message}`}`);
    }
    await sleep(options.intervalMs ?? 250, undefined, { signal: options.signal });
  }
}

/** A snapshot as the JSON output shows it. */
export function snapshotJson(s: Snapshot): Record<string, unknown> {
  return {
    snapshotId: s.snapshotId,
    volumeId: s.volumeId,
    state: s.state,
    progressPercent: s.progressPercent,
    sizeBytes: s.sizeBytes,
    zone: s.zone,
    createdAt: s.createdAt?.toISOString(),
    tags: s.tags,
    message: s.message,
  };
}

/** A volume as the JSON output shows it. */
export function volumeJson(v: Volume): Record<string, unknown> {
  return { volumeId: v.volumeId, volumeType: v.volumeType, iops: v.iops, zone: v.zone, sizeBytes: v.sizeBytes };
}

/** `k=v, k2=v2`, or `-` without tags. */
export function formatTags(tags: Readonly<Record<string, string>>): string {
  const entries = Object.entries(tags);
  return entries.length === 0 ? "-" : entries.map(([k, v]) => `${k}=${v}`).join(", ");
}

/** A snapshot as aligned `field  value` lines. */
export function describeSnapshot(s: Snapshot): string[] {
  const fields: [string, string][] = [
    ["snapshot", s.snapshotId],
    ["volume", s.volumeId],
    ["state", s.state === "pending" && s.progressPercent !== undefined ? `pending (${s.progressPercent}%)` : s.state],
    ["size", formatBytes(s.sizeBytes)],
    ["zone", s.zone === "" ? "-" : s.zone],
    ["created", formatDate(s.createdAt) || "-"],
    ["tags", formatTags(s.tags)],
  ];
  if (s.message !== "") fields.push(["message", s.message]);
  return fields.map(([k, v]) => `${k.padEnd(9)} ${v}`);
}

/** A volume as aligned `field  value` lines. */
export function describeVolume(v: Volume): string[] {
  const fields: [string, string][] = [
    ["volume", v.volumeId],
    ["type", v.volumeType === "" ? "-" : v.volumeType],
    ["iops", v.iops === undefined ? "-" : String(v.iops)],
    ["zone", v.zone === "" ? "-" : v.zone],
    ["size", formatBytes(v.sizeBytes)],
  ];
  return fields.map(([k, val]) => `${k.padEnd(9)} ${val}`);
}
