/**
 * Streams a body into one S3 object with bounded memory: the body is copied into at most
 * `concurrency + 1` part buffers of `partSize` bytes, reused from part to part, so an upload never
 * holds more than `partSize × (concurrency + 1)` bytes of body, whatever the object's size.
 *
 * @packageDocumentation
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type ChecksumAlgorithm,
  type CompletedPart,
  type S3Client,
  type ServerSideEncryption,
} from "@aws-sdk/client-s3";
import { Code, StowageError, type ByteSource, type Logger } from "@stowage/sdk";
import { withRequestTimeout } from "@stowage/sdk/plugin";
import { createHash } from "node:crypto";
import { awsErrorCode, toStowageError } from "../shared/errors.js";
import type { ObjectLockParams } from "./object-lock.js";

/** S3 allows at most 10,000 parts per multipart upload. */
export const MAX_UPLOAD_PARTS = 10_000;

/** Server-side encryption with a customer key (SSE-C), sent with every request that carries data. */
export interface CustomerKeyParams {
  /** Always `AES256`. */
  readonly SSECustomerAlgorithm: string;
  /** The key, base64. The SDK adds its MD5. */
  readonly SSECustomerKey: string;
}

/** The object's attributes, sent with PutObject or CreateMultipartUpload (its Object Lock protection included). */
export interface ObjectUploadParams extends ObjectLockParams {
  /** `Content-Type`. */
  readonly ContentType?: string | undefined;
  /** User metadata (values already header-safe). */
  readonly Metadata?: Record<string, string> | undefined;
  /** `x-amz-tagging` query string. */
  readonly Tagging?: string | undefined;
  /** `x-amz-server-side-encryption`. */
  readonly ServerSideEncryption?: ServerSideEncryption | undefined;
  /** `x-amz-server-side-encryption-aws-kms-key-id`. */
  readonly SSEKMSKeyId?: string | undefined;
}

/** What {@link uploadObject} needs. */
export interface UploadObjectInput {
  /** The client every request is sent with; its retry strategy retries each request. */
  readonly client: S3Client;
  /** Bucket. */
  readonly bucket: string;
  /** Key. */
  readonly key: string;
  /** The bytes; iterated once. */
  readonly body: ByteSource;
  /** Announced size, when known: a smaller body than one part gets a buffer of exactly this size. */
  readonly size?: number | undefined;
  /** Bytes per part (the last part may be shorter). At least 5 MiB for bodies of more than one part. */
  readonly partSize: number;
  /** Parts sent at once, at least 1. */
  readonly concurrency: number;
  /** Attributes of the object. */
  readonly object: ObjectUploadParams;
  /** Flexible checksum of every request that carries data, if any. */
  readonly checksumAlgorithm?: ChecksumAlgorithm | undefined;
  /**
   * Send `Content-MD5` with every request that carries data (S3 requires it, or a flexible
   * checksum, for uploads into an Object Lock bucket). Ignored with a `checksumAlgorithm`.
   */
  readonly contentMd5?: boolean | undefined;
  /** SSE-C key, if any. */
  readonly customerKey?: CustomerKeyParams | undefined;
  /** Cancels the upload; the multipart upload, if any, is aborted. */
  readonly signal?: AbortSignal | undefined;
  /**
   * Longest wait for each request (a part, the create, the completion, the abort), its retries
   * included; a store that misses it fails the upload with `UNAVAILABLE`. Default: no limit.
   */
  readonly requestTimeoutMs?: number | undefined;
  /**
   * Called when AbortMultipartUpload fails after a failed or cancelled upload (the store is down
   * or stalled, for example), to log it or to retry it later.
   */
  readonly onAbortFailure?: ((uploadId: string, error: unknown) => void) | undefined;
}

/** The outcome of {@link uploadObject}. */
export interface UploadObjectResult {
  /** The object's ETag as S3 reports it. */
  readonly etag: string;
  /** Bytes uploaded. */
  readonly size: number;
  /** Parts of the multipart upload; 0 for a single PutObject. */
  readonly parts: number;
}

/** A part buffer: it owns its memory (an `ArrayBuffer`, never a shared pool's slice). */
export type PartBuffer = Buffer<ArrayBuffer>;

