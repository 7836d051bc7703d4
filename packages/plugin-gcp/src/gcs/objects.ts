/**
 * Checks and conversions shared by the Cloud Storage ObjectStore's streamed calls and its direct
 * transfers (contract 5.8.2: a direct transfer has the validation and errors of the call it
 * replaces): key checks, the window of a (ranged) read, object attributes, and the errors.
 *
 * @packageDocumentation
 */
import type { FileMetadata } from "@google-cloud/storage";
import { Code, Reason, StowageError, objectNotFound, putNotStored, rangePastEnd, type ByteRange, type ObjectInfo, type ObjectRef } from "@stowage/sdk";
import { protectionOf } from "./protection.js";

/** The part of an object a read returns (contract 5.3.3, 5.3.12, 5.3.13). */
export interface ReadWindow {
  /** The object's attributes; `size` is the whole object's. */
  readonly info: ObjectInfo;
  /** Position of the first byte. */
  readonly offset: number;
  /** Position after the last byte. */
  readonly end: number;
  /** `end - offset`. */
  readonly contentLength: number;
}

/** The object's attributes from its Cloud Storage metadata, with its protection (contract 5.9.3). */
export function objectInfo(key: string, metadata: FileMetadata, withUserMetadata = true): ObjectInfo {
  const protection = protectionOf(metadata);
  const updated = metadata.updated ?? metadata.timeCreated;
  const user: Record<string, string> = {};
  if (withUserMetadata) {
    for (const [k, v] of Object.entries(metadata.metadata ?? {})) {
      if (v !== null && v !== undefined) user[k] = String(v);
    }
  }
  return {
    key,
    size: Number(metadata.size ?? 0),
    etag: metadata.etag ?? "",
    ...(updated === undefined ? {} : { lastModified: new Date(updated) }),
    contentType: withUserMetadata ? (metadata.contentType ?? "") : "",
    metadata: user,
    ...(protection === undefined ? {} : { protection }),
  };
}

/** Fails with `INVALID_NAME` for an empty bucket, or a key Cloud Storage cannot store. */
export function checkRef(ref: ObjectRef): void {
  if (ref.bucket === "") throw invalidName("bucket names must not be empty");
  if (ref.key === "") throw invalidName("object keys must not be empty");
  if (Buffer.byteLength(ref.key) > 1024) throw invalidName(`object key ${JSON.stringify(ref.key.slice(0, 64))}… is longer than 1024 bytes`);
  if (/[\r\n]/.test(ref.key)) throw invalidName(`object key ${JSON.stringify(ref.key.slice(0, 64))} contains a carriage return or line feed, which Cloud Storage does not allow`);
}

/** Fails with `INVALID_ARGUMENT` for a negative or fractional range (contract 5.3.11). */
export function checkRange(range: ByteRange | undefined): void {
  if (range !== undefined && (!Number.isSafeInteger(range.offset) || range.offset < 0 || (range.length !== undefined && (!Number.isSafeInteger(range.length) || range.length < 0)))) {
    throw new StowageError(Code.InvalidArgument, "range offset and length must be non-negative integers");
  }
}

/**
 * What a read of `range` of the object `stored` returns: `OBJECT_NOT_FOUND` when there is no
 * object, `INVALID_RANGE` for an offset past its end; a range running past the end is shortened.
 */
export function readWindow(ref: ObjectRef, range: ByteRange | undefined, stored: FileMetadata | undefined): ReadWindow {
  if (stored === undefined) throw objectNotFoundError(ref);
  const info = objectInfo(ref.key, stored);
  const offset = range?.offset ?? 0;
  if (offset > info.size) throw rangeError(ref, offset, info.size);
  const end = range?.length === undefined ? info.size : Math.min(info.size, offset + range.length);
  return { info, offset, end, contentLength: end - offset };
}

/** `INVALID_ARGUMENT`/`INVALID_NAME`. */
export function invalidName(message: string): StowageError {
  return new StowageError(Code.InvalidArgument, message, { reason: Reason.InvalidName });
}

/** `DATA_LOSS`/`INTEGRITY_MISMATCH` of a put that stored nothing. */
export function integrityError(bucket: string, key: string, why: string): StowageError {
  return putNotStored(bucket, key, why);
}

/** `NOT_FOUND`/`OBJECT_NOT_FOUND`. */
export function objectNotFoundError(ref: ObjectRef): StowageError {
  return objectNotFound(ref.bucket, ref.key);
}

/** `OUT_OF_RANGE`/`INVALID_RANGE`. */
export function rangeError(ref: ObjectRef, offset: number, size: number): StowageError {
  return rangePastEnd(ref.bucket, ref.key, offset, size);
}
