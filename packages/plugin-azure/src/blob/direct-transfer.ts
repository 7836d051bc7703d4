/**
 * Direct transfer (contract 5.8) for the Blob ObjectStore: the plugin signs Blob Storage requests
 * with short-lived SAS tokens and the host moves the bodies itself.
 *
 * - `planGet`: a read-only SAS GET of the blob, pinned to the version it describes with `if-match`.
 * - `beginPut`: an upload of parts of `blockSize` bytes with a Content-MD5 each. A body of one part
 *   is one Put Blob request (stored by that request, clause 5.8.10's exception); more parts are
 *   Put Block requests, committed by `completePut` with Put Block List once every block is there
 *   with its size.
 * - `abortPut` deletes nothing: uncommitted blocks are invisible, and Azure discards them after at
 *   most 7 days (or when the blob is next committed).
 *
 * Signed URLs and headers are credentials: nothing here logs them.
 *
 * @packageDocumentation
 */
import type { BlobGetPropertiesResponse, BlockBlobClient } from "@azure/storage-blob";
import {
  Code,
  Reason,
  StowageError,
  type BeginPutInput,
  type CallOptions,
  type CompletePutInput,
  type DirectTransfer,
  type GetObjectInput,
  type GetPlan,
  type HttpRequestSpec,
  type Logger,
  type ObjectInfo,
  type ObjectRef,
  type PutObjectResult,
  type PutPlan,
  type SignedPart,
  type SignPartInput,
  type TransferDeclined,
} from "@stowage/sdk";
import { randomBytes, timingSafeEqual } from "node:crypto";
import { azureErrorCode, azureHttpStatus, toStowageError } from "../shared/errors.js";
import type { BlobStoreSettings } from "./config.js";

/**
 * How long plans and signed requests stay valid: 15 minutes, the most clause 5.8.3 allows (a read
 * is planned again only once when its plan expires, and an upload's parts are signed only until
 * its plan expires).
 */
export const DIRECT_TRANSFER_TTL_MS = 15 * 60_000;
/** How long an upload may take from BeginPut to CompletePut (its parts are signed one by one). */
export const UPLOAD_WINDOW_MS = 24 * 60 * 60_000;
/** The `x-ms-version` of signed requests: the SAS version, which Azure and Azurite know. */
const REQUEST_VERSION = "2024-11-04";
/** Signed requests are valid from this long ago, for clock skew between the plugin and Azure. */
const CLOCK_SKEW_MS = 10 * 60_000;
/** Azure's limit on a blob's metadata, names and values together. */
const MAX_METADATA_BYTES = 8 * 1024;

/** The reason every plan is declined with `directTransfer: false`. */
export const DECLINED_BY_CONFIG = "the configuration sets directTransfer: false";

/** What {@link BlobDirectTransfer} needs from its store. */
export interface DirectTransferBackend {
  /** Where to log (never URLs or headers). */
  readonly logger: Logger;
  /** The store's settings; `NOT_INITIALIZED` before `init`. */
  settings(): BlobStoreSettings;
  /** The checks of `getObject` (name, range, existence, offset) and what the read returns. */
  planRead(settings: BlobStoreSettings, input: GetObjectInput, options: CallOptions): Promise<{ object: ObjectInfo; offset: number; contentLength: number }>;
  /** The checks of `putObject`'s header (name, size, container) and the block size of the body. */
  checkPut(settings: BlobStoreSettings, input: BeginPutInput, options: CallOptions): Promise<number>;
  /** The client of one blob (keys with dot segments handled). */
  blob(settings: BlobStoreSettings, bucket: string, key: string): BlockBlobClient;
  /** The blob's URL without a query string. */
  blobUrl(settings: BlobStoreSettings, bucket: string, key: string): string;
  /** A SAS query string for one blob; `FAILED_PRECONDITION` when the auth cannot sign. */
  sas(settings: BlobStoreSettings, ref: ObjectRef, permissions: string, startsOn: Date, expiresOn: Date, signal: AbortSignal | undefined): Promise<string>;
  /** Metadata as Azure stores it, as `putObject` stores it. */
  encodeMetadata(metadata: Readonly<Record<string, string>>): Record<string, string>;
  /** One service call under the caller's signal and `requestTimeout`. */
  call<T>(settings: BlobStoreSettings, signal: AbortSignal | undefined, what: string, call: (abortSignal: AbortSignal) => Promise<T>): Promise<T>;
}

