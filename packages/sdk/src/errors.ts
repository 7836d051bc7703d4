/**
 * The one error class of Stowage. Every failure that crosses a plugin boundary is a
 * {@link StowageError} carrying a gRPC status code and, where the contract defines one, a
 * machine-readable {@link Reason}. The class maps both ways: to a gRPC status (plugin side) and
 * from one (host side), so callers branch on `code`/`reason`, never on message text.
 *
 * @packageDocumentation
 */

/**
 * gRPC status codes, with the numbers of the gRPC specification.
 */
export enum Code {
  /** Not an error. */
  OK = 0,
  /** The caller cancelled the call. */
  Canceled = 1,
  /** An error that fits no other code. */
  Unknown = 2,
  /** The request is malformed; do not retry it unchanged. */
  InvalidArgument = 3,
  /** The deadline passed before the call completed. */
  DeadlineExceeded = 4,
  /** The named object, bucket, snapshot, volume or plugin does not exist. */
  NotFound = 5,
  /** The entity already exists. */
  AlreadyExists = 6,
  /** The caller lacks permission. */
  PermissionDenied = 7,
  /** A quota or resource limit was hit. */
  ResourceExhausted = 8,
  /** The system is not in a state the call requires (for example: not initialised). */
  FailedPrecondition = 9,
  /** A concurrency conflict; retry the whole sequence. */
  Aborted = 10,
  /** An argument is outside the valid range (for example a byte range past the end). */
  OutOfRange = 11,
  /** The call or option is not offered. Check capabilities; do not retry. */
  Unimplemented = 12,
  /** An unexpected failure inside the implementation. */
  Internal = 13,
  /** A transient failure; the call may be retried with backoff. */
  Unavailable = 14,
  /** Data was lost or corrupted. */
  DataLoss = 15,
  /** The credentials are missing or invalid. */
  Unauthenticated = 16,
}

/**
 * Machine-readable reasons (the `stowage.v1.ErrorReason` values without their prefix). They travel
 * in a `google.rpc.ErrorInfo` detail with domain {@link ERROR_DOMAIN}.
 */
export const Reason = {
  /** The key does not exist in the bucket. */
  ObjectNotFound: "OBJECT_NOT_FOUND",
  /** The bucket (container) does not exist. */
  BucketNotFound: "BUCKET_NOT_FOUND",
  /** The snapshot does not exist. */
  SnapshotNotFound: "SNAPSHOT_NOT_FOUND",
  /** The volume does not exist. */
  VolumeNotFound: "VOLUME_NOT_FOUND",
  /** No plugin of that name and kind is served. */
  PluginNotFound: "PLUGIN_NOT_FOUND",
  /** The Init configuration is wrong; metadata `valid_keys` lists the accepted keys. */
  InvalidConfig: "INVALID_CONFIG",
  /** A call arrived before a successful Init. */
  NotInitialized: "NOT_INITIALIZED",
  /** A key, bucket or identifier is malformed. */
  InvalidName: "INVALID_NAME",
  /** A byte range starts past the end of the object. */
  InvalidRange: "INVALID_RANGE",
  /** The body did not match its announced size or checksum; nothing was stored. */
  IntegrityMismatch: "INTEGRITY_MISMATCH",
  /** The backing service failed transiently; retry with backoff. */
  BackendUnavailable: "BACKEND_UNAVAILABLE",
  /** The plugin process exited during the call. */
  PluginCrashed: "PLUGIN_CRASHED",
  /** The deadline passed. */
  DeadlineExceeded: "DEADLINE_EXCEEDED",
  /** The caller cancelled. */
  Cancelled: "CANCELLED",
  /** The backing service refused the credentials. */
  AccessDenied: "ACCESS_DENIED",
  /** The snapshot is not ready for the requested operation. */
  SnapshotNotReady: "SNAPSHOT_NOT_READY",
  /** The optional call or option is not offered. */
  Unsupported: "UNSUPPORTED",
  /** The page token is unknown or expired. */
  InvalidPageToken: "INVALID_PAGE_TOKEN",
  /** An unexpected failure inside the plugin. */
  Internal: "INTERNAL",
  /** The plugin process stopped answering and the host replaced it. */
  PluginUnresponsive: "PLUGIN_UNRESPONSIVE",
  /** A path component would lead outside what the plugin owns (a link, a mount point). */
  UnsafePath: "UNSAFE_PATH",
  /** A retention or legal hold forbids the call; metadata `retain_until`, `mode` and `legal_hold` say what and until when. */
  ObjectLocked: "OBJECT_LOCKED",
  /** Protection was asked for in a bucket that cannot hold protected objects. */
  BucketNotLockable: "BUCKET_NOT_LOCKABLE",
} as const;

/** One of the {@link Reason} values, or another UPPER_SNAKE_CASE reason from a newer contract. */
export type Reason = (typeof Reason)[keyof typeof Reason] | (string & {});

/** The `google.rpc.ErrorInfo` domain of Stowage reasons. */
export const ERROR_DOMAIN = "stowage.io";

/** Options of the {@link StowageError} constructor. */
export interface StowageErrorOptions {
  /** Machine-readable reason. */
  readonly reason?: Reason;
  /** Extra key/value facts (for example `valid_keys`, `key`). */
  readonly metadata?: Readonly<Record<string, string>>;
  /** The underlying error. */
  readonly cause?: unknown;
}

