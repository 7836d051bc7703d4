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
 * temporary file is removed and the previous object, if any, is untouched. The temporary file
 * lives in the bucket's `~tmp` directory and is named after its writer, so that the parts of a
 * writer killed mid-put are reclaimed (`temp-files.ts`).
 *
 * The rename runs inside the caller's `guard`, once the body is written and flushed, right after
 * `checkReplace` has looked at the object it replaces: the store holds the key's lock there and
 * refuses to replace a protected object (`key-locks.ts`). With `protection` the file is written in format 2, its protection record
 * included, so a protected object is never visible unprotected (`object-file.ts`).
 *
 * @packageDocumentation
 */
import { Code, Reason, StowageError, bucketNotFound, type ByteSource, type ObjectProtection } from "@stowage/sdk";
import { createHash, randomBytes } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { iterateUntilAborted, throwIfAborted } from "@stowage/sdk/plugin";
import type { ChildOptions, Directory } from "../shared/confined-root.js";
import { isNotFound, writeFully } from "../shared/fs.js";
import { TemporaryFile, sweepTemporaryFiles, type SweepResult } from "../shared/temp-files.js";
import { TEMP_DIRECTORY, objectPath } from "./key-layout.js";
import { SIZE_OFFSET, encodeHeader, encodeSizeAndDigest, type ObjectAttributes } from "./object-file.js";

/** Chunks are gathered into batches of this size, each written with one call. */
const STAGE_BYTES = 1024 * 1024;
/** The first stage buffer of a body of unknown size; it grows to {@link STAGE_BYTES} when filled. */
const FIRST_STAGE_BYTES = 64 * 1024;
/** How often the final rename is retried when a concurrent delete removes a fresh directory. */
const RENAME_ATTEMPTS = 8;

/** What {@link writeObject} needs. */
export interface WriteObjectInput {
  /** The root directory. */
  readonly root: Directory;
  /** The bucket, already validated. */
  readonly bucket: string;
  /** How to open the bucket: with `create` when a put may create it (`createBuckets`). */
  readonly bucketOptions: ChildOptions;
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
  /**
   * The protection to store with the object: the file is written in format 2 with this record
   * (`{ legalHold: false }` for none); in format 1 when absent.
   */
  readonly protection?: ObjectProtection | undefined;
  /** Keep this version tag (when rewriting an object as it is) instead of hashing or drawing one. */
  readonly versionTag?: Buffer | undefined;
  /** The modification time to give the file (when rewriting an object as it is); now by default. */
  readonly lastModified?: Date | undefined;
  /**
   * Runs the final rename (`commit`) once the body is written and flushed, so that the caller can
   * hold a lock around it. Runs it directly by default.
   */
  readonly guard?: ((commit: () => Promise<void>) => Promise<void>) | undefined;
  /**
   * Called inside `guard`, right before the rename, with the directory that receives the object
   * and the object file's name in it; throws to refuse replacing what is there.
   */
  readonly checkReplace?: ((parent: Directory, fileName: string) => Promise<void>) | undefined;
  /** Flush data and directories to stable storage before returning. */
  readonly fsync: boolean;
  /** Mode of the directories created on the way. */
  readonly dirMode: number;
  /** Mode of the object file. */
  readonly fileMode: number;
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
  const header = encodeHeader(input.attributes, input.protection);
  const tempDir = await openInBucket(input, [TEMP_DIRECTORY]);
  try {
    const temp = await TemporaryFile.create(tempDir, "upload", input.fileMode);
    let committed = false;
    try {
      const written = await writeBody(temp.handle, header, input);
      if (input.lastModified !== undefined) await temp.handle.utimes(input.lastModified, input.lastModified);
      if (input.fsync) await temp.handle.sync();
      await temp.close();
      throwIfAborted(input.signal);
      const commit = async (): Promise<void> => {
        throwIfAborted(input.signal);
        await moveIntoPlace(tempDir, temp.name, input, objectPath(input.key));
        committed = true;
      };
      await (input.guard === undefined ? commit() : input.guard(commit));
      return written;
    } finally {
      if (!committed) await temp.discard();
    }
  } finally {
    tempDir.close();
  }
}

/** Writes the header and the body, checks them, and completes the header. */
async function writeBody(file: FileHandle, header: Buffer, input: WriteObjectInput): Promise<WrittenObject> {
  await writeFully(file, header, 0);
  const writer = new StagedWriter(file, header.length, input.size);
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
  const digest = hash === undefined ? (input.versionTag ?? randomBytes(32)) : hash.digest();
  if (input.sha256 !== undefined && !digest.equals(input.sha256)) {
    throw integrityMismatch(`the body's SHA-256 is ${digest.toString("hex")}, ${Buffer.from(input.sha256).toString("hex")} was announced`);
  }
  await writeFully(file, encodeSizeAndDigest(received, digest), SIZE_OFFSET);
  return { size: received, sha256: digest };
}

function integrityMismatch(message: string): StowageError {
  return new StowageError(Code.DataLoss, `${message}; nothing was stored`, { reason: Reason.IntegrityMismatch });
}

/**
 * Writes a stream of chunks in order, gathered into {@link STAGE_BYTES} batches so that a body
 * arriving in many small pieces does not cost one system call (and one thread-pool round trip)
 * per piece. Two stage buffers alternate: one batch is being written while the next one fills, so
 * reading the body and writing the disk overlap, and memory stays at two batches. A small body
 * only ever uses one small buffer. Chunks are copied before `write` returns, so callers may reuse
 * them afterwards.
 */
