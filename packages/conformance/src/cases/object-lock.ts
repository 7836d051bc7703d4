/**
 * Object-protection cases (contract 5.9, contract 1.2): retention and legal hold on put and head,
 * refusals of delete, overwrite and weakening, the governance bypass, the lapse of a retention,
 * `GetBucketProtection`, `BUCKET_NOT_LOCKABLE`, and the refusal of protection by a plugin without
 * `CAPABILITY_OBJECT_LOCK`.
 *
 * They need a bucket where objects can be protected, `objectStore.lockBucket`: without it a plugin
 * announcing OBJECT_LOCK has them reported as skipped, with the reason. Retentions last
 * `objectStore.lockRetention` (3 s by default), asked for in whole seconds so that a store counting
 * in seconds stores them as asked. After each case, governance retentions are removed with the
 * bypass, legal holds released, and compliance-protected objects deleted once their retention ends
 * (the cleanup waits for it); an object the cleanup could not remove stays under the run's prefix,
 * where `--sweep` finds it later.
 *
 * Most calls go through the kit's host, as a backup server's would. The host checks a retention
 * before it sends it and refuses protection for a plugin without the capability, so the cases that
 * send what a host never would (`OS-LOCK-INVALID`, `OS-LOCK-UNSUPPORTED`) use the kit's own process
 * of the plugin and its own protobuf messages.
 *
 * @packageDocumentation
 */
import { Code, Reason, StowageError, type ObjectLock, type ObjectProtection, type Retention, type RetentionMode } from "@stowage/sdk";
import { CaseSkipped, defineCase } from "../define.js";
import { bodyOf, pseudoRandomBytes, sha256Bytes } from "../harness/data.js";
import { CaseFailure, check, describeFailure, expectError, expectOk, showKey } from "../harness/expect.js";
import { RAW_RETENTION_MODE, type RawObjectStore } from "../harness/raw-object-store.js";
import { sleep } from "../harness/wait.js";
import type { CaseContext, ConformanceCase } from "../types.js";
import { getBytes } from "./objects.js";
import { rawStore } from "./raw-store.js";

const OS = ["object-store"] as const;
const LOCK = ["OBJECT_LOCK"] as const;
const NEEDS_LOCK_BUCKET = ["init", "lockBucket"] as const;

/** The refusal a protection causes (clause 5.9.5). */
const LOCKED = { code: Code.FailedPrecondition, reason: Reason.ObjectLocked } as const;
/** Protection asked for in a bucket that cannot hold it (clause 5.9.12). */
const NOT_LOCKABLE = { code: Code.FailedPrecondition, reason: Reason.BucketNotLockable } as const;
/** The answer of a plugin without the capability (clause 5.9.1). */
const UNSUPPORTED = { code: Code.Unimplemented, reason: Reason.Unsupported } as const;

/** How long after a retention's end (by the kit's clock) a store's clock may still count it: polling stops then. */
const LAPSE_GRACE_MS = 15_000;
/** Pause between polls for a lapsed retention. */
const POLL_MS = 250;

/** Why the object-protection cases launch a process of their own, in messages. */
const RAW_PURPOSE = "object-protection RPCs with fields a host would not send";

/** The time `ms` from now, rounded up to a whole second. */
function secondsFromNow(ms: number): Date {
  return new Date(Math.ceil((Date.now() + ms) / 1000) * 1000);
}

function lockBucket(ctx: CaseContext): string {
  const bucket = ctx.objectSettings.lockBucket;
  if (bucket === undefined) throw new CaseSkipped("objectStore.lockBucket is not configured");
  return bucket;
}

/** The host's object-protection client; a plugin announcing OBJECT_LOCK has one. */
function objectLock(ctx: CaseContext): ObjectLock {
  const lock = ctx.objectStore.objectLock;
  if (lock === undefined) throw new CaseFailure("the plugin announces CAPABILITY_OBJECT_LOCK, but the host offers no object-protection client for it (5.9.1)");
  return lock;
}

/** A retention as messages show it. */
function showRetention(retention: Retention | undefined): string {
  return retention === undefined ? "no retention" : `${retention.mode} retention until ${retention.retainUntil.toISOString()}`;
}

/** A protection as messages show it. */
function showProtection(protection: ObjectProtection | undefined): string {
  if (protection === undefined) return "no protection";
  return `${showRetention(protection.retention)}, legal hold ${protection.legalHold ? "on" : "off"}`;
}

/** Checks that `protection` has a retention of `mode` until `until` or later (rounded up, never down: clause 5.9.4). */
function checkRetention(protection: ObjectProtection | undefined, mode: RetentionMode, until: Date, what: string, clause: string): Retention {
  const retention = protection?.retention;
  check(retention !== undefined, `${what} reports ${showProtection(protection)}; expected a ${mode} retention until ${until.toISOString()} (${clause})`);
  check(retention.mode === mode, `${what} reports a ${retention.mode} retention; expected ${mode} (${clause})`);
  check(
    retention.retainUntil.getTime() >= until.getTime(),
    `${what} reports retain_until ${retention.retainUntil.toISOString()}, before the ${until.toISOString()} asked for; a plugin may round it up to its store's precision, never down (${clause}, 5.9.4)`,
  );
  return retention;
}

/** HeadObject in `bucket`, expecting the object to exist. */
async function head(ctx: CaseContext, bucket: string, key: string): Promise<{ protection: ObjectProtection | undefined }> {
  const info = await expectOk(`HeadObject ${showKey(key)}`, () => ctx.objectStore.headObject({ bucket, key }, { signal: ctx.signal }));
  check(info !== undefined, `HeadObject finds nothing under ${showKey(key)} in bucket ${JSON.stringify(bucket)}, which the case stored`);
  return { protection: info.protection };
}

