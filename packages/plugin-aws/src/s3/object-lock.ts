/**
 * Object protection on S3 (contract 5.9, capability `OBJECT_LOCK`): S3 Object Lock retention and
 * legal holds, enforced by the store.
 *
 * - A bucket is lockable when its Object Lock configuration says `ObjectLockEnabled: Enabled`; the
 *   answer is cached for {@link LOCKABILITY_TTL_MS} per bucket (at most
 *   {@link LOCKABILITY_CACHE_SIZE} buckets), so that plain puts and deletes in buckets without
 *   Object Lock pay one GetObjectLockConfiguration a minute, and no HEAD.
 * - S3 keeps protection per version and answers a plain delete of a protected object with a delete
 *   marker (success). In a lockable bucket the plugin therefore reads the current version's
 *   protection first (one HEAD) and refuses a delete or an overwrite with `OBJECT_LOCKED`; with
 *   `bypassGovernance` on a governance-only retention it deletes that version by its ID with
 *   `x-amz-bypass-governance-retention` (clause 5.9.8).
 * - The store's own refusals (AWS: `AccessDenied`; MinIO: `InvalidRequest` "Object is WORM
 *   protected") are mapped after reading the protection again: `OBJECT_LOCKED` when the protection
 *   forbids the call, `ACCESS_DENIED` when it would allow it (the store refused this caller the
 *   governance bypass), `BUCKET_NOT_LOCKABLE` when the bucket has no Object Lock configuration.
 *
 * @packageDocumentation
 */
import {
  DeleteObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectRetentionCommand,
  type ObjectLockLegalHoldStatus,
  type ObjectLockMode,
} from "@aws-sdk/client-s3";
import {
  Code,
  StowageError,
  bucketNotFound,
  bucketNotLockable,
  checkMutable,
  checkRetentionChange,
  isProtected,
  objectLocked,
  type BucketProtection,
  type CallOptions,
  type DeleteObjectInput,
  type Logger,
  type ObjectLock,
  type ObjectProtection,
  type ObjectRef,
  type ProtectionInput,
  type Retention,
  type RetentionMode,
  type SetLegalHoldInput,
  type SetRetentionInput,
} from "@stowage/sdk";
import { withRequestTimeout } from "@stowage/sdk/plugin";
import { awsErrorCode, toStowageError } from "../shared/errors.js";
import type { S3StoreSettings } from "./config.js";
import { checkRef, invalidName, objectNotFoundError, readEncryptionParams } from "./object-helpers.js";

/** How long a bucket's lockability is trusted before it is asked again. */
export const LOCKABILITY_TTL_MS = 60_000;
/** Most buckets whose lockability is remembered at once. */
export const LOCKABILITY_CACHE_SIZE = 256;
/** `enforcedBy` of a lockable bucket. */
export const S3_ENFORCED_BY = "the store (S3 Object Lock)";
/** Seconds in a day, and in a year of Object Lock's default retention (365 days). */
const DAY_SECONDS = 86_400;
const YEAR_SECONDS = 365 * DAY_SECONDS;

/** The Object Lock fields of a HeadObject or GetObject answer. */
export interface ObjectLockFields {
  /** `x-amz-object-lock-mode`. */
  readonly ObjectLockMode?: string | undefined;
  /** `x-amz-object-lock-retain-until-date`. */
  readonly ObjectLockRetainUntilDate?: Date | undefined;
  /** `x-amz-object-lock-legal-hold`. */
  readonly ObjectLockLegalHoldStatus?: string | undefined;
}

/** The Object Lock parameters of a PutObject or CreateMultipartUpload. */
export interface ObjectLockParams {
  /** `x-amz-object-lock-mode`. */
  readonly ObjectLockMode?: ObjectLockMode | undefined;
  /** `x-amz-object-lock-retain-until-date`. */
  readonly ObjectLockRetainUntilDate?: Date | undefined;
  /** `x-amz-object-lock-legal-hold`. */
  readonly ObjectLockLegalHoldStatus?: ObjectLockLegalHoldStatus | undefined;
}