const brand = Symbol.for("stowage.StowageError");

/**
 * An error with a gRPC status code and an optional machine-readable reason.
 *
 * The visible message is prefixed with the code name (for example
 * `[not_found] object "a/b" not found in bucket "x"`), the bare text is in {@link rawMessage}.
 * `instanceof` works across duplicated copies of this package.
 *
 * @example
 * ```ts
 * throw new StowageError(Code.NotFound, `object "${key}" not found`, { reason: Reason.ObjectNotFound });
 * ```
 */
export class StowageError extends Error {
  /** The gRPC status code. */
  readonly code: Code;
  /** The machine-readable reason, when known. */
  readonly reason: Reason | undefined;
  /** Extra facts about the failure. */
  readonly metadata: Readonly<Record<string, string>>;
  /** The message without the code prefix. */
  readonly rawMessage: string;

  /**
   * @param code - gRPC status code.
   * @param message - Human-readable text that says what happened and, where known, what to do.
   * @param options - Reason, metadata and cause.
   */
  constructor(code: Code, message: string, options: StowageErrorOptions = {}) {
    super(`[${codeName(code)}] ${message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "StowageError";
    this.code = code;
    this.reason = options.reason;
    this.metadata = options.metadata ?? {};
    this.rawMessage = message;
    Object.defineProperty(this, brand, { value: true });
  }

  /** Recognises StowageErrors from any copy of this package. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && brand in value;
  }

  /**
   * Normalises anything caught into a StowageError: StowageErrors pass through, abort and timeout
   * errors become {@link Code.Canceled} or {@link Code.DeadlineExceeded}, anything else
   * {@link Code.Internal} (or `fallback`).
   */
  static from(error: unknown, fallback: Code = Code.Internal): StowageError {
    if (error instanceof StowageError) return error;
    if (error instanceof Error) {
      if (error.name === "TimeoutError") {
        return new StowageError(Code.DeadlineExceeded, error.message, { reason: Reason.DeadlineExceeded, cause: error });
      }
      if (error.name === "AbortError") {
        const cause: unknown = error.cause;
        if (cause instanceof StowageError) return cause;
        if (cause instanceof Error && cause.name === "TimeoutError") {
          return new StowageError(Code.DeadlineExceeded, cause.message, { reason: Reason.DeadlineExceeded, cause: error });
        }
        return new StowageError(Code.Canceled, error.message, { reason: Reason.Cancelled, cause: error });
      }
      return new StowageError(fallback, error.message, { cause: error });
    }
    return new StowageError(fallback, String(error));
  }

  /** Whether the caller may retry the same call after a backoff. */
  get retryable(): boolean {
    return this.code === Code.Unavailable || this.code === Code.ResourceExhausted || this.code === Code.Aborted;
  }
}

/** Lower-case snake name of a code, as used in message prefixes: `not_found`. */
export function codeName(code: Code): string {
  const name = Code[code] as string | undefined;
  if (name === undefined) return `code_${String(code)}`;
  return name.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

/** Shorthand for a NOT_FOUND object error. */
export function objectNotFound(bucket: string, key: string): StowageError {
  return new StowageError(Code.NotFound, `object ${JSON.stringify(key)} not found in bucket ${JSON.stringify(bucket)}`, {
    reason: Reason.ObjectNotFound,
    metadata: { bucket, key },
  });
}

/** Shorthand for the OUT_OF_RANGE error of a range that starts past the end of an object (contract 5.3.12). */
export function rangePastEnd(bucket: string, key: string, offset: number, size: number): StowageError {
  return new StowageError(Code.OutOfRange, `range offset ${String(offset)} is past the end of ${JSON.stringify(key)} (${String(size)} bytes)`, {
    reason: Reason.InvalidRange,
    metadata: { bucket, key },
  });
}

/** Shorthand for the DATA_LOSS error of a put that stored nothing because its body did not check out (contract 5.2.5–5.2.7, 5.8.11). */
export function putNotStored(bucket: string, key: string, why: string): StowageError {
  return new StowageError(Code.DataLoss, `put of ${JSON.stringify(key)} in bucket ${JSON.stringify(bucket)} stored nothing: ${why}`, {
    reason: Reason.IntegrityMismatch,
    metadata: { bucket, key },
  });
}

/** Shorthand for a NOT_FOUND bucket error. */
export function bucketNotFound(bucket: string): StowageError {
  return new StowageError(Code.NotFound, `bucket ${JSON.stringify(bucket)} does not exist; create it or fix the "bucket" setting`, {
    reason: Reason.BucketNotFound,
    metadata: { bucket },
  });
}

/** Shorthand for a NOT_FOUND snapshot error. */
export function snapshotNotFound(snapshotId: string): StowageError {
  return new StowageError(Code.NotFound, `snapshot ${JSON.stringify(snapshotId)} not found`, {
    reason: Reason.SnapshotNotFound,
    metadata: { snapshot_id: snapshotId },
  });
}

/** Shorthand for a NOT_FOUND volume error. */
export function volumeNotFound(volumeId: string): StowageError {
  return new StowageError(Code.NotFound, `volume ${JSON.stringify(volumeId)} not found`, {
    reason: Reason.VolumeNotFound,
    metadata: { volume_id: volumeId },
  });
}