/** Expects `key` to hold exactly `data` (GetObject, in `bucket`), `why` saying after what. */
async function expectContent(ctx: CaseContext, bucket: string, key: string, data: Buffer, why: string, clause: string): Promise<void> {
  const got = await getBytes(ctx, key, bucket);
  check(got.data.equals(data), `${why}, ${showKey(key)} holds ${String(got.data.length)} bytes (sha256 ${sha256Bytes(got.data).toString("hex").slice(0, 12)}…) instead of the ${String(data.length)} stored; it must be unchanged (${clause})`);
}

/** Expects nothing under `key` in `bucket`. */
async function expectGone(ctx: CaseContext, bucket: string, key: string, why: string, clause: string): Promise<void> {
  const info = await expectOk(`HeadObject ${showKey(key)}`, () => ctx.objectStore.headObject({ bucket, key }, { signal: ctx.signal }));
  check(info === undefined, `HeadObject still finds ${showKey(key)} (${String(info?.size)} bytes, ${showProtection(info?.protection)}) ${why} (${clause})`);
}

/**
 * Deletes `key` in `bucket` once nothing protects it, as the cleanup must: releases a legal hold,
 * removes a governance retention with the bypass, and otherwise waits for the retention to end, then
 * retries a refused delete (the store's clock is its own), with the bypass too, until
 * {@link LAPSE_GRACE_MS} after the end.
 */
async function removeProtected(ctx: CaseContext, bucket: string, key: string, signal: AbortSignal): Promise<void> {
  const store = ctx.objectStore;
  const lock = store.objectLock;
  const info = await store.headObject({ bucket, key }, { signal });
  if (info === undefined) return;
  const protection = info.protection;
  if (protection?.legalHold === true && lock !== undefined) await lock.setLegalHold({ bucket, key, legalHold: false }, { signal });
  const retention = protection?.retention;
  let until = Date.now();
  if (retention !== undefined && retention.retainUntil.getTime() > Date.now()) {
    if (retention.mode === "governance") {
      try {
        await store.deleteObject({ bucket, key, bypassGovernance: true }, { signal });
        return;
      } catch (error) {
        const refused = StowageError.from(error);
        if (refused.reason !== Reason.ObjectLocked && refused.reason !== Reason.AccessDenied) throw error;
      }
    }
    until = retention.retainUntil.getTime();
    await sleep(until - Date.now(), signal);
  }
  for (;;) {
    try {
      await store.deleteObject({ bucket, key }, { signal });
      return;
    } catch (error) {
      if (StowageError.from(error).reason !== Reason.ObjectLocked) throw error;
      try {
        await store.deleteObject({ bucket, key, bypassGovernance: true }, { signal });
        return;
      } catch {
        // Still protected, by the store's clock: wait a little.
      }
      if (Date.now() > until + LAPSE_GRACE_MS) throw error;
      await sleep(POLL_MS, signal);
    }
  }
}

/** Registers `key` in `bucket` for removal after the case, whatever protects it ({@link removeProtected}). */
function trackProtected(ctx: CaseContext, bucket: string, key: string): string {
  const label = `protected object ${bucket}/${key}`;
  ctx.tracker.add(label, (signal) => removeProtected(ctx, bucket, key, signal));
  return label;
}

/** Puts `data` under `key` in `bucket` with `protection` (tracked), expecting success. */
async function protectedPut(
  ctx: CaseContext,
  bucket: string,
  key: string,
  data: Buffer,
  protection: { retention?: Retention; legalHold?: boolean } | undefined,
  bypassGovernance = false,
): Promise<void> {
  trackProtected(ctx, bucket, key);
  const what = `PutObject ${showKey(key)} with ${protection === undefined ? "no protection" : showProtection({ legalHold: protection.legalHold === true, retention: protection.retention })}${bypassGovernance ? " and bypass_governance" : ""}`;
  await expectOk(what, () => ctx.objectStore.putObject({ bucket, key, body: bodyOf(data), ...(protection === undefined ? {} : { protection }), ...(bypassGovernance ? { bypassGovernance } : {}) }, { signal: ctx.signal }));
}

/**
 * A time before `until`, by at least a whole second, and still at least half a second in the
 * future: what a shortened retention asks for. Skips the case when the retention is too close to
 * its end for that.
 */
function shorter(ctx: CaseContext, until: Date): Date {
  const earlier = new Date(Math.floor(until.getTime() / 1000) * 1000 - 1000);
  if (earlier.getTime() < Date.now() + 500) {
    throw new CaseSkipped(`the retention (objectStore.lockRetention, ${String(ctx.objectSettings.lockRetentionMs)} ms) was too close to its end to ask for a shorter one; raise objectStore.lockRetention`);
  }
  return earlier;
}

/**
 * Runs a call that bypasses a governance retention; a store that refuses this caller the bypass
 * (PERMISSION_DENIED/ACCESS_DENIED, clause 5.9.6) skips the case, with what to grant.
 */
async function withBypass<T>(what: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    const refused = StowageError.from(error);
    if (refused.code === Code.PermissionDenied && refused.reason === Reason.AccessDenied) {
      throw new CaseSkipped(`the store refuses the kit's credentials the governance bypass (${describeFailure(refused)}), as clause 5.9.6 allows; grant it (for S3, s3:BypassGovernanceRetention) to run this case`);
    }
    throw new CaseFailure(`${what} failed: ${describeFailure(refused)}`);
  }
}

