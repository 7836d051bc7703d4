/**
 * Object protection (contract 5.9) in Cloud Storage terms: how an object's `retention`,
 * `temporaryHold` and `eventBasedHold`, and a bucket's `objectRetention` and `retentionPolicy`, map
 * to the contract's retentions, legal holds and bucket protection, and how Cloud Storage's refusals
 * are told apart from other permission failures.
 *
 * - Mode `GOVERNANCE` is an object retention in mode `Unlocked`, `COMPLIANCE` one in mode `Locked`.
 * - The legal hold is the object's `temporaryHold`; an `eventBasedHold` also protects the object and
 *   is reported as a legal hold, but the plugin never places nor releases one.
 * - A bucket retention policy (Bucket Lock) gives every object a `retentionExpirationTime`; when it
 *   ends later than the object's own retention (or the object has none), the object reports it as
 *   a `COMPLIANCE` retention, since no caller can bypass it for one object.
 *
 * @packageDocumentation
 */
import type { BucketMetadata, FileMetadata } from "@google-cloud/storage";
import type { BucketProtection, ObjectProtection, ProtectionInput, Retention, RetentionMode } from "@stowage/sdk";
import { errorReason, httpStatus } from "../shared/errors.js";

/** What `GetBucketProtection` reports as `enforced_by` for Cloud Storage. */
export const GCS_ENFORCED_BY = "the store (Cloud Storage Object Retention Lock, object holds and Bucket Lock)";

/** The Cloud Storage retention mode of a contract mode. */
export function gcsMode(mode: RetentionMode): "Unlocked" | "Locked" {
  return mode === "compliance" ? "Locked" : "Unlocked";
}

/** The contract mode of a Cloud Storage retention mode, or `undefined` for an unknown one. */
export function contractMode(mode: string | undefined): RetentionMode | undefined {
  if (mode === "Locked") return "compliance";
  if (mode === "Unlocked") return "governance";
  return undefined;
}

/** The object's own retention (`retention`), without the bucket's policy. */
export function objectRetention(metadata: FileMetadata | undefined): Retention | undefined {
  const retention = metadata?.retention;
  const mode = contractMode(retention?.mode);
  const until = retention?.retainUntilTime === undefined ? Number.NaN : Date.parse(retention.retainUntilTime);
  if (mode === undefined || Number.isNaN(until)) return undefined;
  return { mode, retainUntil: new Date(until) };
}

/**
 * The protection of an object as the contract reports it (clause 5.9.3), or `undefined` when it has
 * no retention and no hold.
 */
export function protectionOf(metadata: FileMetadata | undefined): ObjectProtection | undefined {
  if (metadata === undefined) return undefined;
  const legalHold = metadata.temporaryHold === true || metadata.eventBasedHold === true;
  let retention = objectRetention(metadata);
  // An object is kept until both its own retention and the bucket's policy allow: a policy that
  // ends later is what protects it.
  const policyUntil = metadata.retentionExpirationTime === undefined ? Number.NaN : Date.parse(metadata.retentionExpirationTime);
  if (!Number.isNaN(policyUntil) && (retention === undefined || policyUntil > retention.retainUntil.getTime())) {
    retention = { mode: "compliance", retainUntil: new Date(policyUntil) };
  }
  if (retention === undefined && !legalHold) return undefined;
  return { legalHold, ...(retention === undefined ? {} : { retention }) };
}

/** The Cloud Storage `retention` field of a contract retention. */
export function retentionField(retention: Retention): { mode: string; retainUntilTime: string } {
  return { mode: gcsMode(retention.mode), retainUntilTime: retention.retainUntil.toISOString() };
}

/** The object metadata that stores a put's protection with the object (clause 5.9.4). */
export function protectionMetadata(protection: ProtectionInput | undefined): Pick<FileMetadata, "retention" | "temporaryHold"> {
  if (protection === undefined) return {};
  return {
    ...(protection.retention === undefined ? {} : { retention: retentionField(protection.retention) }),
    ...(protection.legalHold === true ? { temporaryHold: true } : {}),
  };
}

/** Whether objects in the bucket can hold a retention: `objectRetention.mode` is `Enabled`. */
export function objectRetentionEnabled(metadata: BucketMetadata): boolean {
  const mode = (metadata as { objectRetention?: { mode?: unknown } }).objectRetention?.mode;
  return mode === "Enabled";
}

/**
 * The bucket's protection (clause 5.9.11). A bucket is lockable when Object Retention Lock is
 * enabled on it: only there can an object get a retention of its own. A bucket with only a retention
 * policy (Bucket Lock) protects every object by its age, but cannot take per-object retentions, so it
 * is not lockable; its policy is still reported as the default retention (mode `COMPLIANCE` when
 * the policy is locked, `GOVERNANCE` otherwise, since an unlocked policy can be shortened or removed).
 */
export function bucketProtectionOf(metadata: BucketMetadata): BucketProtection {
  const policy = metadata.retentionPolicy;
  const period = policy?.retentionPeriod === undefined ? Number.NaN : Number(policy.retentionPeriod);
  return {
    lockable: objectRetentionEnabled(metadata),
    enforcedBy: GCS_ENFORCED_BY,
    ...(Number.isFinite(period) && period > 0 ? { defaultRetention: { mode: policy?.isLocked === true ? "compliance" : "governance", periodSeconds: period } } : {}),
  };
}

/** The message of a Google error, first line. */
function messageOf(error: unknown): string {
  const raw: unknown = error instanceof Error ? error.message : typeof error === "object" && error !== null ? (error as { message?: unknown }).message : "";
  const message = typeof raw === "string" ? raw : "";
  return message.split("\n")[0] ?? "";
}

/**
 * Whether Cloud Storage refused a call because a retention or hold protects the object: a 403 whose
 * message says so ("… is subject to object retention …", "… is under active Temporary hold …",
 * "… is subject to bucket's retention policy …"), not a missing permission ("… does not have
 * storage.objects.overrideUnlockedRetention access …").
 */
export function isProtectionRefusal(error: unknown): boolean {
  const message = messageOf(error);
  return httpStatus(error) === 403 && /is subject to|under active .*hold|locked retention/i.test(message) && !/does not have|permission/i.test(message);
}

/**
 * Whether Cloud Storage refused a retention because the bucket does not have Object Retention Lock
 * enabled: a 400 whose message says so.
 */
export function isRetentionNotEnabled(error: unknown): boolean {
  return httpStatus(error) === 400 && /retention/i.test(messageOf(error)) && /enabl/i.test(messageOf(error)) && errorReason(error) !== "conditionNotMet";
}