/** An object's protection from a HEAD or GET answer; `undefined` when it has none (clause 5.9.3). */
export function protectionOf(out: ObjectLockFields): ObjectProtection | undefined {
  const legalHold = out.ObjectLockLegalHoldStatus === "ON";
  const mode = modeFromS3(out.ObjectLockMode);
  const until = out.ObjectLockRetainUntilDate;
  const retention = mode === undefined || until === undefined ? undefined : { mode, retainUntil: until };
  if (retention === undefined && !legalHold) return undefined;
  return { ...(retention === undefined ? {} : { retention }), legalHold };
}

/** S3's retention mode as the contract's; `undefined` for none or an unknown one. */
function modeFromS3(mode: string | undefined): RetentionMode | undefined {
  if (mode === "GOVERNANCE") return "governance";
  if (mode === "COMPLIANCE") return "compliance";
  return undefined;
}

/** The contract's retention mode as S3's. */
function modeToS3(mode: RetentionMode): ObjectLockMode {
  return mode === "compliance" ? "COMPLIANCE" : "GOVERNANCE";
}

/** A time rounded up to a whole second (clause 5.9.4 allows rounding up, never down). */
export function roundUpToSecond(time: Date): Date {
  return new Date(Math.ceil(time.getTime() / 1000) * 1000);
}

/** A retention with its `retainUntil` rounded up to a whole second, as the plugin stores it. */
function storedRetention(retention: Retention | undefined): Retention | undefined {
  return retention === undefined ? undefined : { mode: retention.mode, retainUntil: roundUpToSecond(retention.retainUntil) };
}

/** The PutObject / CreateMultipartUpload parameters that store an object with `protection`. */
export function objectLockParams(protection: ProtectionInput | undefined): ObjectLockParams {
  const retention = storedRetention(protection?.retention);
  return {
    ...(retention === undefined ? {} : { ObjectLockMode: modeToS3(retention.mode), ObjectLockRetainUntilDate: retention.retainUntil }),
    ...(protection?.legalHold === true ? { ObjectLockLegalHoldStatus: "ON" } : {}),
  };
}

/** Whether an S3 error says that the bucket has no Object Lock configuration. */
export function isNotLockableError(error: unknown): boolean {
  const code = awsErrorCode(error);
  if (code === "ObjectLockConfigurationNotFoundError") return true;
  const message = error instanceof Error ? error.message : "";
  return code === "InvalidRequest" && /object ?lock ?config|missing object ?lock/i.test(message);
}

/** Whether an S3 error is the store refusing a call because of a protection, or this caller. */
function isRefusal(error: unknown): boolean {
  const code = awsErrorCode(error);
  const message = error instanceof Error ? error.message : "";
  return code === "AccessDenied" || (code === "InvalidRequest" && /WORM|locked|retention|legal hold/i.test(message));
}

/** The current version of an object: its ID and protection. */
export interface CurrentVersion {
  /** The version ID; `undefined` (or "null") in a bucket that never had versioning. */
  readonly versionId: string | undefined;
  /** Its protection, `undefined` when none. */
  readonly protection: ObjectProtection | undefined;
}

/** What {@link S3ObjectLock} needs of its store. */
export interface S3ObjectLockContext {
  /** The settings of the last successful `init`; NOT_INITIALIZED before. */
  readonly settings: () => S3StoreSettings;
  /** Fails with BUCKET_NOT_FOUND when the bucket does not exist. */
  readonly checkBucket: (bucket: string, signal: AbortSignal | undefined) => Promise<void>;
  /** Where to log. */
  readonly logger: Logger;
}

interface CachedLockability {
  readonly protection: BucketProtection;
  readonly expires: number;
}

/** The `ObjectLock` of an S3 ObjectStore (S3 Object Lock), and the checks its puts and deletes make. */
export class S3ObjectLock implements ObjectLock {
  readonly #context: S3ObjectLockContext;
  readonly #cache = new Map<string, CachedLockability>();

  /** @param context - The store it belongs to. */
  constructor(context: S3ObjectLockContext) {
    this.#context = context;
  }

  /** Forgets every cached lockability (after `init` with other settings). */
  reset(): void {
    this.#cache.clear();
  }

