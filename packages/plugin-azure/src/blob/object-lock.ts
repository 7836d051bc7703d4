/**
 * Object protection (capability `OBJECT_LOCK`, contract 5.9) for the Blob ObjectStore, on Azure's
 * version-level immutability (immutable storage with versioning):
 *
 * - a `governance` retention is an `Unlocked` immutability policy, a `compliance` retention a
 *   `Locked` one, and a legal hold is a legal hold; times are rounded up to whole seconds (Azure
 *   keeps seconds);
 * - a container can hold protected blobs when it reports
 *   `x-ms-immutable-storage-with-versioning-enabled` (Get Container Properties);
 * - Azure keeps protection per blob version: an overwrite or a Delete Blob of a protected current
 *   version succeeds and leaves it as a previous version, so the store reads the current version's
 *   protection first and refuses (clause 5.9.8); with `bypassGovernance` it deletes the `Unlocked`
 *   policy, then the blob, then that version by its ID, so the content really goes.
 *
 * @packageDocumentation
 */
import type { BlobGetPropertiesResponse, BlobImmutabilityPolicy, BlockBlobClient } from "@azure/storage-blob";
import {
  bucketNotFound,
  bucketNotLockable,
  checkMutable,
  checkRetention,
  checkRetentionChange,
  isProtected,
  objectNotFound,
  objectLocked,
  retentionActive,
  type BucketProtection,
  type CallOptions,
  type ObjectLock,
  type ObjectProtection,
  type ObjectRef,
  type ProtectionInput,
  type Retention,
  type SetLegalHoldInput,
  type SetRetentionInput,
  StowageError,
} from "@stowage/sdk";
import { azureErrorCode, azureHttpStatus, toStowageError } from "../shared/errors.js";
import type { BlobStoreSettings } from "./config.js";

/** What `getBucketProtection` reports as `enforcedBy`. */
export const ENFORCED_BY = "the store (Azure version-level immutability)";

/** The error codes of Azure's refusals because of a policy or a legal hold. */
export const IMMUTABLE_ERROR_CODES: ReadonlySet<string> = new Set(["BlobImmutableDueToPolicy", "BlobImmutableDueToLegalHold"]);

/** How long a container's "not lockable" answer is reused (a container can be migrated to immutability). */
const NOT_LOCKABLE_TTL_MS = 60_000;

/** What Azure reports of a version's protection (Get Blob Properties, Get Blob). */
export interface AzureProtectionFields {
  readonly immutabilityPolicyExpiresOn?: Date | undefined;
  readonly immutabilityPolicyMode?: string | undefined;
  readonly legalHold?: boolean | undefined;
}

/** The protection of a blob version from its properties; undefined when it has neither policy nor hold. */
export function protectionOf(fields: AzureProtectionFields): ObjectProtection | undefined {
  const mode = fields.immutabilityPolicyMode?.toLowerCase();
  const until = fields.immutabilityPolicyExpiresOn;
  const retention: Retention | undefined =
    until !== undefined && (mode === "unlocked" || mode === "locked") ? { mode: mode === "locked" ? "compliance" : "governance", retainUntil: until } : undefined;
  const legalHold = fields.legalHold === true;
  if (retention === undefined && !legalHold) return undefined;
  return { ...(retention === undefined ? {} : { retention }), legalHold };
}

/** The immutability policy of a retention; `retainUntil` rounded up to a whole second. */
export function policyOf(retention: Retention): BlobImmutabilityPolicy {
  return { expiriesOn: new Date(Math.ceil(retention.retainUntil.getTime() / 1000) * 1000), policyMode: retention.mode === "compliance" ? "Locked" : "Unlocked" };
}

/** The Put Blob / Put Block List options that store `protection` with the content. */
export function uploadProtection(protection: ProtectionInput | undefined): { immutabilityPolicy?: BlobImmutabilityPolicy; legalHold?: boolean } {
  if (protection === undefined) return {};
  return {
    ...(protection.retention === undefined ? {} : { immutabilityPolicy: policyOf(protection.retention) }),
    ...(protection.legalHold === true ? { legalHold: true } : {}),
  };
}

/** The current version of a blob: its protection and version ID. */
export interface CurrentVersion {
  readonly protection?: ObjectProtection | undefined;
  readonly versionId?: string | undefined;
}

/** What {@link BlobObjectLock} needs from its store. */
export interface ObjectLockBackend {
  /** The store's settings; `NOT_INITIALIZED` before `init`. */
  settings(): BlobStoreSettings;
  /** The client of one blob (keys with dot segments handled). */
  blob(settings: BlobStoreSettings, bucket: string, key: string): BlockBlobClient;
  /** Refuses an empty or too long bucket or key. */
  checkRef(ref: ObjectRef): void;
  /** One service call under the caller's signal and `requestTimeout`. */
  call<T>(settings: BlobStoreSettings, signal: AbortSignal | undefined, what: string, call: (abortSignal: AbortSignal) => Promise<T>): Promise<T>;
}

/**
 * `ObjectLock` on Azure version-level immutability, and the checks the store's puts and deletes
 * make with it (see the module description).
 */
