/**
 * Direct transfer on S3 (contract 5.8): the plugin pre-signs GetObject, PutObject and UploadPart
 * requests with SigV4 and the host sends them, so object bodies never pass through the plugin.
 *
 * - Reads: a GET pinned with `if-match` to the ETag the plan describes (a replaced object answers 412).
 * - Puts of one part: a pre-signed PutObject whose signature covers the length, the part checksum,
 *   content type, metadata, tagging and encryption headers; `CompletePut` checks with a HEAD that the
 *   object is the one sent.
 * - Larger puts: CreateMultipartUpload (with those attributes) in `BeginPut`, a pre-signed UploadPart
 *   per part, CompleteMultipartUpload in `CompletePut`, AbortMultipartUpload in `AbortPut` (retried in
 *   the background when the store is down).
 * - Part checksums follow `checksumAlgorithm`, as the plugin's own puts do: none by default (the
 *   signed content length still binds each part's size), `x-amz-checksum-crc32` with `CRC32`,
 *   `x-amz-checksum-sha256` with `SHA256`, and Content-MD5 (which every S3-compatible store
 *   verifies) with any other algorithm.
 * - Requests are valid 10 minutes, or until the credentials expire if that is sooner.
 *
 * @packageDocumentation
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
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
  type Logger,
  type ObjectInfo,
  type ObjectRef,
  type PartChecksum,
  type PutObjectResult,
  type PutPlan,
  type SignedPart,
  type SignPartInput,
  type TransferDeclined,
  type UploadRef,
} from "@stowage/sdk";
import { withRequestTimeout } from "@stowage/sdk/plugin";
import { awsErrorCode, toStowageError } from "../shared/errors.js";
import type { S3StoreSettings } from "./config.js";
import type { AbandonedUploads } from "./multipart-upload.js";
import { MAX_UPLOAD_PARTS } from "./multipart-upload.js";
import { checkRef, encodeMetadata, integrityError, invalidName, objectNotFoundError, rangeError, readEncryptionParams } from "./object-helpers.js";
import { presignRequest } from "./presign-request.js";

/** How long a signed request of a plan stays valid. */
export const DIRECT_TRANSFER_TTL_SECONDS = 600;
/** How long an upload may take from BeginPut to CompletePut. */
export const UPLOAD_WINDOW_MS = 24 * 60 * 60_000;
/**
 * Prefix of the upload ID of a put of one part (no multipart upload in the store); the rest is the
 * put's content type and metadata, which the PutObject request carries. The SDK seals upload IDs,
 * so what comes back is what this plugin wrote.
 */
const SINGLE = "single:";
/** Prefix of the upload ID of a multipart upload. */
const MULTIPART = "multipart:";
/**
 * Prefix of the upload ID of a multipart upload into an Object Lock bucket whose parts carry
 * Content-MD5 (S3 requires it, or a flexible checksum, there) although no `checksumAlgorithm` is set.
 */
const MULTIPART_MD5 = "multipart-md5:";

/** What the direct transfer needs of its store. */
export interface S3DirectTransferContext {
  /** The settings of the last successful `init`; NOT_INITIALIZED before. */
  readonly settings: () => S3StoreSettings;
  /** The store's HeadObject (undefined for a missing key, BUCKET_NOT_FOUND for a missing bucket). */
  readonly head: (ref: ObjectRef, options: CallOptions) => Promise<ObjectInfo | undefined>;
  /** Fails with BUCKET_NOT_FOUND when the bucket does not exist. */
  readonly checkBucket: (bucket: string, signal: AbortSignal | undefined) => Promise<void>;
  /**
   * Fails with OBJECT_LOCKED when the key's current version is protected (contract 5.9.7); resolves
   * to whether the bucket is lockable (S3 Object Lock enabled).
   */
  readonly checkOverwrite: (ref: ObjectRef, signal: AbortSignal | undefined) => Promise<boolean>;
  /** Where aborts that failed are retried in the background. */
  readonly abandoned: () => AbandonedUploads | undefined;
  /** Where to log. */
  readonly logger: Logger;
}

/** The {@link DirectTransfer} of an S3 ObjectStore. */
export class S3DirectTransfer implements DirectTransfer {
  readonly #context: S3DirectTransferContext;

  /** @param context - The store it belongs to. */
  constructor(context: S3DirectTransferContext) {
    this.#context = context;
  }

