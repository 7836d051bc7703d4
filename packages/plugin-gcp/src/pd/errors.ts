/**
 * Maps Compute Engine failures (errors of the `@google-cloud/compute` client and failed operations)
 * to {@link StowageError}s with the contract's codes and reasons.
 *
 * @packageDocumentation
 */
import { Code, Reason, StowageError } from "@stowage/sdk";
import { httpStatusError, networkErrorCode } from "@stowage/sdk/plugin";
import { fromCredentialEndpoint } from "../shared/errors.js";

/** What a Compute Engine client error carries (google-gax's GoogleError). */
interface GaxErrorShape {
  readonly code?: unknown;
  readonly httpStatusCode?: unknown;
  readonly message?: unknown;
}

const RAW_PAYLOAD = Symbol.for("google-gax.rawHttpResponsePayload");

/** The HTTP status of a failed Compute Engine request, or 0. */
export function httpStatus(error: unknown): number {
  if (typeof error !== "object" || error === null) return 0;
  const status = (error as GaxErrorShape).httpStatusCode;
  return typeof status === "number" ? status : 0;
}

const GRPC_CODES = new Map<number, Code>(Object.values(Code).flatMap((c) => (typeof c === "number" ? [[c, c] as const] : [])));

/** The gRPC code google-gax gave the error, or undefined. */
function grpcCode(error: unknown): Code | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const code = (error as GaxErrorShape).code;
  if (typeof code !== "number") return undefined;
  return GRPC_CODES.get(code);
}

/** The first `errors[].reason` of the JSON error body (`notFound`, `alreadyExists`, `rateLimitExceeded`, ...), or "". */
export function errorReason(error: unknown): string {
  if (typeof error !== "object" || error === null) return "";
  let payload: unknown;
  try {
    payload = (error as Record<symbol, unknown>)[RAW_PAYLOAD];
  } catch {
    return "";
  }
  if (typeof payload === "string") {
    try {
      payload = JSON.parse(payload);
    } catch {
      return "";
    }
  }
  const errors = (payload as { error?: { errors?: { reason?: unknown }[] } } | undefined)?.error?.errors;
  const reason = Array.isArray(errors) ? errors[0]?.reason : undefined;
  return typeof reason === "string" ? reason : "";
}

/** Whether the error is Compute Engine's 404 (`notFound`). */
export function isNotFound(error: unknown): boolean {
  return httpStatus(error) === 404 || (httpStatus(error) === 0 && grpcCode(error) === Code.NotFound);
}

/** Context of a failed call, put in messages and metadata. */
export interface PdErrorContext {
  /** What was being done, e.g. `create snapshot of disk "d"`. */
  readonly operation: string;
  /** Snapshot concerned. */
  readonly snapshotId?: string | undefined;
  /** Volume concerned. */
  readonly volumeId?: string | undefined;
}

function metadataOf(context: PdErrorContext, extra: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = { ...extra };
  if (context.snapshotId !== undefined) out.snapshot_id = context.snapshotId;
  if (context.volumeId !== undefined) out.volume_id = context.volumeId;
  return out;
}

/**
 * Converts anything a Compute Engine call threw into a StowageError. Compute Engine's reasons come
 * first: quota reasons → `RESOURCE_EXHAUSTED`, rate limits → `UNAVAILABLE`/`BACKEND_UNAVAILABLE`,
 * `resourceNotReady`/`resourceInUseByAnotherResource` → `FAILED_PRECONDITION`, 409 `alreadyExists`
 * → `ALREADY_EXISTS`; a request that got no answer in time (google-gax's per-attempt timeout) or
 * whose connection failed → `UNAVAILABLE`/`BACKEND_UNAVAILABLE`; cancellation → `CANCELLED`; any
 * other HTTP status → the SDK's status table (`@stowage/sdk/plugin` `mapHttpStatus`); anything else
 * `INTERNAL`. Callers map the 404s that have a contract reason (snapshot, volume) before calling
 * this, and the caller's deadline before it reaches the client. Token endpoint answers are never
 * quoted.
 */