export class BlobObjectLock implements ObjectLock {
  readonly #backend: ObjectLockBackend;
  /** Per settings (re-`init` starts afresh): container → lockable, and until when a `false` holds. */
  readonly #lockable = new WeakMap<BlobStoreSettings, Map<string, { lockable: boolean; until: number }>>();

  /** @param backend - The store's settings, clients and call wrapper. */
  constructor(backend: ObjectLockBackend) {
    this.#backend = backend;
  }

  /**
   * Whether the container has version-level immutability; `BUCKET_NOT_FOUND` when it is missing;
   * undefined when the credentials may not read container properties (a SAS for blobs), and then
   * the store's own answers decide.
   */
  async lockable(settings: BlobStoreSettings, bucket: string, signal: AbortSignal | undefined, fresh = false): Promise<boolean | undefined> {
    let cache = this.#lockable.get(settings);
    if (cache === undefined) {
      cache = new Map();
      this.#lockable.set(settings, cache);
    }
    const cached = cache.get(bucket);
    if (!fresh && cached !== undefined && (cached.lockable || cached.until > Date.now())) return cached.lockable;
    let lockable: boolean;
    try {
      const props = await this.#backend.call(settings, signal, "get container properties", (abortSignal) => settings.service.getContainerClient(bucket).getProperties({ abortSignal }));
      lockable = props.isImmutableStorageWithVersioningEnabled === true;
    } catch (error) {
      if (azureHttpStatus(error) === 404) throw bucketNotFound(bucket);
      if (azureHttpStatus(error) === 403 && !fresh && signal?.aborted !== true) return undefined;
      throw toStowageError(error, { operation: "get container properties", bucket, signal });
    }
    cache.set(bucket, { lockable, until: Date.now() + NOT_LOCKABLE_TTL_MS });
    return lockable;
  }

  /** `BUCKET_NOT_LOCKABLE` unless the container has version-level immutability. */
  async requireLockable(settings: BlobStoreSettings, bucket: string, signal: AbortSignal | undefined, fresh = false): Promise<void> {
    if ((await this.lockable(settings, bucket, signal, fresh)) === false) {
      throw bucketNotLockable(bucket, "the container does not have version-level immutability (immutable storage with versioning) enabled");
    }
  }

  /** The current version's protection and ID, or undefined when the blob does not exist. */
  async current(settings: BlobStoreSettings, ref: ObjectRef, signal: AbortSignal | undefined): Promise<CurrentVersion | undefined> {
    let props: BlobGetPropertiesResponse;
    try {
      props = await this.#backend.call(settings, signal, "head blob", (abortSignal) => this.#backend.blob(settings, ref.bucket, ref.key).getProperties({ abortSignal }));
    } catch (error) {
      const code = azureErrorCode(error);
      if (code === "BlobNotFound" || (azureHttpStatus(error) === 404 && code !== "ContainerNotFound")) return undefined;
      if (code === "ContainerNotFound") throw bucketNotFound(ref.bucket);
      throw toStowageError(error, { operation: "head blob", bucket: ref.bucket, key: ref.key, signal });
    }
    return { protection: protectionOf(props), versionId: props.versionId };
  }

  /**
   * Refuses (`OBJECT_LOCKED`) to delete or replace a protected current version (clauses 5.9.6,
   * 5.9.7), in a container with version-level immutability, where Azure itself would accept the
   * call and keep the version aside. Returns the current version (undefined when there is none, or
   * the container cannot protect).
   */
  async checkWritable(settings: BlobStoreSettings, ref: ObjectRef, bypassGovernance: boolean, action: string, signal: AbortSignal | undefined): Promise<CurrentVersion | undefined> {
    if ((await this.lockable(settings, ref.bucket, signal)) === false) return undefined;
    const current = await this.current(settings, ref, signal);
    checkMutable(ref.bucket, ref.key, current?.protection, bypassGovernance, action);
    return current;
  }

  /**
   * The typed error for a refusal by the store: `OBJECT_LOCKED` (with what protects the blob) for
   * Azure's immutability codes, `BUCKET_NOT_LOCKABLE` when protection was asked in a container that
   * (checked again) cannot hold it, else the usual mapping.
   */
  async refusal(settings: BlobStoreSettings, ref: ObjectRef, action: string, error: unknown, asked: boolean, signal: AbortSignal | undefined): Promise<StowageError> {
    if (error instanceof StowageError) return error;
    const code = azureErrorCode(error);
    const status = azureHttpStatus(error);
    if (IMMUTABLE_ERROR_CODES.has(code)) {
      const protection = (await this.current(settings, ref, signal).catch(() => undefined))?.protection ?? {
        legalHold: code === "BlobImmutableDueToLegalHold",
      };
      return objectLocked(ref.bucket, ref.key, protection, action);
    }
    if (asked && (status === 400 || status === 409) && code !== "BlobNotFound" && code !== "ContainerNotFound") {
      const lockable = await this.lockable(settings, ref.bucket, signal, true).catch(() => true);
      if (lockable === false) return bucketNotLockable(ref.bucket, "the container does not have version-level immutability (immutable storage with versioning) enabled");
    }
    if (code === "ContainerNotFound") return bucketNotFound(ref.bucket);
    return toStowageError(error, { operation: action, bucket: ref.bucket, key: ref.key, signal });
  }