  /** The settings, when direct transfer is offered; the reason it is declined otherwise. */
  #offered(): S3StoreSettings | TransferDeclined {
    const settings = this.#context.settings();
    return settings.directTransferDeclined === undefined ? settings : { declined: settings.directTransferDeclined };
  }

  /** Seconds a request signed now may be valid: the plan's TTL, shortened to the credentials' expiry. */
  async #validity(settings: S3StoreSettings): Promise<{ now: Date; seconds: number }> {
    const now = new Date();
    let seconds = DIRECT_TRANSFER_TTL_SECONDS;
    const identity = (await settings.client.config.credentials()) as { expiration?: Date | undefined };
    if (identity.expiration !== undefined) seconds = Math.min(seconds, Math.floor((identity.expiration.getTime() - now.getTime()) / 1000));
    if (seconds < 1) throw new StowageError(Code.Unavailable, "the S3 credentials expire within a second; retry once they are refreshed");
    return { now, seconds };
  }

  /** Plans a read of the object's current version (clause 5.8.5). */
  async planGet(input: GetObjectInput, options: CallOptions = {}): Promise<GetPlan | TransferDeclined> {
    checkRef(input);
    const offered = this.#offered();
    if ("declined" in offered) return offered;
    const range = input.range;
    if (range !== undefined && (range.offset < 0 || (range.length !== undefined && range.length < 0))) {
      throw new StowageError(Code.InvalidArgument, "range offset and length must not be negative", { reason: Reason.InvalidRange });
    }
    const info = await this.#context.head(input, options);
    if (info === undefined) throw objectNotFoundError(input);
    const offset = range?.offset ?? 0;
    if (offset > info.size) throw rangeError(input, offset, info.size);
    const contentLength = Math.min(range?.length ?? info.size - offset, info.size - offset);
    const { now, seconds } = await this.#validity(offered);
    if (contentLength === 0) return { object: info, offset, contentLength, expiresAt: new Date(now.getTime() + seconds * 1000) };
    const command = new GetObjectCommand({
      Bucket: input.bucket,
      Key: input.key,
      ...(info.etag === "" ? {} : { IfMatch: info.etag }),
      ...readEncryptionParams(offered),
    });
    const request = await this.#sign(offered, command, now, seconds, { operation: "sign get", bucket: input.bucket, key: input.key });
    return { object: info, offset, contentLength, request, expiresAt: new Date(now.getTime() + seconds * 1000) };
  }

  /**
   * Starts an upload: nothing in the store for one part, a multipart upload otherwise. An
   * overwrite of a protected object is refused with OBJECT_LOCKED (contract 5.9.7; a host sends a
   * put with protection or a bypass through PutObject).
   */
  async beginPut(input: BeginPutInput, options: CallOptions = {}): Promise<PutPlan | TransferDeclined> {
    checkRef(input);
    const offered = this.#offered();
    if ("declined" in offered) return offered;
    const lockable = await this.#context.checkOverwrite(input, options.signal);
    const partSize = Math.max(offered.partSize, Math.ceil(input.size / MAX_UPLOAD_PARTS));
    const lockMd5 = lockable && offered.checksumAlgorithm === undefined;
    const partChecksum = lockMd5 ? "md5" : partChecksumOf(offered);
    const now = new Date();
    // The upload's window, not a request's (each part's request is signed when it is sent).
    const plan = { partSize, partChecksum, maxParallelParts: offered.uploadConcurrency, expiresAt: new Date(now.getTime() + UPLOAD_WINDOW_MS) } as const;
    if (input.size <= partSize) {
      // Nothing to create; the bucket is checked now so that a missing one fails here, as PutObject's header would.
      await this.#context.checkBucket(input.bucket, options.signal);
      const attributes: SingleAttributes = { contentType: input.contentType ?? "", metadata: input.metadata ?? {}, ...(lockMd5 ? { md5: true } : {}) };
      return { ...plan, uploadId: SINGLE + Buffer.from(JSON.stringify(attributes)).toString("base64url") };
    }
    const context = { operation: "create multipart upload", bucket: input.bucket, key: input.key, signal: options.signal };
    try {
      const out = await withRequestTimeout(options.signal, offered.timeouts.requestTimeoutMs, "create multipart upload", (abortSignal) =>
        offered.client.send(
          new CreateMultipartUploadCommand({
            Bucket: input.bucket,
            Key: input.key,
            ...objectAttributes(offered, input),
            ...(partChecksum === "sha256" ? { ChecksumAlgorithm: "SHA256" } : partChecksum === "crc32" ? { ChecksumAlgorithm: "CRC32" } : {}),
          }),
          { abortSignal },
        ),
      );
      if (out.UploadId === undefined) throw new StowageError(Code.Internal, "the store created a multipart upload without an UploadId");
      return { ...plan, uploadId: (lockMd5 ? MULTIPART_MD5 : MULTIPART) + out.UploadId };
    } catch (error) {
      throw toStowageError(error, context);
    }
  }

  /** Pre-signs the PutObject (one part) or UploadPart of a part. */
  async signPart(input: SignPartInput): Promise<SignedPart> {
    const settings = this.#context.settings();
    const kind = uploadChecksumOf(settings, input.uploadId);
    const checksum = checksumParams(kind, input.checksum, false);
    const { now, seconds } = await this.#validity(settings);
    const command =
      input.uploadId.startsWith(SINGLE)
        ? new PutObjectCommand({
            Bucket: input.bucket,
            Key: input.key,
            ContentLength: input.size,
            ...checksum,
            ...objectAttributes(settings, singleAttributes(input.uploadId)),
          })
        : new UploadPartCommand({
            Bucket: input.bucket,
            Key: input.key,
            UploadId: multipartId(input.uploadId),
            PartNumber: input.partNumber,
            ContentLength: input.size,
            ...checksum,
            ...readEncryptionParams(settings),
          });
    const checksumHeader = kind === "crc32" || kind === "sha256" ? `x-amz-checksum-${kind}` : undefined;
    const request = await this.#sign(settings, command, now, seconds, { operation: "sign part", bucket: input.bucket, key: input.key }, checksumHeader);
    return { request, expiresAt: new Date(now.getTime() + seconds * 1000) };
  }

  /** Completes the multipart upload, or checks the object a one-part put stored (clause 5.8.11). */
  async completePut(input: CompletePutInput, options: CallOptions = {}): Promise<PutObjectResult> {
    const settings = this.#context.settings();
    const single = input.uploadId.startsWith(SINGLE);
    if (!single) {
      const context = { operation: "complete multipart upload", bucket: input.bucket, key: input.key, signal: options.signal };
      const kind = uploadChecksumOf(settings, input.uploadId);
      try {
        await withRequestTimeout(options.signal, settings.timeouts.requestTimeoutMs, "complete multipart upload", (abortSignal) =>
          settings.client.send(
            new CompleteMultipartUploadCommand({
              Bucket: input.bucket,
              Key: input.key,
              UploadId: multipartId(input.uploadId),
              MultipartUpload: {
                Parts: input.parts.map((part) => ({
                  PartNumber: part.partNumber,
                  ETag: part.etag,
                  ...checksumParams(kind, part.checksum, true),
                })),
              },
              ...readEncryptionParams(settings),
            }),
            { abortSignal },
          ),
        );
      } catch (error) {
        const code = awsErrorCode(error);
        if (code === "InvalidPart" || code === "InvalidPartOrder" || code === "EntityTooSmall" || code === "NoSuchUpload" || code === "BadDigest") {
          throw integrityError(input.bucket, input.key, `the store refused the parts (${code})`);
        }
        throw toStowageError(error, context);
      }
    }
    const stored = await this.#context.head(input, options);
    if (stored?.size !== input.size) {
      throw integrityError(input.bucket, input.key, `the store holds ${stored === undefined ? "no object" : `${String(stored.size)} bytes`} after the upload of ${String(input.size)}`);
    }
    const sent = input.parts[0]?.etag ?? "";
    if (single && sent !== "" && stored.etag !== "" && stored.etag !== sent) {
      throw new StowageError(Code.Aborted, `another put replaced ${JSON.stringify(input.key)} while this one completed; retry the put`);
    }
    return { size: stored.size, etag: stored.etag, ...(input.sha256 === undefined ? {} : { sha256: input.sha256 }) };
  }

  /** Aborts the multipart upload; a missing one is success. */
  async abortPut(input: UploadRef, options: CallOptions = {}): Promise<void> {
    if (input.uploadId.startsWith(SINGLE)) return;
    const settings = this.#context.settings();
    const uploadId = multipartId(input.uploadId);
    try {
      await withRequestTimeout(options.signal, settings.timeouts.requestTimeoutMs, "abort multipart upload", (abortSignal) =>
        settings.client.send(new AbortMultipartUploadCommand({ Bucket: input.bucket, Key: input.key, UploadId: uploadId }), { abortSignal }),
      );
    } catch (error) {
      if (awsErrorCode(error) === "NoSuchUpload") return;
      const mapped = toStowageError(error, { operation: "abort multipart upload", bucket: input.bucket, key: input.key });
      this.#context.logger.warn({ bucket: input.bucket, key: input.key, error: mapped.rawMessage }, "cannot abort a direct upload now; retrying in the background");
      this.#context.abandoned()?.add(settings.client, input.bucket, input.key, uploadId);
    }
  }

  async #sign(
    settings: S3StoreSettings,
    command: Parameters<typeof presignRequest>[1],
    now: Date,
    seconds: number,
    context: { operation: string; bucket: string; key: string },
    checksumHeader?: string,
  ) {
    try {
      return await presignRequest(settings.client, command, seconds, now, checksumHeader);
    } catch (error) {
      throw toStowageError(error, context);
    }
  }
}

