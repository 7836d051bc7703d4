/**
 * Maps failures of Google Cloud client libraries (the `ApiError` of `@google-cloud/storage`, the
 * `GaxiosError` of gaxios and google-auth-library, network and abort errors) to
 * {@link StowageError}s with the contract's codes and reasons.
 *
 * @packageDocumentation
 */
import { Code, Reason, StowageError } from "@stowage/sdk";
import { abortError, httpStatusError, networkErrorCode, retryAfterMetadata, tlsErrorCode } from "@stowage/sdk/plugin";

/** What the error classes of the Google client libraries carry. */
interface GoogleErrorShape {
  readonly name?: unknown;
  readonly message?: unknown;
  /** HTTP status (`ApiError`), or an errno / library code string (`GaxiosError`, `RequestError`). */
  readonly code?: unknown;
  /** HTTP status (`GaxiosError`). */
  readonly status?: unknown;
  /** `ApiError`: the `errors[]` of the JSON error body. */
  readonly errors?: unknown;
  /** `GaxiosError`/`ApiError`: the failed response. */
  readonly response?: { readonly status?: unknown; readonly statusCode?: unknown; readonly data?: unknown; readonly body?: unknown } | undefined;
  /** `GaxiosError`: the low-level error. */
  readonly error?: unknown;
  readonly cause?: unknown;
}

function shapeOf(error: unknown): GoogleErrorShape {
  return typeof error === "object" && error !== null ? error : {};
}

/** The HTTP status of a failed Google API request, or 0 when there was no HTTP answer. */
export function httpStatus(error: unknown): number {
  const shape = shapeOf(error);
  for (const candidate of [shape.code, shape.status, shape.response?.status, shape.response?.statusCode]) {
    if (typeof candidate === "number" && candidate >= 100 && candidate < 600) return candidate;
  }
  return 0;
}

function parseBody(body: unknown): unknown {
  if (typeof body !== "string") return body;
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * The first `errors[].reason` of a Google JSON error body (`notFound`, `alreadyExists`,
 * `rateLimitExceeded`, `forbidden`, ...), or, for OAuth token endpoint failures, the `error` string
 * (`invalid_grant`, ...); "" when there is none.
 */
export function errorReason(error: unknown): string {
  const shape = shapeOf(error);
  const fromList = (list: unknown): string => {
    if (!Array.isArray(list)) return "";
    const reason: unknown = (list[0] as { reason?: unknown } | undefined)?.reason;
    return typeof reason === "string" ? reason : "";
  };
  const direct = fromList(shape.errors);
  if (direct !== "") return direct;
  const data = parseBody(shape.response?.data ?? shape.response?.body);
  if (typeof data === "object" && data !== null) {
    const body = (data as { error?: unknown }).error;
    if (typeof body === "string") return body;
    if (typeof body === "object" && body !== null) {
      const listed = fromList((body as { errors?: unknown }).errors);
      if (listed !== "") return listed;
      const status: unknown = (body as { status?: unknown }).status;
      if (typeof status === "string") return status;
    }
  }
  return "";
}

/** The errno or library code of a failure without HTTP answer (`ECONNREFUSED`, `FILE_NO_UPLOAD`, ...), or "". */
export function errnoOf(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    const shape = current as GoogleErrorShape;
    if (typeof shape.code === "string" && shape.code !== "") return shape.code;
    current = shape.error ?? shape.cause;
  }
  return "";
}

/** Whether the error is Google's 404 (`notFound`): a missing object, bucket, disk or snapshot. */
export function isNotFound(error: unknown): boolean {
  if (error instanceof StowageError) return error.code === Code.NotFound;
  return httpStatus(error) === 404 || errorReason(error) === "notFound";
}

/** Whether the error is an abort of the caller's signal or a timeout, by any library's naming. */
export function isAbortError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === "AbortError" || error.name === "TimeoutError") return true;
  const code = errnoOf(error);
  return code === "ABORT_ERR" || code === "ERR_ABORTED";
}

/** Context of a failed call, put in messages and metadata. */
export interface GoogleErrorContext {
  /** What was being done, e.g. `put object`. */
  readonly operation: string;
  /** Bucket, when the call names one. */
  readonly bucket?: string | undefined;
  /** Object key, when the call names one. */
  readonly key?: string | undefined;
  /** Snapshot, when the call names one. */
  readonly snapshotId?: string | undefined;
  /** Volume, when the call names one. */
  readonly volumeId?: string | undefined;
  /**
   * Reason to give a 404: by default a 404 naming a bucket is `BUCKET_NOT_FOUND` and, with a `key`,
   * any other 404 is `OBJECT_NOT_FOUND`; without a key, no reason.
   */
  readonly notFoundReason?: Reason | undefined;
  /** The signal of the call: when it is aborted, any failure is reported as its cancellation or deadline. */
  readonly signal?: AbortSignal | undefined;
}

