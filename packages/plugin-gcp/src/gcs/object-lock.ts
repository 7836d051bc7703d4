/**
 * Object protection (capability `OBJECT_LOCK`, contract 5.9) for the Cloud Storage ObjectStore:
 * `GetBucketProtection`, `SetRetention` and `SetLegalHold`, the bucket checks of a protected put,
 * the governance bypass of a delete or overwrite, and the mapping of Cloud Storage's refusals to
 * `OBJECT_LOCKED`. Cloud Storage enforces every protection itself; the plugin reads an object's
 * protection only to refuse early, to bypass, and to say what protects it.
 *
 * @packageDocumentation
 */
import type { BucketMetadata, File, FileMetadata } from "@google-cloud/storage";
import {
  Code,
  StowageError,
  bucketNotFound,
  bucketNotLockable,
  checkMutable,
  checkRetentionChange,
  objectLocked,
  objectNotFound,
  retentionActive,
  type BucketProtection,
  type CallOptions,
  type ObjectLock,
  type ObjectProtection,
  type ObjectRef,
  type ProtectionInput,
  type SetLegalHoldInput,
  type SetRetentionInput,
} from "@stowage/sdk";
import { httpStatus, isNotFound, toStowageError } from "../shared/errors.js";
import type { GcsStoreSettings } from "./config.js";
import { checkRef } from "./objects.js";
import { bucketProtectionOf, isProtectionRefusal, isRetentionNotEnabled, objectRetention, objectRetentionEnabled, protectionOf, retentionField } from "./protection.js";

/** What the object-lock calls need from the store. */
export interface GcsLockContext {
  /** The settings, or `NOT_INITIALIZED`. */
  settings(): GcsStoreSettings;
  /** Waits for one library call under the caller's signal and `requestTimeout`. */
  call<T>(settings: GcsStoreSettings, signal: AbortSignal | undefined, what: string, call: () => Promise<T>): Promise<T>;
  /** The library's handle of the object (with the CMEK key, when set). */
  file(settings: GcsStoreSettings, ref: ObjectRef): File;
  /** The object's metadata, `undefined` when it does not exist; `BUCKET_NOT_FOUND` when the bucket does not. */
  metadata(settings: GcsStoreSettings, ref: ObjectRef, signal: AbortSignal | undefined): Promise<FileMetadata | undefined>;
}

/** Whether a put asks for any protection. */
export function asksProtection(protection: ProtectionInput | undefined): boolean {
  return protection !== undefined && (protection.retention !== undefined || protection.legalHold === true);
}

/** What `BUCKET_NOT_LOCKABLE` says about a bucket without Object Retention Lock. */
const NOT_ENABLED = "Object Retention Lock is not enabled on it (create the bucket with object retention enabled, e.g. `gcloud storage buckets create --enable-per-object-retention`)";

/**
 * The object-lock half of the Cloud Storage ObjectStore; see docs/plugin-gcp.md, "Object
 * protection" section for the mapping.
 */
export class GcsObjectLock implements ObjectLock {
  readonly #context: GcsLockContext;
  /** Buckets seen with Object Retention Lock enabled: Cloud Storage cannot disable it again. */
  readonly #lockable = new Set<string>();

  /** @param context - The store's helpers. */
  constructor(context: GcsLockContext) {
    this.#context = context;
  }

