/**
 * Maps AWS SDK errors (S3 and EC2) to {@link StowageError}s with the contract's codes and reasons.
 *
 * @packageDocumentation
 */
import { Code, Reason, StowageError } from "@stowage/sdk";
import { abortError, httpStatusError, networkErrorCode, retryAfterMetadata, tlsErrorCode } from "@stowage/sdk/plugin";

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

/** S3 and EC2 error codes of throttling and transient server failures (the HTTP status may be 200 or 400 on some stores). */
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
  /**
   * The call's signal: when it has fired, the call fails with its reason (`CANCELLED`,
   * `DEADLINE_EXCEEDED`, or a request timeout's `UNAVAILABLE`), whatever the SDK threw.
   */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Converts anything an AWS SDK call threw into a StowageError. S3 and EC2 error codes come first:
 * `NoSuchKey` → `OBJECT_NOT_FOUND`, `NoSuchBucket` → `BUCKET_NOT_FOUND`, `AccessDenied` →
 * `ACCESS_DENIED`, bad credentials → `UNAUTHENTICATED`, throttling codes →
 * `UNAVAILABLE`/`BACKEND_UNAVAILABLE`, `NotImplemented` → `UNIMPLEMENTED`/`UNSUPPORTED`,
 * encryption problems (unknown KMS key, SSE-C without HTTPS or without the object's key, no KMS on
 * the store) → `FAILED_PRECONDITION` with what to change, untrusted TLS certificates →
 * `FAILED_PRECONDITION`. Then the SDK's baseline: a fired call signal gives its reason; network
 * failures and the request handler's timeouts (a store that is down or stalled) →
 * `UNAVAILABLE`/`BACKEND_UNAVAILABLE`; an HTTP status → the SDK's status table
 * (`@stowage/sdk/plugin` `mapHttpStatus`); anything else `INTERNAL`.
 */
export function toStowageError(error: unknown, context: ErrorContext): StowageError {
  if (error instanceof StowageError) return error;
  if (context.signal?.aborted === true) return abortError(context.signal);
  if (error instanceof Error && error.name === "AbortError") return StowageError.from(error);
  const code = awsErrorCode(error);
  const status = awsHttpStatus(error);
  const detail = error instanceof Error ? error.message : String(error);
  const where = [context.bucket === undefined ? "" : `bucket ${JSON.stringify(context.bucket)}`, context.key === undefined ? "" : `key ${JSON.stringify(context.key)}`]
    .filter((s) => s !== "")
    .join(", ");
  const metadata: Record<string, string> = { aws_code: code, http_status: String(status), ...retryAfterMetadata((error as { $response?: { headers?: unknown } }).$response?.headers) };
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
  if (code === "AccessDenied" || code === "AllAccessDisabled" || code === "UnauthorizedOperation") return make(Code.PermissionDenied, Reason.AccessDenied);
  if (code === "InvalidBucketName" || code === "KeyTooLongError" || code === "XMinioInvalidObjectName" || code === "InvalidObjectName") return make(Code.InvalidArgument, Reason.InvalidName);
  if (code === "BadDigest" || code === "XAmzContentSHA256Mismatch" || code === "InvalidDigest") return make(Code.DataLoss, Reason.IntegrityMismatch);
  // The multipart upload was aborted (by a lifecycle rule, another client): retry the whole put.
  if (code === "NoSuchUpload") return make(Code.Aborted, undefined);
  const encryption = encryptionProblem(code, detail);
  if (encryption !== undefined) {
    return new StowageError(Code.FailedPrecondition, `${message}; ${encryption.hint}`, {
      ...(encryption.reason === undefined ? {} : { reason: encryption.reason }),
      metadata,
      cause: error,
    });
  }
  const tls = tlsErrorCode(error);
  if (tls !== undefined) {
    return new StowageError(Code.FailedPrecondition, `${message}; the server's TLS certificate is not trusted: set caCert (or insecureSkipTLSVerify for tests)`, {
      metadata: { ...metadata, tls_error: tls },
      cause: error,
    });
  }
  if (code === "NotImplemented") return make(Code.Unimplemented, Reason.Unsupported);
  if (THROTTLING.has(code)) return make(Code.Unavailable, Reason.BackendUnavailable);
  // No HTTP answer: the connection failed, broke or timed out (the request handler's own timeouts
  // throw a TimeoutError): the store is down or stalled.
  const network = status === 0 ? networkErrorCode(error) : undefined;
  if (network !== undefined || (status === 0 && error instanceof Error && error.name === "TimeoutError")) {
    return new StowageError(Code.Unavailable, `${message}; the store is unreachable or stalled, retry later`, {
      reason: Reason.BackendUnavailable,
      metadata: { ...metadata, ...(network === undefined ? {} : { error_code: network }) },
      cause: error,
    });
  }
  if (status !== 0) return httpStatusError(status, message, { metadata, cause: error });
  return make(Code.Internal, Reason.Internal);
}
