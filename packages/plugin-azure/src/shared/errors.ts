/**
 * Maps errors thrown by the `@azure/*` SDKs (a `RestError` from `@azure/core-rest-pipeline`, an
 * `AbortError` from `@azure/abort-controller`, `@azure/identity` credential errors, Node network
 * errors) to {@link StowageError}s with the contract's codes and reasons. Used by the Blob
 * ObjectStore and the Managed Disks BlockStore alike.
 *
 * @packageDocumentation
 */
import { Code, Reason, StowageError } from "@stowage/sdk";

/** What an Azure SDK error may carry (a `RestError`, or an ARM `CloudError` shaped like one). */
interface AzureErrorShape {
  readonly name?: unknown;
  readonly code?: unknown;
  readonly statusCode?: unknown;
  readonly message?: unknown;
  readonly details?: { readonly errorCode?: unknown; readonly error?: { readonly code?: unknown } } | null;
  readonly response?: { readonly status?: unknown; readonly headers?: { get?: (name: string) => string | undefined } } | null;
  readonly cause?: unknown;
}

function shape(error: unknown): AzureErrorShape {
  return typeof error === "object" && error !== null ? error : {};
}

/**
 * The service's error code (`BlobNotFound`, `ContainerNotFound`, `ResourceNotFound`,
 * `AuthorizationFailure`, ...), or "". Storage puts it in the `x-ms-error-code` header (the only
 * place for HEAD responses), the SDK copies it to `details.errorCode`; ARM puts it in the body.
 */
export function azureErrorCode(error: unknown): string {
  const s = shape(error);
  const candidates: unknown[] = [s.details?.errorCode, safeHeader(s, "x-ms-error-code"), s.details?.error?.code, s.code];
  for (const c of candidates) if (typeof c === "string" && c !== "") return c;
  return "";
}

function safeHeader(s: AzureErrorShape, name: string): string | undefined {
  try {
    const get = s.response?.headers?.get;
    return typeof get === "function" ? get.call(s.response?.headers, name) : undefined;
  } catch {
    return undefined;
  }
}

/** The HTTP status of the failed response, or 0 (no response: network failure, abort). */
export function azureHttpStatus(error: unknown): number {
  const s = shape(error);
  if (typeof s.statusCode === "number") return s.statusCode;
  if (typeof s.response?.status === "number") return s.response.status;
  return 0;
}

/** Node's errno-style code of a network failure (`ECONNRESET`, ...), looking through `cause`. */
function errnoCode(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && /^(E[A-Z0-9_]+|ERR_[A-Z0-9_]+|UND_ERR_[A-Z0-9_]+|[A-Z_]*CERT[A-Z_]*|UNABLE_TO_[A-Z_]+)$/.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return "";
}

const NOT_FOUND_OBJECT = new Set(["BlobNotFound"]);
const NOT_FOUND_BUCKET = new Set(["ContainerNotFound", "ContainerBeingDeleted"]);
const NOT_FOUND_GENERIC = new Set(["ResourceNotFound", "NotFound", "ResourceGroupNotFound", "ParentResourceNotFound", "StorageAccountNotFound", "SubscriptionNotFound"]);
const UNAUTHENTICATED = new Set([
  "AuthenticationFailed",
  "InvalidAuthenticationInfo",
  "InvalidAuthenticationToken",
  "ExpiredAuthenticationToken",
  "InvalidAuthenticationTokenTenant",
  "AuthenticationError",
  "CredentialUnavailableError",
  "NoAuthenticationInformation",
]);
const PERMISSION_DENIED = new Set([
  "AuthorizationFailure",
  "AuthorizationPermissionMismatch",
  "AuthorizationResourceTypeMismatch",
  "AuthorizationServiceMismatch",
  "AuthorizationProtocolMismatch",
  "AuthorizationSourceIPMismatch",
  "InsufficientAccountPermissions",
  "AuthorizationFailed",
  "LinkedAuthorizationFailed",
  "KeyBasedAuthenticationNotPermitted",
]);
const INVALID_NAME = new Set(["InvalidResourceName", "OutOfRangeInput", "InvalidUri", "InvalidBlobOrBlock", "InvalidParameter", "InvalidResourceGroupName"]);
const INTEGRITY = new Set(["Md5Mismatch", "Crc64Mismatch", "InvalidMd5", "InvalidBlockList"]);
const THROTTLED = new Set(["ServerBusy", "OperationTimedOut", "InternalError", "TooManyRequests", "RetryableError"]);
const CONFLICT = new Set(["ConditionNotMet", "LeaseIdMissing", "LeaseIdMismatchWithBlobOperation", "LeaseIsBrokenAndCannotBeRenewed", "Conflict", "OperationNotAllowed"]);
const QUOTA = new Set(["QuotaExceeded", "OperationNotAllowedQuotaExceeded", "BlockCountExceedsLimit", "BlockListTooLong"]);
const TLS = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);
const NETWORK = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ERR_STREAM_PREMATURE_CLOSE",
  "UND_ERR_SOCKET",
  "REQUEST_SEND_ERROR",
  "PARSE_ERROR",
]);

