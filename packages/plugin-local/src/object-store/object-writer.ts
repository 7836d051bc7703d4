/**
 * Writing an object: stream the body into a temporary file, check it, then rename it into place.
 *
 * The body is pulled one chunk at a time and each chunk is written (or staged) before the next is
 * requested, so a fast producer is held back by the disk (backpressure) and memory stays bounded
 * by {@link STAGE_BYTES} whatever the object's size. When the caller announces a SHA-256, the body
 * is hashed in the same pass and checked; the digest then doubles as the version tag. Otherwise the
 * version tag is 32 random bytes: hashing costs more CPU than moving the bytes, so it is not done
 * unasked.
 *
 * Nothing is visible until the final `rename`, which replaces any previous object atomically. On
 * any failure (a size or checksum mismatch, a cancelled call, a broken source, a full disk) the
 * temporary file is removed and the previous object, if any, is untouched.
 *
 * @packageDocumentation
 */
import { Code, Reason, StowageError, type ByteSource } from "@stowage/sdk";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import { iterateUntilAborted, throwIfAborted } from "@stowage/sdk/plugin";
import { fsyncDirectory, isNotFound, writeFully } from "../shared/fs.js";
import { TEMP_DIRECTORY, objectPath } from "./key-layout.js";
import { SIZE_OFFSET, encodeHeader, encodeSizeAndDigest, type ObjectAttributes } from "./object-file.js";

/** Chunks are gathered into batches of this size, each written with one call. */
const STAGE_BYTES = 1024 * 1024;
/** How often the final rename is retried when a concurrent delete removes a fresh directory. */
const RENAME_ATTEMPTS = 8;

/** What {@link writeObject} needs. */
export interface WriteObjectInput {
  /** The bucket's directory (it must exist). */
  readonly bucketDir: string;
  /** The key, already validated. */
  readonly key: string;
  /** The body, consumed once. */
  readonly body: ByteSource;
  /** Announced size; another length fails with `INTEGRITY_MISMATCH`. */
  readonly size?: number | undefined;
  /** Expected SHA-256; another digest fails with `INTEGRITY_MISMATCH`. */
  readonly sha256?: Uint8Array | undefined;
  /** Content type and user metadata, stored in the same file. */
  readonly attributes: ObjectAttributes;
  /** Flush data and directories to stable storage before returning. */
  readonly fsync: boolean;
  /** Cancels the write; nothing is stored then. */
  readonly signal?: AbortSignal | undefined;
}

/** What was stored. */
export interface WrittenObject {
  /** Body size in bytes. */
  readonly size: number;
  /** Version tag: the SHA-256 of the body when it was checked, 32 random bytes otherwise. */
  readonly sha256: Buffer;
}

/** Stores an object atomically; see the module description. */
export async function writeObject(input: WriteObjectInput): Promise<WrittenObject> {
  const header = encodeHeader(input.attributes);
  const tempDir = join(input.bucketDir, TEMP_DIRECTORY);
  await mkdir(tempDir, { recursive: true });
  const tempPath = join(tempDir, `${randomBytes(12).toString("hex")}.part`);
  const file = await open(tempPath, "wx", 0o644);
  let fileOpen = true;
  let committed = false;
  try {
    await writeFully(file, header, 0);
    const writer = new StagedWriter(file, header.length);
    // Hashing costs more CPU than moving the bytes, so it runs only when the caller asked for a check.
    const hash = input.sha256 === undefined ? undefined : createHash("sha256");
    let received = 0;
    for await (const chunk of iterateUntilAborted(input.body, input.signal)) {
      if (!(chunk instanceof Uint8Array)) {
        throw new StowageError(Code.InvalidArgument, `the body yielded a ${typeof chunk} instead of bytes`);
      }
      received += chunk.length;
      if (input.size !== undefined && received > input.size) {
        throw integrityMismatch(`the body is longer than the announced ${input.size} bytes`);
      }
      hash?.update(chunk);
      await writer.write(chunk);
    }
    await writer.flush();
    if (input.size !== undefined && received !== input.size) {
      throw integrityMismatch(`the body has ${received} bytes, ${input.size} were announced`);
    }
    const digest = hash === undefined ? randomBytes(32) : hash.digest();
    if (input.sha256 !== undefined && !digest.equals(input.sha256)) {
      throw integrityMismatch(
        `the body's SHA-256 is ${digest.toString("hex")}, ${Buffer.from(input.sha256).toString("hex")} was announced`,
      );
    }
    await writeFully(file, encodeSizeAndDigest(received, digest), SIZE_OFFSET);
    if (input.fsync) await file.sync();
    fileOpen = false;
    await file.close();
    throwIfAborted(input.signal);
    await moveIntoPlace(tempPath, input.bucketDir, objectPath(input.key), input.fsync);
    committed = true;
    return { size: received, sha256: digest };
  } finally {
    if (fileOpen) await file.close().catch(() => undefined);
    if (!committed) await rm(tempPath, { force: true });
  }
}

