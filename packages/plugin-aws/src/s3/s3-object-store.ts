/**
 * The S3 ObjectStore: puts through pooled part buffers with bounded memory, reads with
 * ranges, ListObjectsV2 pages as listing pages, and SigV4 pre-signed URLs.
 *
 * @packageDocumentation
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type GetObjectCommandOutput,
  type ServerSideEncryption,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import {
  Code,
  Reason,
  StowageError,
  asksProtection,
  bucketNotFound,
  bucketNotLockable,
  silentLogger,
  type ByteSource,
  type CallOptions,
  type ConfigKeySpec,
  type CreateSignedUrlInput,
  type DeleteObjectInput,
  type DirectTransfer,
  type GetObjectInput,
  type GetObjectOutput,
  type ListObjectsInput,
  type ListObjectsPage,
  type Logger,
  type ObjectInfo,
  type ObjectRef,
  type ObjectStore,
  type PluginConfig,
  type PutObjectInput,
  type PutObjectResult,
  type SignedUrl,
} from "@stowage/sdk";
import {
  contentRangeTotal,
  decodePageToken,
  encodePageToken,
  guardBody,
  redactConfig,
  withRequestTimeout,
} from "@stowage/sdk/plugin";
import { createHash, timingSafeEqual } from "node:crypto";
import { Readable } from "node:stream";
import { awsErrorCode, toStowageError } from "../shared/errors.js";
import { S3_CONFIG_KEYS, configureAwsS3, type S3StoreSettings } from "./config.js";
import { AbandonedUploads, MAX_UPLOAD_PARTS, uploadObject } from "./multipart-upload.js";
import { S3DirectTransfer } from "./direct-transfer.js";
import { S3ObjectLock, isNotLockableError, objectLockParams } from "./object-lock.js";
import { checkRef, encodeMetadata, integrityError, invalidName, objectInfo, objectNotFoundError, rangeError, readEncryptionParams } from "./object-helpers.js";

/** Longest validity of a signed URL: 7 days, SigV4's limit. */
export const MAX_SIGNED_URL_TTL_SECONDS = 604_800;
/** Default and largest number of entries in a listing page. */
export const MAX_LIST_PAGE_SIZE = 1000;

/** Options of {@link S3ObjectStore}. */
export interface S3ObjectStoreOptions {
  /** Where to log; nothing is logged by default. */
  readonly logger?: Logger | undefined;
  /** The keys `init` accepts (for redacted logging); default {@link S3_CONFIG_KEYS}. */
  readonly configKeys?: readonly ConfigKeySpec[] | undefined;
  /**
   * Turns an `init` configuration into clients and settings; default {@link configureAwsS3}.
   * S3-compatible plugins (IBM COS) pass their own.
   */
  readonly configure?: ((config: PluginConfig, signal?: AbortSignal) => Promise<S3StoreSettings>) | undefined;
}

/**
 * An ObjectStore on Amazon S3 or an S3-compatible store (MinIO, IBM COS, Ceph RGW, ...).
 *
 * - Puts copy the body into at most `uploadConcurrency + 1` reused part buffers of `partSize` bytes
 *   (see `uploadObject` in `s3/multipart-upload.ts`): one PutObject for bodies of at most one part, a multipart upload
 *   with `uploadConcurrency` parts in flight otherwise, so a put holds at most
 *   `partSize × (uploadConcurrency + 1)` bytes of body. A failed, cancelled or mis-sized put aborts
 *   its multipart upload, so neither an object nor orphaned parts remain.
 * - No flexible checksum headers are sent unless `checksumAlgorithm` asks for them.
 * - Signed URLs are SigV4 pre-signed URLs made for `publicUrl` when it is set, valid at most 7 days.
 *
 * @example
 * ```ts
 * const store = new S3ObjectStore();
 * await store.init({ s3Url: "http://127.0.0.1:9000", region: "us-east-1", s3ForcePathStyle: "true" });
 * ```
 */
export class S3ObjectStore implements ObjectStore {
  readonly #logger: Logger;
  readonly #configKeys: readonly ConfigKeySpec[];
  readonly #configure: (config: PluginConfig, signal?: AbortSignal) => Promise<S3StoreSettings>;
  #settings: S3StoreSettings | undefined;
  #abandoned: AbandonedUploads | undefined;
  /** Direct transfer (contract 5.8): pre-signed requests the host sends itself; see `s3/direct-transfer.ts`. */
  readonly directTransfer: DirectTransfer;
  /** Object protection (contract 5.9) with S3 Object Lock; see `s3/object-lock.ts`. */
  readonly objectLock: S3ObjectLock;