  async #bucketMetadata(settings: GcsStoreSettings, bucket: string, signal: AbortSignal | undefined): Promise<BucketMetadata> {
    try {
      const [metadata] = await this.#context.call(settings, signal, "get bucket", () => settings.storage.bucket(bucket).getMetadata());
      return metadata;
    } catch (error) {
      if (signal?.aborted !== true && !(error instanceof StowageError) && isNotFound(error)) throw bucketNotFound(bucket);
      throw toStowageError(error, { operation: "get bucket", bucket, signal });
    }
  }

  /** Fails with `BUCKET_NOT_LOCKABLE` unless Object Retention Lock is enabled on the bucket (clause 5.9.12). */
  async requireLockable(settings: GcsStoreSettings, bucket: string, signal: AbortSignal | undefined): Promise<void> {
    if (this.#lockable.has(bucket)) return;
    const metadata = await this.#bucketMetadata(settings, bucket, signal);
    if (!objectRetentionEnabled(metadata)) throw bucketNotLockable(bucket, NOT_ENABLED);
    this.#lockable.add(bucket);
  }

  /** Whether Object Retention Lock is enabled on the bucket, its retention policy, and who enforces it. */
  async getBucketProtection(input: { readonly bucket: string }, options: CallOptions = {}): Promise<BucketProtection> {
    const settings = this.#context.settings();
    if (input.bucket === "") throw new StowageError(Code.InvalidArgument, "bucket names must not be empty");
    const protection = bucketProtectionOf(await this.#bucketMetadata(settings, input.bucket, options.signal));
    if (protection.lockable) this.#lockable.add(input.bucket);
    return protection;
  }

  /**
   * Patches the object's `retention`. An extension is a plain patch; a shorter, removed or
   * `Locked` retention replacing an `Unlocked` one needs `overrideUnlockedRetention=true`, which the
   * plugin sends only when the contract allows the change (`checkRetentionChange`: the caller's
   * `bypassGovernance`, or a retention that no longer protects).
   */
  async setRetention(input: SetRetentionInput, options: CallOptions = {}): Promise<ObjectProtection> {
    const settings = this.#context.settings();
    checkRef(input);
    const signal = options.signal;
    await this.requireLockable(settings, input.bucket, signal);
    const stored = await this.#context.metadata(settings, input, signal);
    if (stored === undefined) throw objectNotFound(input.bucket, input.key);
    const current = objectRetention(stored);
    const legalHold = stored.temporaryHold === true || stored.eventBasedHold === true;
    const bypass = input.bypassGovernance === true;
    checkRetentionChange(input.bucket, input.key, { legalHold, ...(current === undefined ? {} : { retention: current }) }, input.retention, bypass);
    const next = input.retention;
    const extension = current !== undefined && next?.mode === current.mode && next.retainUntil.getTime() >= current.retainUntil.getTime();
    const override = current?.mode === "governance" && !extension;
    if (current === undefined && next === undefined) return protectionOf(stored) ?? { legalHold: false };
    const patch: FileMetadata = { retention: next === undefined ? null : retentionField(next) };
    const updated = await this.#patch(settings, input, patch, override, bypass, "change the retention of", signal);
    return protectionOf(updated) ?? { legalHold: false };
  }

  /** Patches the object's `temporaryHold`; an event-based hold is left as it is. */
  async setLegalHold(input: SetLegalHoldInput, options: CallOptions = {}): Promise<ObjectProtection> {
    const settings = this.#context.settings();
    checkRef(input);
    const signal = options.signal;
    await this.requireLockable(settings, input.bucket, signal);
    const updated = await this.#patch(settings, input, { temporaryHold: input.legalHold }, false, false, "change the legal hold of", signal);
    return protectionOf(updated) ?? { legalHold: false };
  }

  /** One `objects.patch`, its refusals mapped. */
  async #patch(settings: GcsStoreSettings, ref: ObjectRef, patch: FileMetadata, override: boolean, bypass: boolean, action: string, signal: AbortSignal | undefined): Promise<FileMetadata> {
    try {
      const [metadata] = await this.#context.call(settings, signal, "patch object", () =>
        this.#context.file(settings, ref).setMetadata(patch, override ? { overrideUnlockedRetention: true } : {}),
      );
      return metadata;
    } catch (error) {
      if (signal?.aborted === true || error instanceof StowageError) throw toStowageError(error, { operation: "patch object", bucket: ref.bucket, key: ref.key, signal });
      if (isNotFound(error)) {
        await this.#context.metadata(settings, ref, signal);
        throw objectNotFound(ref.bucket, ref.key);
      }
      if (isRetentionNotEnabled(error)) throw bucketNotLockable(ref.bucket, NOT_ENABLED);
      throw (await this.refusal(settings, ref, bypass, action, error, signal)) ?? toStowageError(error, { operation: "patch object", bucket: ref.bucket, key: ref.key, signal });
    }
  }

  /**
   * The `OBJECT_LOCKED` error for a call Cloud Storage refused with 403 because a protection
   * forbids it, or `undefined` when the 403 has another cause (then it is `ACCESS_DENIED`, also
   * for a bypass the caller's IAM role does not allow). The object's protection is read again, so
   * the error says what protects it and until when: it is `OBJECT_LOCKED` when that protection
   * forbids the call by the plugin's clock, or when Cloud Storage's message says a retention or a
   * hold refused it (the store's clock decides, clause 5.9.2).
   */
  async refusal(settings: GcsStoreSettings, ref: ObjectRef, bypass: boolean, action: string, error: unknown, signal: AbortSignal | undefined): Promise<StowageError | undefined> {
    if (httpStatus(error) !== 403 || signal?.aborted === true) return undefined;
    let protection: ObjectProtection | undefined;
    try {
      protection = protectionOf(await this.#context.metadata(settings, ref, signal));
    } catch {
      return isProtectionRefusal(error) ? objectLocked(ref.bucket, ref.key, { legalHold: false }, action) : undefined;
    }
    try {
      checkMutable(ref.bucket, ref.key, protection, bypass, action);
    } catch (locked) {
      return locked as StowageError;
    }
    return isProtectionRefusal(error) ? objectLocked(ref.bucket, ref.key, protection ?? { legalHold: false }, action) : undefined;
  }

  /**
   * Prepares a delete or an overwrite (contract 5.9.6 to 5.9.8): reads the object and refuses as the
   * contract says when a protection forbids the call. Cloud Storage refuses too, except in a
   * bucket with object versioning, where an object under retention can still be made noncurrent
   * (deleted or replaced, with success): this check is what keeps the contract's promise there.
   * With `bypassGovernance` it removes an active `Unlocked` retention
   * (`overrideUnlockedRetention=true`) so that Cloud Storage lets the object go, and returns it, to
   * put back if an overwrite fails.
   */
  async prepare(settings: GcsStoreSettings, ref: ObjectRef, bypass: boolean, action: string, signal: AbortSignal | undefined): Promise<{ readonly exists: boolean; readonly removed?: FileMetadata["retention"] }> {
    const stored = await this.#context.metadata(settings, ref, signal);
    if (stored === undefined) return { exists: false };
    checkMutable(ref.bucket, ref.key, protectionOf(stored), bypass, action);
    const own = objectRetention(stored);
    if (!bypass || !retentionActive(own) || own.mode !== "governance") return { exists: true };
    await this.#patch(settings, ref, { retention: null }, true, true, action, signal);
    return { exists: true, removed: stored.retention ?? null };
  }

  /** Puts back a retention {@link prepare} removed, when the overwrite it prepared failed. */
  async restore(settings: GcsStoreSettings, ref: ObjectRef, retention: FileMetadata["retention"], signal: AbortSignal | undefined): Promise<void> {
    if (retention === undefined || retention === null) return;
    await this.#patch(settings, ref, { retention }, false, false, "restore the retention of", signal);
  }
}