/** The store's upload ID inside a multipart upload's ID. */
function multipartId(uploadId: string): string {
  if (uploadId.startsWith(MULTIPART)) return uploadId.slice(MULTIPART.length);
  if (uploadId.startsWith(MULTIPART_MD5)) return uploadId.slice(MULTIPART_MD5.length);
  throw invalidName("not an upload of this plugin");
}

/** What a one-part upload's ID carries: the put's attributes, and whether its part carries Content-MD5. */
interface SingleAttributes extends Pick<BeginPutInput, "contentType" | "metadata"> {
  /** Content-MD5 although no `checksumAlgorithm` is set (an Object Lock bucket). */
  readonly md5?: boolean | undefined;
}

/** The part checksum of one upload: the configuration's, or MD5 for an upload into an Object Lock bucket. */
function uploadChecksumOf(settings: S3StoreSettings, uploadId: string): PartChecksum {
  if (uploadId.startsWith(MULTIPART_MD5)) return "md5";
  if (uploadId.startsWith(SINGLE) && singleAttributes(uploadId).md5 === true) return "md5";
  return partChecksumOf(settings);
}

/** The content type and metadata a one-part upload's ID carries. */
function singleAttributes(uploadId: string): SingleAttributes {
  return JSON.parse(Buffer.from(uploadId.slice(SINGLE.length), "base64url").toString("utf8")) as SingleAttributes;
}

