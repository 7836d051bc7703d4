/**
 * Object protection (contract 5.9): the rules of `protection.ts`, and the whole path through a real
 * plugin process — host client, wire, the plugin side's checks — with a fixture that enforces
 * protection in memory, a fixture without the capability, and the Velero adapter.
 */
import { fileURLToPath } from "node:url";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, Reason } from "../src/errors.js";
import { PluginHost } from "../src/host.js";
import type { HostObjectStore } from "../src/host.js";
import { checkMutable, checkRetentionChange, isProtected, objectLocked } from "../src/protection.js";
import { rejection } from "../src/testing.js";
import type { ObjectLock, ObjectProtection, Retention } from "../src/types.js";
import { capturingLogger, memoryFixture } from "./support/host.js";

const lockFixture = fileURLToPath(new URL("./fixtures/lock-plugin.mjs", import.meta.url));
const NOW = new Date("2026-01-01T00:00:00Z");
const later = (seconds: number, from = NOW): Date => new Date(from.getTime() + seconds * 1000);
const governance = (seconds: number, from = NOW): Retention => ({ mode: "governance", retainUntil: later(seconds, from) });
const compliance = (seconds: number, from = NOW): Retention => ({ mode: "compliance", retainUntil: later(seconds, from) });

describe("the rules of clause 5.9", () => {
  it("a retention protects until retain_until, a hold until released", () => {
    expect(isProtected(undefined, NOW)).toBe(false);
    expect(isProtected({ retention: governance(1), legalHold: false }, NOW)).toBe(true);
    expect(isProtected({ retention: governance(-1), legalHold: false }, NOW)).toBe(false);
    expect(isProtected({ retention: governance(0), legalHold: false }, NOW)).toBe(false);
    expect(isProtected({ legalHold: true }, NOW)).toBe(true);
  });

  it("delete and replace: a hold always refuses, compliance until it ends, governance unless bypassed", () => {
    const check = (protection: ObjectProtection, bypass: boolean): string | undefined => {
      try {
        checkMutable("b", "k", protection, bypass, "delete", NOW);
        return undefined;
      } catch (error) {
        return (error as { reason?: string }).reason;
      }
    };
    expect(check({ retention: governance(10), legalHold: false }, false)).toBe(Reason.ObjectLocked);
    expect(check({ retention: governance(10), legalHold: false }, true)).toBeUndefined();
    expect(check({ retention: compliance(10), legalHold: false }, true)).toBe(Reason.ObjectLocked);
    expect(check({ retention: compliance(-10), legalHold: false }, false)).toBeUndefined();
    expect(check({ retention: governance(10), legalHold: true }, true)).toBe(Reason.ObjectLocked);
    expect(check({ legalHold: true }, true)).toBe(Reason.ObjectLocked);
    expect(check({ legalHold: false }, false)).toBeUndefined();
  });

  it("retention changes: extensions pass, weakening a compliance retention never does, governance with bypass", () => {
    const change = (current: Retention, next: Retention | undefined, bypass: boolean): boolean => {
      try {
        checkRetentionChange("b", "k", { retention: current, legalHold: false }, next, bypass, NOW);
        return true;
      } catch {
        return false;
      }
    };
    expect(change(compliance(10), compliance(20), false)).toBe(true);
    expect(change(compliance(10), compliance(10), false)).toBe(true);
    expect(change(compliance(10), compliance(5), true)).toBe(false);
    expect(change(compliance(10), undefined, true)).toBe(false);
    expect(change(compliance(10), governance(20), true)).toBe(false);
    expect(change(governance(10), governance(5), false)).toBe(false);
    expect(change(governance(10), governance(5), true)).toBe(true);
    expect(change(governance(10), undefined, true)).toBe(true);
    expect(change(governance(10), compliance(20), false)).toBe(false);
    expect(change(governance(10), compliance(20), true)).toBe(true);
    // A retention that has ended no longer protects: anything may replace it.
    expect(change(compliance(-1), governance(5), false)).toBe(true);
  });

  it("OBJECT_LOCKED says what protects the object and until when, in its message and metadata", () => {
    const error = objectLocked("b", "k", { retention: compliance(60), legalHold: true }, "delete", NOW);
    expect({ code: error.code, reason: error.reason, metadata: error.metadata }).toEqual({
      code: Code.FailedPrecondition,
      reason: Reason.ObjectLocked,
      metadata: { bucket: "b", key: "k", legal_hold: "true", mode: "COMPLIANCE", retain_until: "2026-01-01T00:01:00.000Z" },
    });
    expect(error.message).toMatch(/cannot delete "k" in bucket "b": it is protected by a legal hold \(release it first\) and compliance retention until 2026-01-01T00:01:00.000Z/);
  });
});

