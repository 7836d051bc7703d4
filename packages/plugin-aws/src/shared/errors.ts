/**
 * Maps AWS SDK errors (S3 and EC2) to {@link StowageError}s with the contract's codes and reasons.
 *
 * @packageDocumentation
 */
import { Code, Reason, StowageError } from "@stowage/sdk";

/** What an AWS SDK service error carries. */
interface AwsErrorShape {
  readonly name?: string;
  readonly Code?: string;
  readonly message?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
  readonly $retryable?: unknown;
}

/** The error's service code (`NoSuchKey`, `InvalidSnapshot.NotFound`, ...), or "". */
export function awsErrorCode(error: unknown): string {
  if (typeof error !== "object" || error === null) return "";
  const shape = error as AwsErrorShape;
  return shape.Code ?? shape.name ?? "";
}

/** The HTTP status of the failed response, or 0. */
export function awsHttpStatus(error: unknown): number {
  if (typeof error !== "object" || error === null) return 0;
  return (error as AwsErrorShape).$metadata?.httpStatusCode ?? 0;
}

const THROTTLING = new Set([
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "RequestThrottledException",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "SlowDown",
  "RequestThrottled",
  "ServiceUnavailable",
  "InternalError",
  "RequestTimeout",
  "RequestTimeoutException",
  "XMinioServerNotInitialized",
]);

const TLS_ERRORS = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
]);

const NETWORK = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EAI_AGAIN", "TimeoutError"]);

/** KMS key errors: AWS S3 (`KMS.*`) and MinIO (`kms:*`). */
const KMS_KEY_ERRORS = new Set(["KMS.NotFoundException", "KMS.DisabledException", "KMS.KMSInvalidStateException", "kms:KeyNotFound", "KMS.NotFound"]);

/** Failures caused by the server-side encryption settings, with what to change. */
function encryptionProblem(code: string, detail: string): { hint: string; reason?: string } | undefined {
  if (KMS_KEY_ERRORS.has(code)) return { hint: "the KMS key named by kmsKeyId does not exist or cannot be used; check kmsKeyId" };
  if (code === "InvalidRequest" && /secure connection/i.test(detail)) {
    return { hint: "SSE-C (customerKeyEncryptionFile) needs an https:// s3Url", reason: Reason.Unsupported };
  }
  if (code === "InvalidRequest" && /Server Side Encryption/i.test(detail)) {
    return { hint: "the object is encrypted with a customer key (SSE-C): set customerKeyEncryptionFile to the key it was written with" };
  }
  if (code === "NotImplemented" && detail.includes("KMS")) {
    return { hint: "the store has no KMS for server-side encryption: configure one, or remove serverSideEncryption and kmsKeyId", reason: Reason.Unsupported };
  }
  return undefined;
}

/** Context of a failed call, put in messages and metadata. */
export interface ErrorContext {
  /** Bucket, when the call names one. */
  readonly bucket?: string | undefined;
  /** Key, when the call names one. */
  readonly key?: string | undefined;
  /** What was being done, e.g. `put object`. */
  readonly operation: string;
}

/**
 * Converts anything an AWS SDK call threw into a StowageError:
 * `NoSuchKey`/404 → `OBJECT_NOT_FOUND`, `NoSuchBucket` → `BUCKET_NOT_FOUND`, `AccessDenied`/403 →
 * `ACCESS_DENIED`, bad credentials → `UNAUTHENTICATED`, throttling, 5xx and network failures →
 * `UNAVAILABLE`/`BACKEND_UNAVAILABLE`, `NotImplemented` → `UNIMPLEMENTED`/`UNSUPPORTED`, encryption
 * problems (unknown KMS key, SSE-C without HTTPS or without the object's key, no KMS on the store)
 * → `FAILED_PRECONDITION` with what to change, aborts → `CANCELLED`; anything else `INTERNAL`.
 */
export function toStowageError(error: unknown, context: ErrorContext): StowageError {
  if (error instanceof StowageError) return error;
  if (error instanceof Error && (error.name === "AbortError" || error.name === "TimeoutError")) return StowageError.from(error);
  const code = awsErrorCode(error);
  const status = awsHttpStatus(error);
  const detail = error instanceof Error ? error.message : String(error);
  const where = [context.bucket === undefined ? "" : `bucket ${JSON.stringify(context.bucket)}`, context.key === undefined ? "" : `key ${JSON.stringify(context.key)}`]
    .filter((s) => s !== "")
    .join(", ");
  const metadata: Record<string, string> = { aws_code: code, http_status: String(status) };
  if (context.bucket !== undefined) metadata.bucket = context.bucket;
  if (context.key !== undefined) metadata.key = context.key;
  const message = `${context.operation}${where === "" ? "" : ` (${where})`} failed: ${code === "" ? "" : `${code}: `}${detail}`;
  const make = (c: Code, reason: string | undefined): StowageError =>
    new StowageError(c, message, { ...(reason === undefined ? {} : { reason }), metadata, cause: error });

  if (code === "NoSuchKey" || (code === "NotFound" && context.key !== undefined)) return make(Code.NotFound, Reason.ObjectNotFound);
  if (code === "NoSuchBucket") return make(Code.NotFound, Reason.BucketNotFound);
  if (code === "InvalidRange") return make(Code.OutOfRange, Reason.InvalidRange);
  if (code === "CredentialsProviderError") return make(Code.Unauthenticated, Reason.AccessDenied);
  if (code === "InvalidAccessKeyId" || code === "SignatureDoesNotMatch" || code === "ExpiredToken" || code === "InvalidToken" || code === "AuthFailure") {
    return make(Code.Unauthenticated, Reason.AccessDenied);
  }
  if (code === "AccessDenied" || code === "AllAccessDisabled" || code === "UnauthorizedOperation" || status === 403) {
    return make(Code.PermissionDenied, Reason.AccessDenied);
  }
  if (code === "InvalidBucketName" || code === "KeyTooLongError" || code === "XMinioInvalidObjectName" || code === "InvalidObjectName") return make(Code.InvalidArgument, Reason.InvalidName);
  if (code === "BadDigest" || code === "XAmzContentSHA256Mismatch" || code === "InvalidDigest") return make(Code.DataLoss, Reason.IntegrityMismatch);
  if (code === "NoSuchUpload") return make(Code.Aborted, undefined);
  const encryption = encryptionProblem(code, detail);
  if (encryption !== undefined) {
    return new StowageError(Code.FailedPrecondition, `${message}; ${encryption.hint}`, {
      ...(encryption.reason === undefined ? {} : { reason: encryption.reason }),
      metadata,
      cause: error,
    });
  }
  const rawErrno = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  const errno = typeof rawErrno === "string" ? rawErrno : "";
  if (TLS_ERRORS.has(errno) || errno.startsWith("ERR_TLS_") || errno.startsWith("ERR_SSL_")) {
    return new StowageError(Code.FailedPrecondition, `${message}; the server's TLS certificate is not trusted: set caCert (or insecureSkipTLSVerify for tests)`, {
      metadata: { ...metadata, tls_error: errno },
      cause: error,
    });
  }
  if (code === "NotImplemented" || status === 501) return make(Code.Unimplemented, Reason.Unsupported);
  if (THROTTLING.has(code) || status === 429 || status >= 500 || NETWORK.has(errno) || NETWORK.has(code)) {
    return make(Code.Unavailable, Reason.BackendUnavailable);
  }
  if (status === 400) return make(Code.InvalidArgument, undefined);
  if (status === 404) return make(Code.NotFound, undefined);
  return make(Code.Internal, Reason.Internal);
}