/** The part checksum of this configuration's uploads (see the module's description). */
function partChecksumOf(settings: S3StoreSettings): PartChecksum {
  switch (settings.checksumAlgorithm) {
    case undefined:
      return "none";
    case "CRC32":
      return "crc32";
    case "SHA256":
      return "sha256";
    default:
      return "md5";
  }
}

/** A part checksum as the request parameter the store verifies (MD5 only on the part's own request). */
function checksumParams(kind: PartChecksum, checksum: Uint8Array, completing: boolean): Record<string, string> {
  if (kind === "none" || checksum.length === 0) return {};
  const value = Buffer.from(checksum).toString("base64");
  if (kind === "crc32") return { ChecksumCRC32: value };
  if (kind === "sha256") return { ChecksumSHA256: value };
  return completing ? {} : { ContentMD5: value };
}

/** Content type, metadata, tagging and encryption of a put, as its first request carries them. */
function objectAttributes(settings: S3StoreSettings, input: Pick<BeginPutInput, "contentType" | "metadata"> | undefined): Record<string, unknown> {
  const { serverSideEncryption, kmsKeyId } = settings.encryption;
  return {
    ...(input?.contentType === undefined || input.contentType === "" ? {} : { ContentType: input.contentType }),
    ...(input?.metadata === undefined ? {} : { Metadata: encodeMetadata(input.metadata) }),
    ...(settings.tagging === undefined ? {} : { Tagging: settings.tagging }),
    ...(serverSideEncryption === undefined ? {} : { ServerSideEncryption: serverSideEncryption }),
    ...(kmsKeyId === undefined ? {} : { SSEKMSKeyId: kmsKeyId }),
    ...readEncryptionParams(settings),
  };
}