export function toPdError(error: unknown, context: PdErrorContext): StowageError {
  if (error instanceof StowageError) return error;
  if (error instanceof Error && (error.name === "AbortError" || error.name === "TimeoutError")) return StowageError.from(error);
  const status = httpStatus(error);
  const code = grpcCode(error);
  const reason = errorReason(error);
  const detail = fromCredentialEndpoint(error)
    ? `the credential endpoint refused the request${status === 0 ? "" : ` with HTTP ${String(status)}`} (its answer is not shown: it may repeat the credentials)`
    : error instanceof Error
      ? error.message
      : String(error);
  const message = `${context.operation} failed: ${status === 0 ? "" : `HTTP ${String(status)}${reason === "" ? "" : ` ${reason}`}: `}${detail}`;
  const metadata = metadataOf(context, { http_status: String(status), ...(reason === "" ? {} : { gce_reason: reason }) });
  const make = (c: Code, r: string | undefined, text = message): StowageError => new StowageError(c, text, { ...(r === undefined ? {} : { reason: r }), metadata, cause: error });

  // google-gax gives up on retried (transient) errors with DEADLINE_EXCEEDED and the last error in the message.
  if (status === 0 && code === Code.DeadlineExceeded && detail.startsWith("Exceeded maximum number of retries")) {
    return make(Code.Unavailable, Reason.BackendUnavailable, `${context.operation} failed after retries: ${detail}; Compute Engine is throttling or unavailable, retry later`);
  }
  if (status === 0 && code === Code.Canceled) return make(Code.Canceled, Reason.Cancelled);
  // The caller's deadline is handled before the client sees the call: this is the client's own
  // per-attempt timeout, a Compute Engine that did not answer.
  if (status === 0 && code === Code.DeadlineExceeded) {
    return make(Code.Unavailable, Reason.BackendUnavailable, `${context.operation} failed: Compute Engine did not answer in time (requestTimeoutSeconds): ${detail}; retry later`);
  }
  if (status === 401 || (status === 0 && code === Code.Unauthenticated)) return make(Code.Unauthenticated, Reason.AccessDenied, `${message}; check credentialsFile`);
  if (reason === "quotaExceeded" || reason === "limitExceeded") return make(Code.ResourceExhausted, undefined);
  if (reason === "rateLimitExceeded" || reason === "userRateLimitExceeded") return make(Code.Unavailable, Reason.BackendUnavailable);
  if (status === 0 && code === Code.PermissionDenied) return make(Code.PermissionDenied, Reason.AccessDenied);
  if (status === 409 && (reason === "alreadyExists" || reason === "")) return make(Code.AlreadyExists, undefined);
  if (status === 400 && (reason === "resourceNotReady" || reason === "resourceInUseByAnotherResource")) return make(Code.FailedPrecondition, undefined);
  if (status === 0 && (code === Code.Unavailable || networkErrorCode(error) !== undefined)) return make(Code.Unavailable, Reason.BackendUnavailable);
  if (status !== 0) return httpStatusError(status, message, { metadata, cause: error });
  return make(Code.Internal, Reason.Internal);
}

/** An operation's `error.errors[]` entry. */
export interface OperationErrorEntry {
  /** Error code, e.g. `QUOTA_EXCEEDED`. */
  readonly code?: string | null | undefined;
  /** Message. */
  readonly message?: string | null | undefined;
}

/** An operation's `error`. */
export interface OperationErrors {
  /** The error entries. */
  readonly errors?: readonly OperationErrorEntry[] | null | undefined;
}

/** The parts of an Operation that describe its failure. */
export interface FailedOperation {
  /** Operation name. */
  readonly name?: string | null | undefined;
  /** Errors. */
  readonly error?: OperationErrors | null | undefined;
  /** HTTP status the operation's failure corresponds to. */
  readonly httpErrorStatusCode?: number | null | undefined;
}

/** Converts a DONE operation with an error into a StowageError carrying the operation's error codes and messages. */
export function operationError(op: FailedOperation, context: PdErrorContext): StowageError {
  const entries = op.error?.errors ?? [];
  const first = entries[0]?.code ?? "";
  const text = entries.map((e) => `${e.code ?? "ERROR"}: ${e.message ?? ""}`).join("; ");
  const message = `${context.operation} failed: operation ${op.name ?? ""} ended with ${text === "" ? "an error" : text}`;
  const metadata = metadataOf(context, { gce_operation: op.name ?? "", gce_error_code: first });
  const make = (c: Code, r?: string): StowageError => new StowageError(c, message, { ...(r === undefined ? {} : { reason: r }), metadata });
  if (/QUOTA|LIMIT_EXCEEDED$/.test(first) && first !== "RATE_LIMIT_EXCEEDED") return make(Code.ResourceExhausted);
  if (first === "RATE_LIMIT_EXCEEDED" || first === "ZONE_RESOURCE_POOL_EXHAUSTED" || first === "RESOURCE_OPERATION_RATE_EXCEEDED") return make(Code.Unavailable, Reason.BackendUnavailable);
  if (first === "RESOURCE_NOT_FOUND") return make(Code.NotFound);
  if (first === "RESOURCE_ALREADY_EXISTS" || first === "ALREADY_EXISTS") return make(Code.AlreadyExists);
  if (first === "RESOURCE_NOT_READY" || first === "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE") return make(Code.FailedPrecondition);
  if (first.startsWith("INVALID") || first === "BAD_REQUEST") return make(Code.InvalidArgument);
  const status = op.httpErrorStatusCode ?? 0;
  if (status === 403) return make(Code.PermissionDenied, Reason.AccessDenied);
  if (status === 429 || status >= 500) return make(Code.Unavailable, Reason.BackendUnavailable);
  if (status === 400) return make(Code.InvalidArgument);
  return make(Code.Internal, Reason.Internal);
}
