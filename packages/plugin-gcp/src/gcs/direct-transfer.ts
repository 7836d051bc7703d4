/**
 * Direct transfer (contract 5.8) for the Cloud Storage ObjectStore: the plugin signs requests and
 * the host moves object bodies between itself and Cloud Storage.
 *
 * - Reads: a V4 signed GET pinned to the object's generation (`generation=` in the signed query):
 *   once the object is replaced or deleted, Cloud Storage answers 404. Keys with a `.` or `..`
 *   segment are declined (URL paths resolve those away).
 * - A body of one part whose content type and metadata fit in HTTP headers, under a key without
 *   such segments: one V4 signed PUT (XML API) with `content-md5`, `content-type`, `x-goog-meta-*`
 *   and, with `kmsKeyName`, `x-goog-encryption-kms-key-name` signed, so Cloud Storage stores exactly
 *   those bytes with those attributes in one atomic request (clause 5.8.10's exception).
 * - Any other body: a resumable upload session that the plugin starts (JSON API, with the content
 *   type, metadata, CMEK key and total size); the host sends its parts in order to the session URI
 *   with `content-range`, and the last part finalises the object. The session URI writes only this
 *   upload and dies when it completes or is cancelled (clause 5.8.3). Parts carry no checksum:
 *   Cloud Storage verifies none per chunk.
 * - `completePut` confirms that the object under the key is this upload's (a generation newer than
 *   the one when the upload began, of the right size, with the signed MD5 or made by the session).
 *
 * The plugin's own upload ID is encrypted (AES-256-GCM, a key of this process, bound to the bucket
 * and key): it carries the session URI, a credential, and the host must not read it.
 *
 * @packageDocumentation
 */
import type { FileMetadata } from "@google-cloud/storage";
import {
  Code,
  Reason,
  StowageError,
  checkMutable,
  type BeginPutInput,
  type CallOptions,
  type CompletePutInput,
  type DirectTransfer,
  type GetObjectInput,
  type GetPlan,
  type Logger,
  type ObjectRef,
  type PutObjectResult,
  type PutPlan,
  type SignedPart,
  type SignPartInput,
  type TransferDeclined,
  type UploadRef,
} from "@stowage/sdk";
import { abortError, backendUnavailable, httpStatusError, networkErrorCode, untilAborted, withRequestTimeout } from "@stowage/sdk/plugin";
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { toStowageError, type GoogleErrorContext } from "../shared/errors.js";
import { signingFailure, type GcsStoreSettings } from "./config.js";
import { checkRange, checkRef, readWindow } from "./objects.js";
import { protectionOf } from "./protection.js";

/**
 * Validity of every plan and signed request: 15 minutes, the longest contract 5.8.3 allows. An
 * upload must have signed its last part by then (the SDK refuses later parts).
 */
export const DIRECT_TRANSFER_TTL_SECONDS = 900;
/** How long an upload may take from BeginPut to CompletePut (a resumable session lives a week). */
export const UPLOAD_WINDOW_MS = 24 * 60 * 60_000;

/** The decline when `directTransfer` is `false`. */
export const DIRECT_TRANSFER_OFF = "the configuration sets directTransfer: false";

/** A custom-metadata key that can be an HTTP header name as it is (lower case, token characters). */
const HEADER_KEY = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
/** A header value that survives V4 canonicalisation unchanged: printable ASCII, single inner spaces. */
const HEADER_VALUE = /^[\x21-\x7e]+( [\x21-\x7e]+)*$/;

/** What {@link GcsDirectTransfer} borrows from its store. */
export interface GcsTransferContext {
  /** Where to log; URLs, signatures and session URIs are never logged. */
  readonly logger: Logger;
  /** The store's settings; fails with `NOT_INITIALIZED` before `init`. */
  settings(): GcsStoreSettings;
  /** The object's metadata, `undefined` when it does not exist; `BUCKET_NOT_FOUND` when the bucket does not. */
  metadata(settings: GcsStoreSettings, ref: ObjectRef, signal: AbortSignal | undefined): Promise<FileMetadata | undefined>;
  /** Maps a failure of a call on an object, telling `BUCKET_NOT_FOUND` from `OBJECT_NOT_FOUND`. */
  objectError(settings: GcsStoreSettings, error: unknown, context: GoogleErrorContext & { bucket: string }, signal: AbortSignal | undefined): Promise<StowageError>;
}