/** What the plugin's own upload ID carries (the SDK seals it under an HMAC before a host sees it). */
interface UploadState {
  /** Random, 16 hex digits: the prefix of the upload's block IDs. */
  readonly nonce: string;
  /** Body size. */
  readonly size: number;
  /** Part size. */
  readonly partSize: number;
  /** Content type; "" for Azure's default. */
  readonly contentType: string;
  /** Metadata as stored (see `encodeMetadata`). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Hex SHA-256 announced by `beginPut`; "" when none. */
  readonly sha256: string;
}

/**
 * The Blob ObjectStore's {@link DirectTransfer}: SAS-signed requests (a service SAS with the
 * account key, a user delegation SAS under Entra ID); SAS-token auth and `directTransfer: false`
 * decline every plan.
 */
export class BlobDirectTransfer implements DirectTransfer {
  readonly #backend: DirectTransferBackend;

  /** @param backend - The store's internals this needs. */
  constructor(backend: DirectTransferBackend) {
    this.#backend = backend;
  }

  /**
   * Plans a read with `getObject`'s checks and errors: the object's attributes, the bytes to read
   * and a GET with a read-only SAS and `if-match: <etag>`, so that the store answers 412 once the
   * blob is replaced (clause 5.8.5).
   */
  async planGet(input: GetObjectInput, options: CallOptions = {}): Promise<GetPlan | TransferDeclined> {
    const settings = this.#backend.settings();
    const declined = declineReason(settings);
    if (declined !== undefined) return this.#decline(input, declined);
    const target = await this.#backend.planRead(settings, input, options);
    const { startsOn, expiresOn } = validity();
    if (target.contentLength === 0) return { ...target, expiresAt: expiresOn };
    if (target.object.etag === "") return this.#decline(input, "the blob has no entity tag to pin its version with");
    const query = await this.#signOrDecline(settings, input, "r", startsOn, expiresOn, options.signal);
    if (typeof query !== "string") return query;
    const request: HttpRequestSpec = {
      method: "GET",
      url: `${this.#backend.blobUrl(settings, input.bucket, input.key)}?${query}`,
      headers: { "if-match": target.object.etag, "x-ms-version": REQUEST_VERSION },
    };
    return { ...target, request, expiresAt: expiresOn };
  }

  /**
   * Begins an upload with the checks and errors of `putObject`'s header: parts of the block size
   * (`blockSize`, grown for bodies of more than 50,000 blocks), each with a Content-MD5 that Azure
   * verifies, sent in any order and number at once.
   */
  async beginPut(input: BeginPutInput, options: CallOptions = {}): Promise<PutPlan | TransferDeclined> {
    const settings = this.#backend.settings();
    const declined = declineReason(settings);
    if (declined !== undefined) return this.#decline(input, declined);
    if (input.sha256 !== undefined && input.sha256.length !== 32) {
      throw new StowageError(Code.InvalidArgument, `sha256 must be exactly 32 bytes, got ${input.sha256.length} (contract 5.2.7)`);
    }
    const partSize = await this.#backend.checkPut(settings, input, options);
    const contentType = input.contentType ?? "";
    if (!/^[\x20-\x7e]*$/.test(contentType)) return this.#decline(input, "the content type is not printable ASCII, so it cannot travel in a header the host sends");
    const metadata = this.#backend.encodeMetadata(input.metadata ?? {});
    const metadataBytes = Object.entries(metadata).reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
    if (metadataBytes > MAX_METADATA_BYTES) {
      throw new StowageError(Code.InvalidArgument, `the metadata takes ${metadataBytes} bytes as stored; Azure allows ${MAX_METADATA_BYTES}`, {
        metadata: { bucket: input.bucket, key: input.key },
      });
    }
    const { startsOn, expiresOn } = validity();
    // Under Entra ID, fetch (and cache) the user delegation key now: SignPart cannot decline.
    const query = await this.#signOrDecline(settings, input, "w", startsOn, expiresOn, options.signal);
    if (typeof query !== "string") return query;
    const state: UploadState = {
      nonce: randomBytes(8).toString("hex"),
      size: input.size,
      partSize,
      contentType,
      metadata,
      sha256: input.sha256 === undefined ? "" : Buffer.from(input.sha256).toString("hex"),
    };
    // The upload's window, not a request's: Azure keeps uncommitted blocks for a week.
    return { uploadId: encodeUploadId(state), partSize, partChecksum: "md5", maxParallelParts: 0, expiresAt: new Date(Date.now() + UPLOAD_WINDOW_MS) };
  }

