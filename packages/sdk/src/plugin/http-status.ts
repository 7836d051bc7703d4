/**
 * One baseline mapping from a storage backend's HTTP answers and network failures to the
 * contract's codes and reasons, shared by every plugin that talks HTTP to its backend. Plugins
 * refine it with what their provider says more precisely (S3's `NoSuchBucket`, Azure's
 * `BlobNotFound`, Google's `rateLimitExceeded`, ...) and fall back to it for everything else, so the
 * same backend answer is the same code in every plugin.
 *
 * The table follows the gRPC status-code guidelines and the contract (docs/contract.md section 4):
 *
 * | HTTP status | Code | Reason |
 * |---|---|---|
 * | 400 and any other 4xx not listed | `INVALID_ARGUMENT` | none |
 * | 401 | `UNAUTHENTICATED` | `ACCESS_DENIED` |
 * | 403 | `PERMISSION_DENIED` | `ACCESS_DENIED` |
 * | 404, 410 | `NOT_FOUND` | none (the plugin names the entity) |
 * | 408, 429, 500, 502, 503, 504 and any other 5xx but 501 | `UNAVAILABLE` | `BACKEND_UNAVAILABLE` |
 * | 409, 412 | `ABORTED` | none |
 * | 416 | `OUT_OF_RANGE` | `INVALID_RANGE` |
 * | 499 | `CANCELLED` | `CANCELLED` |
 * | 501 | `UNIMPLEMENTED` | `UNSUPPORTED` |
 * | anything else (1xx, 2xx, 3xx) | `INTERNAL` | `INTERNAL` |
 *
 * Choices: throttling (429) and transient server errors are `UNAVAILABLE` because the contract's
 * general errors say so (`RESOURCE_EXHAUSTED` is left to a plugin's own limits); a 412 is a failed
 * conditional request, a test-and-set that lost, which the gRPC guidelines make `ABORTED` ("retry at
 * a higher level"), like a 409 conflict; a backend that timed out (408, 504) is unavailable, not the
 * caller's deadline.
 *
 * Network failures with no HTTP answer (a refused, reset or timed-out connection, `socket hang up`,
 * an unknown host) are `UNAVAILABLE`/`BACKEND_UNAVAILABLE` too: see {@link networkErrorCode}.
 *
 * @packageDocumentation
 */
import { Code, Reason, StowageError, type StowageErrorOptions } from "../errors.js";

/** A code and, where the contract defines one, a reason. */
export interface StatusMapping {
  /** The gRPC status code. */
  readonly code: Code;
  /** The machine-readable reason, or `undefined` when the contract defines none for the condition. */
  readonly reason: Reason | undefined;
}

const UNAVAILABLE: StatusMapping = { code: Code.Unavailable, reason: Reason.BackendUnavailable };

/**
 * The baseline code and reason of a backend's HTTP status (see the table in this module's
 * description). Plugins apply their provider's refinements first and use this for the rest.
 *
 * @example
 * ```ts
 * mapHttpStatus(503); // { code: Code.Unavailable, reason: "BACKEND_UNAVAILABLE" }
 * mapHttpStatus(412); // { code: Code.Aborted, reason: undefined }
 * ```
 */
export function mapHttpStatus(status: number): StatusMapping {
  switch (status) {
    case 401:
      return { code: Code.Unauthenticated, reason: Reason.AccessDenied };
    case 403:
      return { code: Code.PermissionDenied, reason: Reason.AccessDenied };
    case 404:
    case 410:
      return { code: Code.NotFound, reason: undefined };
    case 408:
    case 429:
      return UNAVAILABLE;
    case 409:
    case 412:
      return { code: Code.Aborted, reason: undefined };
    case 416:
      return { code: Code.OutOfRange, reason: Reason.InvalidRange };
    case 499:
      return { code: Code.Canceled, reason: Reason.Cancelled };
    case 501:
      return { code: Code.Unimplemented, reason: Reason.Unsupported };
    default:
      if (status >= 500 && status <= 599) return UNAVAILABLE;
      if (status >= 400 && status <= 499) return { code: Code.InvalidArgument, reason: undefined };
      return { code: Code.Internal, reason: Reason.Internal };
  }
}

/** The baseline gRPC code of a backend's HTTP status: {@link mapHttpStatus}`(status).code`. */
export function codeForHttpStatus(status: number): Code {
  return mapHttpStatus(status).code;
}

/**
 * A StowageError for a backend's HTTP status with the baseline code and reason; `options.reason`
 * overrides the reason, `options.metadata` gets `http_status`.
 */
export function httpStatusError(status: number, message: string, options: StowageErrorOptions = {}): StowageError {
  const mapped = mapHttpStatus(status);
  const reason = options.reason ?? mapped.reason;
  return new StowageError(mapped.code, message, {
    ...options,
    ...(reason === undefined ? {} : { reason }),
    metadata: { http_status: String(status), ...options.metadata },
  });
}

