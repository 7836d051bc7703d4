/**
 * Temporary files: named after their owner, kept fresh while their owner runs, and reclaimed
 * once it has died.
 *
 * Every file plugin-local writes is first written under a temporary name and renamed into place,
 * so a writer that dies mid-write leaves a temporary file and nothing else. Such a file is named
 * `<stem>.<owner>.<random>.part`, where `<owner>` is the writing process (`owner.ts`), and is
 * reclaimed by {@link sweepTemporaryFiles}, which every store runs at `init` and periodically:
 *
 * - Owner on this host (same PID namespace, same boot): reclaimed as soon as the owner has exited
 *   or its PID belongs to a process with another start time. Files of live owners stay, however
 *   old: another plugin process may share the root.
 * - Owner elsewhere (another host on a shared root, another container): while the owner runs it
 *   refreshes the modification time of each of its open temporary files every
 *   {@link LEASE_REFRESH_MS}; a file not refreshed for `staleMs` is reclaimed, and never one
 *   modified more recently. This holds as long as the hosts' clocks differ by less than
 *   `staleMs` minus the refresh period.
 * - Files named by earlier versions (without an owner) are reclaimed after a day, as before.
 *
 * @packageDocumentation
 */
import { randomBytes } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import type { Directory } from "./confined-root.js";
import { OWNER_TAG_PATTERN, currentOwner, ownerLiveness, ownerTag, parseOwnerTag } from "./owner.js";

/** How often a live writer refreshes its temporary files. */
export const LEASE_REFRESH_MS = 30_000;
/** Age after which a temporary file named by an earlier version (no owner) is reclaimed. */
export const LEGACY_STALE_MS = 24 * 60 * 60 * 1000;

/** A temporary file name with its owner. */
const TEMPORARY_NAME = new RegExp(`\\.${OWNER_TAG_PATTERN.source}\\.[0-9a-f]{16}\\.part$`);

const refreshed = new Set<FileHandle>();
let refreshTimer: NodeJS.Timeout | undefined;

function track(handle: FileHandle): void {
  refreshed.add(handle);
  if (refreshTimer === undefined) {
    refreshTimer = setInterval(() => {
      const now = new Date();
      for (const open of refreshed) open.utimes(now, now).catch(() => undefined);
    }, LEASE_REFRESH_MS);
    refreshTimer.unref();
  }
}

function untrack(handle: FileHandle): void {
  refreshed.delete(handle);
  if (refreshed.size === 0 && refreshTimer !== undefined) {
    clearInterval(refreshTimer);
    refreshTimer = undefined;
  }
}

/** A new temporary file name for `stem`, owned by this process. */
export function temporaryName(stem: string): string {
  return `${stem}.${ownerTag(currentOwner())}.${randomBytes(8).toString("hex")}.part`;
}

/**
 * A temporary file of this process, open for writing and refreshed while open. Close it, then
 * rename it into place or {@link discard} it.
 */
export class TemporaryFile {
  /** Its name in its directory. */
  readonly name: string;
  /** The open file. */
  readonly handle: FileHandle;
  readonly #directory: Directory;
  #open = true;

  private constructor(directory: Directory, name: string, handle: FileHandle) {
    this.#directory = directory;
    this.name = name;
    this.handle = handle;
    track(handle);
  }

  /** Creates a temporary file for `stem` in `directory` with exactly `mode`. */
  static async create(directory: Directory, stem: string, mode: number): Promise<TemporaryFile> {
    const name = temporaryName(stem);
    return new TemporaryFile(directory, name, await directory.createFile(name, mode));
  }

  /** Closes the file (once). */
  async close(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    untrack(this.handle);
    await this.handle.close();
  }

  /** Closes and removes the file; never fails (a leftover is reclaimed later). */
  async discard(): Promise<void> {
    await this.close().catch(() => undefined);
    await this.#directory.unlink(this.name).catch(() => undefined);
  }
}

/**
 * Writes a small file atomically: readers see the old content or the new one, never a mix, and
 * after a crash the file holds one of them. The data goes to a temporary file, is flushed, renamed
 * over `name`, and the directory is flushed too.
 */
export async function writeFileAtomic(directory: Directory, name: string, data: string | Uint8Array, mode: number): Promise<void> {
  const temp = await TemporaryFile.create(directory, name, mode);
  let renamed = false;
  try {
    await temp.handle.writeFile(data);
    await temp.handle.sync();
    await temp.close();
    await directory.rename(temp.name, directory, name);
    renamed = true;
  } finally {
    if (!renamed) await temp.discard();
  }
  await directory.sync();
}

/** What a sweep should reclaim. */
export interface SweepOptions {
  /** Reclaim files of remote owners not refreshed for this long. */
  readonly staleMs: number;
  /** Temporary names of earlier versions (no owner), reclaimed after {@link LEGACY_STALE_MS}. */
  readonly legacy?: RegExp | undefined;
  /** The clock, in milliseconds since the epoch. */
  readonly now?: number | undefined;
}

/** What a sweep reclaimed. */
export interface SweepResult {
  /** Files removed. */
  files: number;
  /** Their size in bytes. */
  bytes: number;
}

/** Reclaims the temporary files of dead owners in `directory`; see the module description. */
export async function sweepTemporaryFiles(directory: Directory, options: SweepOptions, result: SweepResult = { files: 0, bytes: 0 }): Promise<SweepResult> {
  const now = options.now ?? Date.now();
  for (const entry of await directory.entries()) {
    if (!entry.isFile()) continue;
    const match = TEMPORARY_NAME.exec(entry.name);
    if (match === null && options.legacy?.test(entry.name) !== true) continue;
    const stats = await directory.stat(entry.name);
    if (stats?.isFile() !== true) continue;
    const age = now - stats.mtimeMs;
    let reclaim: boolean;
    if (match === null) {
      reclaim = age > LEGACY_STALE_MS;
    } else {
      const liveness = ownerLiveness(parseOwnerTag(match));
      reclaim = liveness === "dead" || (liveness === "remote" && age > options.staleMs);
    }
    if (reclaim && (await directory.unlink(entry.name))) {
      result.files++;
      result.bytes += stats.size;
    }
  }
  return result;
}