  /**
   * Signs the request of one part, with a write-only SAS: a Put Blob (with the content type and
   * metadata) when the body is one part, a Put Block of a fixed-length block ID otherwise; both
   * with the part's Content-MD5, so Azure stores only bytes of that checksum (and size).
   */
  async signPart(input: SignPartInput, options: CallOptions = {}): Promise<SignedPart> {
    const settings = this.#backend.settings();
    const state = decodeUploadId(input.uploadId);
    const parts = partCount(state);
    const expectedSize = input.partNumber < parts ? state.partSize : state.size - (parts - 1) * state.partSize;
    if (!Number.isInteger(input.partNumber) || input.partNumber < 1 || input.partNumber > parts || input.size !== expectedSize || input.checksum.length !== 16) {
      throw new StowageError(Code.InvalidArgument, `part ${input.partNumber} (${input.size} bytes, a ${input.checksum.length}-byte checksum) is not a part of this upload (contract 5.8.9)`);
    }
    const md5 = Buffer.from(input.checksum).toString("base64");
    const { startsOn, expiresOn } = validity();
    const query = await this.#backend.sas(settings, input, "w", startsOn, expiresOn, options.signal);
    const base = this.#backend.blobUrl(settings, input.bucket, input.key);
    if (parts === 1) {
      const headers: Record<string, string> = { "x-ms-version": REQUEST_VERSION, "x-ms-blob-type": "BlockBlob", "content-md5": md5 };
      if (state.contentType !== "") headers["x-ms-blob-content-type"] = state.contentType;
      for (const [name, value] of Object.entries(state.metadata)) headers[`x-ms-meta-${name}`] = value;
      return { request: { method: "PUT", url: `${base}?${query}`, headers }, expiresAt: expiresOn };
    }
    const blockId = encodeURIComponent(blockIdOf(state, input.partNumber));
    return {
      request: { method: "PUT", url: `${base}?comp=block&blockid=${blockId}&${query}`, headers: { "x-ms-version": REQUEST_VERSION, "content-md5": md5 } },
      expiresAt: expiresOn,
    };
  }