  /**
   * Whether the bucket has Object Lock enabled and its default retention, asked with
   * GetObjectLockConfiguration (clause 5.9.11). A bucket without a configuration is not lockable.
   */
  async getBucketProtection(input: { readonly bucket: string }, options: CallOptions = {}): Promise<BucketProtection> {
    if (input.bucket === "") throw invalidName("bucket names must not be empty");
    const protection = await this.#fetch(input.bucket, options.signal, true);
    this.#remember(input.bucket, protection);
    return protection;
  }

  /**
   * Whether the bucket is lockable, from the cache when fresh. For plain puts and deletes, a store
   * that refuses or does not understand the question (`AccessDenied` without
   * s3:GetBucketObjectLockConfiguration, `NotImplemented`, any other lasting 4xx) counts as not
   * lockable, logged, so that they keep working without the Object Lock permissions; a missing
   * bucket, bad credentials and a store that is down fail as the call would. `strict` callers (a put
   * that asks for protection, SetRetention, SetLegalHold) get every error.
   */
  async lockable(bucket: string, signal: AbortSignal | undefined, strict = false): Promise<boolean> {
    const cached = this.#cache.get(bucket);
    if (cached !== undefined && cached.expires > Date.now() && (cached.protection.lockable || !strict)) return cached.protection.lockable;
    try {
      // Strict callers are told of a missing bucket (MinIO answers it like a bucket without Object Lock).
      const protection = await this.#fetch(bucket, signal, strict);
      this.#remember(bucket, protection);
      return protection.lockable;
    } catch (error) {
      if (strict || !(error instanceof StowageError) || error.retryable || signal?.aborted === true) throw error;
      if (error.code === Code.NotFound || error.code === Code.Unauthenticated) throw error;
      this.#context.logger.warn(
        { bucket, aws_code: error.metadata.aws_code ?? "", error: error.rawMessage },
        "cannot read the bucket's Object Lock configuration (grant s3:GetBucketObjectLockConfiguration); treating it as not lockable for a minute",
      );
      this.#remember(bucket, { lockable: false, enforcedBy: "unknown: the Object Lock configuration cannot be read" });
      return false;
    }
  }

  /**
   * The bucket's protection from GetObjectLockConfiguration. `thorough`: tell a missing bucket from
   * one without Object Lock (a HEAD bucket more), and report a store without Object Lock
   * (`NotImplemented`) as not lockable rather than failing.
   */
  async #fetch(bucket: string, signal: AbortSignal | undefined, thorough: boolean): Promise<BucketProtection> {
    const settings = this.#context.settings();
    try {
      const out = await withRequestTimeout(signal, settings.timeouts.requestTimeoutMs, "get object lock configuration", (abortSignal) =>
        settings.client.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }), { abortSignal }),
      );
      const config = out.ObjectLockConfiguration;
      if (config?.ObjectLockEnabled !== "Enabled") return { lockable: false, enforcedBy: "none: Object Lock is not enabled on the bucket" };
      const rule = config.Rule?.DefaultRetention;
      const mode = modeFromS3(rule?.Mode);
      const seconds = (rule?.Days ?? 0) * DAY_SECONDS + (rule?.Years ?? 0) * YEAR_SECONDS;
      return { lockable: true, enforcedBy: S3_ENFORCED_BY, ...(mode === undefined || seconds < 1 ? {} : { defaultRetention: { mode, periodSeconds: seconds } }) };
    } catch (error) {
      const code = awsErrorCode(error);
      if (code === "NoSuchBucket") throw bucketNotFound(bucket);
      if (isNotLockableError(error)) {
        // MinIO answers a missing bucket like a bucket without a configuration.
        if (thorough) await this.#context.checkBucket(bucket, signal);
        return { lockable: false, enforcedBy: "none: Object Lock is not enabled on the bucket" };
      }
      if (code === "NotImplemented" && thorough) return { lockable: false, enforcedBy: "none: the store does not implement S3 Object Lock" };
      throw toStowageError(error, { operation: "get object lock configuration", bucket, signal });
    }
  }

  #remember(bucket: string, protection: BucketProtection): void {
    this.#cache.delete(bucket);
    if (this.#cache.size >= LOCKABILITY_CACHE_SIZE) {
      const oldest = this.#cache.keys().next();
      if (oldest.done !== true) this.#cache.delete(oldest.value);
    }
    this.#cache.set(bucket, { protection, expires: Date.now() + LOCKABILITY_TTL_MS });
  }

  /** Forgets a bucket's lockability (the store said otherwise). */
  forget(bucket: string): void {
    this.#cache.delete(bucket);
  }

  /** Fails with `BUCKET_NOT_LOCKABLE` unless the bucket is lockable (asked again when the cache says no). */
  async requireLockable(bucket: string, signal: AbortSignal | undefined): Promise<void> {
    if (await this.lockable(bucket, signal, true)) return;
    throw bucketNotLockable(bucket, "S3 Object Lock is not enabled on it (create the bucket with ObjectLockEnabledForBucket)");
  }

  /** The current version of an object and its protection (a HEAD), or `undefined` when there is none. */
  async current(ref: ObjectRef, signal: AbortSignal | undefined, versionId?: string): Promise<CurrentVersion | undefined> {
    const settings = this.#context.settings();
    try {
      const out = await withRequestTimeout(signal, settings.timeouts.requestTimeoutMs, "head object", (abortSignal) =>
        settings.client.send(
          new HeadObjectCommand({ Bucket: ref.bucket, Key: ref.key, ...(versionId === undefined ? {} : { VersionId: versionId }), ...readEncryptionParams(settings) }),
          { abortSignal },
        ),
      );
      return { versionId: out.VersionId, protection: protectionOf(out) };
    } catch (error) {
      const code = awsErrorCode(error);
      if (code === "NoSuchKey" || code === "NotFound") return undefined;
      throw toStowageError(error, { operation: "head object", bucket: ref.bucket, key: ref.key, signal });
    }
  }

  /**
   * Refuses with `OBJECT_LOCKED` to replace a protected current version (clause 5.9.7), in a
   * lockable bucket; a plain bucket costs no HEAD. Resolves to whether the bucket is lockable.
   */
  async checkOverwrite(ref: ObjectRef, bypassGovernance: boolean, signal: AbortSignal | undefined): Promise<boolean> {
    if (!(await this.lockable(ref.bucket, signal))) return false;
    const current = await this.current(ref, signal);
    checkMutable(ref.bucket, ref.key, current?.protection, bypassGovernance, "overwrite");
    return true;
  }

  /**
   * The protection half of a delete (clauses 5.9.6, 5.9.8): in a lockable bucket, refuses a
   * protected current version with `OBJECT_LOCKED` or, with the bypass on a governance-only
   * retention, deletes that version by its ID. Returns whether the delete is done; `false` leaves
   * the plain delete to the caller.
   */
  async deleteProtected(input: DeleteObjectInput, signal: AbortSignal | undefined): Promise<boolean> {
    if (!(await this.lockable(input.bucket, signal))) return false;
    const current = await this.current(input, signal);
    if (current === undefined) return false;
    if (!isProtected(current.protection)) return false;
    // Throws unless only a governance retention protects it and the caller bypasses it.
    checkMutable(input.bucket, input.key, current.protection, input.bypassGovernance === true, "delete");
    if (current.versionId === undefined || current.versionId === "null") {
      throw new StowageError(Code.FailedPrecondition, `the store reported no version ID for the protected object ${JSON.stringify(input.key)}; cannot delete it with the bypass`);
    }
    const settings = this.#context.settings();
    const versionId = current.versionId;
    try {
      await withRequestTimeout(signal, settings.timeouts.requestTimeoutMs, "delete object version", (abortSignal) =>
        settings.client.send(new DeleteObjectCommand({ Bucket: input.bucket, Key: input.key, VersionId: versionId, BypassGovernanceRetention: true }), { abortSignal }),
      );
    } catch (error) {
      throw await this.#refusal(error, input, "delete object version", "delete", signal, (fresh) => {
        checkMutable(input.bucket, input.key, fresh, true, "delete");
      });
    }
    // Deleting the current version by its ID makes the previous one current: hide it, as a delete must.
    return (await this.current(input, signal)) === undefined;
  }

  /**
   * Replaces, extends or (governance, with the bypass) shortens or removes the current version's
   * retention with PutObjectRetention, after checking the change (clause 5.9.9); returns the
   * protection read back.
   */
  async setRetention(input: SetRetentionInput, options: CallOptions = {}): Promise<ObjectProtection> {
    checkRef(input);
    const signal = options.signal;
    await this.requireLockable(input.bucket, signal);
    const current = await this.current(input, signal);
    if (current === undefined) throw objectNotFoundError(input);
    const next = storedRetention(input.retention);
    const bypass = input.bypassGovernance === true;
    checkRetentionChange(input.bucket, input.key, current.protection, next, bypass);
    const settings = this.#context.settings();
    const versionId = current.versionId;
    try {
      await withRequestTimeout(signal, settings.timeouts.requestTimeoutMs, "put object retention", (abortSignal) =>
        settings.client.send(
          new PutObjectRetentionCommand({
            Bucket: input.bucket,
            Key: input.key,
            ...(versionId === undefined ? {} : { VersionId: versionId }),
            Retention: next === undefined ? {} : { Mode: modeToS3(next.mode), RetainUntilDate: next.retainUntil },
            ...(bypass ? { BypassGovernanceRetention: true } : {}),
          }),
          { abortSignal },
        ),
      );
    } catch (error) {
      throw await this.#refusal(error, input, "put object retention", "change the retention of", signal, (fresh) => {
        checkRetentionChange(input.bucket, input.key, fresh, next, bypass);
      });
    }
    return this.#readBack(input, versionId, signal);
  }

  /** Places or releases the current version's legal hold with PutObjectLegalHold (clause 5.9.10). */
  async setLegalHold(input: SetLegalHoldInput, options: CallOptions = {}): Promise<ObjectProtection> {
    checkRef(input);
    const signal = options.signal;
    await this.requireLockable(input.bucket, signal);
    const current = await this.current(input, signal);
    if (current === undefined) throw objectNotFoundError(input);
    const settings = this.#context.settings();
    const versionId = current.versionId;
    try {
      await withRequestTimeout(signal, settings.timeouts.requestTimeoutMs, "put object legal hold", (abortSignal) =>
        settings.client.send(
          new PutObjectLegalHoldCommand({
            Bucket: input.bucket,
            Key: input.key,
            ...(versionId === undefined ? {} : { VersionId: versionId }),
            LegalHold: { Status: input.legalHold ? "ON" : "OFF" },
          }),
          { abortSignal },
        ),
      );
    } catch (error) {
      throw await this.#refusal(error, input, "put object legal hold", "change the legal hold of", signal, () => undefined);
    }
    return this.#readBack(input, versionId, signal);
  }

  /** The protection of the version just changed. */
  async #readBack(ref: ObjectRef, versionId: string | undefined, signal: AbortSignal | undefined): Promise<ObjectProtection> {
    const after = await this.current(ref, signal, versionId);
    if (after === undefined) throw objectNotFoundError(ref);
    return after.protection ?? { legalHold: false };
  }

  /**
   * Maps the store's refusal of a lock-related call. A bucket without Object Lock →
   * `BUCKET_NOT_LOCKABLE`. A refusal (`AccessDenied`, MinIO's "WORM protected") → the protection is
   * read again and `recheck` throws `OBJECT_LOCKED` when it forbids the call; otherwise the store
   * refused this caller (the bypass permission): `ACCESS_DENIED`, or `OBJECT_LOCKED` when the
   * store said the object is locked.
   */
  async #refusal(
    error: unknown,
    ref: ObjectRef,
    operation: string,
    action: string,
    signal: AbortSignal | undefined,
    recheck: (fresh: ObjectProtection | undefined) => void,
  ): Promise<StowageError> {
    if (isNotLockableError(error)) {
      this.forget(ref.bucket);
      return bucketNotLockable(ref.bucket, "S3 Object Lock is not enabled on it");
    }
    const mapped = toStowageError(error, { operation, bucket: ref.bucket, key: ref.key, signal });
    if (!isRefusal(error) || signal?.aborted === true) return mapped;
    let fresh: CurrentVersion | undefined;
    try {
      fresh = await this.current(ref, signal);
    } catch {
      return mapped;
    }
    try {
      recheck(fresh?.protection);
    } catch (locked) {
      return locked as StowageError;
    }
    if (awsErrorCode(error) === "AccessDenied") return mapped;
    return objectLocked(ref.bucket, ref.key, fresh?.protection ?? { legalHold: false }, action);
  }
}