/** Context of a failed call, put in messages and metadata. */
export interface ErrorContext {
  /** What was being done, e.g. `put blob`, `create snapshot`. */
  readonly operation: string;
  /** Bucket (container), when the call names one. */
  readonly bucket?: string | undefined;
  /** Key (blob name), when the call names one. */
  readonly key?: string | undefined;
  /** Other identifying facts (snapshot ID, disk ID, ...), copied into the error's metadata. */
  readonly resource?: Readonly<Record<string, string>> | undefined;
  /**
   * The signal of the call. When it has fired, the error becomes `CANCELLED` or
   * `DEADLINE_EXCEEDED` after the signal's reason, whatever the SDK threw.
   */
  readonly signal?: AbortSignal | undefined;
  /**
   * What a 404 without a recognised code means: `"object"` (default when `key` is given),
   * `"bucket"` (default when only `bucket` is given), or a reason such as
   * `Reason.SnapshotNotFound`.
   */
  readonly notFound?: "object" | "bucket" | Reason | undefined;
}

/** Whether the error is a "does not exist" answer (404, `BlobNotFound`, `ResourceNotFound`, ...). */
export function isNotFound(error: unknown): boolean {
  if (error instanceof StowageError) return error.code === Code.NotFound;
  const code = azureErrorCode(error);
  return azureHttpStatus(error) === 404 || NOT_FOUND_OBJECT.has(code) || NOT_FOUND_BUCKET.has(code) || NOT_FOUND_GENERIC.has(code);
}

/** Whether the error is an abort (the SDK's `AbortError`, a DOM `AbortError`/`TimeoutError`). */
export function isAbortError(error: unknown): boolean {
  const name = shape(error).name;
  return name === "AbortError" || name === "TimeoutError";
}

/** The StowageError for a fired signal: `DEADLINE_EXCEEDED` for a timeout reason, else `CANCELLED`. */
export function abortedError(signal: AbortSignal, operation: string, cause?: unknown): StowageError {
  const reason: unknown = signal.reason;
  if (reason instanceof StowageError) return reason;
  const timedOut = reason instanceof Error && reason.name === "TimeoutError";
  const detail = reason instanceof Error ? reason.message : "the call was cancelled";
  return timedOut
    ? new StowageError(Code.DeadlineExceeded, `${operation}: deadline exceeded: ${detail}`, { reason: Reason.DeadlineExceeded, cause: cause ?? reason })
    : new StowageError(Code.Canceled, `${operation}: cancelled: ${detail}`, { reason: Reason.Cancelled, cause: cause ?? reason });
}

/**
 * Converts anything an Azure SDK call threw into a StowageError:
 * `BlobNotFound`/404 → `NOT_FOUND`/`OBJECT_NOT_FOUND`, `ContainerNotFound` → `BUCKET_NOT_FOUND`,
 * bad or missing credentials → `UNAUTHENTICATED`, `AuthorizationFailure`/403 → `PERMISSION_DENIED`,
 * `InvalidRange`/416 → `OUT_OF_RANGE`, `ServerBusy`, 429, 5xx and network failures →
 * `UNAVAILABLE`/`BACKEND_UNAVAILABLE`, aborts → `CANCELLED` or `DEADLINE_EXCEEDED`; anything else
 * `INTERNAL`. StowageErrors pass through unchanged.
 */