  /** @param options - Logger and, for S3-compatible plugins, their configuration step. */
  constructor(options: S3ObjectStoreOptions = {}) {
    this.#logger = options.logger ?? silentLogger;
    this.objectLock = new S3ObjectLock({
      settings: () => this.#ready(),
      checkBucket: (bucket, signal) => this.#checkBucket(this.#ready(), bucket, signal),
      logger: this.#logger,
    });
    const objectLock = this.objectLock;
    this.directTransfer = new S3DirectTransfer({
      settings: () => this.#ready(),
      head: (ref, callOptions) => this.headObject(ref, callOptions),
      checkBucket: (bucket, signal) => this.#checkBucket(this.#ready(), bucket, signal),
      checkOverwrite: (ref, signal) => objectLock.checkOverwrite(ref, false, signal),
      abandoned: () => this.#abandoned,
      logger: this.#logger,
    });
    this.#configKeys = options.configKeys ?? S3_CONFIG_KEYS;
    this.#configure = options.configure ?? configureAwsS3;
  }

  /** Validates the configuration and builds the S3 clients; see the package README for the keys. */
  async init(config: PluginConfig, options: CallOptions = {}): Promise<void> {
    const settings = await this.#configure(config, options.signal);
    this.#abandoned?.close();
    this.#settings?.destroy();
    this.#settings = settings;
    this.objectLock.reset();
    this.#abandoned = new AbandonedUploads({ logger: this.#logger, requestTimeoutMs: settings.timeouts.requestTimeoutMs });
    this.#logger.info({ config: redactConfig(config, this.#configKeys) }, "initialised");
  }

  /** Releases the HTTP connections; stops retrying the aborts of abandoned multipart uploads. */
  close(): void {
    this.#abandoned?.close();
    this.#abandoned = undefined;
    this.#settings?.destroy();
    this.#settings = undefined;
  }

  /**
   * Resolves once every multipart upload that a failed put could not abort at once (the store was
   * down or stalled) has been aborted in the background, or given up on.
   */
  async settled(): Promise<void> {
    await this.#abandoned?.settled();
  }

