/**
 * The Azure Blob ObjectStore: staged-block uploads with bounded concurrency and memory, ranged
 * reads, hierarchy/flat listing pages, SAS URLs (service SAS or user delegation SAS), and direct
 * transfer (contract 5.8) with SAS-signed requests.
 *
 * @packageDocumentation
 */
import {
  BlobSASPermissions,
  SASProtocol,
  generateBlobSASQueryParameters,
  type BlobDownloadResponseParsed,
  type BlobGetPropertiesResponse,
  type BlobServiceClient,
  type BlockBlobClient,
  type ContainerClient,
  type UserDelegationKey,
} from "@azure/storage-blob";
import {
  Code,
  Reason,
  StowageError,
  asksProtection,
  bucketNotFound,
  checkRetention,
  objectNotFound,
  silentLogger,
  type ByteRange,
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
import {
  contentRangeTotal,
  decodeHeaderValue,
  decodePageToken,
  encodeHeaderValue,
  encodePageToken,
  guardBody,
  iterateUntilAborted,
  redactConfig,
  requestDeadline,
  withRequestTimeout,
} from "@stowage/sdk/plugin";
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { Readable } from "node:stream";
import { abortedError, azureErrorCode, azureHttpStatus, isAbortError, toStowageError } from "../shared/errors.js";
import { BlobDirectTransfer } from "./direct-transfer.js";
import { BlobObjectLock, onlyGovernance, protectionOf, uploadProtection } from "./object-lock.js";
import { BLOB_CONFIG_KEYS, MAX_AZURE_BLOCK_SIZE, MAX_BLOCKS, configureBlobStore, type BlobStoreSettings, type ConfigureBlobStoreOptions } from "./config.js";

/** Longest validity of a signed URL: 7 days (the longest a user delegation key lives). */
export const MAX_SIGNED_URL_TTL_SECONDS = 7 * 24 * 3600;
/** Default and largest number of entries in a listing page. */
export const MAX_LIST_PAGE_SIZE = 1000;
/**
 * The SAS version signed URLs use. Pinned rather than the SDK's newest, which adds fields to the
 * string to sign that older services (Azure Stack Hub, Azurite) do not know; Azure accepts it.
 */
export const SAS_VERSION = "2024-11-04";
/** Signed URLs start this long before now, for clock skew between signer and service. */
const CLOCK_SKEW_MS = 10 * 60 * 1000;

/** Options of {@link BlobObjectStore}. */
export interface BlobObjectStoreOptions {
  /** Where to log; nothing is logged by default. */
  readonly logger?: Logger | undefined;
  /** Passed to `configureBlobStore` (token credential for tests, retry delay, environment). */
  readonly configure?: Omit<ConfigureBlobStoreOptions, "logger" | "signal"> | undefined;
}

/**
 * An ObjectStore on Azure Blob Storage (block blobs).
 *
 * - Puts of at most one block are one Put Blob request. Larger bodies are cut into blocks of
 *   `blockSize`, staged with at most `uploadConcurrency` requests in flight, and committed
 *   with one Put Block List once the whole body arrived and its size and SHA-256 matched; at most
 *   `blockSize × (uploadConcurrency + 1)` bytes are held. A failed or cancelled put commits
 *   nothing: Azure discards the uncommitted blocks (after at most 7 days).
 * - Every service call has its own deadline (`requestTimeout`, its retries included) on top
 *   of the caller's signal; every connection obeys `connectTimeout` and
 *   `idleTimeout`, and a read's body that stalls for `idleTimeout` fails. A store
 *   that misses them fails the call with `UNAVAILABLE`/`BACKEND_UNAVAILABLE`.
 * - Deleting a missing blob succeeds.
 * - Signed URLs are read-only SAS URLs: a service SAS under shared-key auth, a user delegation SAS
 *   under Entra ID auth. Signed PUT URLs are not offered: a plain HTTP PUT to a SAS URL is refused
 *   by Azure without an `x-ms-blob-type` header.
 * - Direct transfer ({@link BlobObjectStore.directTransfer}): SAS-signed requests the host sends
 *   itself; `directTransfer: false` declines every plan.
 */
export class BlobObjectStore implements ObjectStore {
  readonly #logger: Logger;
  readonly #configureOptions: Omit<ConfigureBlobStoreOptions, "logger" | "signal">;
  #settings: BlobStoreSettings | undefined;
  /** The last user delegation key, reused while it covers a new URL's validity. */
  #delegation: { service: BlobServiceClient; key: UserDelegationKey; startsOn: Date; expiresOn: Date } | undefined;
  /**
   * Direct transfer (capability `DIRECT_TRANSFER`, contract 5.8): the host reads and writes blobs
   * itself with requests signed by short-lived SAS for one blob (read-only GETs pinned with
   * `if-match`, write-only Put Blob or Put Block requests with their Content-MD5), and the plugin
   * commits and checks the blocks; see the package README. `directTransfer: false` in the
   * configuration, or SAS-token auth, declines every plan.
   */
  readonly directTransfer: DirectTransfer;
  /**
   * Object protection (capability `OBJECT_LOCK`, contract 5.9) on Azure version-level
   * immutability: governance is an `Unlocked` policy, compliance a `Locked` one; see
   * `object-lock.ts` and the package README.
   */
  readonly objectLock: ObjectLock;
  /** The same, with the checks that puts and deletes make. */
  readonly #lock: BlobObjectLock;

  /** @param options - Logger and configuration overrides. */
  constructor(options: BlobObjectStoreOptions = {}) {
    this.#logger = options.logger ?? silentLogger;
    this.#configureOptions = options.configure ?? {};
    this.#lock = new BlobObjectLock({
      settings: () => this.#ready(),
      blob: blockBlob,
      checkRef,
      call: (settings, signal, what, call) => this.#call(settings, signal, what, call),
    });
    this.objectLock = this.#lock;
    this.directTransfer = new BlobDirectTransfer({
      logger: this.#logger,
      settings: () => this.#ready(),
      planRead: async (_settings, input, callOptions) => {
        checkRef(input);
        checkRange(input.range);
        return this.#readTarget(input, callOptions);
      },
      checkPut: async (settings, input, callOptions) => {
        checkRef(input);
        const blockSize = blockSizeFor(settings.blockSize, input.size, input);
        await this.#checkContainer(settings, input.bucket, callOptions.signal);
        // Azure would keep a protected version aside and accept the overwrite: refuse it (clause 5.9.7).
        await this.#lock.checkWritable(settings, input, false, "overwrite", callOptions.signal);
        return blockSize;
      },
      blob: blockBlob,
      blobUrl,
      sas: (settings, ref, permissions, startsOn, expiresOn, signal) => this.#blobSas(settings, ref, permissions, startsOn, expiresOn, signal),
      encodeMetadata,
      call: (settings, signal, what, call) => this.#call(settings, signal, what, call),
    });
  }

  /** Validates the configuration and builds the Blob client; see the package README for the keys. */
  async init(config: PluginConfig, options: CallOptions = {}): Promise<void> {
    this.#settings = await configureBlobStore(config, { ...this.#configureOptions, logger: this.#logger, signal: options.signal });
    this.#logger.info({ config: redactConfig(config, BLOB_CONFIG_KEYS), auth: this.#settings.auth, endpoint: this.#settings.endpoint, endpointSource: this.#settings.endpointSource }, "initialised");
  }

  /** Closes the pooled connections. */
  close(): void {
    this.#settings?.agents.destroy();
    this.#settings?.armHttpClient.destroy();
    this.#settings = undefined;
  }

  #ready(): BlobStoreSettings {
    if (this.#settings === undefined) {
      throw new StowageError(Code.FailedPrecondition, "the Azure Blob object store is not initialised; call init first", { reason: Reason.NotInitialized });
    }
    return this.#settings;
  }

  /**
   * Runs one service call under the caller's signal and `requestTimeout`: a timed-out call
   * fails with `UNAVAILABLE`/`BACKEND_UNAVAILABLE`, a cancelled one with the caller's reason.
   */
  #call<T>(settings: BlobStoreSettings, signal: AbortSignal | undefined, what: string, call: (abortSignal: AbortSignal) => Promise<T>): Promise<T> {
    return withRequestTimeout(signal, settings.timeouts.requestTimeoutMs, what, call);
  }

  /** Streams the body into the blob; see the class description. */
  async putObject(input: PutObjectInput, options: CallOptions = {}): Promise<PutObjectResult> {
    const settings = this.#ready();
    checkRef(input);
    options.signal?.throwIfAborted();
    const blockSize = blockSizeFor(settings.blockSize, input.size, input);
    // Protection: the container must hold it (clause 5.9.12), and a protected blob is not replaced
    // (clause 5.9.7; Azure would keep it aside as a previous version and accept the put).
    const asked = asksProtection(input.protection);
    checkRetention(input.protection?.retention);
    if (asked) await this.#lock.requireLockable(settings, input.bucket, options.signal);
    await this.#lock.checkWritable(settings, input, input.bypassGovernance === true, "overwrite", options.signal);
    const protection = uploadProtection(input.protection);
    const blob = blockBlob(settings, input.bucket, input.key);
    const headers = input.contentType === undefined || input.contentType === "" ? {} : { blobContentType: input.contentType };
    const metadata = encodeMetadata(input.metadata ?? {});
    // Aborted when the caller cancels or a staged block fails: stops the other stagings and the body.
    const upload = new AbortController();
    const onCallerAbort = (): void => {
      upload.abort(options.signal?.reason);
    };
    options.signal?.addEventListener("abort", onCallerAbort, { once: true });
    const context = { operation: "put blob", bucket: input.bucket, key: input.key } as const;
    const nonce = randomBytes(8).toString("hex");
    const blockIds: string[] = [];
    const inFlight = new Set<Promise<void>>();
    const pool: Buffer[] = [];
    let failure: StowageError | undefined;
    const hash = input.sha256 === undefined ? undefined : createHash("sha256");
    let bytes = 0;

    const stage = async (buffer: Buffer, length: number): Promise<void> => {
      while (inFlight.size >= settings.uploadConcurrency) await Promise.race(inFlight);
      if (failure !== undefined) throw failure;
      if (blockIds.length >= MAX_BLOCKS) {
        throw new StowageError(
          Code.ResourceExhausted,
          `put of ${JSON.stringify(input.key)} needs more than ${MAX_BLOCKS} blocks of ${blockSize} bytes; raise blockSize (objects are limited to blockSize × ${MAX_BLOCKS}) or announce the size`,
          { metadata: { bucket: input.bucket, key: input.key } },
        );
      }
      // Fixed-width IDs (Azure needs one length per blob); the nonce keeps concurrent puts apart.
      const id = Buffer.from(`${nonce}-${String(blockIds.length).padStart(8, "0")}`).toString("base64");
      blockIds.push(id);
      const task = this.#call(settings, upload.signal, "stage block", (abortSignal) => blob.stageBlock(id, buffer.subarray(0, length), length, { abortSignal }))
        .then(
          () => {
            pool.push(buffer);
          },
          (error: unknown) => {
            failure ??= toStowageError(error, context);
            upload.abort(failure);
          },
        )
        .finally(() => inFlight.delete(task));
      inFlight.add(task);
    };

    try {
      let current: Buffer | undefined;
      let filled = 0;
      for await (const chunk of iterateUntilAborted(input.body, upload.signal)) {
        if (failure !== undefined) throw failure;
        bytes += chunk.byteLength;
        if (input.size !== undefined && bytes > input.size) throw integrityError(input, `the body is longer than the announced ${input.size} bytes`);
        hash?.update(chunk);
        let offset = 0;
        while (offset < chunk.byteLength) {
          if (current !== undefined && filled === blockSize) {
            // More data follows a full block: stage it (this waits while uploadConcurrency blocks are in flight).
            await stage(current, filled);
            current = undefined;
            filled = 0;
          }
          current ??= pool.pop() ?? Buffer.allocUnsafe(blockSize);
          const n = Math.min(blockSize - filled, chunk.byteLength - offset);
          current.set(chunk.subarray(offset, offset + n), filled);
          filled += n;
          offset += n;
        }
      }
      if (input.size !== undefined && bytes !== input.size) throw integrityError(input, `the body has ${bytes} bytes, not the announced ${input.size}`);
      let sha256: Uint8Array | undefined;
      if (hash !== undefined && input.sha256 !== undefined) {
        const actual = hash.digest();
        if (actual.length !== input.sha256.length || !timingSafeEqual(actual, input.sha256)) throw integrityError(input, "the body's SHA-256 does not match the announced one");
        sha256 = new Uint8Array(actual);
      }
      let etag: string | undefined;
      if (blockIds.length === 0) {
        // The whole body fits one block: a single Put Blob.
        const body = current === undefined ? Buffer.alloc(0) : current.subarray(0, filled);
        try {
          etag = (await this.#call(settings, upload.signal, "put blob", (abortSignal) => blob.upload(body, body.length, { blobHTTPHeaders: headers, metadata, ...protection, abortSignal }))).etag;
        } catch (error) {
          throw await this.#lock.refusal(settings, input, "overwrite", error, asked, options.signal);
        }
      } else {
        if (current !== undefined && filled > 0) await stage(current, filled);
        await Promise.all(inFlight);
        if (failure !== undefined) throw failure;
        try {
          etag = (await this.#call(settings, upload.signal, "commit block list", (abortSignal) => blob.commitBlockList(blockIds, { blobHTTPHeaders: headers, metadata, ...protection, abortSignal }))).etag;
        } catch (error) {
          throw await this.#lock.refusal(settings, input, "overwrite", error, asked, options.signal);
        }
      }
      return { size: bytes, etag: etag ?? "", ...(sha256 === undefined ? {} : { sha256 }) };
    } catch (error) {
      if (!upload.signal.aborted) upload.abort(error);
      await Promise.allSettled(inFlight);
      if (options.signal?.aborted === true) throw abortedError(options.signal, "put blob", error);
      throw toStowageError(failure ?? error, context);
    } finally {
      options.signal?.removeEventListener("abort", onCallerAbort);
    }
  }

  /** Opens the blob, or the requested part of it, for reading. */
  async getObject(input: GetObjectInput, options: CallOptions = {}): Promise<GetObjectOutput> {
    const settings = this.#ready();
    checkRef(input);
    const range = input.range;
    checkRange(range);
    if (range?.length === 0) return this.#emptyRead(input, range.offset, options);
    const blob = blockBlob(settings, input.bucket, input.key);
    const signal = options.signal;
    // The request timeout covers the wait for the response; the body is then the caller's to read,
    // guarded against stalls. The request's own signal stays with the download (the SDK re-reads
    // through it), so it is stopped when the body is given up.
    const deadline = requestDeadline(signal, settings.timeouts.requestTimeoutMs, "get blob");
    const call = new AbortController();
    const onDeadline = (): void => {
      call.abort(deadline.signal.reason);
    };
    deadline.signal.addEventListener("abort", onDeadline, { once: true });
    let out: BlobDownloadResponseParsed;
    try {
      out = await blob.download(range?.offset ?? 0, range?.length, { abortSignal: call.signal, maxRetryRequests: 3 });
    } catch (error) {
      if (range !== undefined && (azureErrorCode(error) === "InvalidRange" || azureHttpStatus(error) === 416) && !call.signal.aborted) {
        return await this.#emptyRead(input, range.offset, options);
      }
      throw toStowageError(error, { operation: "get blob", bucket: input.bucket, key: input.key, signal: call.signal });
    } finally {
      deadline.signal.removeEventListener("abort", onDeadline);
      deadline.clear();
    }
    const body = out.readableStreamBody;
    if (!(body instanceof Readable)) throw new StowageError(Code.Internal, "the Azure client returned a body that is not a Node stream");
    // Errors after the first byte (a stall, the SDK's re-reads exhausted, a reset, the caller's
    // cancellation) reach the reader as StowageErrors.
    const context = { operation: "read blob body", bucket: input.bucket, key: input.key };
    guardBody(body, {
      idleTimeoutMs: settings.timeouts.idleTimeoutMs,
      what: `read blob body (container ${JSON.stringify(input.bucket)}, blob ${JSON.stringify(input.key)})`,
      signal,
      mapError: (failure) => bodyError(failure, signal, context),
      metadata: { bucket: input.bucket, key: input.key },
    });
    // A body given up (read, failed, cancelled) stops the SDK's re-reads too.
    body.once("close", () => {
      call.abort();
    });
    const contentLength = out.contentLength ?? 0;
    const total = contentRangeTotal(out.contentRange) ?? contentLength;
    return { object: objectInfo(input.key, out, total), contentLength, offset: range?.offset ?? 0, body };
  }

  /** A read of zero bytes at `offset`: valid when `offset` is at most the size. */
  async #emptyRead(input: GetObjectInput, offset: number, options: CallOptions): Promise<GetObjectOutput> {
    const target = await this.#readTarget({ ...input, range: { offset, length: 0 } }, options);
    return { object: target.object, contentLength: 0, offset, body: Readable.from([]) };
  }

  /**
   * What a read of `input` returns, from the blob's properties: `OBJECT_NOT_FOUND` for a missing
   * blob, `INVALID_RANGE` for an offset past its end, a range shortened at the end (clause 5.3).
   * The reference and the range must have been checked.
   */
  async #readTarget(input: GetObjectInput, options: CallOptions): Promise<ReadTarget> {
    const info = await this.headObject(input, options);
    if (info === undefined) throw objectNotFound(input.bucket, input.key);
    const offset = input.range?.offset ?? 0;
    if (offset > info.size) {
      throw new StowageError(Code.OutOfRange, `range offset ${offset} is past the end of ${JSON.stringify(input.key)} (${info.size} bytes)`, {
        reason: Reason.InvalidRange,
        metadata: { bucket: input.bucket, key: input.key },
      });
    }
    const rest = info.size - offset;
    const length = input.range?.length;
    return { object: info, offset, contentLength: length === undefined ? rest : Math.min(length, rest) };
  }

  /** The blob's attributes, or `undefined` when it does not exist. */
  async headObject(input: ObjectRef, options: CallOptions = {}): Promise<ObjectInfo | undefined> {
    const settings = this.#ready();
    checkRef(input);
    try {
      const out = await this.#call(settings, options.signal, "head blob", (abortSignal) => blockBlob(settings, input.bucket, input.key).getProperties({ abortSignal }));
      return objectInfo(input.key, out, out.contentLength ?? 0);
    } catch (error) {
      const code = azureErrorCode(error);
      if (code === "BlobNotFound") return undefined;
      if (code === "ContainerNotFound") throw bucketNotFound(input.bucket);
      if (azureHttpStatus(error) === 404) {
        // No error code: ask the container.
        await this.#checkContainer(settings, input.bucket, options.signal);
        return undefined;
      }
      throw toStowageError(error, { operation: "head blob", bucket: input.bucket, key: input.key });
    }
  }

  async #checkContainer(settings: BlobStoreSettings, bucket: string, callerSignal: AbortSignal | undefined): Promise<void> {
    try {
      await this.#call(settings, callerSignal, "get container properties", (abortSignal) => settings.service.getContainerClient(bucket).getProperties({ abortSignal }));
    } catch (error) {
      if (azureHttpStatus(error) === 404) throw bucketNotFound(bucket);
      throw toStowageError(error, { operation: "get container properties", bucket });
    }
  }

  /**
   * Lists blobs page by page (flat, or by hierarchy with a delimiter). Page tokens wrap Azure's
   * continuation marker with the prefix and delimiter they belong to, so a token from another
   * listing fails with `INVALID_PAGE_TOKEN`.
   */
  async *listObjects(input: ListObjectsInput, options: CallOptions = {}): AsyncIterable<ListObjectsPage> {
    const settings = this.#ready();
    if (input.bucket === "") throw invalidName("container names must not be empty");
    const pageSize = input.pageSize ?? MAX_LIST_PAGE_SIZE;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_LIST_PAGE_SIZE) {
      throw new StowageError(Code.InvalidArgument, `pageSize must be 1 to ${MAX_LIST_PAGE_SIZE}, got ${pageSize}`);
    }
    const prefix = input.prefix ?? "";
    const delimiter = input.delimiter ?? "";
    let marker = input.pageToken === undefined || input.pageToken === "" ? undefined : decodePageToken(input.pageToken, prefix, delimiter);
    const container: ContainerClient = settings.service.getContainerClient(input.bucket);
    let pages = 0;
    for (;;) {
      let page: ListObjectsPage;
      let continuation: string;
      try {
        const pageOptions = { maxPageSize: pageSize, ...(marker === undefined ? {} : { continuationToken: marker }) };
        const listOptions = (abortSignal: AbortSignal) => ({ abortSignal, ...(prefix === "" ? {} : { prefix }) });
        if (delimiter === "") {
          const result = await this.#call(settings, options.signal, "list blobs", (abortSignal) => container.listBlobsFlat(listOptions(abortSignal)).byPage(pageOptions).next());
          const value = result.done === true ? undefined : result.value;
          continuation = value?.continuationToken ?? "";
          page = { objects: (value?.segment.blobItems ?? []).map(listedInfo), commonPrefixes: [], nextPageToken: "" };
        } else {
          const result = await this.#call(settings, options.signal, "list blobs", (abortSignal) =>
            container.listBlobsByHierarchy(delimiter, listOptions(abortSignal)).byPage(pageOptions).next(),
          );
          const value = result.done === true ? undefined : result.value;
          continuation = value?.continuationToken ?? "";
          page = {
            objects: (value?.segment.blobItems ?? []).map(listedInfo),
            commonPrefixes: (value?.segment.blobPrefixes ?? []).map((p) => p.name),
            nextPageToken: "",
          };
        }
      } catch (error) {
        if (azureErrorCode(error) === "ContainerNotFound") throw bucketNotFound(input.bucket);
        if (marker !== undefined && (azureErrorCode(error) === "OutOfRangeInput" || azureErrorCode(error) === "InvalidQueryParameterValue")) {
          throw new StowageError(Code.InvalidArgument, "the page token is not valid for this listing; start the listing again without a token", {
            reason: Reason.InvalidPageToken,
            cause: error,
          });
        }
        throw toStowageError(error, { operation: "list blobs", bucket: input.bucket });
      }
      const next = continuation === "" ? "" : encodePageToken(continuation, prefix, delimiter);
      pages += 1;
      yield { ...page, nextPageToken: next };
      if (next === "" || (input.maxPages !== undefined && pages >= input.maxPages)) return;
      marker = continuation;
    }
  }

  /**
   * Deletes the blob and its snapshots; a missing blob is success. A protected blob is refused
   * (`OBJECT_LOCKED`), or, under a governance retention only and with `bypassGovernance`, deleted
   * with its policy and its version (clause 5.9.6).
   */
  async deleteObject(input: DeleteObjectInput, options: CallOptions = {}): Promise<void> {
    const settings = this.#ready();
    checkRef(input);
    const bypass = input.bypassGovernance === true;
    const current = await this.#lock.checkWritable(settings, input, bypass, "delete", options.signal);
    if (current === undefined && (await this.#lock.lockable(settings, input.bucket, options.signal)) === true) return;
    if (bypass && current !== undefined && onlyGovernance(current.protection)) {
      await this.#lock.bypassDelete(settings, input, current, options.signal);
      return;
    }
    try {
      await this.#call(settings, options.signal, "delete blob", (abortSignal) => blockBlob(settings, input.bucket, input.key).delete({ deleteSnapshots: "include", abortSignal }));
    } catch (error) {
      const code = azureErrorCode(error);
      if (code === "BlobNotFound") return;
      if (code === "ContainerNotFound") throw bucketNotFound(input.bucket);
      throw await this.#lock.refusal(settings, input, "delete", error, false, options.signal);
    }
  }

  /**
   * A read-only SAS URL (HTTPS-only when the endpoint is HTTPS), valid from 10 minutes ago (clock
   * skew) until now + `ttlSeconds` (at most 7 days): a service SAS under shared-key auth, a user
   * delegation SAS under Entra ID auth. SAS-token auth cannot sign; PUT is not offered.
   */
  async createSignedUrl(input: CreateSignedUrlInput, options: CallOptions = {}): Promise<SignedUrl> {
    const settings = this.#ready();
    checkRef(input);
    options.signal?.throwIfAborted();
    if (!Number.isFinite(input.ttlSeconds) || input.ttlSeconds < 1) {
      throw new StowageError(Code.InvalidArgument, `ttlSeconds must be at least 1, got ${input.ttlSeconds}`);
    }
    if ((input.method ?? "GET") !== "GET") {
      throw new StowageError(Code.Unimplemented, "signed PUT URLs are not offered: Azure refuses a plain HTTP PUT to a SAS URL without an x-ms-blob-type header", {
        reason: Reason.Unsupported,
      });
    }
    const now = Date.now();
    const ttl = Math.min(Math.floor(input.ttlSeconds), MAX_SIGNED_URL_TTL_SECONDS);
    // SAS times have whole seconds: round down, so the URL never outlives expiresAt.
    const expiresOn = new Date(Math.floor((now + ttl * 1000) / 1000) * 1000);
    const startsOn = new Date(now - CLOCK_SKEW_MS);
    const query = await this.#blobSas(settings, input, "r", startsOn, expiresOn, options.signal);
    return { url: `${blobUrl(settings, input.bucket, input.key)}?${query}`, expiresAt: expiresOn };
  }

  /**
   * The query string of a SAS for one blob with `permissions`, valid from `startsOn` to
   * `expiresOn` (HTTPS-only when the endpoint is HTTPS): a service SAS signed with the account
   * key, or a user delegation SAS under Entra ID auth. SAS-token auth cannot sign:
   * `FAILED_PRECONDITION`/`UNSUPPORTED`.
   */
  async #blobSas(settings: BlobStoreSettings, ref: ObjectRef, permissions: string, startsOn: Date, expiresOn: Date, signal: AbortSignal | undefined): Promise<string> {
    const sasOptions = {
      containerName: ref.bucket,
      blobName: ref.key,
      permissions: BlobSASPermissions.parse(permissions),
      startsOn,
      expiresOn,
      protocol: settings.endpoint.startsWith("https:") ? SASProtocol.Https : SASProtocol.HttpsAndHttp,
      version: SAS_VERSION,
    };
    if (settings.sharedKey !== undefined) return generateBlobSASQueryParameters(sasOptions, settings.sharedKey).toString();
    if (settings.auth === "entra-id") {
      try {
        const key = await this.#call(settings, signal, "get user delegation key", (abortSignal) => this.#userDelegationKey(settings.service, startsOn, expiresOn, abortSignal));
        return generateBlobSASQueryParameters(sasOptions, key, settings.accountName).toString();
      } catch (error) {
        throw toStowageError(error, { operation: "get user delegation key", bucket: ref.bucket, key: ref.key });
      }
    }
    throw new StowageError(Code.FailedPrecondition, "signed URLs need the account key (storageAccountKeyEnvVar) or Entra ID (useAAD=true); a SAS token cannot sign new URLs", {
      reason: Reason.Unsupported,
    });
  }

  /**
   * A user delegation key valid from `startsOn` to at least `expiresOn`: the cached one when it
   * covers that span, else a new one from the service, asked to last at least an hour (at most the
   * 7 days Azure allows) so that the next URLs reuse it.
   */
  async #userDelegationKey(service: BlobServiceClient, startsOn: Date, expiresOn: Date, signal: AbortSignal): Promise<UserDelegationKey> {
    const cached = this.#delegation;
    if (cached?.service === service && cached.startsOn <= startsOn && cached.expiresOn >= expiresOn) return cached.key;
    const now = Date.now();
    const keyExpiresOn = new Date(Math.max(expiresOn.getTime(), Math.min(now + 3600_000, now + MAX_SIGNED_URL_TTL_SECONDS * 1000)));
    const key = await service.getUserDelegationKey(startsOn, keyExpiresOn, { abortSignal: signal });
    this.#delegation = { service, key, startsOn, expiresOn: keyExpiresOn };
    return key;
  }
}