/**
 * A fixed set of part buffers, allocated on first use: {@link acquire} waits while all of them are
 * in use. {@link dispose} releases the memory of every buffer handed back, at once rather than at
 * the next garbage collection.
 */
export class PartBufferPool {
  readonly #bufferSize: number;
  readonly #firstBufferSize: number;
  readonly #capacity: number;
  readonly #free: PartBuffer[] = [];
  readonly #all = new Set<PartBuffer>();
  readonly #waiters: (() => void)[] = [];

  /**
   * @param bufferSize - Bytes per buffer.
   * @param capacity - Most buffers ever allocated.
   * @param firstBufferSize - Bytes of the first buffer (for a body known to be smaller); default `bufferSize`.
   */
  constructor(bufferSize: number, capacity: number, firstBufferSize = bufferSize) {
    if (!Number.isInteger(bufferSize) || bufferSize < 1) throw new RangeError(`bufferSize must be a positive integer, got ${bufferSize}`);
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.#bufferSize = bufferSize;
    this.#firstBufferSize = Math.max(1, Math.min(bufferSize, firstBufferSize));
    this.#capacity = capacity;
  }

  /** Buffers allocated so far. */
  get allocated(): number {
    return this.#all.size;
  }

  /** A free buffer; waits for one to be released when all are in use. Rejects when `signal` fires. */
  async acquire(signal: AbortSignal): Promise<PartBuffer> {
    for (;;) {
      signal.throwIfAborted();
      const free = this.#free.pop();
      if (free !== undefined) return free;
      if (this.#all.size < this.#capacity) {
        // Not from Node's shared pool: each part buffer owns its memory, so dispose() can free it.
        const buffer = Buffer.allocUnsafeSlow(this.#all.size === 0 ? this.#firstBufferSize : this.#bufferSize);
        this.#all.add(buffer);
        return buffer;
      }
      await new Promise<void>((resolve, reject) => {
        const wake = (): void => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        };
        const onAbort = (): void => {
          const index = this.#waiters.indexOf(wake);
          if (index >= 0) this.#waiters.splice(index, 1);
          reject(signal.reason as Error);
        };
        this.#waiters.push(wake);
        signal.addEventListener("abort", onAbort, { once: true });
      });
    }
  }

  /** Hands a buffer back for reuse. */
  release(buffer: PartBuffer): void {
    this.#free.push(buffer);
    this.#waiters.shift()?.();
  }

  /**
   * Frees the memory of every buffer at once (their views become empty) instead of at a later
   * garbage collection. Call it when no buffer is in use any more. Buffers in `retain`, for example
   * one whose request failed while its socket might still hold it, are left to the garbage collector.
   */
  dispose(retain?: ReadonlySet<PartBuffer>): void {
    for (const buffer of this.#all) {
      if (retain?.has(buffer) !== true && !buffer.buffer.detached) buffer.buffer.transfer(0);
    }
    this.#free.length = 0;
    this.#all.clear();
  }
}

/**
 * Uploads `body` as one object: a single PutObject when it fits in one part, otherwise a multipart
 * upload with up to `concurrency` UploadPart requests in flight while the next part is filled. Any
 * failure or cancellation aborts the multipart upload (after its in-flight parts have settled), so
 * no parts are left behind. Errors are the SDK's or the body's, unchanged; a cancellation rejects
 * with the signal's reason.
 */