/** Longest `Retry-After` passed on to hosts, in ms: a store asking for more is not worth waiting for. */
const MAX_RETRY_AFTER_MS = 3_600_000;

/**
 * The wait a `Retry-After` header value asks for, in ms: delta-seconds (`120`) or an HTTP date;
 * `undefined` when absent or unreadable.
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text) - now;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, Math.round(ms)));
}

/**
 * The error metadata that tells a host how long to wait before a retry (`retry_after_ms`, contract
 * 4.3.3), from a response's headers — a `Headers` object, a plain record or anything with `get` —
 * when they carry a `Retry-After`; `{}` otherwise. Cloud plugins merge it into the metadata of the
 * error they make of a 429 or 503.
 */
export function retryAfterMetadata(headers: unknown): Record<string, string> {
  let value: unknown;
  if (typeof headers === "object" && headers !== null) {
    const get = (headers as { get?: unknown }).get;
    if (typeof get === "function") value = (get as (name: string) => unknown).call(headers, "retry-after");
    else {
      const entry = Object.entries(headers).find(([name]) => name.toLowerCase() === "retry-after");
      value = entry?.[1];
    }
  }
  const ms = parseRetryAfter(typeof value === "string" ? value : Array.isArray(value) && typeof value[0] === "string" ? value[0] : undefined);
  return ms === undefined ? {} : { retry_after_ms: String(ms) };
}

/** Error codes of a connection that failed or broke, from Node (`net`, `http`, `dns`) and undici. */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "ESOCKETTIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "ENETRESET",
  "ERR_STREAM_PREMATURE_CLOSE",
  "ERR_HTTP_SOCKET_ASSIGNMENT_ABORTED",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);

/** Messages of connection failures that carry no code (or a library's own). */
const NETWORK_MESSAGES: readonly [RegExp, string][] = [
  [/socket hang up/i, "ECONNRESET"],
  [/\bECONNRE(SET|FUSED)\b/, "ECONNRESET"],
  [/^aborted$/, "ECONNRESET"],
  [/other side closed/i, "ECONNRESET"],
  [/premature close/i, "ERR_STREAM_PREMATURE_CLOSE"],
];

/** Certificate verification failures: the server's TLS certificate is not trusted. */
const TLS_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
]);

/** The `code` strings found on `error` and its `cause` chain (a few levels deep). */
function codesOf(error: unknown): string[] {
  const codes: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && code !== "") codes.push(code);
    const next = (current as { cause?: unknown; error?: unknown }).cause ?? (current as { error?: unknown }).error;
    current = next === current ? undefined : next;
  }
  return codes;
}

function messagesOf(error: unknown): string[] {
  const messages: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    const message = (current as { message?: unknown }).message;
    if (typeof message === "string") messages.push(message);
    current = (current as { cause?: unknown }).cause;
  }
  return messages;
}

/**
 * The network failure behind `error`, looking through its `cause` chain: a Node or undici error
 * code (`ECONNREFUSED`, `ECONNRESET`, `ETIMEDOUT`, `EPIPE`, `ENOTFOUND`, `UND_ERR_SOCKET`, ...), or
 * `ECONNRESET` for a `socket hang up` or an `aborted` response; `undefined` when the error is no
 * network failure. Such failures map to `UNAVAILABLE`/`BACKEND_UNAVAILABLE`.
 */
export function networkErrorCode(error: unknown): string | undefined {
  const code = codesOf(error).find((c) => NETWORK_CODES.has(c));
  if (code !== undefined) return code;
  for (const message of messagesOf(error)) {
    for (const [pattern, mapped] of NETWORK_MESSAGES) if (pattern.test(message)) return mapped;
  }
  return undefined;
}

/** Whether `error` is a network failure (see {@link networkErrorCode}). */
export function isNetworkError(error: unknown): boolean {
  return networkErrorCode(error) !== undefined;
}

/**
 * The TLS failure behind `error` (`DEPTH_ZERO_SELF_SIGNED_CERT`, `CERT_HAS_EXPIRED`,
 * `ERR_TLS_CERT_ALTNAME_INVALID`, ...), or `undefined`. Such failures need a configuration change
 * (a trusted CA), so plugins map them to `FAILED_PRECONDITION` with advice rather than retrying.
 */
export function tlsErrorCode(error: unknown): string | undefined {
  return codesOf(error).find((c) => TLS_CODES.has(c) || c.startsWith("ERR_TLS_") || c.startsWith("ERR_SSL_"));
}

/** A StowageError `UNAVAILABLE`/`BACKEND_UNAVAILABLE`: the backend is unreachable, stalled or failing transiently. */
export function backendUnavailable(message: string, options: Omit<StowageErrorOptions, "reason"> = {}): StowageError {
  return new StowageError(Code.Unavailable, message, { ...options, reason: Reason.BackendUnavailable });
}
