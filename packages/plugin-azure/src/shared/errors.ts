/**
 * Maps errors thrown by the `@azure/*` SDKs (a `RestError` from `@azure/core-rest-pipeline`, an
 * `AbortError` from `@azure/abort-controller`, `@azure/identity` credential errors, Node network
 * errors) to {@link StowageError}s with the contract's codes and reasons. Used by the Blob
 * ObjectStore and the Managed Disks BlockStore alike.
 *
 * @packageDocumentation
 */
import { Code, Reason, StowageError } from "@stowage/sdk";
import { httpStatusError, networkErrorCode, retryAfterMetadata, tlsErrorCode } from "@stowage/sdk/plugin";

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
 * Converts anything an Azure SDK call threw into a StowageError. Azure's error codes come first:
 * `BlobNotFound` → `NOT_FOUND`/`OBJECT_NOT_FOUND`, `ContainerNotFound` → `BUCKET_NOT_FOUND`, bad
 * or missing credentials → `UNAUTHENTICATED`, `AuthorizationFailure` → `PERMISSION_DENIED`,
 * `InvalidRange` → `OUT_OF_RANGE`, `ServerBusy` and other throttling codes →
 * `UNAVAILABLE`/`BACKEND_UNAVAILABLE`, conflicts → `ABORTED`, quotas → `RESOURCE_EXHAUSTED`;
 * untrusted TLS certificates → `FAILED_PRECONDITION`; network failures and timed-out connections
 * → `UNAVAILABLE`/`BACKEND_UNAVAILABLE`; aborts → the signal's reason (`CANCELLED`,
 * `DEADLINE_EXCEEDED`, or a request timeout's `UNAVAILABLE`); any other HTTP status → the SDK's
 * status table (`@stowage/sdk/plugin` `mapHttpStatus`); anything else `INTERNAL`. StowageErrors
 * pass through unchanged. Credential failures never quote the token endpoint's answer.
 */
export function toStowageError(error: unknown, context: ErrorContext): StowageError {
  if (error instanceof StowageError) return error;
  if (context.signal?.aborted === true) return abortedError(context.signal, context.operation, error);
  if (isAbortError(error)) return StowageError.from(error);

  const code = azureErrorCode(error);
  const status = azureHttpStatus(error);
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
  const metadata: Record<string, string> = {
    ...context.resource,
    azure_code: code,
    http_status: String(status),
    ...retryAfterMetadata((error as { response?: { headers?: unknown } }).response?.headers),
  };
  if (context.bucket !== undefined) metadata.bucket = context.bucket;
  if (context.key !== undefined) metadata.key = context.key;
  const message = `${context.operation}${where === "" ? "" : ` (${where})`} failed: ${code === "" || detail.includes(code) ? "" : `${code}: `}${detail}`;
  const make = (c: Code, reason: string | undefined, extra = ""): StowageError =>
    new StowageError(c, `${message}${extra}`, { ...(reason === undefined ? {} : { reason }), metadata, cause: error });

  const errorName = typeof shape(error).name === "string" ? (shape(error).name as string) : "";
  if (errorName === "CredentialUnavailableError" || errorName === "AuthenticationError" || errorName === "AuthenticationRequiredError") {
    // The identity library's message may carry the token endpoint's answer (which a proxy could
    // fill with the request, secret included): keep only the Entra ID error code.
    const aadCode = /\bAADSTS\d+\b/.exec(rawDetail)?.[0];
    const status401 = status === 0 ? "" : ` (HTTP ${String(status)})`;
    return new StowageError(
      Code.Unauthenticated,
      `${context.operation}${where === "" ? "" : ` (${where})`} failed: Entra ID refused or could not issue a token${status401}${aadCode === undefined ? "" : `: ${aadCode}`}; check the credentials file (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET) or the workload/managed identity`,
      { reason: Reason.AccessDenied, metadata: { ...metadata, azure_code: aadCode ?? code } },
    );
  }
  if (NOT_FOUND_OBJECT.has(code)) return make(Code.NotFound, Reason.ObjectNotFound);
  if (NOT_FOUND_BUCKET.has(code)) return make(Code.NotFound, Reason.BucketNotFound, "; create the container or fix the \"bucket\" setting");
  if (code === "InvalidRange") return make(Code.OutOfRange, Reason.InvalidRange);
  if (UNAUTHENTICATED.has(code)) return make(Code.Unauthenticated, Reason.AccessDenied);
  if (PERMISSION_DENIED.has(code)) return make(Code.PermissionDenied, Reason.AccessDenied);
  if (INTEGRITY.has(code)) return make(Code.DataLoss, Reason.IntegrityMismatch);
  if (QUOTA.has(code)) return make(Code.ResourceExhausted, undefined);
  if (NOT_FOUND_GENERIC.has(code) || status === 404) {
    const notFound = context.notFound ?? (context.key !== undefined ? "object" : context.bucket !== undefined ? "bucket" : undefined);
    const reason = notFound === "object" ? Reason.ObjectNotFound : notFound === "bucket" ? Reason.BucketNotFound : notFound;
    return make(Code.NotFound, reason);
  }
  const tls = tlsErrorCode(error);
  if (tls !== undefined) {
    return new StowageError(Code.FailedPrecondition, `${message}; the server's TLS certificate is not trusted: set caCert to the PEM file of its CA`, {
      metadata: { ...metadata, tls_error: tls },
      cause: error,
    });
  }
  if (THROTTLED.has(code)) return make(Code.Unavailable, Reason.BackendUnavailable);
  const network = status === 0 ? networkErrorCode(error) : undefined;
  if (network !== undefined || code === "REQUEST_SEND_ERROR" || code === "PARSE_ERROR") {
    return new StowageError(Code.Unavailable, `${message}; the store is unreachable or stalled, retry later`, {
      reason: Reason.BackendUnavailable,
      metadata: { ...metadata, ...(network === undefined ? {} : { error_code: network }) },
      cause: error,
    });
  }
  if (code === "BlobAlreadyExists" || code === "ContainerAlreadyExists" || code === "ResourceAlreadyExists") return make(Code.AlreadyExists, undefined);
  if (CONFLICT.has(code)) return make(Code.Aborted, undefined);
  if (INVALID_NAME.has(code)) return make(Code.InvalidArgument, Reason.InvalidName);
  if (status !== 0) return httpStatusError(status, message, { metadata, cause: error });
  return make(Code.Internal, Reason.Internal);
}