/** The URL of one blob, without a query string (see {@link blockBlob} for names with dot segments). */
function blobUrl(settings: BlobStoreSettings, bucket: string, key: string): string {
  const url = blockBlob(settings, bucket, key).url;
  return url.split("?")[0] ?? url;
}

/**
 * The client of one blob. A name with dot segments (`a/./b`, `a/../b`) travels with its slashes
 * percent-encoded, as one URL path segment: URL normalisation (WHATWG URL treats `.`, `..`, `%2E`
 * and `%2E%2E` segments alike) would otherwise turn it into another blob's name. The service
 * decodes `%2F` back to `/`.
 */
function blockBlob(settings: BlobStoreSettings, bucket: string, key: string): BlockBlobClient {
  const container = settings.service.getContainerClient(bucket);
  const client = container.getBlockBlobClient(key);
  if (!key.split("/").some((segment) => segment === "." || segment === "..")) return client;
  const [base, query] = container.url.split("?");
  const url = `${base ?? ""}/${encodeURIComponent(key)}${query === undefined ? "" : `?${query}`}`;
  // Same class, pipeline and credential; only the URL differs.
  return new (client.constructor as new (url: string, pipeline: unknown) => BlockBlobClient)(url, (client as unknown as { pipeline: unknown }).pipeline);
}

