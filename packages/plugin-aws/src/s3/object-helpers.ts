/**
 * What the S3 ObjectStore's calls share: key checks, metadata encoding, object attributes, SSE-C
 * read parameters and the errors of missing objects and ranges.
 */
import type { GetObjectCommandOutput, HeadObjectCommandOutput } from "@aws-sdk/client-s3";
import { Code, Reason, StowageError, objectNotFound, putNotStored, rangePastEnd, type ObjectInfo, type ObjectRef } from "@stowage/sdk";
import { decodeHeaderValue, encodeHeaderValue } from "@stowage/sdk/plugin";
import type { S3StoreSettings } from "./config.js";
import { protectionOf } from "./object-lock.js";

/** The SSE-C headers every read of an SSE-C object needs (none otherwise). */
export function readEncryptionParams(settings: S3StoreSettings): Record<string, string> {
  const { customerKey } = settings.encryption;
  return customerKey === undefined ? {} : { SSECustomerAlgorithm: "AES256", SSECustomerKey: customerKey };
}

/** An object's attributes, its Object Lock protection included, from a GET or HEAD answer; `size` is the whole object's. */
export function objectInfo(key: string, out: GetObjectCommandOutput | HeadObjectCommandOutput, size: number): ObjectInfo {
  const protection = protectionOf(out);
  return {
    key,
    size,
    etag: out.ETag ?? "",
    lastModified: out.LastModified,
    contentType: out.ContentType ?? "",
    metadata: decodeMetadata(out.Metadata),
    ...(protection === undefined ? {} : { protection }),
  };
}

/**
 * HTTP headers carry only printable ASCII: other metadata values travel RFC 2047-encoded
 * (`=?UTF-8?B?…?=`), as S3 itself returns them, and are decoded on read.
 */
export function encodeMetadata(metadata: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) {
    out[k] = encodeHeaderValue(v);
  }
  return out;
}

/** Metadata as S3 returned it, decoded. */
export function decodeMetadata(metadata: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata ?? {})) {
    out[k] = decodeHeaderValue(v);
  }
  return out;
}

/** Fails with `INVALID_NAME` on an empty bucket or key, or a key longer than 1024 bytes. */
export function checkRef(ref: ObjectRef): void {
  if (ref.bucket === "") throw invalidName("bucket names must not be empty");
  if (ref.key === "") throw invalidName("object keys must not be empty");
  if (Buffer.byteLength(ref.key) > 1024) throw invalidName(`object key ${JSON.stringify(ref.key.slice(0, 64))}… is longer than 1024 bytes`);
}

/** An `INVALID_NAME` error. */
export function invalidName(message: string): StowageError {
  return new StowageError(Code.InvalidArgument, message, { reason: Reason.InvalidName });
}

/** The `INTEGRITY_MISMATCH` error of a put that stored nothing. */
export function integrityError(bucket: string, key: string, why: string): StowageError {
  return putNotStored(bucket, key, why);
}

/** The `OBJECT_NOT_FOUND` error of `ref`. */
export function objectNotFoundError(ref: ObjectRef): StowageError {
  return objectNotFound(ref.bucket, ref.key);
}

/** The `INVALID_RANGE` error of an offset past the end. */
export function rangeError(ref: ObjectRef, offset: number, size: number): StowageError {
  return rangePastEnd(ref.bucket, ref.key, offset, size);
}