/** Checks the metadata of an OBJECT_LOCKED error (clause 5.9.5). */
function checkLockedMetadata(error: StowageError, bucket: string, key: string, expected: { legalHold: boolean; retention?: Retention | undefined }, what: string): void {
  const m = error.metadata;
  const problems: string[] = [];
  if (m.bucket !== bucket) problems.push(`bucket ${JSON.stringify(m.bucket)} instead of ${JSON.stringify(bucket)}`);
  if (m.key !== key) problems.push(`key ${m.key === undefined ? "missing" : showKey(m.key)} instead of ${showKey(key)}`);
  if (m.legal_hold !== String(expected.legalHold)) problems.push(`legal_hold ${JSON.stringify(m.legal_hold)} instead of "${String(expected.legalHold)}"`);
  const retention = expected.retention;
  if (retention !== undefined) {
    if (m.mode !== retention.mode.toUpperCase()) problems.push(`mode ${JSON.stringify(m.mode)} instead of "${retention.mode.toUpperCase()}"`);
    const until = m.retain_until === undefined ? Number.NaN : Date.parse(m.retain_until);
    if (m.retain_until === undefined || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(m.retain_until) || Number.isNaN(until)) {
      problems.push(`retain_until ${JSON.stringify(m.retain_until)} is not an RFC 3339 time in UTC`);
    } else if (until < retention.retainUntil.getTime() - 1000) {
      problems.push(`retain_until ${m.retain_until} is earlier than the retention's ${retention.retainUntil.toISOString()}`);
    }
  }
  check(problems.length === 0, `${what} failed with OBJECT_LOCKED, but its metadata is wrong: ${problems.join("; ")} (5.9.5)`);
}

/** Registers the removal of `key` from the kit's own process (with the bypass, in case a protection was stored after all). */
function trackRawKey(ctx: CaseContext, store: RawObjectStore, bucket: string, key: string): void {
  ctx.tracker.add(`object ${bucket}/${key} (the kit's own process)`, async (signal) => {
    await store.deleteObject({ bucket, key, bypassGovernance: true }, signal);
  });
}

/** Expects nothing under `key` on the kit's own process. */
async function expectRawAbsent(ctx: CaseContext, store: RawObjectStore, bucket: string, key: string, why: string, clause: string): Promise<void> {
  const info = await expectOk(`HeadObject ${showKey(key)}`, () => store.headObject({ bucket, key }, ctx.signal));
  check(info === undefined, `HeadObject finds ${showKey(key)} (${String(info?.size)} bytes) ${why}; it must store nothing (${clause})`);
}