function integrityMismatch(message: string): StowageError {
  return new StowageError(Code.DataLoss, `${message}; nothing was stored`, { reason: Reason.IntegrityMismatch });
}

/**
 * Writes a stream of chunks in order, gathered into {@link STAGE_BYTES} batches so that a body
 * arriving in many small pieces does not cost one system call (and one thread-pool round trip)
 * per piece. Two stage buffers alternate: one batch is being written while the next one fills, so
 * reading the body and writing the disk overlap, and memory stays at two batches. Chunks are
 * copied before `write` returns, so callers may reuse them afterwards.
 */
class StagedWriter {
  readonly #file: FileHandle;
  #stage = Buffer.allocUnsafe(STAGE_BYTES);
  #spare = Buffer.allocUnsafe(STAGE_BYTES);
  #staged = 0;
  #position: number;
  #inFlight: Promise<void> | undefined;

  constructor(file: FileHandle, position: number) {
    this.#file = file;
    this.#position = position;
  }

  /** Stages `chunk`, starting a batch write whenever a stage buffer fills. */
  async write(chunk: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      const n = Math.min(chunk.length - offset, STAGE_BYTES - this.#staged);
      this.#stage.set(chunk.subarray(offset, offset + n), this.#staged);
      this.#staged += n;
      offset += n;
      if (this.#staged === STAGE_BYTES) await this.#startBatch();
    }
  }

  /** Waits for the batch in flight (at most one), then starts writing the current stage. */
  async #startBatch(): Promise<void> {
    await this.#inFlight;
    const batch = this.#stage.subarray(0, this.#staged);
    const position = this.#position;
    this.#position += this.#staged;
    this.#inFlight = writeFully(this.#file, batch, position);
    // Observed by the next #startBatch or flush; never left unhandled.
    this.#inFlight.catch(() => undefined);
    [this.#stage, this.#spare] = [this.#spare, this.#stage];
    this.#staged = 0;
  }

  /** Writes whatever is staged and waits until every batch is written. */
  async flush(): Promise<void> {
    if (this.#staged > 0) await this.#startBatch();
    await this.#inFlight;
    this.#inFlight = undefined;
  }
}

/**
 * Renames the finished temporary file to the object's path, creating the directories on the way,
 * and flushes every directory whose entries changed. A concurrent delete may remove a directory
 * we just created (it removes empty ones); the rename then fails with ENOENT and is retried.
 */
async function moveIntoPlace(tempPath: string, bucketDir: string, names: readonly string[], fsync: boolean): Promise<void> {
  const finalPath = join(bucketDir, ...names);
  const parent = dirname(finalPath);
  for (let attempt = 1; ; attempt++) {
    const firstCreated = await mkdir(parent, { recursive: true });
    try {
      await rename(tempPath, finalPath);
    } catch (error) {
      if (isNotFound(error) && attempt < RENAME_ATTEMPTS) continue;
      throw error;
    }
    if (fsync) {
      const changed = new Set([parent]);
      if (firstCreated !== undefined) {
        // Every new directory's entry lives in its parent, up to the parent of the first one.
        for (let dir = parent; dir !== dirname(dir); dir = dirname(dir)) {
          changed.add(dirname(dir));
          if (dir === firstCreated) break;
        }
      }
      for (const dir of changed) await fsyncDirectory(dir);
    }
    return;
  }
}

/**
 * Removes uploads that a crashed process left in the temporary areas of the buckets under `root`
 * (files older than `olderThanMs`). Uploads in flight are younger and stay. Failures are ignored:
 * leftovers are invisible to every call and only waste space.
 */
export async function sweepStaleUploads(root: string, olderThanMs: number, now: number): Promise<number> {
  let removed = 0;
  const buckets = await readdir(root, { withFileTypes: true }).catch(() => []);
  for (const bucket of buckets) {
    if (!bucket.isDirectory()) continue;
    const tempDir = join(root, bucket.name, TEMP_DIRECTORY);
    const names = await readdir(tempDir).catch(() => []);
    for (const name of names) {
      const path = join(tempDir, name);
      try {
        if (now - (await stat(path)).mtimeMs > olderThanMs) {
          await rm(path, { force: true });
          removed++;
        }
      } catch {
        // Gone meanwhile, or not ours to remove: either way nothing to do.
      }
    }
  }
  return removed;
}