  #ready(): S3StoreSettings {
    if (this.#settings === undefined) {
      throw new StowageError(Code.FailedPrecondition, "the S3 object store is not initialised; call init first", { reason: Reason.NotInitialized });
    }
    return this.#settings;
  }

  /**
   * Streams the body into the object; see the class description. With `protection` the object is
   * stored with its Object Lock headers (`BUCKET_NOT_LOCKABLE` in a bucket without Object Lock); in
   * a lockable bucket a protected current version is not replaced (`OBJECT_LOCKED`, before the body
   * is read) unless only a governance retention protects it and `bypassGovernance` is set.
   */
  async putObject(input: PutObjectInput, options: CallOptions = {}): Promise<PutObjectResult> {
    const settings = this.#ready();
    checkRef(input);
    const signal = options.signal;
    signal?.throwIfAborted();
    const protect = asksProtection(input.protection);
    if (protect) await this.objectLock.requireLockable(input.bucket, signal);
    const lockable = protect || (await this.objectLock.lockable(input.bucket, signal));
    if (lockable) await this.objectLock.checkOverwrite(input, input.bypassGovernance === true, signal);
    const counter = new BodyCounter(input);
    const partSize = input.size === undefined ? settings.partSize : Math.max(settings.partSize, Math.ceil(input.size / MAX_UPLOAD_PARTS));
    const { serverSideEncryption, kmsKeyId, customerKey } = settings.encryption;
    try {
      const out = await uploadObject({
        client: settings.client,
        bucket: input.bucket,
        key: input.key,
        body: counter.pass(input.body),
        size: input.size,
        partSize,
        concurrency: settings.uploadConcurrency,
        object: {
          ...(input.contentType === undefined || input.contentType === "" ? {} : { ContentType: input.contentType }),
          ...(input.metadata === undefined ? {} : { Metadata: encodeMetadata(input.metadata) }),
          ...(settings.tagging === undefined ? {} : { Tagging: settings.tagging }),
          // Any value S3 knows (AES256, aws:kms, aws:kms:dsse, ...); S3 itself rejects others.
          ...(serverSideEncryption === undefined ? {} : { ServerSideEncryption: serverSideEncryption as ServerSideEncryption }),
          ...(kmsKeyId === undefined ? {} : { SSEKMSKeyId: kmsKeyId }),
          ...(protect ? objectLockParams(input.protection) : {}),
        },
        checksumAlgorithm: settings.checksumAlgorithm,
        // S3 requires Content-MD5 (or a flexible checksum) on every upload into an Object Lock bucket.
        contentMd5: lockable && settings.checksumAlgorithm === undefined,
        customerKey: customerKey === undefined ? undefined : { SSECustomerAlgorithm: "AES256", SSECustomerKey: customerKey },
        signal,
        requestTimeoutMs: settings.timeouts.requestTimeoutMs,
        onAbortFailure: (uploadId, abortFailure) => {
          if (awsErrorCode(abortFailure) === "NoSuchUpload") return;
          const mapped = toStowageError(abortFailure, { operation: "abort multipart upload", bucket: input.bucket, key: input.key });
          this.#logger.warn({ bucket: input.bucket, key: input.key, upload_id: uploadId, error: mapped.rawMessage }, "cannot abort the multipart upload of a failed put now; retrying in the background");
          this.#abandoned?.add(settings.client, input.bucket, input.key, uploadId);
        },
      });
      return { size: counter.bytes, etag: out.etag, ...(counter.sha256 === undefined ? {} : { sha256: counter.sha256 }) };
    } catch (error) {
      if (protect && isNotLockableError(error)) {
        this.objectLock.forget(input.bucket);
        throw bucketNotLockable(input.bucket, "S3 Object Lock is not enabled on it");
      }
      throw toStowageError(error, { operation: "put object", bucket: input.bucket, key: input.key, signal });
    }
  }

  /** Opens the object, or the requested part of it, for reading. */
  async getObject(input: GetObjectInput, options: CallOptions = {}): Promise<GetObjectOutput> {
    const settings = this.#ready();
    checkRef(input);
    const range = input.range;
    if (range !== undefined && (range.offset < 0 || (range.length !== undefined && range.length < 0))) {
      throw new StowageError(Code.InvalidArgument, "range offset and length must not be negative", { reason: Reason.InvalidRange });
    }
    if (range?.length === 0) return this.#emptyRead(input, range.offset, options);
    const header = range === undefined ? undefined : `bytes=${range.offset}-${range.length === undefined ? "" : range.offset + range.length - 1}`;
    const context = { operation: "get object", bucket: input.bucket, key: input.key };
    let out: GetObjectCommandOutput;
    try {
      out = await withRequestTimeout(options.signal, settings.timeouts.requestTimeoutMs, "get object", (abortSignal) =>
        settings.client.send(
          new GetObjectCommand({ Bucket: input.bucket, Key: input.key, ...(header === undefined ? {} : { Range: header }), ...readEncryptionParams(settings) }),
          { abortSignal },
        ),
      );
    } catch (error) {
      if (range !== undefined && awsErrorCode(error) === "InvalidRange") return this.#emptyRead(input, range.offset, options);
      throw toStowageError(error, { ...context, signal: options.signal });
    }
    const body = out.Body;
    if (!(body instanceof Readable)) throw new StowageError(Code.Internal, "the S3 client returned a body that is not a Node stream");
    const contentLength = out.ContentLength ?? 0;
    const total = contentRangeTotal(out.ContentRange) ?? contentLength;
    const offset = range === undefined ? 0 : range.offset;
    // A store that stops mid-body, a reset, the caller's cancellation: the reader gets a StowageError.
    guardBody(body, {
      idleTimeoutMs: settings.timeouts.idleTimeoutMs,
      what: `read object ${JSON.stringify(input.key)} in bucket ${JSON.stringify(input.bucket)}`,
      signal: options.signal,
      mapError: (error) => toStowageError(error, { ...context, operation: "read object", signal: options.signal }),
      metadata: { bucket: input.bucket, key: input.key },
    });
    return { object: objectInfo(input.key, out, total), contentLength, offset, body };
  }

  /** A read of zero bytes at `offset` (a zero length, or an offset at the end): valid when `offset` is at most the size. */
  async #emptyRead(input: GetObjectInput, offset: number, options: CallOptions): Promise<GetObjectOutput> {
    const info = await this.headObject(input, options);
    if (info === undefined) throw objectNotFoundError(input);
    if (offset > info.size) throw rangeError(input, offset, info.size);
    return { object: info, contentLength: 0, offset, body: Readable.from([]) };
  }

  /** The object's attributes, or `undefined` when it does not exist. */
  async headObject(input: ObjectRef, options: CallOptions = {}): Promise<ObjectInfo | undefined> {
    const settings = this.#ready();
    checkRef(input);
    try {
      const out = await withRequestTimeout(options.signal, settings.timeouts.requestTimeoutMs, "head object", (abortSignal) =>
        settings.client.send(new HeadObjectCommand({ Bucket: input.bucket, Key: input.key, ...readEncryptionParams(settings) }), { abortSignal }),
      );
      return objectInfo(input.key, out, out.ContentLength ?? 0);
    } catch (error) {
      const code = awsErrorCode(error);
      if (code === "NoSuchKey") return undefined;
      if (code === "NotFound") {
        // A HEAD answer has no body, so a missing bucket looks like a missing key: ask the bucket.
        await this.#checkBucket(settings, input.bucket, options.signal);
        return undefined;
      }
      throw toStowageError(error, { operation: "head object", bucket: input.bucket, key: input.key, signal: options.signal });
    }
  }

  /** Fails with `BUCKET_NOT_FOUND` when the bucket does not exist. */
  async #checkBucket(settings: S3StoreSettings, bucket: string, signal: AbortSignal | undefined): Promise<void> {
    try {
      await withRequestTimeout(signal, settings.timeouts.requestTimeoutMs, "head bucket", (abortSignal) => settings.client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal }));
    } catch (error) {
      const code = awsErrorCode(error);
      if (code === "NotFound" || code === "NoSuchBucket") throw bucketNotFound(bucket);
      throw toStowageError(error, { operation: "head bucket", bucket, signal });
    }
  }

  /**
   * Lists keys with ListObjectsV2. Page tokens wrap S3's continuation token with the prefix and
   * delimiter they belong to, so a token from another listing fails with `INVALID_PAGE_TOKEN`.
   */
  async *listObjects(input: ListObjectsInput, options: CallOptions = {}): AsyncIterable<ListObjectsPage> {
    const settings = this.#ready();
    if (input.bucket === "") throw invalidName("bucket names must not be empty");
    const pageSize = input.pageSize ?? MAX_LIST_PAGE_SIZE;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_LIST_PAGE_SIZE) {
      throw new StowageError(Code.InvalidArgument, `pageSize must be 1 to ${MAX_LIST_PAGE_SIZE}, got ${pageSize}`);
    }
    const prefix = input.prefix ?? "";
    const delimiter = input.delimiter ?? "";
    let token = input.pageToken === undefined || input.pageToken === "" ? undefined : decodePageToken(input.pageToken, prefix, delimiter);
    let pages = 0;
    for (;;) {
      let out;
      try {
        out = await withRequestTimeout(options.signal, settings.timeouts.requestTimeoutMs, "list objects", (abortSignal) => settings.client.send(
          new ListObjectsV2Command({
            Bucket: input.bucket,
            MaxKeys: pageSize,
            ...(input.prefix === undefined || input.prefix === "" ? {} : { Prefix: input.prefix }),
            ...(input.delimiter === undefined || input.delimiter === "" ? {} : { Delimiter: input.delimiter }),
            ...(token === undefined ? {} : { ContinuationToken: token }),
          }),
          { abortSignal },
        ));
      } catch (error) {
        if (token !== undefined && (awsErrorCode(error) === "InvalidArgument" || awsErrorCode(error) === "NotImplemented")) {
          throw new StowageError(Code.InvalidArgument, `page token ${JSON.stringify(token)} is not valid`, { reason: Reason.InvalidPageToken, cause: error });
        }
        throw toStowageError(error, { operation: "list objects", bucket: input.bucket, signal: options.signal });
      }
      const continuation = out.IsTruncated === true ? (out.NextContinuationToken ?? "") : "";
      const next = continuation === "" ? "" : encodePageToken(continuation, prefix, delimiter);
      pages += 1;
      yield {
        objects: (out.Contents ?? []).map((o) => ({
          key: o.Key ?? "",
          size: o.Size ?? 0,
          etag: o.ETag ?? "",
          lastModified: o.LastModified,
          contentType: "",
          metadata: {},
        })),
        commonPrefixes: (out.CommonPrefixes ?? []).map((p) => p.Prefix ?? ""),
        nextPageToken: next,
      };
      if (next === "" || (input.maxPages !== undefined && pages >= input.maxPages)) return;
      token = continuation;
    }
  }

  /**
   * Deletes the object; a missing object is success. In a lockable bucket a protected current
   * version is refused with `OBJECT_LOCKED` (S3 would add a delete marker and answer success), or,
   * with `bypassGovernance` on a governance-only retention, deleted by its version ID.
   */
  async deleteObject(input: DeleteObjectInput, options: CallOptions = {}): Promise<void> {
    const settings = this.#ready();
    checkRef(input);
    if (await this.objectLock.deleteProtected(input, options.signal)) return;
    try {
      await withRequestTimeout(options.signal, settings.timeouts.requestTimeoutMs, "delete object", (abortSignal) =>
        settings.client.send(new DeleteObjectCommand({ Bucket: input.bucket, Key: input.key }), { abortSignal }),
      );
    } catch (error) {
      if (awsErrorCode(error) === "NoSuchKey") return;
      throw toStowageError(error, { operation: "delete object", bucket: input.bucket, key: input.key, signal: options.signal });
    }
  }

  /** A SigV4 pre-signed GET or PUT URL, for `publicUrl` when set; validity capped at 7 days. */
  async createSignedUrl(input: CreateSignedUrlInput, options: CallOptions = {}): Promise<SignedUrl> {
    const settings = this.#ready();
    checkRef(input);
    options.signal?.throwIfAborted();
    if (!Number.isFinite(input.ttlSeconds) || input.ttlSeconds < 1) {
      throw new StowageError(Code.InvalidArgument, `ttlSeconds must be at least 1, got ${input.ttlSeconds}`);
    }
    if (settings.presignUnavailable !== undefined) {
      throw new StowageError(Code.FailedPrecondition, settings.presignUnavailable, { reason: Reason.Unsupported });
    }
    const ttl = Math.min(Math.floor(input.ttlSeconds), MAX_SIGNED_URL_TTL_SECONDS);
    const command =
      (input.method ?? "GET") === "PUT"
        ? new PutObjectCommand({ Bucket: input.bucket, Key: input.key })
        : new GetObjectCommand({ Bucket: input.bucket, Key: input.key });
    const now = Date.now();
    try {
      const url = await getSignedUrl(settings.presignClient, command, { expiresIn: ttl, signingDate: new Date(now) });
      return { url, expiresAt: new Date(now + ttl * 1000) };
    } catch (error) {
      throw toStowageError(error, { operation: "sign URL", bucket: input.bucket, key: input.key });
    }
  }
}

/** Counts the body, checks the announced size and SHA-256, and honours cancellation. */
class BodyCounter {
  bytes = 0;
  sha256: Uint8Array | undefined;
  readonly #input: PutObjectInput;

  constructor(input: PutObjectInput) {
    this.#input = input;
  }

  async *pass(source: ByteSource): AsyncGenerator<Uint8Array> {
    const { size, sha256: expected, bucket, key } = this.#input;
    const hash = expected === undefined ? undefined : createHash("sha256");
    for await (const chunk of source) {
      this.bytes += chunk.byteLength;
      if (size !== undefined && this.bytes > size) throw integrityError(bucket, key, `the body is longer than the announced ${size} bytes`);
      hash?.update(chunk);
      yield chunk;
    }
    if (size !== undefined && this.bytes !== size) {
      throw integrityError(bucket, key, `the body has ${this.bytes} bytes, not the announced ${size}`);
    }
    if (hash !== undefined && expected !== undefined) {
      const actual = hash.digest();
      if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
        throw integrityError(bucket, key, "the body's SHA-256 does not match the announced one");
      }
      this.sha256 = new Uint8Array(actual);
    }
  }
}