/**
 * A StowageError for a download body that failed after its first byte. The SDK reports a connection
 * the server cut as an `AbortError` and exhausted re-reads as "Data corruption failure": both are
 * `UNAVAILABLE` unless the call's own signal fired.
 */
function bodyError(failure: Error, signal: AbortSignal | undefined, context: { operation: string; bucket: string; key: string }): StowageError {
  if (signal?.aborted === true || failure instanceof StowageError) return toStowageError(failure, { ...context, signal });
  if (isAbortError(failure) || failure.message.startsWith("Data corruption failure")) {
    return new StowageError(Code.Unavailable, `${context.operation} (container ${JSON.stringify(context.bucket)}, blob ${JSON.stringify(context.key)}) failed: the connection ended before the body was complete`, {
      reason: Reason.BackendUnavailable,
      metadata: { bucket: context.bucket, key: context.key },
      cause: failure,
    });
  }
  return toStowageError(failure, context);
}

function objectInfo(key: string, out: BlobDownloadResponseParsed | BlobGetPropertiesResponse, size: number): ObjectInfo {
  const protection = protectionOf(out);
  return {
    ...(protection === undefined ? {} : { protection }),
    key,
    size,
    etag: out.etag ?? "",
    lastModified: out.lastModified,
    contentType: out.contentType ?? "",
    metadata: decodeMetadata(out.metadata),
  };
}

