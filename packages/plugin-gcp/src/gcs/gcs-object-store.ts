/**
 * The Cloud Storage ObjectStore: streamed uploads (one request for small bodies, a resumable upload
 * in bounded chunks otherwise) verified with CRC32C, generation-pinned reads with ranges, listing
 * pages with resumable tokens, idempotent deletes, V4 signed URLs and object protection (retention
 * and holds, contract 5.9).
 *
 * @packageDocumentation
 */
import { CRC32C, type File, type FileMetadata, type GetFilesResponse } from "@google-cloud/storage";
import {
  Code,
  Reason,
  StowageError,
  bucketNotFound,
  silentLogger,
  type ByteSource,
  type CallOptions,
  type CreateSignedUrlInput,
  type DeleteObjectInput,
  type DirectTransfer,
  type GetObjectInput,
  type GetObjectOutput,
  type ListObjectsInput,
  type ListObjectsPage,
  type Logger,
  type ObjectInfo,
  type ObjectLock,
  type ObjectRef,
  type ObjectStore,
  type PluginConfig,
  type PutObjectInput,
  type PutObjectResult,
  type SignedUrl,
} from "@stowage/sdk";
import { compareUtf8, decodePageToken, encodePageToken, guardBody, idleWatchdog, redactConfig, untilAborted, withRequestTimeout } from "@stowage/sdk/plugin";
import { createHash, timingSafeEqual } from "node:crypto";
import { PassThrough, Readable, Transform, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { httpStatus, isNotFound, toStowageError, type GoogleErrorContext } from "../shared/errors.js";
import { GcsDirectTransfer } from "./direct-transfer.js";
import { GCS_CONFIG_KEYS, configureGcs, signingFailure, type GcsStoreSettings } from "./config.js";
import { GcsObjectLock, asksProtection } from "./object-lock.js";
import { checkRange, checkRef, integrityError, invalidName, objectInfo, readWindow } from "./objects.js";
import { isRetentionNotEnabled, protectionMetadata } from "./protection.js";

/** Longest validity of a V4 signed URL: 7 days. */
export const MAX_SIGNED_URL_TTL_SECONDS = 604_800;
/** Default and largest number of entries in a listing page. */
export const MAX_LIST_PAGE_SIZE = 1000;

/** Options of {@link GcsObjectStore}. */
export interface GcsObjectStoreOptions {
  /** Where to log; nothing is logged by default. */
  readonly logger?: Logger | undefined;
}

/**
 * An ObjectStore on Google Cloud Storage (or an emulator such as fake-gcs-server), built on
 * `@google-cloud/storage`.
 *
 * - A body of at most `chunkSize` bytes goes in one multipart request that declares its CRC32C, so
 *   the server refuses a corrupted body before storing it. A larger body goes in a resumable upload
 *   of `chunkSize` chunks; the final chunk carries the CRC32C (`X-Goog-Hash`) and the client checks
 *   the server's CRC32C after the upload (and deletes a mismatching object). An upload holds about
 *   one chunk of body in memory; a failed, cancelled or mis-sized upload is never finalised, so no
 *   object appears.
 * - Reads are pinned to the generation read first: an object replaced mid-read fails with `ABORTED`.
 * - Listing pages count objects and common prefixes together, in UTF-8 byte order; page tokens
 *   carry the last entry returned, so they survive restarts.
 * - Signed URLs are V4, signed locally with a service-account key or through the IAM Credentials
 *   `signBlob` API otherwise.
 * - Every call but a transfer waits at most `requestTimeout` for Cloud Storage; a transfer
 *   (put or read body) fails once Cloud Storage moved no data for `idleTimeout`. Both fail
 *   with `UNAVAILABLE`/`BACKEND_UNAVAILABLE`. (The library takes no cancellation for its unary
 *   calls: a request given up on is left to end by itself.)
 *
 * @example
 * ```ts
 * const store = new GcsObjectStore();
 * await store.init({ credentialsFile: "/credentials/cloud", kmsKeyName: "projects/p/locations/l/keyRings/r/cryptoKeys/k" });
 * ```
 */
export class GcsObjectStore implements ObjectStore {
  readonly #logger: Logger;
  #settings: GcsStoreSettings | undefined;
  /**
   * Direct transfer (capability `DIRECT_TRANSFER`, contract 5.8): reads are V4 signed GETs pinned to
   * the object's generation; a body of at most `chunkSize` bytes is one signed PUT with its MD5,
   * content type and metadata signed, a larger one a resumable upload session whose parts the host
   * sends in order. Plans are declined when `directTransfer` is `false` or the credentials cannot
   * sign URLs. See the package README.
   */
  readonly directTransfer: DirectTransfer;
  /**
   * Object protection (capability `OBJECT_LOCK`, contract 5.9), enforced by Cloud Storage: mode
   * `GOVERNANCE` is an `Unlocked` object retention, `COMPLIANCE` a `Locked` one, the legal hold is
   * `temporaryHold`. See the package README.
   */
  readonly objectLock: ObjectLock;
  readonly #lock: GcsObjectLock;

  /** @param options - Logger. */
  constructor(options: GcsObjectStoreOptions = {}) {
    this.#logger = options.logger ?? silentLogger;
    this.directTransfer = new GcsDirectTransfer({
      logger: this.#logger,
      settings: () => this.#ready(),
      metadata: (settings, ref, signal) => this.#metadata(settings, ref, signal),
      objectError: (settings, error, context, signal) => this.#objectError(settings, error, context, signal),
    });
    this.#lock = new GcsObjectLock({
      settings: () => this.#ready(),
      call: (settings, signal, what, call) => this.#call(settings, signal, what, call),
      file: (settings, ref) => this.#file(settings, ref),
      metadata: (settings, ref, signal) => this.#metadata(settings, ref, signal),
    });
    this.objectLock = this.#lock;
  }

  /** Validates the configuration and builds the clients; see the package README for the keys. */
  async init(config: PluginConfig, options: CallOptions = {}): Promise<void> {
    const settings = await configureGcs(config, options.signal);
    this.#settings = settings;
    this.#logger.info(
      { config: redactConfig(config, GCS_CONFIG_KEYS), credentials: settings.credentials.type, url_signing: settings.signer.kind },
      "initialised",
    );
  }

  #ready(): GcsStoreSettings {
    if (this.#settings === undefined) {
      throw new StowageError(Code.FailedPrecondition, "the Cloud Storage object store is not initialised; call init first", { reason: Reason.NotInitialized });
    }
    return this.#settings;
  }

  /** Waits for one library call under the caller's signal and `requestTimeout`. */
  #call<T>(settings: GcsStoreSettings, signal: AbortSignal | undefined, what: string, call: () => Promise<T>): Promise<T> {
    return withRequestTimeout(signal, settings.timeouts.requestTimeoutMs, what, (abortSignal) => untilAborted(call(), abortSignal));
  }

  #file(settings: GcsStoreSettings, ref: ObjectRef, generation?: string): File {
    return settings.storage.bucket(ref.bucket).file(ref.key, {
      ...(settings.kmsKeyName === undefined ? {} : { kmsKeyName: settings.kmsKeyName }),
      ...(generation === undefined ? {} : { generation: Number(generation) }),
    });
  }

  /**
   * Maps a failure of a call on an object: a 404 becomes `BUCKET_NOT_FOUND` when the bucket is
   * missing and `OBJECT_NOT_FOUND` otherwise (a 404 body does not always say which).
   */
  async #objectError(settings: GcsStoreSettings, error: unknown, context: GoogleErrorContext & { bucket: string }, signal: AbortSignal | undefined): Promise<StowageError> {
    if (!(error instanceof StowageError) && signal?.aborted !== true && isNotFound(error)) {
      await this.#checkBucket(settings, context.bucket, signal);
    }
    return toStowageError(error, { ...context, signal });
  }

  /** Fails with `BUCKET_NOT_FOUND` when the bucket does not exist. */
  async #checkBucket(settings: GcsStoreSettings, bucket: string, signal: AbortSignal | undefined): Promise<void> {
    try {
      await this.#call(settings, signal, "get bucket", () => settings.storage.bucket(bucket).getMetadata());
    } catch (error) {
      if (signal?.aborted !== true && isNotFound(error)) throw bucketNotFound(bucket);
      throw toStowageError(error, { operation: "get bucket", bucket, signal });
    }
  }

  /**
   * Streams the body into the object; see the class description. A protection goes in the upload's
   * metadata (`retention`, `temporaryHold`), so the object never exists unprotected. The put reads
   * the current object first and refuses to replace a protected one (`OBJECT_LOCKED`) before it
   * reads the body (Cloud Storage refuses too, except in a versioned bucket); with
   * `bypassGovernance` it removes an `Unlocked` retention first (and puts it back if the upload
   * fails).
   */
  async putObject(input: PutObjectInput, options: CallOptions = {}): Promise<PutObjectResult> {
    const settings = this.#ready();
    checkRef(input);
    const signal = options.signal;
    signal?.throwIfAborted();
    if (asksProtection(input.protection)) await this.#lock.requireLockable(settings, input.bucket, signal);
    const removed = await this.#lock.prepare(settings, input, input.bypassGovernance === true, "replace", signal);
    try {
      return await this.#upload(settings, input, signal);
    } catch (error) {
      if (removed.removed !== undefined) {
        await this.#lock.restore(settings, input, removed.removed, undefined).catch((restoreError: unknown) => {
          this.#logger.warn({ bucket: input.bucket, key: input.key, error: String(restoreError) }, "could not restore the retention removed for an overwrite that failed");
        });
      }
      throw error;
    }
  }

  async #upload(settings: GcsStoreSettings, input: PutObjectInput, signal: AbortSignal | undefined): Promise<PutObjectResult> {
    const counter = new BodyCounter(input);
    const source = counter.pass(input.body)[Symbol.asyncIterator]();
    const file = this.#file(settings, input);
    const metadata: FileMetadata = {
      ...(input.contentType === undefined || input.contentType === "" ? {} : { contentType: input.contentType }),
      ...(input.metadata === undefined || Object.keys(input.metadata).length === 0 ? {} : { metadata: { ...input.metadata } }),
      ...protectionMetadata(input.protection),
    };
    try {
      // Read up to one chunk: a body that ends within it goes in a single request.
      const head: Buffer[] = [];
      let headBytes = 0;
      let ended = false;
      while (headBytes <= settings.chunkSize) {
        signal?.throwIfAborted();
        const next = await source.next();
        if (next.done === true) {
          ended = true;
          break;
        }
        const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
        head.push(chunk);
        headBytes += chunk.byteLength;
      }
      let sink: Writable;
      let body: Readable;
      if (ended) {
        const crc = new CRC32C();
        for (const chunk of head) crc.update(chunk);
        sink = file.createWriteStream({ resumable: false, validation: "crc32c", metadata: { ...metadata, crc32c: crc.toString() } });
        body = Readable.from(head, { objectMode: false });
      } else {
        sink = file.createWriteStream({ resumable: true, validation: "crc32c", chunkSize: settings.chunkSize, metadata });
        body = Readable.from(resume(head, source), { objectMode: false, highWaterMark: 64 * 1024 });
      }
      // The library takes the body as Cloud Storage accepts it: a store that stops taking data (or
      // stops answering after the last byte) for idleTimeout ends the upload.
      const stalled = new AbortController();
      const watchdog = idleWatchdog(settings.timeouts.idleTimeoutMs, `put object ${JSON.stringify(input.key)} in bucket ${JSON.stringify(input.bucket)}`, (error) => {
        stalled.abort(error);
      });
      const progress = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          watchdog.touch();
          callback(null, chunk);
        },
      });
      try {
        await pipeline(body, progress, sink, { signal: signal === undefined ? stalled.signal : AbortSignal.any([signal, stalled.signal]) });
      } catch (error) {
        if (signal?.aborted !== true && stalled.signal.aborted) throw stalled.signal.reason as Error;
        throw error;
      } finally {
        watchdog.stop();
      }
      const stored = file.metadata;
      const size = Number(stored.size ?? Number.NaN);
      if (Number.isFinite(size) && size !== counter.bytes) {
        throw integrityError(input.bucket, input.key, `the server stored ${String(size)} bytes, not the ${String(counter.bytes)} sent`);
      }
      return { size: counter.bytes, etag: stored.etag ?? "", ...(counter.sha256 === undefined ? {} : { sha256: counter.sha256 }) };
    } catch (error) {
      await source.return?.(undefined).catch(() => undefined);
      if (!(error instanceof StowageError) && httpStatus(error) === 403) {
        const locked = await this.#lock.refusal(settings, input, input.bypassGovernance === true, "replace", error, signal);
        if (locked !== undefined) throw locked;
      }
      if (!(error instanceof StowageError) && isRetentionNotEnabled(error)) await this.#lock.requireLockable(settings, input.bucket, signal);
      throw await this.#objectError(settings, error, { operation: "put object", bucket: input.bucket, key: input.key }, signal);
    }
  }

  /** Opens the object, or the requested part of it, for reading. */
  async getObject(input: GetObjectInput, options: CallOptions = {}): Promise<GetObjectOutput> {
    const settings = this.#ready();
    checkRef(input);
    const signal = options.signal;
    checkRange(input.range);
    const stored = await this.#metadata(settings, input, signal);
    const { info, offset, end, contentLength } = readWindow(input, input.range, stored);
    if (contentLength === 0) return { object: info, contentLength: 0, offset, body: Readable.from([]) };
    const file = this.#file(settings, input, stored?.generation === undefined ? undefined : String(stored.generation));
    const whole = offset === 0 && end === info.size;
    // A whole-object read is checked against the stored CRC32C; a part cannot be.
    const download = file.createReadStream({ validation: whole ? "crc32c" : false, ...(whole ? {} : { start: offset, end: end - 1 }) });
    // The download is stopped at once when the caller gives up or the body stalls (the library sends
    // its request on the first read and cannot take an answer into a download destroyed meanwhile),
    // and when the body is given up otherwise.
    const stop = (): void => {
      download.destroy();
    };
    const body = guardBody(new PassThrough({ highWaterMark: 1024 * 1024 }), {
      idleTimeoutMs: settings.timeouts.idleTimeoutMs,
      what: `read object ${JSON.stringify(input.key)} in bucket ${JSON.stringify(input.bucket)}`,
      signal,
      mapError: (error) => toStowageError(error, { operation: "read object", bucket: input.bucket, key: input.key, signal }),
      onStall: stop,
      metadata: { bucket: input.bucket, key: input.key },
    });
    signal?.addEventListener("abort", stop, { once: true });
    body.once("close", () => {
      signal?.removeEventListener("abort", stop);
      stop();
    });
    download.on("error", (error: unknown) => {
      // The generation read first is gone: the object was replaced or deleted during the read.
      const mapped =
        !(error instanceof StowageError) && isNotFound(error)
          ? new StowageError(Code.Aborted, `object ${JSON.stringify(input.key)} in bucket ${JSON.stringify(input.bucket)} changed during the read; read it again`, {
              metadata: { bucket: input.bucket, key: input.key },
              cause: error,
            })
          : toStowageError(error, { operation: "read object", bucket: input.bucket, key: input.key, signal });
      body.destroy(mapped);
    });
    download.pipe(body);
    return { object: info, contentLength, offset, body };
  }

  /** The object's stored metadata, or `undefined` when it does not exist (a missing bucket fails). */
  async #metadata(settings: GcsStoreSettings, ref: ObjectRef, signal: AbortSignal | undefined): Promise<FileMetadata | undefined> {
    signal?.throwIfAborted();
    try {
      const [metadata] = await this.#call(settings, signal, "get object metadata", () => this.#file(settings, ref).getMetadata());
      return metadata;
    } catch (error) {
      if (signal?.aborted !== true && !(error instanceof StowageError) && isNotFound(error)) {
        await this.#checkBucket(settings, ref.bucket, signal);
        return undefined;
      }
      throw toStowageError(error, { operation: "get object metadata", bucket: ref.bucket, key: ref.key, signal });
    }
  }

  /** The object's attributes, or `undefined` when it does not exist. */
  async headObject(input: ObjectRef, options: CallOptions = {}): Promise<ObjectInfo | undefined> {
    const settings = this.#ready();
    checkRef(input);
    const stored = await this.#metadata(settings, input, options.signal);
    return stored === undefined ? undefined : objectInfo(input.key, stored);
  }

  /**
   * Lists keys. Each page asks Cloud Storage for the entries after the last one returned
   * (`startOffset`), merges objects and common prefixes in UTF-8 byte order and cuts the page at
   * `pageSize` entries; the page token names the last entry, the prefix and the delimiter.
   */
  async *listObjects(input: ListObjectsInput, options: CallOptions = {}): AsyncIterable<ListObjectsPage> {
    const settings = this.#ready();
    const signal = options.signal;
    if (input.bucket === "") throw invalidName("bucket names must not be empty");
    const pageSize = input.pageSize === undefined || input.pageSize === 0 ? MAX_LIST_PAGE_SIZE : input.pageSize;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_LIST_PAGE_SIZE) {
      throw new StowageError(Code.InvalidArgument, `pageSize must be 0 to ${String(MAX_LIST_PAGE_SIZE)}, got ${String(input.pageSize)}`);
    }
    if (input.maxPages !== undefined && (!Number.isInteger(input.maxPages) || input.maxPages < 0)) {
      throw new StowageError(Code.InvalidArgument, `maxPages must not be negative, got ${String(input.maxPages)}`);
    }
    const prefix = input.prefix ?? "";
    if (Buffer.byteLength(prefix) > 1024) throw invalidName("the prefix is longer than 1024 bytes");
    const delimiter = input.delimiter ?? "";
    let after = input.pageToken === undefined || input.pageToken === "" ? undefined : decodeAfter(input.pageToken, prefix, delimiter);
    const bucket = settings.storage.bucket(input.bucket);
    let pages = 0;
    for (;;) {
      signal?.throwIfAborted();
      const entries: { name: string; object?: ObjectInfo }[] = [];
      let gcsToken: string | undefined;
      // Collect at least one page of entries after `after`; a GCS page may hold only entries
      // already returned (the common prefix that `after` names), so continue with its token.
      for (;;) {
        let response: GetFilesResponse;
        try {
          response = await this.#call(settings, signal, "list objects", () =>
            bucket.getFiles({
              autoPaginate: false,
              maxResults: pageSize + 1,
              ...(prefix === "" ? {} : { prefix }),
              ...(delimiter === "" ? {} : { delimiter }),
              ...(after === undefined ? {} : { startOffset: after }),
              ...(gcsToken === undefined ? {} : { pageToken: gcsToken }),
            }),
          );
        } catch (error) {
          if (signal?.aborted !== true && !(error instanceof StowageError) && isNotFound(error)) throw bucketNotFound(input.bucket);
          throw toStowageError(error, { operation: "list objects", bucket: input.bucket, signal });
        }
        const [files, nextQuery, raw] = response as unknown as [File[], { pageToken?: unknown } | null | undefined, { prefixes?: string[] } | undefined];
        for (const f of files) {
          if (after === undefined || compareUtf8(f.name, after) > 0) entries.push({ name: f.name, object: objectInfo(f.name, f.metadata, false) });
        }
        for (const p of raw?.prefixes ?? []) {
          if (after === undefined || compareUtf8(p, after) > 0) entries.push({ name: p });
        }
        gcsToken = typeof nextQuery?.pageToken === "string" && nextQuery.pageToken !== "" ? nextQuery.pageToken : undefined;
        if (entries.length > 0 || gcsToken === undefined) break;
      }
      let more = gcsToken !== undefined;
      entries.sort((a, b) => compareUtf8(a.name, b.name));
      const unique = entries.filter((e, i) => i === 0 || e.name !== entries[i - 1]?.name);
      if (unique.length > pageSize) more = true;
      const page = unique.slice(0, pageSize);
      const last = page.at(-1)?.name;
      const next = more && last !== undefined ? encodePageToken(last, prefix, delimiter) : "";
      pages += 1;
      yield {
        objects: page.flatMap((e) => (e.object === undefined ? [] : [e.object])),
        commonPrefixes: page.flatMap((e) => (e.object === undefined ? [e.name] : [])),
        nextPageToken: next,
      };
      if (next === "" || (input.maxPages !== undefined && input.maxPages > 0 && pages >= input.maxPages)) return;
      after = last;
    }
  }

  /**
   * Deletes the object; a missing object is success, a missing bucket is `BUCKET_NOT_FOUND`. A
   * protected object is refused (`OBJECT_LOCKED`) after reading it, and by Cloud Storage; with
   * `bypassGovernance`, an `Unlocked` retention is removed first (`overrideUnlockedRetention=true`),
   * a hold never is.
   */
  async deleteObject(input: DeleteObjectInput, options: CallOptions = {}): Promise<void> {
    const settings = this.#ready();
    checkRef(input);
    const signal = options.signal;
    signal?.throwIfAborted();
    const bypass = input.bypassGovernance === true;
    // Reads the object first: a missing one is success (a missing bucket fails), a protected one is
    // refused even in a versioned bucket, where Cloud Storage would make it noncurrent.
    if (!(await this.#lock.prepare(settings, input, bypass, "delete", signal)).exists) return;
    try {
      await this.#call(settings, signal, "delete object", () => this.#file(settings, input).delete());
    } catch (error) {
      if (signal?.aborted !== true && !(error instanceof StowageError) && isNotFound(error)) {
        await this.#checkBucket(settings, input.bucket, signal);
        return;
      }
      if (!(error instanceof StowageError)) {
        const locked = await this.#lock.refusal(settings, input, bypass, "delete", error, signal);
        if (locked !== undefined) throw locked;
      }
      throw toStowageError(error, { operation: "delete object", bucket: input.bucket, key: input.key, signal });
    }
  }

  /**
   * A V4 signed GET or PUT URL (for `publicUrl` when set), valid at most 7 days; signed locally with
   * a service-account key, or through the IAM `signBlob` API.
   */
  async createSignedUrl(input: CreateSignedUrlInput, options: CallOptions = {}): Promise<SignedUrl> {
    const settings = this.#ready();
    checkRef(input);
    const signal = options.signal;
    signal?.throwIfAborted();
    if (!Number.isFinite(input.ttlSeconds) || input.ttlSeconds < 1) {
      throw new StowageError(Code.InvalidArgument, `ttlSeconds must be at least 1, got ${String(input.ttlSeconds)}`);
    }
    if (settings.signer.kind === "none") throw new StowageError(Code.Unimplemented, settings.signer.why, { reason: Reason.Unsupported });
    const ttl = Math.min(Math.floor(input.ttlSeconds), MAX_SIGNED_URL_TTL_SECONDS);
    const now = Math.floor(Date.now() / 1000) * 1000;
    const expiresAt = new Date(now + ttl * 1000);
    const file = settings.signingStorage.bucket(input.bucket).file(input.key);
    try {
      const [url] = await this.#call(settings, signal, "sign URL", () =>
        file.getSignedUrl({
          version: "v4",
          action: (input.method ?? "GET") === "PUT" ? "write" : "read",
          accessibleAt: new Date(now),
          expires: expiresAt,
          ...(settings.publicUrl === undefined ? {} : { host: settings.publicUrl }),
        }),
        );
      return { url, expiresAt };
    } catch (error) {
      throw toStowageError(signingFailure(error) ?? error, { operation: "sign URL", bucket: input.bucket, key: input.key, signal });
    }
  }
}

/** The buffered head of a body, then the rest of its iterator. */
async function* resume(head: Buffer[], rest: AsyncIterator<Uint8Array>): AsyncGenerator<Buffer> {
  while (head.length > 0) {
    const chunk = head.shift();
    if (chunk !== undefined) yield chunk;
  }
  for (;;) {
    const next = await rest.next();
    if (next.done === true) return;
    yield Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
  }
}

/** Counts the body, checks the announced size and SHA-256. */
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
      if (size !== undefined && this.bytes > size) throw integrityError(bucket, key, `the body is longer than the announced ${String(size)} bytes`);
      hash?.update(chunk);
      yield chunk;
    }
    if (size !== undefined && this.bytes !== size) {
      throw integrityError(bucket, key, `the body has ${String(this.bytes)} bytes, not the announced ${String(size)}`);
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

/** The last entry a page token says was returned; it must lie inside the listing's prefix. */
function decodeAfter(token: string, prefix: string, delimiter: string): string {
  const after = decodePageToken(token, prefix, delimiter);
  if (!after.startsWith(prefix)) {
    throw new StowageError(Code.InvalidArgument, "the page token is not valid for this listing; start the listing again without a token", {
      reason: Reason.InvalidPageToken,
    });
  }
  return after;
}