export async function uploadObject(input: UploadObjectInput): Promise<UploadObjectResult> {
  const { client, bucket, key, partSize, checksumAlgorithm, customerKey } = input;
  if (!Number.isInteger(input.concurrency) || input.concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${input.concurrency}`);
  const external = input.signal;
  external?.throwIfAborted();
  // Aborted by the caller's signal and by the first failed part: stops reading, waiting and sending.
  const controller = new AbortController();
  const internal = controller.signal;
  const onExternalAbort = (): void => {
    controller.abort(external?.reason);
  };
  external?.addEventListener("abort", onExternalAbort, { once: true });

  const pool = new PartBufferPool(partSize, input.concurrency + 1, input.size ?? partSize);
  const dataParams = { ...(checksumAlgorithm === undefined ? {} : { ChecksumAlgorithm: checksumAlgorithm }), ...customerKey };
  const md5 = (data: Uint8Array): Record<string, string> =>
    input.contentMd5 === true && checksumAlgorithm === undefined ? { ContentMD5: createHash("md5").update(data).digest("base64") } : {};
  const completed: CompletedPart[] = [];
  const inflight = new Set<Promise<void>>();
  // Buffers of failed requests: never freed explicitly (the request's socket may still read them).
  const failedBuffers = new Set<PartBuffer>();
  let failure: { error: unknown } | undefined;
  let uploadId: string | undefined;
  let partNumber = 0;
  let total = 0;
  const iterator = input.body[Symbol.asyncIterator]();
  let iteratorDone = false;
  // Reading races cancellation through one listener, not one per chunk.
  let interruptRead: ((reason: unknown) => void) | undefined;
  const onInternalAbort = (): void => {
    interruptRead?.(internal.reason);
  };
  internal.addEventListener("abort", onInternalAbort, { once: true });
  const read = (): Promise<IteratorResult<Uint8Array>> => {
    internal.throwIfAborted();
    const pending = iterator.next();
    return new Promise((resolve, reject) => {
      interruptRead = reject;
      pending.then(resolve, reject);
    });
  };

  const fail = (error: unknown): void => {
    failure ??= { error };
    controller.abort(error);
  };
  // Every request obeys the upload's signal (`null`: none) and, when set, the request timeout.
  const send = <T>(what: string, request: (abortSignal: AbortSignal) => Promise<T>, signal: AbortSignal | null = internal): Promise<T> =>
    input.requestTimeoutMs === undefined
      ? request(signal ?? new AbortController().signal)
      : withRequestTimeout(signal ?? undefined, input.requestTimeoutMs, what, request);

  const sendPart = async (buffer: PartBuffer, length: number): Promise<void> => {
    if (uploadId === undefined) {
      const created = await raceAbort(
        send("create multipart upload", (abortSignal) => client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ...input.object, ...dataParams }), { abortSignal })),
        internal,
        // Cancelled while the request was out: abort the upload once its id is known.
        (late) => {
          if (late.UploadId !== undefined) void abortUpload(late.UploadId);
        },
      );
      if (created.UploadId === undefined || created.UploadId === "") throw new Error("CreateMultipartUpload returned no UploadId");
      uploadId = created.UploadId;
    }
    // At most `concurrency` parts in flight (a held part and the last partial one would otherwise
    // make it one more).
    while (inflight.size >= input.concurrency) await raceAbort(Promise.race(inflight), internal);
    partNumber += 1;
    if (partNumber > MAX_UPLOAD_PARTS) {
      throw new StowageError(
        Code.InvalidArgument,
        `the body of ${JSON.stringify(key)} needs more than ${MAX_UPLOAD_PARTS} parts of ${partSize} bytes; announce its size or raise partSize`,
      );
    }
    const number = partNumber;
    const id = uploadId;
    const task = send(`upload part ${String(number)}`, (abortSignal) =>
      client.send(
        new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: id, PartNumber: number, Body: buffer.subarray(0, length), ...dataParams, ...md5(buffer.subarray(0, length)) }),
        { abortSignal },
      ),
    )
      .then(
        (out) => {
          if (out.ETag === undefined || out.ETag === "") throw new Error(`UploadPart ${number} returned no ETag`);
          completed[number - 1] = {
            PartNumber: number,
            ETag: out.ETag,
            ...(out.ChecksumCRC32 === undefined ? {} : { ChecksumCRC32: out.ChecksumCRC32 }),
            ...(out.ChecksumCRC32C === undefined ? {} : { ChecksumCRC32C: out.ChecksumCRC32C }),
            ...(out.ChecksumCRC64NVME === undefined ? {} : { ChecksumCRC64NVME: out.ChecksumCRC64NVME }),
            ...(out.ChecksumSHA1 === undefined ? {} : { ChecksumSHA1: out.ChecksumSHA1 }),
            ...(out.ChecksumSHA256 === undefined ? {} : { ChecksumSHA256: out.ChecksumSHA256 }),
          };
          pool.release(buffer);
        },
        (error: unknown) => {
          failedBuffers.add(buffer);
          fail(error);
        },
      )
      .catch(fail)
      .finally(() => inflight.delete(task));
    inflight.add(task);
  };

  // Not under the upload's signal (it has fired by then), but under the request timeout.
  const abortUpload = async (id: string): Promise<void> => {
    try {
      await send("abort multipart upload", (abortSignal) => client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: id }), { abortSignal }), null);
    } catch (error) {
      input.onAbortFailure?.(id, error);
    }
  };

  try {
    let current: PartBuffer | undefined;
    let filled = 0;
    // A full part that is sent once more bytes arrive; if none do, it is the last (or only) part.
    let held: PartBuffer | undefined;
    for (;;) {
      const next = await read();
      if (next.done === true) {
        iteratorDone = true;
        break;
      }
      const chunk = next.value;
      total += chunk.byteLength;
      let offset = 0;
      while (offset < chunk.byteLength) {
        if (held !== undefined) {
          await sendPart(held, held.length);
          held = undefined;
        }
        current ??= await pool.acquire(internal);
        const n = Math.min(chunk.byteLength - offset, current.length - filled);
        current.set(offset === 0 && n === chunk.byteLength ? chunk : chunk.subarray(offset, offset + n), filled);
        filled += n;
        offset += n;
        if (filled === current.length) {
          held = current;
          current = undefined;
          filled = 0;
        }
      }
    }
    internal.throwIfAborted();

    if (uploadId === undefined) {
      const buffer = held ?? current;
      const single = held ?? (current === undefined ? Buffer.alloc(0) : current.subarray(0, filled));
      try {
        const out = await send("put object", (abortSignal) => client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: single, ...input.object, ...dataParams, ...md5(single) }), { abortSignal }));
        return { etag: out.ETag ?? "", size: total, parts: 0 };
      } catch (error) {
        if (buffer !== undefined) failedBuffers.add(buffer);
        throw error;
      }
    }
    if (held !== undefined) await sendPart(held, held.length);
    if (current !== undefined && filled > 0) await sendPart(current, filled);
    while (inflight.size > 0) await Promise.all(inflight);
    internal.throwIfAborted();
    const id = uploadId;
    const out = await send("complete multipart upload", (abortSignal) =>
      client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: id, MultipartUpload: { Parts: completed }, ...customerKey }), { abortSignal }),
    );
    uploadId = undefined;
    return { etag: out.ETag ?? "", size: total, parts: partNumber };
  } catch (error) {
    fail(error);
    throw failure?.error ?? error;
  } finally {
    external?.removeEventListener("abort", onExternalAbort);
    internal.removeEventListener("abort", onInternalAbort);
    // Parts still in flight were aborted with `internal`; they settle before the upload is aborted,
    // so that none lands after the abort.
    await Promise.allSettled([...inflight]);
    if (uploadId !== undefined) await abortUpload(uploadId);
    if (!iteratorDone) {
      // Releases the source (a socket, a file) once the cleanup is done, so that a caller waiting on
      // the source learns of the failure together with its status; not awaited, since a source
      // blocked in a read finishes its return only after that read.
      iterator.return?.().catch(() => undefined);
    }
    pool.dispose(failedBuffers);
  }
}

/**
 * `promise`, or a rejection with the signal's reason as soon as `signal` fires. When the signal wins,
 * `late` receives the promise's value if it still resolves.
 */
async function raceAbort<T>(promise: Promise<T>, signal: AbortSignal, late?: (value: T) => void): Promise<T> {
  if (signal.aborted) {
    promise.then(late, () => undefined);
    throw signal.reason;
  }
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      promise.then(late, () => undefined);
      reject(signal.reason as Error);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    if (onAbort !== undefined) signal.removeEventListener("abort", onAbort);
  }
}

/** Options of {@link AbandonedUploads}. */
export interface AbandonedUploadsOptions {
  /** Where retries that gave up, and cleanups dropped at close, are reported. */
  readonly logger: Logger;
  /** Each abort request's timeout (its SDK retries included). */
  readonly requestTimeoutMs: number;
  /** Wait before the first retry; doubled after each failure. Default 1 s. */
  readonly firstDelayMs?: number | undefined;
  /** Longest wait between retries. Default 60 s. */
  readonly maxDelayMs?: number | undefined;
  /** Give up after this long since the upload was abandoned. Default 30 minutes. */
  readonly giveUpAfterMs?: number | undefined;
}

interface AbandonedUpload {
  readonly client: S3Client;
  readonly bucket: string;
  readonly key: string;
  readonly uploadId: string;
  readonly since: number;
  delayMs: number;
  timer?: NodeJS.Timeout | undefined;
}

/**
 * Multipart uploads that a failed put could not abort (the store was down or stalled): retried in
 * the background with exponential backoff until the store answers, so that no upload stays open
 * once the store is back. An upload that is already gone counts as aborted. A store that stays away
 * for `giveUpAfterMs`, or refuses the abort for good (permissions), is logged with the upload's ID
 * for an operator (or a bucket lifecycle rule) to clean up.
 */
export class AbandonedUploads {
  readonly #options: AbandonedUploadsOptions;
  readonly #pending = new Set<AbandonedUpload>();
  readonly #idle: (() => void)[] = [];
  #closed = false;

  /** @param options - Logger, timeouts and backoff. */
  constructor(options: AbandonedUploadsOptions) {
    this.#options = options;
  }

  /** Uploads still waiting for their abort. */
  get size(): number {
    return this.#pending.size;
  }

  /** Retries the abort of an upload in the background. */
  add(client: S3Client, bucket: string, key: string, uploadId: string): void {
    if (this.#closed) return;
    const upload: AbandonedUpload = { client, bucket, key, uploadId, since: Date.now(), delayMs: this.#options.firstDelayMs ?? 1000 };
    this.#pending.add(upload);
    this.#schedule(upload);
  }

  /** Resolves once no upload is waiting for its abort (at once when none is). */
  async settled(): Promise<void> {
    if (this.#pending.size === 0) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  /** Stops retrying; uploads still open are logged. */
  close(): void {
    this.#closed = true;
    for (const upload of this.#pending) {
      clearTimeout(upload.timer);
      this.#options.logger.warn({ bucket: upload.bucket, key: upload.key, upload_id: upload.uploadId }, "multipart upload of a failed put left open (the store was closed or configured anew before it answered); abort it, or let a bucket lifecycle rule remove it");
    }
    this.#done();
  }

  #schedule(upload: AbandonedUpload): void {
    upload.timer = setTimeout(() => void this.#attempt(upload), upload.delayMs);
    upload.timer.unref();
  }

  #forget(upload: AbandonedUpload): void {
    this.#pending.delete(upload);
    if (this.#pending.size === 0) this.#done();
  }

  #done(): void {
    this.#pending.clear();
    for (const resolve of this.#idle.splice(0)) resolve();
  }

  async #attempt(upload: AbandonedUpload): Promise<void> {
    if (this.#closed) return;
    const { client, bucket, key, uploadId } = upload;
    const fields = { bucket, key, upload_id: uploadId };
    try {
      await withRequestTimeout(undefined, this.#options.requestTimeoutMs, "abort multipart upload", (abortSignal) =>
        client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }), { abortSignal }),
      );
      this.#options.logger.info(fields, "aborted the multipart upload of a failed put once the store answered again");
      this.#forget(upload);
    } catch (error) {
      if (this.#closed) return;
      if (awsErrorCode(error) === "NoSuchUpload") {
        this.#forget(upload);
        return;
      }
      const mapped = toStowageError(error, { operation: "abort multipart upload", bucket, key });
      if (!mapped.retryable || Date.now() - upload.since >= (this.#options.giveUpAfterMs ?? 30 * 60_000)) {
        this.#options.logger.warn({ ...fields, error: mapped.rawMessage }, "gave up aborting the multipart upload of a failed put; abort it, or let a bucket lifecycle rule remove it");
        this.#forget(upload);
        return;
      }
      upload.delayMs = Math.min(upload.delayMs * 2, this.#options.maxDelayMs ?? 60_000);
      this.#schedule(upload);
    }
  }
}