function listedInfo(item: { name: string; properties: { contentLength?: number; etag?: string; lastModified?: Date; contentType?: string } }): ObjectInfo {
  return {
    key: item.name,
    size: item.properties.contentLength ?? 0,
    etag: item.properties.etag ?? "",
    lastModified: item.properties.lastModified,
    contentType: item.properties.contentType ?? "",
    metadata: {},
  };
}

/**
 * Azure metadata names must be C# identifiers and are case-insensitive; values travel as HTTP
 * headers. Names of lower-case letters, digits and `_` (not starting with a digit or `h_`) are
 * stored as they are; other names are stored as `h_` + the hex of their UTF-8 bytes. Values that
 * are not printable ASCII are stored RFC 2047-encoded (`=?UTF-8?B?…?=`).
 */
export function encodeMetadata(metadata: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) {
    const name = /^[a-z_][a-z0-9_]*$/.test(k) && !k.startsWith("h_") ? k : `h_${Buffer.from(k).toString("hex")}`;
    out[name] = encodeHeaderValue(v);
  }
  return out;
}

/** Reverses {@link encodeMetadata}. */
export function decodeMetadata(metadata: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata ?? {})) {
    const hex = /^h_((?:[0-9a-f]{2})+)$/i.exec(k);
    const name = hex === null ? k : Buffer.from(hex[1] ?? "", "hex").toString("utf8");
    out[name] = decodeHeaderValue(v);
  }
  return out;
}