  /**
   * Deletes a blob whose only protection is a governance (`Unlocked`) retention, for a caller that
   * bypasses it: deletes the policy, the blob, then the version the delete left behind, by its ID.
   * Azure refuses a caller without the permission to change policies (`PERMISSION_DENIED`).
   */
  async bypassDelete(settings: BlobStoreSettings, ref: ObjectRef, current: CurrentVersion, signal: AbortSignal | undefined): Promise<void> {
    const blob = this.#backend.blob(settings, ref.bucket, ref.key);
    try {
      await this.#backend.call(settings, signal, "delete immutability policy", (abortSignal) => blob.deleteImmutabilityPolicy({ abortSignal }));
    } catch (error) {
      throw await this.refusal(settings, ref, "delete the retention of", error, false, signal);
    }
    try {
      await this.#backend.call(settings, signal, "delete blob", (abortSignal) => blob.delete({ deleteSnapshots: "include", abortSignal }));
      if (current.versionId !== undefined && current.versionId !== "") {
        const versionId = current.versionId;
        await this.#backend.call(settings, signal, "delete blob version", (abortSignal) => blob.withVersion(versionId).delete({ abortSignal })).catch((error: unknown) => {
          if (azureErrorCode(error) !== "BlobNotFound") throw error;
        });
      }
    } catch (error) {
      throw await this.refusal(settings, ref, "delete", error, false, signal);
    }
  }

  /** Whether the container can hold protected blobs (clause 5.9.11); its default policy is not visible here. */
  async getBucketProtection(input: { readonly bucket: string }, options: CallOptions = {}): Promise<BucketProtection> {
    const settings = this.#backend.settings();
    this.#backend.checkRef({ bucket: input.bucket, key: "-" });
    return { lockable: (await this.lockable(settings, input.bucket, options.signal, true)) === true, enforcedBy: ENFORCED_BY };
  }

  /**
   * Sets, extends, shortens or removes the current version's policy (clause 5.9.9): an extension
   * always, anything else to a retention still in force only in governance mode with
   * `bypassGovernance` (Azure changes an `Unlocked` policy freely and refuses to weaken a `Locked`
   * one, which is mapped to `OBJECT_LOCKED` too).
   */
  async setRetention(input: SetRetentionInput, options: CallOptions = {}): Promise<ObjectProtection> {
    const settings = this.#backend.settings();
    this.#backend.checkRef(input);
    checkRetention(input.retention);
    const signal = options.signal;
    await this.requireLockable(settings, input.bucket, signal);
    const current = await this.current(settings, input, signal);
    if (current === undefined) throw objectNotFound(input.bucket, input.key);
    checkRetentionChange(input.bucket, input.key, current.protection, input.retention, input.bypassGovernance === true);
    const blob = this.#backend.blob(settings, input.bucket, input.key);
    const retention = input.retention;
    try {
      if (retention !== undefined) {
        await this.#backend.call(settings, signal, "set immutability policy", (abortSignal) => blob.setImmutabilityPolicy(policyOf(retention), { abortSignal }));
      } else if (current.protection?.retention !== undefined) {
        await this.#backend.call(settings, signal, "delete immutability policy", (abortSignal) => blob.deleteImmutabilityPolicy({ abortSignal }));
      }
    } catch (error) {
      throw await this.refusal(settings, input, retention === undefined ? "remove the retention of" : "change the retention of", error, true, signal);
    }
    return (await this.current(settings, input, signal))?.protection ?? { legalHold: false };
  }

  /** Places or releases the current version's legal hold (clause 5.9.10). */
  async setLegalHold(input: SetLegalHoldInput, options: CallOptions = {}): Promise<ObjectProtection> {
    const settings = this.#backend.settings();
    this.#backend.checkRef(input);
    const signal = options.signal;
    await this.requireLockable(settings, input.bucket, signal);
    const blob = this.#backend.blob(settings, input.bucket, input.key);
    try {
      await this.#backend.call(settings, signal, "set legal hold", (abortSignal) => blob.setLegalHold(input.legalHold, { abortSignal }));
    } catch (error) {
      if (azureErrorCode(error) === "BlobNotFound" || (azureHttpStatus(error) === 404 && azureErrorCode(error) !== "ContainerNotFound")) {
        throw objectNotFound(input.bucket, input.key);
      }
      throw await this.refusal(settings, input, "set the legal hold of", error, true, signal);
    }
    return (await this.current(settings, input, signal))?.protection ?? { legalHold: false };
  }
}

/** Whether a retention is the only protection and is in governance mode (a bypass may remove it). */
export function onlyGovernance(protection: ObjectProtection | undefined): boolean {
  return protection !== undefined && isProtected(protection) && !protection.legalHold && retentionActive(protection.retention) && protection.retention.mode === "governance";
}