  /**
   * Makes the parts the object. Several parts: every block must be among the blob's uncommitted
   * blocks with its size (else `DATA_LOSS`/`INTEGRITY_MISMATCH`, nothing committed), then one Put
   * Block List commits them with the content type and metadata. One part: the blob must be the one
   * the part's Put Blob stored (its entity tag, size and Content-MD5). Either way a SHA-256 that
   * differs from `beginPut`'s fails with `DATA_LOSS` and leaves no body of this upload visible.
   */
  async completePut(input: CompletePutInput, options: CallOptions = {}): Promise<PutObjectResult> {
    const settings = this.#backend.settings();
    const state = decodeUploadId(input.uploadId);
    const blob = this.#backend.blob(settings, input.bucket, input.key);
    const context = { operation: "complete direct put", bucket: input.bucket, key: input.key } as const;
    const parts = partCount(state);
    if (input.size !== state.size || input.parts.length !== parts) {
      throw integrityError(input, `the upload began for ${state.size} bytes in ${parts} parts; the host reported ${input.size} bytes in ${input.parts.length}`);
    }
    const shaDiffers = state.sha256 !== "" && (input.sha256 === undefined || !sameBytes(Buffer.from(state.sha256, "hex"), input.sha256));
    if (parts === 1) {
      const etag = input.parts[0]?.etag ?? "";
      const checksum = input.parts[0]?.checksum ?? new Uint8Array();
      const md5 = checksum.length === 16 ? Buffer.from(checksum).toString("base64") : undefined;
      if (shaDiffers) {
        // The part's Put Blob already stored the body (clause 5.8.10): remove it, if it is still this upload's.
        await this.#deleteIfMatch(settings, blob, etag, options.signal);
        throw integrityError(input, "the body's SHA-256 differs from the one announced by BeginPut");
      }
      let stored: BlobGetPropertiesResponse;
      try {
        stored = await this.#backend.call(settings, options.signal, "get blob properties", (abortSignal) => blob.getProperties({ abortSignal }));
      } catch (error) {
        if (azureErrorCode(error) === "BlobNotFound" || (azureHttpStatus(error) === 404 && azureErrorCode(error) !== "ContainerNotFound")) {
          throw integrityError(input, "the part was not stored");
        }
        throw toStowageError(error, context);
      }
      // The part's entity tag (what its Put Blob answered) and the Content-MD5 it was signed with
      // each identify the blob that request stored; at least one must, and none may differ.
      const storedMd5 = stored.contentMD5 === undefined ? undefined : Buffer.from(stored.contentMD5).toString("base64");
      const etagKnown = etag !== "";
      const md5Known = md5 !== undefined && storedMd5 !== undefined;
      const etagOk = etagKnown && stored.etag === etag;
      const md5Ok = md5Known && storedMd5 === md5;
      if ((stored.contentLength ?? -1) !== state.size || (etagKnown && !etagOk) || (md5Known && !md5Ok) || !(etagOk || md5Ok)) {
        throw integrityError(input, "the blob under the key is not the one this upload's part stored (it was replaced, or the part was not sent)");
      }
      return { size: state.size, etag: stored.etag ?? "", sha256: input.sha256 };
    }
    if (shaDiffers) throw integrityError(input, "the body's SHA-256 differs from the one announced by BeginPut");
    const blocks = input.parts.map((_, index) => ({
      id: blockIdOf(state, index + 1),
      size: index + 1 < parts ? state.partSize : state.size - index * state.partSize,
    }));
    let uncommitted = new Map<string, number>();
    let committedIds: string[] = [];
    try {
      const list = await this.#backend.call(settings, options.signal, "get block list", (abortSignal) => blob.getBlockList("all", { abortSignal }));
      uncommitted = new Map((list.uncommittedBlocks ?? []).map((block) => [block.name, block.size]));
      committedIds = (list.committedBlocks ?? []).map((block) => `${block.name}/${block.size}`);
    } catch (error) {
      // A blob with no block at all: none of the parts arrived.
      if (!(azureErrorCode(error) === "BlobNotFound" || (azureHttpStatus(error) === 404 && azureErrorCode(error) !== "ContainerNotFound"))) {
        throw toStowageError(error, { ...context, operation: "get block list" });
      }
    }
    const missing = blocks.findIndex((block) => !uncommitted.has(block.id));
    if (missing >= 0 && committedIds.join(",") === blocks.map((block) => `${block.id}/${block.size}`).join(",")) {
      // An earlier CompletePut of this upload committed it (its answer was lost): the same result again.
      return this.#committed(settings, blob, input, state, undefined, options.signal);
    }
    if (missing >= 0) throw integrityError(input, `part ${missing + 1} is not among the blob's uncommitted blocks`);
    blocks.forEach((block, index) => {
      const size = uncommitted.get(block.id);
      if (size !== block.size) throw integrityError(input, `part ${index + 1} was stored with ${size ?? 0} bytes, not ${block.size}`);
    });
    const ids = blocks.map((block) => block.id);
    let etag: string | undefined;
    try {
      const headers = state.contentType === "" ? {} : { blobContentType: state.contentType };
      etag = (await this.#backend.call(settings, options.signal, "commit block list", (abortSignal) => blob.commitBlockList(ids, { blobHTTPHeaders: headers, metadata: { ...state.metadata }, abortSignal }))).etag;
    } catch (error) {
      if (azureErrorCode(error) === "InvalidBlockList") throw integrityError(input, "a part's block vanished before the commit");
      throw toStowageError(error, { ...context, operation: "commit block list" });
    }
    return this.#committed(settings, blob, input, state, etag, options.signal);
  }

  /**
   * The result of a committed upload. The commit is atomic and its blocks were checked; the
   * properties confirm what a reader now sees (with `etag`, the commit's, unless a later writer
   * replaced or deleted the blob since, which wins as it would over `putObject`).
   */
  async #committed(settings: BlobStoreSettings, blob: BlockBlobClient, input: CompletePutInput, state: UploadState, etag: string | undefined, signal: AbortSignal | undefined): Promise<PutObjectResult> {
    let committed: BlobGetPropertiesResponse | undefined;
    try {
      committed = await this.#backend.call(settings, signal, "get blob properties", (abortSignal) =>
        blob.getProperties({ abortSignal, ...(etag === undefined ? {} : { conditions: { ifMatch: etag } }) }),
      );
    } catch (error) {
      const status = azureHttpStatus(error);
      if (etag === undefined || (status !== 412 && status !== 404)) {
        throw toStowageError(error, { operation: "get blob properties", bucket: input.bucket, key: input.key });
      }
    }
    if (committed !== undefined && (committed.contentLength ?? -1) !== state.size) {
      throw new StowageError(Code.Internal, `the committed blob has ${committed.contentLength ?? "an unknown number of"} bytes, not ${state.size}`);
    }
    return { size: state.size, etag: etag ?? committed?.etag ?? "", sha256: input.sha256 };
  }

  /**
   * Abandons an upload. Nothing is deleted, because nothing can be: Azure has no call that deletes
   * uncommitted blocks. They are invisible, and Azure discards them a week after the blob's last
   * Put Block, or at once when the blob is next written (Put Blob, or a Put Block List that does
   * not name them). A single part's Put Blob, once accepted, has already stored the object
   * (clause 5.8.10), which an abort does not remove (clause 5.8.12). Always succeeds.
   */
  async abortPut(): Promise<void> {
    // Nothing to release (see above).
  }

  #decline(ref: ObjectRef, reason: string): TransferDeclined {
    this.#backend.logger.debug({ bucket: ref.bucket, key: ref.key, reason }, "direct transfer declined");
    return { declined: reason };
  }

  /** A SAS query string, or a refusal when Entra ID cannot get a user delegation key (a missing role). */
  async #signOrDecline(settings: BlobStoreSettings, ref: ObjectRef, permissions: string, startsOn: Date, expiresOn: Date, signal: AbortSignal | undefined): Promise<string | TransferDeclined> {
    try {
      return await this.#backend.sas(settings, ref, permissions, startsOn, expiresOn, signal);
    } catch (error) {
      if (error instanceof StowageError && error.code === Code.PermissionDenied && settings.auth === "entra-id") {
        return this.#decline(ref, "the Entra ID identity cannot get a user delegation key to sign requests (it needs the Storage Blob Delegator role)");
      }
      throw error;
    }
  }

  /** Deletes the blob when its entity tag is still `etag`; anything else is left alone. */
  async #deleteIfMatch(settings: BlobStoreSettings, blob: BlockBlobClient, etag: string, signal: AbortSignal | undefined): Promise<void> {
    if (etag === "") return;
    try {
      await this.#backend.call(settings, signal, "delete blob", (abortSignal) => blob.delete({ conditions: { ifMatch: etag }, abortSignal }));
    } catch (error) {
      const status = azureHttpStatus(error);
      if (status !== 404 && status !== 412) {
        this.#backend.logger.warn({ error: toStowageError(error, { operation: "delete blob" }).rawMessage }, "removing the body of a refused single-part upload failed");
      }
    }
  }
}