/** The plugin's own upload ID, before encryption (short field names keep it small). */
interface UploadState {
  /** Mode: one signed PUT (`put`) or a resumable session (`session`). */
  readonly m: "put" | "session";
  /** Total size in bytes. */
  readonly z: number;
  /** Generation under the key when the upload began; "0" when there was no object. */
  readonly g: string;
  /** Plan expiry, milliseconds since the epoch. */
  readonly e: number;
  /** `session`: the session URI. */
  readonly s?: string;
  /** `put`: the content type to sign. */
  readonly t?: string;
  /** `put`: the custom metadata to sign. */
  readonly d?: Record<string, string>;
  /** The SHA-256 `beginPut` announced, base64. */
  readonly h?: string;
}

/** The state of a resumable session, as a status query tells it. */
type SessionStatus = { readonly kind: "complete"; readonly size: number; readonly etag: string } | { readonly kind: "incomplete"; readonly persisted: number } | { readonly kind: "gone" };

function declined(reason: string): TransferDeclined {
  return { declined: reason };
}

/** Whether a put's content type and metadata can be sent as signed headers unchanged. */
function headerSafe(contentType: string | undefined, metadata: Readonly<Record<string, string>> | undefined): boolean {
  if (contentType !== undefined && contentType !== "" && !HEADER_VALUE.test(contentType)) return false;
  return Object.entries(metadata ?? {}).every(([key, value]) => HEADER_KEY.test(key) && HEADER_VALUE.test(value));
}

/**
 * Whether the key has a `.` or `..` segment: every URL parser resolves those away (`a/./b` is
 * fetched as `a/b`), so no signed URL path can name such an object.
 */
function hasDotSegment(key: string): boolean {
  return key.split("/").some((segment) => segment === "." || segment === "..");
}

/** `DATA_LOSS`/`INTEGRITY_MISMATCH` of a direct put that did not store this upload's body. */
function notStored(ref: ObjectRef, why: string): StowageError {
  return new StowageError(Code.DataLoss, `direct put of ${JSON.stringify(ref.key)} in bucket ${JSON.stringify(ref.bucket)} failed: ${why} (contract 5.8.11); begin a new upload`, {
    reason: Reason.IntegrityMismatch,
    metadata: { bucket: ref.bucket, key: ref.key },
  });
}

/** The session URI at `publicUrl`'s scheme and host, when it is set (as signed URLs are). */
function atPublicUrl(uri: string, publicUrl: string | undefined): string {
  if (publicUrl === undefined) return uri;
  const url = new URL(uri);
  const base = new URL(publicUrl);
  url.protocol = base.protocol;
  url.hostname = base.hostname;
  url.port = base.port;
  return url.href;
}

/**
 * The direct transfers of a `GcsObjectStore`; see the module description. Every method may be
 * called concurrently; an upload's state travels in its (encrypted) upload ID.
 */
export class GcsDirectTransfer implements DirectTransfer {
  readonly #context: GcsTransferContext;
  /** Encrypts upload IDs; never leaves the process. */
  readonly #key = randomBytes(32);
  /** Settings whose credentials signed a URL once (signing through `signBlob` is tried once). */
  readonly #signs = new WeakSet<GcsStoreSettings>();
  /** Settings whose signing failure was logged as a warning. */
  readonly #warned = new WeakSet<GcsStoreSettings>();

  /** @param context - What the store lends. */
  constructor(context: GcsTransferContext) {
    this.#context = context;
  }