describe("through a plugin process", () => {
  let host: PluginHost;
  let store: HostObjectStore;
  let lock: ObjectLock;
  let plain: HostObjectStore;

  beforeAll(async () => {
    host = new PluginHost({
      plugins: [
        { command: process.execPath, args: [lockFixture] },
        { command: process.execPath, args: [memoryFixture], env: { FIXTURE_MODE: "ok" } },
      ],
      logger: capturingLogger().logger,
    });
    await host.start();
    store = host.objectStore("fixture.stowage.io/lock");
    await store.init({ lockBuckets: "locked", buckets: "open" });
    plain = host.objectStore("fixture.stowage.io/memory");
    await plain.init({ buckets: "open" });
    if (store.objectLock === undefined) throw new Error("the lock fixture announces OBJECT_LOCK");
    lock = store.objectLock;
  });

  afterAll(async () => {
    await host.close();
  });

  const put = (key: string, text: string, extra: Partial<Parameters<HostObjectStore["putObject"]>[0]> = {}) =>
    store.putObject({ bucket: "locked", key, body: Readable.from([Buffer.from(text)]), size: text.length, ...extra });

  it("the client exposes objectLock only for plugins that announce the capability", () => {
    expect(store.descriptor.capabilities).toContain("OBJECT_LOCK");
    expect(plain.objectLock).toBeUndefined();
  });

  it("a put stores its protection, head and get report it, delete and overwrite are refused with OBJECT_LOCKED", async () => {
    const until = later(3600, new Date());
    await put("a", "first", { protection: { retention: { mode: "governance", retainUntil: until }, legalHold: false } });
    const head = await store.headObject({ bucket: "locked", key: "a" });
    expect(head?.protection).toEqual({ retention: { mode: "governance", retainUntil: until }, legalHold: false });
    const got = await store.getObject({ bucket: "locked", key: "a" });
    expect(got.object.protection?.retention?.mode).toBe("governance");
    expect((await buffer(got.body)).toString()).toBe("first");

    const deleted = await rejection(store.deleteObject({ bucket: "locked", key: "a" }));
    expect({ code: deleted.code, reason: deleted.reason, until: deleted.metadata.retain_until, mode: deleted.metadata.mode }).toEqual({
      code: Code.FailedPrecondition,
      reason: Reason.ObjectLocked,
      until: until.toISOString(),
      mode: "GOVERNANCE",
    });
    const replaced = await rejection(put("a", "second"));
    expect(replaced.reason).toBe(Reason.ObjectLocked);
    expect((await buffer((await store.getObject({ bucket: "locked", key: "a" })).body)).toString()).toBe("first");

    // Governance: the bypass lets the delete through.
    await store.deleteObject({ bucket: "locked", key: "a", bypassGovernance: true });
    expect(await store.headObject({ bucket: "locked", key: "a" })).toBeUndefined();
  });

  it("SetRetention extends, refuses to weaken a compliance retention, and SetLegalHold holds until released", async () => {
    const now = new Date();
    await put("c", "kept", { protection: { retention: compliance(600, now) } });
    const extended = await lock.setRetention({ bucket: "locked", key: "c", retention: compliance(1200, now) });
    expect(extended.retention?.retainUntil).toEqual(later(1200, now));
    const shortened = await rejection(lock.setRetention({ bucket: "locked", key: "c", retention: compliance(60, now), bypassGovernance: true }));
    expect([shortened.code, shortened.reason]).toEqual([Code.FailedPrecondition, Reason.ObjectLocked]);

    await put("h", "held", { protection: { legalHold: true } });
    expect((await store.headObject({ bucket: "locked", key: "h" }))?.protection).toEqual({ legalHold: true });
    expect((await rejection(store.deleteObject({ bucket: "locked", key: "h", bypassGovernance: true }))).reason).toBe(Reason.ObjectLocked);
    expect(await lock.setLegalHold({ bucket: "locked", key: "h", legalHold: false })).toEqual({ legalHold: false });
    await store.deleteObject({ bucket: "locked", key: "h" });
  });

  it("reports the bucket's protection, and refuses protection in a bucket that cannot hold it", async () => {
    expect(await lock.getBucketProtection({ bucket: "locked" })).toEqual({ lockable: true, enforcedBy: "the fixture plugin, in memory" });
    expect((await lock.getBucketProtection({ bucket: "open" })).lockable).toBe(false);
    const refused = await rejection(store.putObject({ bucket: "open", key: "x", body: Readable.from([Buffer.from("x")]), protection: { legalHold: true } }));
    expect([refused.code, refused.reason]).toEqual([Code.FailedPrecondition, Reason.BucketNotLockable]);
    expect(await store.headObject({ bucket: "open", key: "x" })).toBeUndefined();
  });

  it("the host checks a retention's shape, the plugin side refuses a time in the past before the implementation runs", async () => {
    const shapeless = await rejection(put("p", "x", { protection: { retention: { mode: "forever" as "governance", retainUntil: new Date(Date.now() + 60_000) } } }));
    expect(shapeless.code).toBe(Code.InvalidArgument);
    expect(shapeless.message).toMatch(/retention mode must be "governance" or "compliance"/);
    const past = { mode: "governance" as const, retainUntil: new Date(Date.now() - 1000) };
    const pluginSide = await rejection(put("p", "x", { protection: { retention: past } }));
    expect(pluginSide.code).toBe(Code.InvalidArgument);
    expect(pluginSide.message).toMatch(/not in the future \(contract 5\.9\.4\)/);
    expect(await store.headObject({ bucket: "locked", key: "p" })).toBeUndefined();
    const pastRetain = await rejection(lock.setRetention({ bucket: "locked", key: "p", retention: past }));
    expect(pastRetain.message).toMatch(/not in the future/);
    const missing = await rejection(lock.setRetention({ bucket: "locked", key: "nothing-here", retention: governance(60, new Date()) }));
    expect([missing.code, missing.reason]).toEqual([Code.NotFound, Reason.ObjectNotFound]);
  });

  it("a plugin without the capability: the host refuses a protected put with UNSUPPORTED and sends nothing", async () => {
    const refused = await rejection(plain.putObject({ bucket: "open", key: "y", body: Readable.from([Buffer.from("y")]), protection: { legalHold: true } }));
    expect([refused.code, refused.reason]).toEqual([Code.Unimplemented, Reason.Unsupported]);
    expect(await plain.headObject({ bucket: "open", key: "y" })).toBeUndefined();
  });
});