/** Why the store declines every plan, or `undefined` when it can sign. */
function declineReason(settings: BlobStoreSettings): string | undefined {
  if (!settings.directTransfer) return DECLINED_BY_CONFIG;
  if (settings.sharedKey === undefined && settings.auth !== "entra-id") {
    return "SAS-token auth cannot sign requests; direct transfer needs the account key (storageAccountKeyEnvVar or the ListKeys exchange) or Entra ID (useAAD=true)";
  }
  return undefined;
}

/** The validity of a plan made now: from 10 minutes ago (clock skew) to 15 minutes from now, in whole seconds. */
function validity(now = Date.now()): { startsOn: Date; expiresOn: Date } {
  // SAS times have whole seconds: round down, so a request never outlives expiresAt.
  return { startsOn: new Date(now - CLOCK_SKEW_MS), expiresOn: new Date(Math.floor((now + DIRECT_TRANSFER_TTL_MS) / 1000) * 1000) };
}

/** The number of parts of an upload (clause 5.8.8). */
function partCount(state: UploadState): number {
  return Math.max(1, Math.ceil(state.size / state.partSize));
}

/**
 * The block ID of a part: base64 of the upload's nonce and the 8-digit part number, so every ID
 * has one length (Azure needs that per blob) and the same as `putObject`'s, and concurrent uploads
 * to one key never share blocks.
 */
