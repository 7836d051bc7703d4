/**
 * The rules of object protection (contract 5.9) that do not depend on a store: when a retention or
 * legal hold forbids a delete, an overwrite or a retention change, and the typed errors that say
 * so. Plugins whose store does not enforce a rule itself (an S3 delete marker, a local directory)
 * call these before they act; hosts use them to check their callers' input.
 */
import { Code, Reason, StowageError } from "./errors.js";
import type { ObjectProtection, ProtectionInput, Retention } from "./types.js";

/** Whether a retention still protects at `now` (clause 5.9.2). */
export function retentionActive(retention: Retention | undefined, now: Date = new Date()): retention is Retention {
  return retention !== undefined && retention.retainUntil.getTime() > now.getTime();
}

/** Whether an object with this protection may not be deleted or replaced at `now` (clause 5.9.2). */
export function isProtected(protection: ObjectProtection | undefined, now: Date = new Date()): boolean {
  return protection !== undefined && (protection.legalHold || retentionActive(protection.retention, now));
}

/** The metadata of an `OBJECT_LOCKED` error: what protects the object and until when. */
function lockMetadata(bucket: string, key: string, protection: ObjectProtection): Record<string, string> {
  const retention = protection.retention;
  return {
    bucket,
    key,
    legal_hold: String(protection.legalHold),
    ...(retention === undefined ? {} : { mode: retention.mode.toUpperCase(), retain_until: retention.retainUntil.toISOString() }),
  };
}

/** What protects an object, in words: "a legal hold", "compliance retention until …". */
function describe(protection: ObjectProtection, now: Date): string {
  const parts: string[] = [];
  if (protection.legalHold) parts.push("a legal hold (release it first)");
  const retention = protection.retention;
  if (retentionActive(retention, now)) parts.push(`${retention.mode} retention until ${retention.retainUntil.toISOString()}`);
  return parts.join(" and ");
}

/**
 * The `FAILED_PRECONDITION` error with reason `OBJECT_LOCKED` for an action that a protection
 * forbids (clause 5.9.5).
 */
export function objectLocked(bucket: string, key: string, protection: ObjectProtection, action: string, now: Date = new Date()): StowageError {
  const what = describe(protection, now) || "its retention";
  return new StowageError(Code.FailedPrecondition, `cannot ${action} ${JSON.stringify(key)} in bucket ${JSON.stringify(bucket)}: it is protected by ${what}`, {
    reason: Reason.ObjectLocked,
    metadata: lockMetadata(bucket, key, protection),
  });
}

/** The `FAILED_PRECONDITION` error with reason `BUCKET_NOT_LOCKABLE` (clause 5.9.12). */
export function bucketNotLockable(bucket: string, why: string): StowageError {
  return new StowageError(Code.FailedPrecondition, `bucket ${JSON.stringify(bucket)} cannot hold protected objects: ${why}`, {
    reason: Reason.BucketNotLockable,
    metadata: { bucket },
  });
}

/**
 * Throws `OBJECT_LOCKED` when an object with this protection may not be deleted or replaced
 * (clauses 5.9.6, 5.9.7): a legal hold always forbids it, a compliance retention until it ends, a
 * governance retention unless the caller bypasses it.
 */
export function checkMutable(bucket: string, key: string, protection: ObjectProtection | undefined, bypassGovernance: boolean, action: string, now: Date = new Date()): void {
  if (protection === undefined) return;
  const retention = protection.retention;
  const retained = retentionActive(retention, now) && !(retention.mode === "governance" && bypassGovernance);
  if (protection.legalHold || retained) throw objectLocked(bucket, key, protection, action, now);
}

/**
 * Throws `OBJECT_LOCKED` when replacing an object's retention `current` with `next` weakens it in a
 * way the mode forbids (clause 5.9.9): an extension in the same mode is always allowed; anything
 * else to an active compliance retention is refused; to an active governance retention it needs
 * `bypassGovernance`.
 */
export function checkRetentionChange(
  bucket: string,
  key: string,
  current: ObjectProtection | undefined,
  next: Retention | undefined,
  bypassGovernance: boolean,
  now: Date = new Date(),
): void {
  const old = current?.retention;
  if (!retentionActive(old, now)) return;
  const extends_ = next?.mode === old.mode && next.retainUntil.getTime() >= old.retainUntil.getTime();
  if (extends_) return;
  if (old.mode === "governance" && bypassGovernance) return;
  const change = next === undefined ? "remove the retention of" : next.mode !== old.mode ? `change the retention mode of` : "shorten the retention of";
  throw objectLocked(bucket, key, { retention: old, legalHold: current?.legalHold ?? false }, change, now);
}

/** Refuses a retention that names no valid mode or time (the shape a host checks before sending). */
export function checkRetentionShape(retention: Retention | undefined): void {
  if (retention === undefined) return;
  if (retention.mode !== "governance" && retention.mode !== "compliance") {
    throw new StowageError(Code.InvalidArgument, `retention mode must be "governance" or "compliance", got ${JSON.stringify(retention.mode)}`);
  }
  if (!(retention.retainUntil instanceof Date) || Number.isNaN(retention.retainUntil.getTime())) {
    throw new StowageError(Code.InvalidArgument, "retention needs a valid retainUntil time");
  }
}

/** Refuses a retention that names no mode or has already ended (clauses 5.9.4, 5.9.9): what a plugin judges. */
export function checkRetention(retention: Retention | undefined, now: Date = new Date()): void {
  if (retention === undefined) return;
  checkRetentionShape(retention);
  if (retention.retainUntil.getTime() <= now.getTime()) {
    throw new StowageError(Code.InvalidArgument, `retainUntil ${retention.retainUntil.toISOString()} is not in the future (contract 5.9.4)`);
  }
}

/** Whether a put asks for any protection. */
export function asksProtection(protection: ProtectionInput | undefined): protection is ProtectionInput {
  return protection !== undefined && (protection.retention !== undefined || protection.legalHold === true);
}