const INTEGRITY = new Set(["FILE_NO_UPLOAD", "FILE_NO_UPLOAD_DELETE", "CONTENT_DOWNLOAD_MISMATCH"]);

const THROTTLED = new Set(["rateLimitExceeded", "userRateLimitExceeded", "backendError", "internalError", "RESOURCE_EXHAUSTED", "UNAVAILABLE"]);

const AUTH_FAILURES = new Set(["invalid_grant", "invalid_client", "unauthorized_client", "authError", "required", "UNAUTHENTICATED"]);

function firstLine(text: string): string {
  const line = text.split("\n")[0] ?? "";
  return line.length > 500 ? `${line.slice(0, 500)}…` : line;
}

/**
 * Which credential endpoint the failed request went to: `"token"` for an OAuth token endpoint
 * (`…/token`), an STS exchange or the metadata server, `"iam"` for the IAM Credentials API
 * (`signBlob`, `generateAccessToken`, …); `undefined` for any other request. Their answers are never
 * quoted: an endpoint or proxy that echoes the request would put a private key's assertion, a
 * refresh token or a client secret into the error.
 */
export function credentialEndpoint(error: unknown): "token" | "iam" | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    const shape = current as { config?: { url?: unknown }; response?: { config?: { url?: unknown } } };
    const raw = shape.config?.url ?? shape.response?.config?.url;
    const url = raw instanceof URL ? raw.href : typeof raw === "string" ? raw : "";
    if (/:signBlob|:signJwt|:generateAccessToken|:generateIdToken/i.test(url)) return "iam";
    if (/\/token(\?|$)|\/\/sts\.|metadata\.google\.internal|169\.254\.169\.254|\/computeMetadata\//i.test(url)) return "token";
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Whether the failed request went to a credential endpoint (see {@link credentialEndpoint}). */
export function fromCredentialEndpoint(error: unknown): boolean {
  return credentialEndpoint(error) !== undefined;
}

/**
 * Converts anything a Google Cloud client call threw into a StowageError:
 * 404/`notFound` → `NOT_FOUND` (`BUCKET_NOT_FOUND`/`OBJECT_NOT_FOUND`, see
 * {@link GoogleErrorContext.notFoundReason}), 409/`alreadyExists` → `ALREADY_EXISTS`, 412 →
 * `FAILED_PRECONDITION`, 416 → `OUT_OF_RANGE`/`INVALID_RANGE`, 401 and refused tokens →
 * `UNAUTHENTICATED`/`ACCESS_DENIED`, 403/`forbidden` → `PERMISSION_DENIED`/`ACCESS_DENIED` (quota
 * reasons → `RESOURCE_EXHAUSTED`), 429/`rateLimitExceeded`, 5xx and network failures →
 * `UNAVAILABLE`/`BACKEND_UNAVAILABLE`, checksum mismatches → `DATA_LOSS`/`INTEGRITY_MISMATCH`,
 * untrusted TLS certificates → `FAILED_PRECONDITION`, aborts and timeouts →
 * `CANCELLED`/`DEADLINE_EXCEEDED`; anything else `INTERNAL`. StowageErrors pass through.
 *
 * @param error - What was caught.
 * @param context - What was being done, on which bucket, key, snapshot or volume.
 */
export function toStowageError(error: unknown, context: GoogleErrorContext): StowageError {
  if (error instanceof StowageError) return error;
  if (context.signal?.aborted === true) return abortError(context.signal);
  if (isAbortError(error)) {
    const err = error as Error;
    if (err.name === "AbortError" || err.name === "TimeoutError") return StowageError.from(err);
    return StowageError.from(Object.assign(new Error(err.message, { cause: err }), { name: "AbortError" }));
  }
  const status = httpStatus(error);
  const reason = errorReason(error);
  const errno = errnoOf(error);
  const credentials = credentialEndpoint(error);
  const detail = credentials !== undefined
    ? `the credential endpoint refused the request${status === 0 ? "" : ` with HTTP ${String(status)}`} (its answer is not shown: it may repeat the credentials)`
    : firstLine(error instanceof Error ? error.message : String(error));
  const where = [
    context.bucket === undefined ? "" : `bucket ${JSON.stringify(context.bucket)}`,
    context.key === undefined ? "" : `key ${JSON.stringify(context.key)}`,
    context.snapshotId === undefined ? "" : `snapshot ${JSON.stringify(context.snapshotId)}`,
    context.volumeId === undefined ? "" : `volume ${JSON.stringify(context.volumeId)}`,
  ]
    .filter((s) => s !== "")
    .join(", ");
  const metadata: Record<string, string> = { http_status: String(status), ...retryAfterMetadata((error as { response?: { headers?: unknown } }).response?.headers) };
  if (reason !== "") metadata.google_reason = reason;
  if (errno !== "") metadata.error_code = errno;
  if (context.bucket !== undefined) metadata.bucket = context.bucket;
  if (context.key !== undefined) metadata.key = context.key;
  if (context.snapshotId !== undefined) metadata.snapshot_id = context.snapshotId;
  if (context.volumeId !== undefined) metadata.volume_id = context.volumeId;
  const prefix = status === 0 ? "" : `HTTP ${String(status)}${reason === "" ? "" : ` ${reason}`}: `;
  const message = `${context.operation}${where === "" ? "" : ` (${where})`} failed: ${prefix}${detail}`;
  const make = (code: Code, why: Reason | undefined, text = message): StowageError =>
    new StowageError(code, text, { ...(why === undefined ? {} : { reason: why }), metadata, cause: error });

  if (INTEGRITY.has(errno)) {
    return make(Code.DataLoss, Reason.IntegrityMismatch, `${context.operation}${where === "" ? "" : ` (${where})`} failed: the CRC32C checksum of the data did not match the server's (${errno}); nothing was kept, send the body again`);
  }
  if (status === 404 || (status === 0 && reason === "notFound")) {
    if (context.notFoundReason !== undefined) return make(Code.NotFound, context.notFoundReason);
    if (context.bucket !== undefined && /bucket/i.test(detail) && !/no such object/i.test(detail)) {
      return make(Code.NotFound, Reason.BucketNotFound, `bucket ${JSON.stringify(context.bucket)} does not exist; create it or fix the "bucket" setting (${context.operation}: ${detail})`);
    }
    return make(Code.NotFound, context.key === undefined ? undefined : Reason.ObjectNotFound);
  }
  if (status === 416) return make(Code.OutOfRange, Reason.InvalidRange);
  if (status === 401 || (credentials === "token" && (status === 400 || status === 403)) || AUTH_FAILURES.has(reason) || /could not load the default credentials/i.test(detail)) {
    return make(Code.Unauthenticated, Reason.AccessDenied, `${message}; check the credentials (credentialsFile or the application default credentials)`);
  }
  if (reason === "quotaExceeded" || reason === "limitExceeded" || reason === "storageQuotaExceeded") return make(Code.ResourceExhausted, undefined);
  if (THROTTLED.has(reason)) return make(Code.Unavailable, Reason.BackendUnavailable);
  if (status === 403 || (status === 0 && (reason === "forbidden" || reason === "accessDenied" || reason === "insufficientPermissions"))) {
    return make(Code.PermissionDenied, Reason.AccessDenied, `${message}; grant the identity the IAM permission this call needs`);
  }
  if (status === 409 && (reason === "alreadyExists" || reason === "")) return make(Code.AlreadyExists, undefined);
  // A failed precondition (ifGenerationMatch, ...) is a test-and-set that lost: ABORTED (the SDK's table).
  if (status === 0 && reason === "conditionNotMet") return make(Code.Aborted, undefined);
  if (status === 400 && /crc32c|md5/i.test(detail)) return make(Code.DataLoss, Reason.IntegrityMismatch);
  if (tlsErrorCode(error) !== undefined) {
    return make(Code.FailedPrecondition, undefined, `${message}; the server's TLS certificate is not trusted (set NODE_EXTRA_CA_CERTS to its CA)`);
  }
  if (status === 0 && (networkErrorCode(error) !== undefined || /fetch failed|network/i.test(detail))) {
    return make(Code.Unavailable, Reason.BackendUnavailable, `${message}; the store is unreachable or stalled, retry later`);
  }
  if (status !== 0) return httpStatusError(status, message, { metadata, cause: error });
  return make(Code.Internal, Reason.Internal);
}