export function toStowageError(error: unknown, context: ErrorContext): StowageError {
  if (error instanceof StowageError) return error;
  if (context.signal?.aborted === true) return abortedError(context.signal, context.operation, error);
  if (isAbortError(error)) return StowageError.from(error);

  const code = azureErrorCode(error);
  const status = azureHttpStatus(error);
  const errno = errnoCode(error);
  const rawDetail = error instanceof Error ? error.message : String(error);
  // Storage error bodies repeat RequestId/Time lines; keep the first line.
  const detail = rawDetail.split("\n")[0] ?? rawDetail;
  const where = [
    context.bucket === undefined ? "" : `container ${JSON.stringify(context.bucket)}`,
    context.key === undefined ? "" : `blob ${JSON.stringify(context.key)}`,
    ...Object.entries(context.resource ?? {}).map(([k, v]) => `${k} ${JSON.stringify(v)}`),
  ]
    .filter((s) => s !== "")
    .join(", ");
  const metadata: Record<string, string> = { ...context.resource, azure_code: code, http_status: String(status) };
  if (context.bucket !== undefined) metadata.bucket = context.bucket;
  if (context.key !== undefined) metadata.key = context.key;
  const message = `${context.operation}${where === "" ? "" : ` (${where})`} failed: ${code === "" || detail.includes(code) ? "" : `${code}: `}${detail}`;
  const make = (c: Code, reason: string | undefined, extra = ""): StowageError =>
    new StowageError(c, `${message}${extra}`, { ...(reason === undefined ? {} : { reason }), metadata, cause: error });

  const errorName = typeof shape(error).name === "string" ? (shape(error).name as string) : "";
  if (errorName === "CredentialUnavailableError" || errorName === "AuthenticationError" || errorName === "AuthenticationRequiredError") {
    return make(Code.Unauthenticated, Reason.AccessDenied, "; check the credentials file (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET) or the workload/managed identity");
  }
  if (NOT_FOUND_OBJECT.has(code)) return make(Code.NotFound, Reason.ObjectNotFound);
  if (NOT_FOUND_BUCKET.has(code)) return make(Code.NotFound, Reason.BucketNotFound, "; create the container or fix the \"bucket\" setting");
  if (code === "InvalidRange" || status === 416) return make(Code.OutOfRange, Reason.InvalidRange);
  if (UNAUTHENTICATED.has(code) || status === 401) return make(Code.Unauthenticated, Reason.AccessDenied);
  if (PERMISSION_DENIED.has(code) || status === 403) return make(Code.PermissionDenied, Reason.AccessDenied);
  if (INTEGRITY.has(code)) return make(Code.DataLoss, Reason.IntegrityMismatch);
  if (QUOTA.has(code)) return make(Code.ResourceExhausted, undefined);
  if (NOT_FOUND_GENERIC.has(code) || status === 404) {
    const notFound = context.notFound ?? (context.key !== undefined ? "object" : context.bucket !== undefined ? "bucket" : undefined);
    const reason = notFound === "object" ? Reason.ObjectNotFound : notFound === "bucket" ? Reason.BucketNotFound : notFound;
    return make(Code.NotFound, reason);
  }
  if (TLS.has(errno) || errno.startsWith("ERR_TLS_") || errno.startsWith("ERR_SSL_")) {
    return new StowageError(Code.FailedPrecondition, `${message}; the server's TLS certificate is not trusted: set caCert to the PEM file of its CA`, {
      metadata: { ...metadata, tls_error: errno },
      cause: error,
    });
  }
  if (THROTTLED.has(code) || status === 429 || status >= 500 || NETWORK.has(errno) || NETWORK.has(code)) {
    return make(Code.Unavailable, Reason.BackendUnavailable);
  }
  if (code === "BlobAlreadyExists" || code === "ContainerAlreadyExists" || code === "ResourceAlreadyExists") return make(Code.AlreadyExists, undefined);
  if (CONFLICT.has(code) || status === 409 || status === 412) return make(Code.Aborted, undefined);
  if (INVALID_NAME.has(code)) return make(Code.InvalidArgument, Reason.InvalidName);
  if (status === 400) return make(Code.InvalidArgument, undefined);
  return make(Code.Internal, Reason.Internal);
}