/** What a read returns: the object's attributes and the bytes `[offset, offset + contentLength)`. */
interface ReadTarget {
  readonly object: ObjectInfo;
  readonly offset: number;
  readonly contentLength: number;
}

/** Refuses a negative or fractional range offset or length (clause 5.3.11). */
function checkRange(range: ByteRange | undefined): void {
  if (range !== undefined && (!Number.isSafeInteger(range.offset) || range.offset < 0 || (range.length !== undefined && (!Number.isSafeInteger(range.length) || range.length < 0)))) {
    throw new StowageError(Code.InvalidArgument, "range offset and length must be non-negative integers", { reason: Reason.InvalidRange });
  }
}

/**
 * The block size of a put of `size` bytes: the configured one, or, for a known size that needs more
 * than Azure's 50,000 blocks of it, blocks large enough to stay within them. A size that is not a
 * non-negative integer, or beyond 50,000 blocks of 4000 MiB, fails with `INVALID_ARGUMENT`.
 */
function blockSizeFor(configured: number, size: number | undefined, ref: ObjectRef): number {
  if (size === undefined) return configured;
  if (!Number.isSafeInteger(size) || size < 0) throw new StowageError(Code.InvalidArgument, `size must be a non-negative integer, got ${size}`);
  const blockSize = Math.max(configured, Math.ceil(size / MAX_BLOCKS));
  if (blockSize > MAX_AZURE_BLOCK_SIZE) {
    throw new StowageError(Code.InvalidArgument, `an object of ${size} bytes exceeds Azure's block blob limit of ${MAX_BLOCKS} blocks of 4000 MiB`, {
      metadata: { bucket: ref.bucket, key: ref.key },
    });
  }
  return blockSize;
}

function checkRef(ref: ObjectRef): void {
  if (ref.bucket === "") throw invalidName("container names must not be empty");
  if (ref.key === "") throw invalidName("object keys must not be empty");
  if (Buffer.byteLength(ref.key) > 1024) throw invalidName(`object key ${JSON.stringify(ref.key.slice(0, 64))}… is longer than 1024 bytes`);
}

function invalidName(message: string): StowageError {
  return new StowageError(Code.InvalidArgument, message, { reason: Reason.InvalidName });
}

function integrityError(ref: ObjectRef, why: string): StowageError {
  return new StowageError(Code.DataLoss, `put of ${JSON.stringify(ref.key)} in container ${JSON.stringify(ref.bucket)} stored nothing: ${why}`, {
    reason: Reason.IntegrityMismatch,
    metadata: { bucket: ref.bucket, key: ref.key },
  });
}