  /** Why no plan can be made with these settings, or `undefined`. */
  #declines(settings: GcsStoreSettings): TransferDeclined | undefined {
    if (!settings.directTransfer) return declined(DIRECT_TRANSFER_OFF);
    if (settings.signer.kind === "none") return declined(settings.signer.why);
    return undefined;
  }

  /** A decline for a signing failure (logged once per configuration); cancellation is thrown. */
  #signingDeclined(settings: GcsStoreSettings, error: unknown, signal: AbortSignal | undefined): TransferDeclined {
    if (signal?.aborted === true) throw abortError(signal);
    const mapped = toStowageError(signingFailure(error) ?? error, { operation: "sign a URL", signal });
    const fields = { error: mapped.rawMessage, code: mapped.code };
    if (this.#warned.has(settings)) this.#context.logger.debug(fields, "direct transfer declined: URLs cannot be signed");
    else this.#context.logger.warn(fields, "direct transfer declined: URLs cannot be signed");
    this.#warned.add(settings);
    return declined(`URLs cannot be signed: ${mapped.rawMessage}`);
  }

  /** A V4 signed URL for `ref` (at `publicUrl` when set), valid `ttlSeconds` from `now`. */
  async #sign(
    settings: GcsStoreSettings,
    ref: ObjectRef,
    options: { readonly action: "read" | "write"; readonly generation?: string; readonly contentMd5?: string; readonly contentType?: string; readonly headers?: Record<string, string> },
    now: number,
    ttlSeconds: number,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    const file = settings.signingStorage.bucket(ref.bucket).file(ref.key, options.generation === undefined ? {} : { generation: Number(options.generation) });
    const [url] = await withRequestTimeout(signal, settings.timeouts.requestTimeoutMs, "sign URL", (abortSignal) =>
      untilAborted(
        file.getSignedUrl({
          version: "v4",
          action: options.action,
          accessibleAt: new Date(now),
          expires: new Date(now + ttlSeconds * 1000),
          ...(options.contentMd5 === undefined ? {} : { contentMd5: options.contentMd5 }),
          ...(options.contentType === undefined ? {} : { contentType: options.contentType }),
          ...(options.headers === undefined ? {} : { extensionHeaders: options.headers }),
          ...(settings.publicUrl === undefined ? {} : { host: settings.publicUrl }),
        }),
        abortSignal,
      ),
    );
    this.#signs.add(settings);
    return url;
  }

  /**
   * Plans a read with the checks of `getObject` (`OBJECT_NOT_FOUND`, `INVALID_RANGE`, ...): a GET
   * signed for 15 minutes and pinned to the generation read, or none for an empty window. Declines
   * when `directTransfer` is `false` or the credentials cannot sign.
   */
  async planGet(input: GetObjectInput, options: CallOptions = {}): Promise<GetPlan | TransferDeclined> {
    const settings = this.#context.settings();
    const off = this.#declines(settings);
    if (off !== undefined) return off;
    checkRef(input);
    checkRange(input.range);
    if (hasDotSegment(input.key)) return declined(`the key ${JSON.stringify(input.key)} has a "." or ".." segment, which URLs resolve away`);
    const signal = options.signal;
    signal?.throwIfAborted();
    const stored = await this.#context.metadata(settings, input, signal);
    const window = readWindow(input, input.range, stored);
    const now = Math.floor(Date.now() / 1000) * 1000;
    const expiresAt = new Date(now + DIRECT_TRANSFER_TTL_SECONDS * 1000);
    const plan = { object: window.info, contentLength: window.contentLength, offset: window.offset, expiresAt };
    if (window.contentLength === 0) return plan;
    const generation = stored?.generation === undefined ? undefined : String(stored.generation);
    let url: string;
    try {
      url = await this.#sign(settings, input, { action: "read", ...(generation === undefined ? {} : { generation }) }, now, DIRECT_TRANSFER_TTL_SECONDS, signal);
    } catch (error) {
      return this.#signingDeclined(settings, error, signal);
    }
    this.#context.logger.debug({ bucket: input.bucket, key: input.key, offset: window.offset, content_length: window.contentLength }, "planned a direct read");
    return { ...plan, request: { method: "GET", url, headers: {} } };
  }

  /**
   * Begins an upload with the checks of `putObject`'s header (`INVALID_NAME`, `BUCKET_NOT_FOUND`):
   * one signed PUT for a body of at most `chunkSize` bytes whose attributes fit in headers and whose
   * key fits in a URL path (MD5 per part), otherwise a resumable session of `chunkSize` parts sent in
   * order (no part checksum).
   */
  async beginPut(input: BeginPutInput, options: CallOptions = {}): Promise<PutPlan | TransferDeclined> {
    const settings = this.#context.settings();
    const off = this.#declines(settings);
    if (off !== undefined) return off;
    checkRef(input);
    if (!Number.isSafeInteger(input.size) || input.size < 0) throw new StowageError(Code.InvalidArgument, `size must be at least 0, got ${String(input.size)} (contract 5.8.2)`);
    if (input.sha256 !== undefined && input.sha256.length !== 32) {
      throw new StowageError(Code.InvalidArgument, `sha256 must be exactly 32 bytes, got ${String(input.sha256.length)} (contract 5.2.7)`);
    }
    const signal = options.signal;
    signal?.throwIfAborted();
    const stored = await this.#context.metadata(settings, input, signal);
    // A protected object is not replaced: the plan carries no bypass (contract 5.9.7).
    checkMutable(input.bucket, input.key, protectionOf(stored), false, "replace");
    const now = Date.now();
    // The upload's window, not a request's: each part's request is signed when it is sent.
    const expiresAt = new Date(now + UPLOAD_WINDOW_MS);
    const partSize = settings.chunkSize;
    const common = {
      z: input.size,
      g: stored?.generation === undefined ? "0" : String(stored.generation),
      e: expiresAt.getTime(),
      ...(input.sha256 === undefined ? {} : { h: Buffer.from(input.sha256).toString("base64") }),
    };
    const contentType = input.contentType === undefined || input.contentType === "" ? undefined : input.contentType;
    const metadata = input.metadata === undefined || Object.keys(input.metadata).length === 0 ? undefined : { ...input.metadata };
    // A key with a "." or ".." segment cannot be a URL path, but it can be a session's name parameter.
    if (input.size <= partSize && headerSafe(contentType, metadata) && !hasDotSegment(input.key)) {
      if (settings.signer.kind === "signBlob" && !this.#signs.has(settings)) {
        // The first signature through signBlob shows whether these credentials may sign at all.
        try {
          await this.#sign(settings, input, { action: "write" }, Math.floor(now / 1000) * 1000, 60, signal);
        } catch (error) {
          return this.#signingDeclined(settings, error, signal);
        }
      }
      const state: UploadState = { m: "put", ...common, ...(contentType === undefined ? {} : { t: contentType }), ...(metadata === undefined ? {} : { d: metadata }) };
      this.#context.logger.debug({ bucket: input.bucket, key: input.key, size: input.size, mode: "signed put" }, "began a direct put");
      return { uploadId: this.#seal(input, state), partSize, partChecksum: "md5", maxParallelParts: 1, expiresAt };
    }
    const session = await this.#startSession(settings, input, contentType, metadata, signal);
    const state: UploadState = { m: "session", ...common, s: session };
    this.#context.logger.debug({ bucket: input.bucket, key: input.key, size: input.size, mode: "resumable session", part_size: partSize }, "began a direct put");
    return { uploadId: this.#seal(input, state), partSize, partChecksum: "none", maxParallelParts: 1, expiresAt };
  }

  /**
   * Signs one part: the PUT of a one-request upload, with the part's MD5, content type, metadata
   * and CMEK key signed; or the PUT of a session's part, with its `content-range`.
   */
  async signPart(input: SignPartInput, options: CallOptions = {}): Promise<SignedPart> {
    const settings = this.#context.settings();
    const state = this.#open(input);
    const signal = options.signal;
    signal?.throwIfAborted();
    const now = Date.now();
    if (now > state.e) throw new StowageError(Code.FailedPrecondition, `the upload expired at ${new Date(state.e).toISOString()}; begin a new upload (contract 5.8.8)`);
    if (input.offset < 0 || input.size < 0 || input.offset + input.size > state.z) {
      throw new StowageError(Code.InvalidArgument, `part ${String(input.partNumber)} (${String(input.size)} bytes at ${String(input.offset)}) lies outside the ${String(state.z)}-byte body (contract 5.8.9)`);
    }
    if (state.m === "session") {
      const range = input.size === 0 ? `bytes */${String(state.z)}` : `bytes ${String(input.offset)}-${String(input.offset + input.size - 1)}/${String(state.z)}`;
      const expiresAt = new Date(Math.min(state.e, now + DIRECT_TRANSFER_TTL_SECONDS * 1000));
      return { request: { method: "PUT", url: atPublicUrl(state.s ?? "", settings.publicUrl), headers: { "content-range": range } }, expiresAt };
    }
    if (input.checksum.length !== 16) throw new StowageError(Code.InvalidArgument, `the part's MD5 must be 16 bytes, got ${String(input.checksum.length)} (contract 5.8.9)`);
    const md5 = Buffer.from(input.checksum).toString("base64");
    const contentType = state.t ?? "application/octet-stream";
    const extension: Record<string, string> = {};
    for (const [key, value] of Object.entries(state.d ?? {})) extension[`x-goog-meta-${key}`] = value;
    if (settings.kmsKeyName !== undefined) extension["x-goog-encryption-kms-key-name"] = settings.kmsKeyName;
    const start = Math.floor(now / 1000) * 1000;
    const ttl = Math.max(1, Math.min(DIRECT_TRANSFER_TTL_SECONDS, Math.floor((state.e - start) / 1000)));
    let url: string;
    try {
      url = await this.#sign(settings, input, { action: "write", contentMd5: md5, contentType, headers: extension }, start, ttl, signal);
    } catch (error) {
      throw toStowageError(signingFailure(error) ?? error, { operation: "sign a URL", bucket: input.bucket, key: input.key, signal });
    }
    return { request: { method: "PUT", url, headers: { "content-md5": md5, "content-type": contentType, ...extension } }, expiresAt: new Date(start + ttl * 1000) };
  }

  /**
   * Confirms that the object under the key is this upload's, with its size: a new generation whose
   * MD5 is the one the part was signed with (one request), or the object a finished session made (a
   * status query confirms it where Cloud Storage still knows the session). A missing, short or foreign
   * object fails with `DATA_LOSS`/`INTEGRITY_MISMATCH`; so does a SHA-256 other than `beginPut`'s,
   * after this upload's object is deleted (only that generation).
   */
  async completePut(input: CompletePutInput, options: CallOptions = {}): Promise<PutObjectResult> {
    const settings = this.#context.settings();
    const state = this.#open(input);
    const signal = options.signal;
    signal?.throwIfAborted();
    if (input.size !== state.z) throw notStored(input, `the host sent ${String(input.size)} bytes; the upload began for ${String(state.z)}`);
    const stored = state.m === "put" ? await this.#confirmPut(settings, input, state, input.parts[0]?.checksum, signal) : await this.#confirmSession(settings, input, state, signal);
    // The SDK compares the two SHA-256s before it calls completePut; an in-process caller may not.
    if (state.h !== undefined && (input.sha256 === undefined || Buffer.from(input.sha256).toString("base64") !== state.h)) {
      await this.#discard(settings, input, stored.generation, signal);
      throw notStored(input, "the SHA-256 of the body the host sent differs from the one BeginPut announced; this upload's object was deleted");
    }
    this.#context.logger.debug({ bucket: input.bucket, key: input.key, size: state.z }, "completed a direct put");
    return { size: state.z, etag: stored.etag, ...(input.sha256 === undefined ? {} : { sha256: input.sha256 }) };
  }

  /**
   * Cancels a resumable session (`DELETE` on its URI); a one-request upload holds nothing. A
   * session that its last part already finished (the host refused the body after sending it) has
   * its object, this generation only, deleted. An unknown or aborted upload is success.
   */
  async abortPut(input: UploadRef, options: CallOptions = {}): Promise<void> {
    const settings = this.#context.settings();
    let state: UploadState;
    try {
      state = this.#open(input);
    } catch {
      return;
    }
    if (state.m !== "session" || state.s === undefined) return;
    const session = state.s;
    const signal = options.signal;
    const response = await this.#sessionRequest(settings, session, "cancel the resumable upload", "DELETE", {}, signal);
    // 499: cancelled. 404/410: unknown or expired. Another 4xx: finished.
    if (response.status >= 500) throw httpStatusError(response.status, `cancel the resumable upload of ${JSON.stringify(input.key)} in bucket ${JSON.stringify(input.bucket)} failed: HTTP ${String(response.status)}`);
    // A session whose last part made the object, which no CompletePut took (the SDK never passes on
    // the abort of a completed upload, clause 5.8.12): this upload's generation goes. An unfinished
    // or cancelled session has no object newer than the upload's beginning, and nothing is deleted.
    const stored = await this.#confirmSession(settings, input, state, signal).catch(() => undefined);
    if (stored !== undefined) await this.#discard(settings, input, stored.generation, signal);
    this.#context.logger.debug({ bucket: input.bucket, key: input.key, status: response.status }, "cancelled a direct put's resumable session");
  }

  /** Starts a resumable session (JSON API) with the object's attributes and size; returns its URI. */
  async #startSession(
    settings: GcsStoreSettings,
    ref: ObjectRef & { readonly size: number },
    contentType: string | undefined,
    metadata: Record<string, string> | undefined,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    const url = `${settings.storage.apiEndpoint}/upload/storage/v1/b/${encodeURIComponent(ref.bucket)}/o`;
    const what = "start a resumable upload";
    try {
      const response = await withRequestTimeout(signal, settings.timeouts.requestTimeoutMs, what, (abortSignal) =>
        settings.credentials.auth.request({
          method: "POST",
          url,
          params: { uploadType: "resumable", name: ref.key, ...(settings.kmsKeyName === undefined ? {} : { kmsKeyName: settings.kmsKeyName }) },
          // The content type goes in the resource too: X-Upload-Content-Type alone is lost by emulators.
          data: { name: ref.key, ...(contentType === undefined ? {} : { contentType }), ...(metadata === undefined ? {} : { metadata }) },
          headers: {
            "content-type": "application/json; charset=UTF-8",
            "x-upload-content-length": String(ref.size),
            ...(contentType === undefined ? {} : { "x-upload-content-type": contentType }),
          },
          signal: abortSignal,
        }),
      );
      const location = response.headers.get("location");
      if (location === null || !/^https?:\/\//.test(location)) throw new StowageError(Code.Internal, `${what}: Cloud Storage answered without a session URI`);
      return location;
    } catch (error) {
      throw await this.#context.objectError(settings, error, { operation: what, bucket: ref.bucket, key: ref.key }, signal);
    }
  }

  /** A request to a session URI (no credentials: the URI is one). Errors never quote the URI. */
  async #sessionRequest(
    settings: GcsStoreSettings,
    session: string,
    what: string,
    method: "PUT" | "DELETE",
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<{ readonly status: number; readonly headers: Headers; readonly body: string }> {
    try {
      return await withRequestTimeout(signal, settings.timeouts.requestTimeoutMs, what, async (abortSignal) => {
        const response = await fetch(session, { method, headers: { ...headers, "content-length": "0" }, redirect: "manual", signal: abortSignal });
        return { status: response.status, headers: response.headers, body: await response.text() };
      });
    } catch (error) {
      if (error instanceof StowageError) throw error;
      if (signal?.aborted === true) throw abortError(signal);
      const code = networkErrorCode(error);
      throw backendUnavailable(`${what} failed: Cloud Storage is unreachable${code === undefined ? "" : ` (${code})`}; retry later`);
    }
  }

  /** A status query of a session: `PUT` with no body and `content-range: bytes *\/<size>`. */
  async #sessionStatus(settings: GcsStoreSettings, ref: ObjectRef, session: string, size: number, signal: AbortSignal | undefined): Promise<SessionStatus> {
    const response = await this.#sessionRequest(settings, session, "query the resumable upload", "PUT", { "content-range": `bytes */${String(size)}` }, signal);
    if (response.status === 200 || response.status === 201) {
      let resource: { size?: unknown; etag?: unknown } = {};
      try {
        resource = JSON.parse(response.body) as typeof resource;
      } catch {
        // An answer without the resource: the size and etag come from the object's metadata.
      }
      return { kind: "complete", size: resource.size === undefined ? size : Number(resource.size), etag: typeof resource.etag === "string" ? resource.etag : "" };
    }
    if (response.status === 308) {
      const range = /^bytes=0-(\d+)$/.exec(response.headers.get("range") ?? "");
      return { kind: "incomplete", persisted: range?.[1] === undefined ? 0 : Number(range[1]) + 1 };
    }
    if (response.status === 404 || response.status === 410) return { kind: "gone" };
    throw httpStatusError(response.status, `query the resumable upload of ${JSON.stringify(ref.key)} in bucket ${JSON.stringify(ref.bucket)} failed: HTTP ${String(response.status)}`);
  }

  /** The object a one-request upload stored: a new generation of `size` bytes with the MD5 its part was signed with. */
  async #confirmPut(settings: GcsStoreSettings, ref: ObjectRef, state: UploadState, checksum: Uint8Array | undefined, signal: AbortSignal | undefined): Promise<{ generation: string; etag: string }> {
    const stored = await this.#fresh(settings, ref, state, signal, "its part never reached Cloud Storage");
    if (checksum?.length !== 16) throw notStored(ref, "the part is reported without the MD5 it was signed with");
    if (stored.md5Hash !== Buffer.from(checksum).toString("base64")) {
      // Cloud Storage refuses a body whose MD5 differs from the signed content-md5 (400 BadDigest);
      // an object with another MD5 is another writer's, or comes from a store that ignores content-md5.
      throw notStored(ref, "the object under the key is not this upload's (its MD5 is not the one signed for the part)");
    }
    return { generation: String(stored.generation), etag: stored.etag ?? "" };
  }

  /** The object a session made: a new generation of `size` bytes that the session reports as its own. */
  async #confirmSession(settings: GcsStoreSettings, ref: ObjectRef, state: UploadState, signal: AbortSignal | undefined): Promise<{ generation: string; etag: string }> {
    // The object's metadata first: a status query of an unfinished session would finalise it in
    // fake-gcs-server (Cloud Storage answers 308), so it is only sent when the object looks done.
    const stored = await this.#fresh(settings, ref, state, signal, "the upload is unfinished (its last part never reached Cloud Storage)");
    const status = await this.#sessionStatus(settings, ref, state.s ?? "", state.z, signal);
    if (status.kind === "incomplete") throw notStored(ref, `the upload is unfinished: Cloud Storage holds ${String(status.persisted)} of its ${String(state.z)} bytes, and the object under the key is another writer's`);
    if (status.kind === "complete" && status.size !== state.z) throw notStored(ref, `Cloud Storage finished the upload with ${String(status.size)} bytes, not ${String(state.z)}`);
    // "gone": Cloud Storage no longer knows the session (fake-gcs-server forgets finished ones); the
    // new generation of the right size is taken as this upload's.
    return { generation: String(stored.generation), etag: status.kind === "complete" && status.etag !== "" ? status.etag : (stored.etag ?? "") };
  }

  /** The object under the key when it is newer than the upload's beginning and of its size. */
  async #fresh(settings: GcsStoreSettings, ref: ObjectRef, state: UploadState, signal: AbortSignal | undefined, unfinished: string): Promise<FileMetadata & { generation: string | number }> {
    const stored = await this.#context.metadata(settings, ref, signal);
    if (stored?.generation === undefined || String(stored.generation) === state.g) throw notStored(ref, unfinished);
    const size = Number(stored.size ?? Number.NaN);
    if (size !== state.z) throw notStored(ref, `Cloud Storage holds ${String(size)} bytes under the key, not the ${String(state.z)} of this upload`);
    return { ...stored, generation: stored.generation };
  }

  /** Deletes exactly this generation of the object (a newer one stays); failures are logged. */
  async #discard(settings: GcsStoreSettings, ref: ObjectRef, generation: string, signal: AbortSignal | undefined): Promise<void> {
    try {
      await withRequestTimeout(signal, settings.timeouts.requestTimeoutMs, "delete object", (abortSignal) =>
        untilAborted(settings.storage.bucket(ref.bucket).file(ref.key).delete({ ifGenerationMatch: Number(generation) }), abortSignal),
      );
    } catch (error) {
      const mapped = toStowageError(error, { operation: "delete object", bucket: ref.bucket, key: ref.key, signal });
      this.#context.logger.warn({ bucket: ref.bucket, key: ref.key, error: mapped.rawMessage }, "could not delete the object of a direct put whose SHA-256 differed");
    }
  }

  /** Encrypts an upload's state into its upload ID, bound to the bucket and key. */
  #seal(ref: ObjectRef, state: UploadState): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.#key, iv);
    cipher.setAAD(Buffer.from(`${ref.bucket}\n${ref.key}`));
    const body = Buffer.concat([cipher.update(JSON.stringify(state), "utf8"), cipher.final()]);
    return Buffer.concat([iv, body, cipher.getAuthTag()]).toString("base64url");
  }

  /** The state of an upload ID this object issued for the bucket and key; `FAILED_PRECONDITION` otherwise. */
  #open(ref: UploadRef): UploadState {
    const raw = Buffer.from(ref.uploadId, "base64url");
    try {
      if (raw.length < 29) throw new Error("short");
      const decipher = createDecipheriv("aes-256-gcm", this.#key, raw.subarray(0, 12));
      decipher.setAAD(Buffer.from(`${ref.bucket}\n${ref.key}`));
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      const text = Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString("utf8");
      return JSON.parse(text) as UploadState;
    } catch {
      throw new StowageError(Code.FailedPrecondition, "the upload_id was not issued for this bucket and key by this plugin process; begin a new upload (contract 5.8.8)");
    }
  }
}