function blockIdOf(state: UploadState, partNumber: number): string {
  return Buffer.from(`${state.nonce}-${String(partNumber).padStart(8, "0")}`).toString("base64");
}

function encodeUploadId(state: UploadState): string {
  return Buffer.from(JSON.stringify({ v: 1, n: state.nonce, s: state.size, p: state.partSize, t: state.contentType, m: state.metadata, h: state.sha256 })).toString("base64url");
}

function tryDecodeUploadId(id: string): UploadState | undefined {
  try {
    const raw = JSON.parse(Buffer.from(id, "base64url").toString("utf8")) as Record<string, unknown>;
    const { v, n, s, p, t, m, h } = raw;
    if (v !== 1 || typeof n !== "string" || !/^[0-9a-f]{16}$/.test(n) || typeof t !== "string" || typeof h !== "string" || !/^(?:[0-9a-f]{64})?$/.test(h)) return undefined;
    if (typeof s !== "number" || !Number.isSafeInteger(s) || s < 0 || typeof p !== "number" || !Number.isSafeInteger(p) || p < 1) return undefined;
    if (typeof m !== "object" || m === null || Object.values(m).some((value) => typeof value !== "string")) return undefined;
    return { nonce: n, size: s, partSize: p, contentType: t, metadata: m as Record<string, string>, sha256: h };
  } catch {
    return undefined;
  }
}

/** The state of an upload ID this store issued; `FAILED_PRECONDITION` for anything else (clause 5.8.8). */
function decodeUploadId(id: string): UploadState {
  const state = tryDecodeUploadId(id);
  if (state === undefined) throw new StowageError(Code.FailedPrecondition, "the upload_id was not issued by this plugin; begin a new upload (contract 5.8.8)");
  return state;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function integrityError(ref: ObjectRef, why: string): StowageError {
  return new StowageError(Code.DataLoss, `direct put of ${JSON.stringify(ref.key)} in container ${JSON.stringify(ref.bucket)} stored nothing: ${why} (contract 5.8.11)`, {
    reason: Reason.IntegrityMismatch,
    metadata: { bucket: ref.bucket, key: ref.key },
  });
}