class StagedWriter {
  readonly #file: FileHandle;
  /** Starts small (the announced size, else {@link FIRST_STAGE_BYTES}) and grows to a whole batch. */
  #stage: Buffer;
  #spare: Buffer | undefined;
  #staged = 0;
  #position: number;
  #inFlight: Promise<void> | undefined;

  /**
   * @param file - Where to write.
   * @param position - Where the first chunk goes.
   * @param sizeHint - The announced body size, if any: a small body never allocates a whole batch.
   */
  constructor(file: FileHandle, position: number, sizeHint: number | undefined) {
    this.#file = file;
    this.#position = position;
    this.#stage = Buffer.allocUnsafe(Math.max(1, Math.min(STAGE_BYTES, sizeHint ?? FIRST_STAGE_BYTES)));
  }

  /** Stages `chunk`, starting a batch write whenever a full stage buffer needs room. */
  async write(chunk: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#staged === this.#stage.length) {
        if (this.#stage.length < STAGE_BYTES) this.#grow();
        else await this.#startBatch();
      }
      const n = Math.min(chunk.length - offset, this.#stage.length - this.#staged);
      this.#stage.set(chunk.subarray(offset, offset + n), this.#staged);
      this.#staged += n;
      offset += n;
    }
  }

  /** Replaces the small first stage by a whole batch, keeping what it holds. */
  #grow(): void {
    const whole = Buffer.allocUnsafe(STAGE_BYTES);
    this.#stage.copy(whole, 0, 0, this.#staged);
    this.#stage = whole;
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
    const next = this.#spare ?? Buffer.allocUnsafe(STAGE_BYTES);
    this.#spare = this.#stage;
    this.#stage = next;
    this.#staged = 0;
  }

  /** Writes whatever is staged and waits until every batch is written. */
  async flush(): Promise<void> {
    await this.#inFlight;
    this.#inFlight = undefined;
    if (this.#staged > 0) {
      // The last batch: written from the stage itself, no spare buffer needed.
      await writeFully(this.#file, this.#stage.subarray(0, this.#staged), this.#position);
      this.#position += this.#staged;
      this.#staged = 0;
    }
  }
}

/**
 * Renames the finished temporary file to the object's path, creating the directories on the way
 * (each new entry flushed with `fsync`), and flushes the directory that received the object. A
 * concurrent delete may remove a directory we just created (it removes empty ones); the rename
 * then fails with ENOENT and is retried.
 */
async function moveIntoPlace(tempDir: Directory, tempName: string, input: WriteObjectInput, names: readonly string[]): Promise<void> {
  const fileName = names.at(-1) ?? "";
  for (let attempt = 1; ; attempt++) {
    const parent = await openInBucket(input, names.slice(0, -1));
    try {
      try {
        await input.checkReplace?.(parent, fileName);
        await tempDir.rename(tempName, parent, fileName);
      } catch (error) {
        if (!isNotFound(error)) throw error;
        if (attempt < RENAME_ATTEMPTS) continue;
        throw new StowageError(Code.Unavailable, `the directory of ${JSON.stringify(input.key)} keeps disappearing while it is stored (concurrent deletes?); retry`, {
          cause: error,
        });
      }
      if (input.fsync) await parent.sync();
      return;
    } finally {
      parent.close();
    }
  }
}

/**
 * Opens (creating what is missing) the directory `names` below the bucket: one verified open when
 * it exists, else through the bucket, which a missing bucket fails with `BUCKET_NOT_FOUND` (unless
 * `bucketOptions` allow creating it).
 */
async function openInBucket(input: WriteObjectInput, names: readonly string[]): Promise<Directory> {
  const existing = await input.root.tryWalk([input.bucket, ...names]);
  if (existing !== undefined) return existing;
  const bucket = await input.root.walk([input.bucket], input.bucketOptions);
  if (bucket === undefined) throw bucketNotFound(input.bucket);
  if (names.length === 0) return bucket;
  try {
    const directory = await bucket.walk(names, { create: input.dirMode, sync: input.fsync });
    if (directory === undefined) throw new StowageError(Code.Internal, `bug: ${bucket.path} was not completed`);
    return directory;
  } finally {
    bucket.close();
  }
}

/** Names of uploads in flight written by earlier versions (no owner in the name). */
const LEGACY_UPLOAD = /^[0-9a-f]{24}\.part$/;

/**
 * Reclaims the uploads that dead writers left in the temporary areas of the buckets under `root`
 * (see `temp-files.ts` for the rules). A bucket that cannot be read safely (a link, a mount
 * point) is passed to `onSkipped` and left alone.
 */
export async function sweepUploads(root: Directory, staleMs: number, onSkipped: (bucket: string, error: unknown) => void): Promise<SweepResult> {
  const result: SweepResult = { files: 0, bytes: 0 };
  for (const entry of await root.entries()) {
    if (!entry.isDirectory()) continue;
    let bucket: Directory | undefined;
    let tempDir: Directory | undefined;
    try {
      bucket = await root.child(entry.name);
      tempDir = await bucket?.child(TEMP_DIRECTORY);
      if (tempDir !== undefined) await sweepTemporaryFiles(tempDir, { staleMs, legacy: LEGACY_UPLOAD }, result);
    } catch (error) {
      onSkipped(entry.name, error);
    } finally {
      tempDir?.close();
      bucket?.close();
    }
  }
  return result;
}