/** The object-protection cases, in catalogue order. */
export const objectLockCases: readonly ConformanceCase[] = [
  defineCase({
    id: "OS-LOCK-BUCKET",
    title: "GetBucketProtection reports objectStore.lockBucket lockable, and says how protection is enforced there (enforced_by)",
    clause: "5.9.11, 5.9.13",
    kinds: OS,
    capabilities: LOCK,
    requires: NEEDS_LOCK_BUCKET,
    async run(ctx) {
      const bucket = lockBucket(ctx);
      const found = await expectOk(`GetBucketProtection ${JSON.stringify(bucket)}`, () => objectLock(ctx).getBucketProtection({ bucket }, { signal: ctx.signal }));
      check(found.lockable, `GetBucketProtection reports objectStore.lockBucket ${JSON.stringify(bucket)} not lockable; configure a bucket where objects can be protected (docs/conformance.md), or the plugin misreports it (5.9.11)`);
      check(found.enforcedBy.trim() !== "", `GetBucketProtection of the lockable bucket ${JSON.stringify(bucket)} leaves enforced_by empty; it says how protection is enforced, for operators (5.9.11, 5.9.13)`);
      ctx.note(`enforced by: ${found.enforcedBy}${found.defaultRetention === undefined ? "" : `; default ${found.defaultRetention.mode} retention of ${String(found.defaultRetention.periodSeconds)} s`}`);
    },
  }),
  defineCase({
    id: "OS-LOCK-PUT-HEAD",
    title: "A put with a governance retention stores it with the object: HeadObject and the GetObject header report its mode and a retain_until no earlier than asked",
    clause: "5.9.3, 5.9.4",
    kinds: OS,
    capabilities: LOCK,
    requires: NEEDS_LOCK_BUCKET,
    async run(ctx) {
      const bucket = lockBucket(ctx);
      const key = `${ctx.prefix}object`;
      const data = pseudoRandomBytes(key, 1000);
      const until = secondsFromNow(ctx.objectSettings.lockRetentionMs);
      await protectedPut(ctx, bucket, key, data, { retention: { mode: "governance", retainUntil: until } });
      const { protection } = await head(ctx, bucket, key);
      checkRetention(protection, "governance", until, "HeadObject of the object put with a governance retention", "5.9.3, 5.9.4");
      check(protection?.legalHold === false, `HeadObject reports a legal hold on an object put without one (5.9.3)`);
      const got = await getBytes(ctx, key, bucket);
      check(got.data.equals(data), `GetObject of the protected object returns ${String(got.data.length)} bytes instead of the ${String(data.length)} stored (5.9.4)`);
      checkRetention(got.info.protection, "governance", until, "the GetObject header of the object put with a governance retention", "5.9.3");
    },
  }),
  defineCase({
    id: "OS-LOCK-DELETE",
    title: "DeleteObject of an object under retention fails with FAILED_PRECONDITION/OBJECT_LOCKED and the metadata bucket, key, legal_hold, mode and retain_until; the object stays readable, unchanged",
    clause: "5.9.5, 5.9.6, 5.6.4",
    kinds: OS,
    capabilities: LOCK,
    requires: NEEDS_LOCK_BUCKET,
    async run(ctx) {
      const bucket = lockBucket(ctx);
      const key = `${ctx.prefix}object`;
      const data = pseudoRandomBytes(key, 1000);
      const until = secondsFromNow(ctx.objectSettings.lockRetentionMs + 2000);
      await protectedPut(ctx, bucket, key, data, { retention: { mode: "governance", retainUntil: until } });
      const error = await expectError("DeleteObject of an object under a governance retention, without bypass_governance", LOCKED, () => ctx.objectStore.deleteObject({ bucket, key }, { signal: ctx.signal }));
      checkLockedMetadata(error, bucket, key, { legalHold: false, retention: { mode: "governance", retainUntil: until } }, "DeleteObject of the protected object");
      await expectContent(ctx, bucket, key, data, "after a refused delete", "5.9.6");
      checkRetention((await head(ctx, bucket, key)).protection, "governance", until, "HeadObject after the refused delete", "5.9.5");
    },
  }),
  defineCase({
    id: "OS-LOCK-OVERWRITE",
    title: "PutObject to a key whose object is under retention fails with FAILED_PRECONDITION/OBJECT_LOCKED and leaves the object as it was",
    clause: "5.9.7, 5.9.5",
    kinds: OS,
    capabilities: LOCK,
    requires: NEEDS_LOCK_BUCKET,
    async run(ctx) {
      const bucket = lockBucket(ctx);
      const key = `${ctx.prefix}object`;
      const data = pseudoRandomBytes(key, 1000);
      const until = secondsFromNow(ctx.objectSettings.lockRetentionMs + 2000);
      await protectedPut(ctx, bucket, key, data, { retention: { mode: "governance", retainUntil: until } });
      const other = pseudoRandomBytes(`${key}.other`, 700);
      const error = await expectError("PutObject over an object under a governance retention, without bypass_governance", LOCKED, () =>
        ctx.objectStore.putObject({ bucket, key, body: bodyOf(other) }, { signal: ctx.signal }),
      );
      checkLockedMetadata(error, bucket, key, { legalHold: false, retention: { mode: "governance", retainUntil: until } }, "PutObject over the protected object");
      await expectError("PutObject over an object under a governance retention, with a retention of its own", LOCKED, () =>
        ctx.objectStore.putObject({ bucket, key, body: bodyOf(other), protection: { retention: { mode: "governance", retainUntil: secondsFromNow(ctx.objectSettings.lockRetentionMs + 60_000) } } }, { signal: ctx.signal }),
      );
      await expectContent(ctx, bucket, key, data, "after refused overwrites", "5.9.7");
      checkRetention((await head(ctx, bucket, key)).protection, "governance", until, "HeadObject after the refused overwrites", "5.9.7");
    },
  }),
  defineCase({
    id: "OS-LOCK-DIRECT-PUT",
    title: "With DIRECT_TRANSFER, BeginPut to a key whose object is under retention fails with FAILED_PRECONDITION/OBJECT_LOCKED (or is declined) and leaves the object as it was",
    clause: "5.9.7, 5.8.1",
    kinds: OS,
    capabilities: ["OBJECT_LOCK", "DIRECT_TRANSFER"],
    requires: ["init", "command", "lockBucket"],
    async run(ctx) {
      const store = await rawStore(ctx, RAW_PURPOSE);
      const bucket = lockBucket(ctx);
      const key = `${ctx.prefix}object`;
      const data = pseudoRandomBytes(key, 1000);
      const retention = { mode: RAW_RETENTION_MODE.governance, retainUntil: secondsFromNow(ctx.objectSettings.lockRetentionMs + 2000) };
      trackRawKey(ctx, store, bucket, key);
      await expectOk(`PutObject ${showKey(key)} with a governance retention`, () => store.putObject({ bucket, key, body: data, protection: { retention, legalHold: false } }, ctx.signal));
      const what = "BeginPut over an object under a governance retention";
      let declined: string | undefined;
      try {
        const answer = await store.beginPut({ bucket, key, size: 700 }, ctx.signal);
        if ("declined" in answer) declined = answer.declined;
        else {
          if (answer.uploadId !== "") {
            ctx.tracker.add(`upload ${bucket}/${key} (AbortPut)`, async (signal) => {
              await store.abortPut({ bucket, key, uploadId: answer.uploadId }, signal);
            });
          }
          throw new CaseFailure(`${what}: expected FAILED_PRECONDITION/OBJECT_LOCKED, but it returned an upload plan; BeginPut refuses as PutObject does (5.9.7)`);
        }
      } catch (error) {
        if (error instanceof CaseFailure) throw error;
        const refused = StowageError.from(error);
        check(refused.code === Code.FailedPrecondition && refused.reason === Reason.ObjectLocked, `${what}: expected FAILED_PRECONDITION/OBJECT_LOCKED, got ${describeFailure(refused)} (5.9.7)`);
      }
      const got = await expectOk(`GetObject ${showKey(key)}`, () => store.getObject({ bucket, key }, ctx.signal));
      check(got.data.equals(data), `after a BeginPut over it, ${showKey(key)} holds ${String(got.data.length)} bytes instead of the ${String(data.length)} stored (5.9.7)`);
      if (declined !== undefined) throw new CaseSkipped(`the plugin declined the upload (${declined}), as clause 5.8.1 allows: a host then sends PutObject, which OS-LOCK-OVERWRITE checks`);
    },
  }),
  defineCase({
    id: "OS-LOCK-EXTEND",
    title: "SetRetention extending a governance retention (same mode, same or later retain_until) succeeds without bypass and is reported by SetRetention and HeadObject",
    clause: "5.9.9",
    kinds: OS,
    capabilities: LOCK,
    requires: NEEDS_LOCK_BUCKET,
    async run(ctx) {
      const bucket = lockBucket(ctx);
      const lock = objectLock(ctx);
      const key = `${ctx.prefix}object`;
      const until = secondsFromNow(ctx.objectSettings.lockRetentionMs);
      await protectedPut(ctx, bucket, key, pseudoRandomBytes(key, 100), { retention: { mode: "governance", retainUntil: until } });
      const stored = checkRetention((await head(ctx, bucket, key)).protection, "governance", until, "HeadObject of the object put with a governance retention", "5.9.3");
      const same = await expectOk("SetRetention to the retain_until HeadObject reports (no earlier than the current one)", () =>
        lock.setRetention({ bucket, key, retention: { mode: "governance", retainUntil: stored.retainUntil } }, { signal: ctx.signal }),
      );
      checkRetention(same, "governance", stored.retainUntil, "SetRetention to the same retain_until", "5.9.9");
      const later = new Date(stored.retainUntil.getTime() + 2000);
      const extended = await expectOk(`SetRetention extending the retention to ${later.toISOString()}`, () =>
        lock.setRetention({ bucket, key, retention: { mode: "governance", retainUntil: later } }, { signal: ctx.signal }),
      );
      checkRetention(extended, "governance", later, "SetRetention's answer to an extension", "5.9.9");
      checkRetention((await head(ctx, bucket, key)).protection, "governance", later, "HeadObject after an extension", "5.9.9, 5.9.3");
    },
  }),
  defineCase({
    id: "OS-LOCK-COMPLIANCE",
    title: "A compliance retention can only be extended: a shorter retain_until, another mode, its removal, a delete and an overwrite fail with OBJECT_LOCKED, even with bypass_governance",
    clause: "5.9.9, 5.9.2, 5.9.6, 5.9.7",
    kinds: OS,
    capabilities: LOCK,
    requires: NEEDS_LOCK_BUCKET,
    timeoutMs: 60_000,
    async run(ctx) {
      const bucket = lockBucket(ctx);
      const lock = objectLock(ctx);
      const key = `${ctx.prefix}object`;
      const data = pseudoRandomBytes(key, 1000);
      const until = secondsFromNow(ctx.objectSettings.lockRetentionMs + 2000);
      await protectedPut(ctx, bucket, key, data, { retention: { mode: "compliance", retainUntil: until } });
      const stored = checkRetention((await head(ctx, bucket, key)).protection, "compliance", until, "HeadObject of the object put with a compliance retention", "5.9.3, 5.9.4");
      const earlier = shorter(ctx, stored.retainUntil);
      for (const bypassGovernance of [false, true]) {
        const bypass = bypassGovernance ? ", with bypass_governance" : "";
        const error = await expectError(`SetRetention shortening a compliance retention to ${earlier.toISOString()}${bypass}`, LOCKED, () =>
          lock.setRetention({ bucket, key, retention: { mode: "compliance", retainUntil: earlier }, bypassGovernance }, { signal: ctx.signal }),
        );
        checkLockedMetadata(error, bucket, key, { legalHold: false, retention: stored }, "SetRetention shortening a compliance retention");
        await expectError(`SetRetention turning a compliance retention into a governance one${bypass}`, LOCKED, () =>
          lock.setRetention({ bucket, key, retention: { mode: "governance", retainUntil: stored.retainUntil }, bypassGovernance }, { signal: ctx.signal }),
        );
        await expectError(`SetRetention removing a compliance retention${bypass}`, LOCKED, () => lock.setRetention({ bucket, key, bypassGovernance }, { signal: ctx.signal }));
        await expectError(`DeleteObject of an object under a compliance retention${bypass}`, LOCKED, () => ctx.objectStore.deleteObject({ bucket, key, bypassGovernance }, { signal: ctx.signal }));
        await expectError(`PutObject over an object under a compliance retention${bypass}`, LOCKED, () =>
          ctx.objectStore.putObject({ bucket, key, body: bodyOf("replacement"), bypassGovernance }, { signal: ctx.signal }),
        );
      }
      await expectContent(ctx, bucket, key, data, "after refused changes to a compliance-protected object", "5.9.2");
      checkRetention((await head(ctx, bucket, key)).protection, "compliance", stored.retainUntil, "HeadObject after the refused changes", "5.9.9");
      const later = new Date(stored.retainUntil.getTime() + 1000);
      const extended = await expectOk(`SetRetention extending a compliance retention to ${later.toISOString()}`, () =>
        lock.setRetention({ bucket, key, retention: { mode: "compliance", retainUntil: later } }, { signal: ctx.signal }),
      );
      checkRetention(extended, "compliance", later, "SetRetention's answer to the extension of a compliance retention", "5.9.9");
    },
  }),
  defineCase({
    id: "OS-LOCK-GOVERNANCE-BYPASS",
    title: "A governance retention is shortened or removed only with bypass_governance (without it: OBJECT_LOCKED), and DeleteObject with bypass_governance deletes the object",
    clause: "5.9.9, 5.9.6, 5.9.2",
    kinds: OS,
    capabilities: LOCK,
    requires: NEEDS_LOCK_BUCKET,
    timeoutMs: 60_000,
    async run(ctx) {
      const bucket = lockBucket(ctx);
      const lock = objectLock(ctx);
      const key = `${ctx.prefix}object`;
      const data = pseudoRandomBytes(key, 1000);
      const until = secondsFromNow(ctx.objectSettings.lockRetentionMs + 2000);
      await protectedPut(ctx, bucket, key, data, { retention: { mode: "governance", retainUntil: until } });
      const stored = checkRetention((await head(ctx, bucket, key)).protection, "governance", until, "HeadObject of the object put with a governance retention", "5.9.3, 5.9.4");
      const earlier = shorter(ctx, stored.retainUntil);
      await expectError(`SetRetention shortening a governance retention to ${earlier.toISOString()}, without bypass_governance`, LOCKED, () =>
        lock.setRetention({ bucket, key, retention: { mode: "governance", retainUntil: earlier } }, { signal: ctx.signal }),
      );
      await expectError("SetRetention removing a governance retention, without bypass_governance", LOCKED, () => lock.setRetention({ bucket, key }, { signal: ctx.signal }));
      const shortened = await withBypass(`SetRetention shortening a governance retention to ${earlier.toISOString()}, with bypass_governance`, () =>
        lock.setRetention({ bucket, key, retention: { mode: "governance", retainUntil: earlier }, bypassGovernance: true }, { signal: ctx.signal }),
      );
      const now = checkRetention(shortened, "governance", earlier, "SetRetention's answer to a shortening with bypass_governance", "5.9.9");
      check(now.retainUntil.getTime() < stored.retainUntil.getTime(), `SetRetention with bypass_governance answers retain_until ${now.retainUntil.toISOString()}; it asked for ${earlier.toISOString()}, before the ${stored.retainUntil.toISOString()} it replaces (5.9.9)`);
      const removed = await withBypass("SetRetention removing a governance retention, with bypass_governance", () => lock.setRetention({ bucket, key, bypassGovernance: true }, { signal: ctx.signal }));
      check(removed.retention === undefined, `SetRetention removing the retention with bypass_governance answers ${showProtection(removed)}; expected no retention (5.9.9)`);
      const { protection } = await head(ctx, bucket, key);
      check(protection?.retention === undefined, `HeadObject reports ${showProtection(protection)} after the retention was removed (5.9.9, 5.9.3)`);
      await expectContent(ctx, bucket, key, data, "after its retention was shortened and removed", "5.9.9");

      const again = `${ctx.prefix}deleted`;
      await protectedPut(ctx, bucket, again, data, { retention: { mode: "governance", retainUntil: secondsFromNow(ctx.objectSettings.lockRetentionMs + 2000) } });
      await withBypass("DeleteObject of an object under a governance retention, with bypass_governance", () => ctx.objectStore.deleteObject({ bucket, key: again, bypassGovernance: true }, { signal: ctx.signal }));
      await expectGone(ctx, bucket, again, "after DeleteObject with bypass_governance succeeded", "5.9.6");
    },
  }),
  defineCase({
    id: "OS-LOCK-HOLD",
    title: "A legal hold forbids delete even with bypass_governance and without a retention; SetLegalHold is idempotent, reported by HeadObject, and its release leaves the retention as it was",
    clause: "5.9.10, 5.9.2, 5.9.3, 5.9.5",
    kinds: OS,
    capabilities: LOCK,
    requires: NEEDS_LOCK_BUCKET,
    timeoutMs: 60_000,
    async run(ctx) {
      const bucket = lockBucket(ctx);
      const lock = objectLock(ctx);
      const key = `${ctx.prefix}held`;
      const data = pseudoRandomBytes(key, 1000);
      await protectedPut(ctx, bucket, key, data, { legalHold: true });
      const { protection } = await head(ctx, bucket, key);
      check(protection?.legalHold === true, `HeadObject of an object put with a legal hold reports ${showProtection(protection)} (5.9.3, 5.9.4)`);
      for (const bypassGovernance of [false, true]) {
        const error = await expectError(`DeleteObject of an object under a legal hold${bypassGovernance ? ", with bypass_governance" : ""}`, LOCKED, () =>
          ctx.objectStore.deleteObject({ bucket, key, bypassGovernance }, { signal: ctx.signal }),
        );
        checkLockedMetadata(error, bucket, key, { legalHold: true }, "DeleteObject of the held object");
      }
      await expectContent(ctx, bucket, key, data, "after refused deletes", "5.9.6");
      const placed = await expectOk("SetLegalHold on, on an object already held", () => lock.setLegalHold({ bucket, key, legalHold: true }, { signal: ctx.signal }));
      check(placed.legalHold, `SetLegalHold on answers ${showProtection(placed)} (5.9.10)`);
      const released = await expectOk("SetLegalHold off", () => lock.setLegalHold({ bucket, key, legalHold: false }, { signal: ctx.signal }));
      check(!released.legalHold, `SetLegalHold off answers ${showProtection(released)} (5.9.10)`);
      const after = (await head(ctx, bucket, key)).protection;
      check(after?.legalHold !== true, `HeadObject reports ${showProtection(after)} after the hold was released (5.9.10, 5.9.3)`);
      await expectOk("SetLegalHold off again (idempotent)", () => lock.setLegalHold({ bucket, key, legalHold: false }, { signal: ctx.signal }));
      await expectOk("DeleteObject once the legal hold is released", () => ctx.objectStore.deleteObject({ bucket, key }, { signal: ctx.signal }));
      await expectGone(ctx, bucket, key, "after DeleteObject succeeded", "5.6");

      // A hold over a governance retention: the bypass does not lift it, and its release keeps the retention.
      const both = `${ctx.prefix}held-and-retained`;
      const until = secondsFromNow(ctx.objectSettings.lockRetentionMs + 2000);
      await protectedPut(ctx, bucket, both, data, { retention: { mode: "governance", retainUntil: until } });
      const held = await expectOk("SetLegalHold on, on an object under a governance retention", () => lock.setLegalHold({ bucket, key: both, legalHold: true }, { signal: ctx.signal }));
      check(held.legalHold, `SetLegalHold on answers ${showProtection(held)} (5.9.10)`);
      const retention = checkRetention(held, "governance", until, "SetLegalHold's answer for an object under a governance retention", "5.9.10");
      const error = await expectError("DeleteObject with bypass_governance of an object under a governance retention and a legal hold", LOCKED, () =>
        ctx.objectStore.deleteObject({ bucket, key: both, bypassGovernance: true }, { signal: ctx.signal }),
      );
      check(error.metadata.legal_hold === "true", `the OBJECT_LOCKED error of a held object carries legal_hold ${JSON.stringify(error.metadata.legal_hold)}; expected "true" (5.9.5)`);
      await expectContent(ctx, bucket, both, data, "after a refused delete with bypass_governance", "5.9.2");
      const kept = await expectOk("SetLegalHold off, on an object under a governance retention", () => lock.setLegalHold({ bucket, key: both, legalHold: false }, { signal: ctx.signal }));
      check(!kept.legalHold, `SetLegalHold off answers ${showProtection(kept)} (5.9.10)`);
      checkRetention(kept, "governance", retention.retainUntil, "SetLegalHold off's answer (releasing a hold does not change the retention)", "5.9.10");
    },
  }),
  defineCase({
    id: "OS-LOCK-EXPIRY",
    title: "Once a compliance retention's retain_until has passed, the object can be deleted without bypass_governance",
    clause: "5.9.2, 5.9.6",
    kinds: OS,
    capabilities: LOCK,
    requires: NEEDS_LOCK_BUCKET,
    timeoutMs: 90_000,
    async run(ctx) {
      const bucket = lockBucket(ctx);
      const key = `${ctx.prefix}object`;
      const until = secondsFromNow(ctx.objectSettings.lockRetentionMs);
      await protectedPut(ctx, bucket, key, pseudoRandomBytes(key, 100), { retention: { mode: "compliance", retainUntil: until } });
      const stored = checkRetention((await head(ctx, bucket, key)).protection, "compliance", until, "HeadObject of the object put with a compliance retention", "5.9.3");
      const deadline = stored.retainUntil.getTime() + LAPSE_GRACE_MS;
      await sleep(stored.retainUntil.getTime() - Date.now(), ctx.signal);
      let last: unknown;
      for (;;) {
        try {
          await ctx.objectStore.deleteObject({ bucket, key }, { signal: ctx.signal });
          break;
        } catch (error) {
          last = error;
          if (Date.now() > deadline) {
            throw new CaseFailure(`DeleteObject still fails ${String(Math.round((Date.now() - stored.retainUntil.getTime()) / 1000))} s after the retention's retain_until ${stored.retainUntil.toISOString()} passed (by the kit's clock): ${describeFailure(last)} (5.9.2)`);
          }
          await sleep(POLL_MS, ctx.signal);
        }
      }
      await expectGone(ctx, bucket, key, "after DeleteObject of the object whose retention ended succeeded", "5.9.2");
    },
  }),
  defineCase({
    id: "OS-LOCK-INVALID",
    title: "A retention without a mode or with a past retain_until fails with INVALID_ARGUMENT in PutObject (storing nothing) and SetRetention; SetRetention of a missing key fails with NOT_FOUND/OBJECT_NOT_FOUND",
    clause: "5.9.4, 5.9.9",
    kinds: OS,
    capabilities: LOCK,
    requires: ["init", "command", "lockBucket"],
    async run(ctx) {
      const store = await rawStore(ctx, RAW_PURPOSE);
      const bucket = lockBucket(ctx);
      const invalid = { code: Code.InvalidArgument };
      const future = secondsFromNow(ctx.objectSettings.lockRetentionMs);
      const past = new Date(Date.now() - 60_000);
      const bad = [
        ["a retention without a mode (RETENTION_MODE_UNSPECIFIED)", { mode: RAW_RETENTION_MODE.unspecified, retainUntil: future }],
        [`a governance retention until ${past.toISOString()}, in the past`, { mode: RAW_RETENTION_MODE.governance, retainUntil: past }],
      ] as const;
      const refused = `${ctx.prefix}refused`;
      trackRawKey(ctx, store, bucket, refused);
      for (const [what, retention] of bad) {
        await expectError(`PutObject with ${what}`, invalid, () => store.putObject({ bucket, key: refused, body: Buffer.from("refused"), protection: { retention, legalHold: false } }, ctx.signal));
        await expectRawAbsent(ctx, store, bucket, refused, `after a PutObject with ${what} failed`, "5.9.4");
      }
      const key = `${ctx.prefix}object`;
      trackRawKey(ctx, store, bucket, key);
      await expectOk(`PutObject ${showKey(key)}`, () => store.putObject({ bucket, key, body: Buffer.from("unprotected") }, ctx.signal));
      for (const [what, retention] of bad) {
        await expectError(`SetRetention with ${what}`, invalid, () => store.setRetention({ bucket, key, retention }, ctx.signal));
      }
      const missing = `${ctx.prefix}missing`;
      trackRawKey(ctx, store, bucket, missing);
      await expectError("SetRetention of a key with no object", { code: Code.NotFound, reason: Reason.ObjectNotFound }, () =>
        store.setRetention({ bucket, key: missing, retention: { mode: RAW_RETENTION_MODE.governance, retainUntil: future } }, ctx.signal),
      );
      await expectRawAbsent(ctx, store, bucket, missing, "after SetRetention of the missing key failed", "5.9.9");
    },
  }),
  defineCase({
    id: "OS-LOCK-NOT-LOCKABLE",
    title: "In a bucket that is not lockable, a put asking for protection, SetRetention and SetLegalHold fail with FAILED_PRECONDITION/BUCKET_NOT_LOCKABLE and store nothing",
    clause: "5.9.12, 5.9.11",
    kinds: OS,
    capabilities: LOCK,
    async run(ctx) {
      const lock = objectLock(ctx);
      const configured = ctx.objectSettings.plainBucket;
      const bucket = configured ?? ctx.objectSettings.bucket;
      const found = await expectOk(`GetBucketProtection ${JSON.stringify(bucket)}`, () => lock.getBucketProtection({ bucket }, { signal: ctx.signal }));
      if (found.lockable) {
        throw new CaseSkipped(
          configured === undefined
            ? `the plugin reports objectStore.bucket ${JSON.stringify(bucket)} lockable; set objectStore.plainBucket to a bucket that is not, to run this case`
            : `the plugin reports objectStore.plainBucket ${JSON.stringify(bucket)} lockable; set it to a bucket that is not, to run this case`,
        );
      }
      const key = `${ctx.prefix}object`;
      const until = secondsFromNow(ctx.objectSettings.lockRetentionMs);
      trackProtected(ctx, bucket, key);
      for (const [what, protection] of [
        ["a governance retention", { retention: { mode: "governance", retainUntil: until } }],
        ["a legal hold", { legalHold: true }],
      ] as const) {
        await expectError(`PutObject with ${what} in the bucket ${JSON.stringify(bucket)}, which is not lockable`, NOT_LOCKABLE, () =>
          ctx.objectStore.putObject({ bucket, key, body: bodyOf("protected"), protection }, { signal: ctx.signal }),
        );
        await expectGone(ctx, bucket, key, `after a PutObject with ${what} in a bucket that is not lockable failed; it must store nothing`, "5.9.12");
      }
      await expectOk(`PutObject ${showKey(key)} without protection`, () => ctx.objectStore.putObject({ bucket, key, body: bodyOf("plain") }, { signal: ctx.signal }));
      await expectError("SetRetention in a bucket that is not lockable", NOT_LOCKABLE, () =>
        lock.setRetention({ bucket, key, retention: { mode: "governance", retainUntil: secondsFromNow(ctx.objectSettings.lockRetentionMs) } }, { signal: ctx.signal }),
      );
      await expectError("SetLegalHold in a bucket that is not lockable", NOT_LOCKABLE, () => lock.setLegalHold({ bucket, key, legalHold: true }, { signal: ctx.signal }));
      const { protection } = await head(ctx, bucket, key);
      check(protection === undefined || (protection.retention === undefined && !protection.legalHold), `HeadObject reports ${showProtection(protection)} after refused protection calls (5.9.12)`);
    },
  }),
  defineCase({
    id: "OS-LOCK-UNSUPPORTED",
    title: "Without OBJECT_LOCK, a PutObject asking for protection fails with UNIMPLEMENTED/UNSUPPORTED and stores nothing, and GetBucketProtection, SetRetention and SetLegalHold fail with UNIMPLEMENTED",
    clause: "5.9.1",
    kinds: OS,
    withoutCapabilities: LOCK,
    requires: ["init", "command"],
    async run(ctx) {
      const store = await rawStore(ctx, RAW_PURPOSE);
      const bucket = ctx.objectSettings.bucket;
      const key = `${ctx.prefix}object`;
      const version = /^1\.(\d+)$/.exec(store.contractVersion);
      const knowsThem = version !== null && Number(version[1]) >= 2;
      trackRawKey(ctx, store, bucket, key);
      const retention = { mode: RAW_RETENTION_MODE.governance, retainUntil: secondsFromNow(ctx.objectSettings.lockRetentionMs) };
      if (knowsThem) {
        for (const [what, protection] of [
          ["a governance retention", { retention, legalHold: false }],
          ["a legal hold", { legalHold: true }],
        ] as const) {
          await expectError(`PutObject with ${what}`, UNSUPPORTED, () => store.putObject({ bucket, key, body: Buffer.from("protected"), protection }, ctx.signal));
          await expectRawAbsent(ctx, store, bucket, key, `after a PutObject with ${what} failed: a protection is never silently dropped`, "5.9.1");
        }
      } else {
        // A plugin of contract 1.0 or 1.1 cannot see the protection field, and a host never sends it one (5.9.1).
        ctx.note(`contract ${store.contractVersion}: the PutObject check is not run (the field is unknown to it), and UNIMPLEMENTED without a reason is accepted`);
      }
      const expected = knowsThem ? UNSUPPORTED : { code: Code.Unimplemented };
      await expectError("GetBucketProtection", expected, () => store.getBucketProtection({ bucket }, ctx.signal));
      await expectError("SetRetention", expected, () => store.setRetention({ bucket, key, retention }, ctx.signal));
      await expectError("SetLegalHold", expected, () => store.setLegalHold({ bucket, key, legalHold: true }, ctx.signal));
    },
  }),
];
