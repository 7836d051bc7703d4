/**
 * Object protection (contract 5.9) of the Cloud Storage ObjectStore through the real host and the
 * built executable, against fake-gcs-server behind the retention proxy of `@stowage/test-servers`
 * (fake-gcs-server stores an object's `retention` but enforces nothing and knows no holds nor
 * bucket `objectRetention`; the proxy models those, see docs/plugin-gcp.md). Run `pnpm run build`
 * first.
 */
import { Code, Reason, StowageError, type ObjectLock } from "@stowage/sdk";
import { PluginHost, nodePluginCommand, type HostObjectStore } from "@stowage/sdk/host";
import { startGcsRetentionProxy, type GcsRetentionProxy } from "@stowage/test-servers";
import { buffer } from "node:stream/consumers";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytes, chunks, oobMetadata, startGcsFixture, type GcsFixture } from "../test/support/gcs.js";

const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const KiB = 1024;

/** The error a call failed with. */
async function failure(call: Promise<unknown>): Promise<StowageError> {
  try {
    await call;
  } catch (error) {
    expect(error).toBeInstanceOf(StowageError);
    return error as StowageError;
  }
  throw new Error("the call succeeded");
}

function expectLocked(error: StowageError, legalHold: boolean, mode?: "GOVERNANCE" | "COMPLIANCE"): void {
  expect(error.code).toBe(Code.FailedPrecondition);
  expect(error.reason).toBe(Reason.ObjectLocked);
  expect(error.metadata.legal_hold).toBe(String(legalHold));
  if (mode !== undefined) {
    expect(error.metadata.mode).toBe(mode);
    expect(error.metadata.retain_until).toMatch(/^\d{4}-\d\d-\d\dT/);
  }
}

const inMs = (ms: number): Date => new Date(Date.now() + ms);
const HOUR = 3_600_000;

describe("stowage-plugin-gcp object protection through the PluginHost (fake-gcs-server + retention proxy)", () => {
  let fx: GcsFixture;
  let proxy: GcsRetentionProxy;
  /** A second proxy whose clock is a minute behind the plugin's. */
  let skewed: GcsRetentionProxy;
  let host: PluginHost;
  let directHost: PluginHost;
  let store: HostObjectStore;
  let lock: ObjectLock;
  let config: Record<string, string>;

  const createBucket = async (name: string, query = "", extra: Record<string, unknown> = {}, through = proxy): Promise<void> => {
    const response = await fetch(`${through.endpoint}/storage/v1/b?project=stowage-test${query}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name, ...extra }),
    });
    if (!response.ok) throw new Error(`cannot create bucket ${name}: HTTP ${String(response.status)} ${await response.text()}`);
  };
  const put = (key: string, data: Uint8Array, extra: Partial<Parameters<HostObjectStore["putObject"]>[0]> = {}, bucket = "locked"): ReturnType<HostObjectStore["putObject"]> =>
    store.putObject({ bucket, key, body: chunks(data, 64 * KiB), size: data.length, ...extra });
  const read = async (key: string, bucket = "locked"): Promise<Buffer> => buffer((await store.getObject({ bucket, key })).body);

  beforeAll(async () => {
    fx = await startGcsFixture();
    proxy = await startGcsRetentionProxy({ upstream: fx.server.endpoint });
    await createBucket("locked", "&enableObjectRetention=true");
    await createBucket("plain");
    await createBucket("policy", "", { retentionPolicy: { retentionPeriod: "3600" } });
    await createBucket("policy-locked", "", { retentionPolicy: { retentionPeriod: "86400" } });
    skewed = await startGcsRetentionProxy({ upstream: fx.server.endpoint, now: () => new Date(Date.now() - 60_000) });
    await createBucket("skewed", "&enableObjectRetention=true", {}, skewed);
    const locked = await fetch(`${proxy.endpoint}/storage/v1/b/policy-locked/lockRetentionPolicy?ifMetagenerationMatch=1`, { method: "POST" });
    expect(locked.status).toBe(200);
    config = { ...fx.config, storeEndpoint: proxy.endpoint, chunkSize: "256KiB" };
    host = new PluginHost({ plugins: [nodePluginCommand(MAIN)] });
    await host.start();
    directHost = new PluginHost({ plugins: [nodePluginCommand(MAIN)], directTransfer: { minPutSize: 0 } });
    await directHost.start();
    store = host.objectStore("stowage.io/gcp");
    await store.init(config);
    const objectLock = store.objectLock;
    if (objectLock === undefined) throw new Error("the plugin does not expose objectLock");
    lock = objectLock;
  }, 60_000);

  afterAll(async () => {
    await directHost?.close();
    await host?.close();
    await proxy?.stop();
    await skewed?.stop();
    await fx?.stop();
  });

  it("announces OBJECT_LOCK and reports each bucket's protection", async () => {
    expect(host.plugins().find((p) => p.descriptor.kind === "object-store")?.descriptor.capabilities).toContain("OBJECT_LOCK");
    expect(await lock.getBucketProtection({ bucket: "locked" })).toEqual({ lockable: true, enforcedBy: expect.stringContaining("Cloud Storage") as string });
    expect((await lock.getBucketProtection({ bucket: "plain" })).lockable).toBe(false);
    expect(await lock.getBucketProtection({ bucket: "policy" })).toMatchObject({ lockable: false, defaultRetention: { mode: "governance", periodSeconds: 3600 } });
    expect(await lock.getBucketProtection({ bucket: "policy-locked" })).toMatchObject({ defaultRetention: { mode: "compliance", periodSeconds: 86400 } });
    expect((await failure(lock.getBucketProtection({ bucket: "no-such-bucket" }))).reason).toBe(Reason.BucketNotFound);
  });

  it("stores a governance retention with the put (an Unlocked retention), reports it, and refuses delete and overwrite", async () => {
    const data = bytes(10 * KiB, 1);
    const until = inMs(HOUR);
    await put("gov/a", data, { protection: { retention: { mode: "governance", retainUntil: until } } });
    // fake-gcs-server stores the time it was given (it may drop trailing zeros of the fraction).
    const stored = (await oobMetadata(proxy.endpoint, "locked", "gov/a"))?.retention as { mode: string; retainUntilTime: string } | undefined;
    expect(stored?.mode).toBe("Unlocked");
    expect(Date.parse(stored?.retainUntilTime ?? "")).toBe(until.getTime());
    const head = await store.headObject({ bucket: "locked", key: "gov/a" });
    expect(head?.protection).toEqual({ legalHold: false, retention: { mode: "governance", retainUntil: until } });
    expect((await store.getObject({ bucket: "locked", key: "gov/a" })).object.protection?.retention?.mode).toBe("governance");

    const deleted = await failure(store.deleteObject({ bucket: "locked", key: "gov/a" }));
    expectLocked(deleted, false, "GOVERNANCE");
    expect(deleted.metadata.retain_until).toBe(until.toISOString());
    expect(await read("gov/a")).toEqual(data);

    // A plain put, a put with protection, and a direct put all refuse to replace it.
    expectLocked(await failure(put("gov/a", bytes(KiB, 2))), false, "GOVERNANCE");
    expectLocked(await failure(put("gov/a", bytes(KiB, 2), { protection: { legalHold: true } })), false, "GOVERNANCE");
    const direct = directHost.objectStore("stowage.io/gcp", { instance: "direct" });
    await direct.init(config);
    expectLocked(await failure(direct.putObject({ bucket: "locked", key: "gov/a", body: chunks(bytes(KiB, 3)), size: KiB })), false, "GOVERNANCE");
    expect(await read("gov/a")).toEqual(data);

    // Extending succeeds; shortening and removing need the bypass.
    const later = inMs(2 * HOUR);
    expect(await lock.setRetention({ bucket: "locked", key: "gov/a", retention: { mode: "governance", retainUntil: later } })).toEqual({ legalHold: false, retention: { mode: "governance", retainUntil: later } });
    expectLocked(await failure(lock.setRetention({ bucket: "locked", key: "gov/a", retention: { mode: "governance", retainUntil: until } })), false, "GOVERNANCE");
    expectLocked(await failure(lock.setRetention({ bucket: "locked", key: "gov/a" })), false, "GOVERNANCE");
    expect((await lock.setRetention({ bucket: "locked", key: "gov/a", retention: { mode: "governance", retainUntil: until }, bypassGovernance: true })).retention?.retainUntil).toEqual(until);

    // Overwrite with bypass replaces it; delete with bypass removes it.
    const replacement = bytes(3 * KiB, 4);
    await put("gov/a", replacement, { bypassGovernance: true, protection: { retention: { mode: "governance", retainUntil: until } } });
    expect(await read("gov/a")).toEqual(replacement);
    await store.deleteObject({ bucket: "locked", key: "gov/a", bypassGovernance: true });
    expect(await store.headObject({ bucket: "locked", key: "gov/a" })).toBeUndefined();
    expect(await oobMetadata(fx.server.endpoint, "locked", "gov/a")).toBeUndefined();
  });

  it("lets a compliance retention (Locked) only be extended, with or without bypass", async () => {
    const until = inMs(HOUR);
    await put("comp/a", bytes(KiB, 5), { protection: { retention: { mode: "compliance", retainUntil: until } } });
    expect((await oobMetadata(proxy.endpoint, "locked", "comp/a"))?.retention).toMatchObject({ mode: "Locked" });
    expectLocked(await failure(lock.setRetention({ bucket: "locked", key: "comp/a", retention: { mode: "compliance", retainUntil: inMs(HOUR / 2) }, bypassGovernance: true })), false, "COMPLIANCE");
    expectLocked(await failure(lock.setRetention({ bucket: "locked", key: "comp/a", retention: { mode: "governance", retainUntil: inMs(2 * HOUR) }, bypassGovernance: true })), false, "COMPLIANCE");
    expectLocked(await failure(lock.setRetention({ bucket: "locked", key: "comp/a", bypassGovernance: true })), false, "COMPLIANCE");
    expectLocked(await failure(store.deleteObject({ bucket: "locked", key: "comp/a", bypassGovernance: true })), false, "COMPLIANCE");
    const later = inMs(3 * HOUR);
    expect((await lock.setRetention({ bucket: "locked", key: "comp/a", retention: { mode: "compliance", retainUntil: later } })).retention).toEqual({ mode: "compliance", retainUntil: later });
    expect((await store.headObject({ bucket: "locked", key: "comp/a" }))?.protection?.retention?.retainUntil).toEqual(later);
  });

  it("places and releases a legal hold (temporaryHold), which no bypass overrides", async () => {
    const data = bytes(2 * KiB, 6);
    await put("hold/a", data);
    expect(await lock.setLegalHold({ bucket: "locked", key: "hold/a", legalHold: true })).toEqual({ legalHold: true });
    expect(await lock.setLegalHold({ bucket: "locked", key: "hold/a", legalHold: true })).toEqual({ legalHold: true });
    expect((await oobMetadata(proxy.endpoint, "locked", "hold/a"))?.temporaryHold).toBe(true);
    expect((await store.headObject({ bucket: "locked", key: "hold/a" }))?.protection).toEqual({ legalHold: true });
    const refused = await failure(store.deleteObject({ bucket: "locked", key: "hold/a", bypassGovernance: true }));
    expectLocked(refused, true);
    expect(refused.message).toMatch(/legal hold/);
    expect(await read("hold/a")).toEqual(data);
    expect(await lock.setLegalHold({ bucket: "locked", key: "hold/a", legalHold: false })).toEqual({ legalHold: false });
    await store.deleteObject({ bucket: "locked", key: "hold/a" });
    expect(await store.headObject({ bucket: "locked", key: "hold/a" })).toBeUndefined();
    expect((await failure(lock.setLegalHold({ bucket: "locked", key: "hold/missing", legalHold: true }))).reason).toBe(Reason.ObjectNotFound);
    expect((await failure(lock.setRetention({ bucket: "locked", key: "hold/missing", retention: { mode: "governance", retainUntil: inMs(HOUR) } }))).reason).toBe(Reason.ObjectNotFound);
  });

  it("stores protection atomically with a resumable put too", async () => {
    const data = bytes(600 * KiB, 7);
    const until = inMs(HOUR);
    await put("resumable/a", data, { protection: { retention: { mode: "governance", retainUntil: until }, legalHold: true } });
    expect((await store.headObject({ bucket: "locked", key: "resumable/a" }))?.protection).toEqual({ legalHold: true, retention: { mode: "governance", retainUntil: until } });
    expect(await read("resumable/a")).toEqual(data);
    // A plain resumable overwrite is refused before its body is read.
    expectLocked(await failure(put("resumable/a", bytes(700 * KiB, 8))), true, "GOVERNANCE");
    expect(await read("resumable/a")).toEqual(data);
    expectLocked(await failure(store.deleteObject({ bucket: "locked", key: "resumable/a", bypassGovernance: true })), true, "GOVERNANCE");
    await lock.setLegalHold({ bucket: "locked", key: "resumable/a", legalHold: false });
    await store.deleteObject({ bucket: "locked", key: "resumable/a", bypassGovernance: true });
    expect(await store.headObject({ bucket: "locked", key: "resumable/a" })).toBeUndefined();
  });

  it("lets a short retention lapse, then deletes", async () => {
    await put("short/a", bytes(KiB, 8), { protection: { retention: { mode: "compliance", retainUntil: inMs(2_000) } } });
    expectLocked(await failure(store.deleteObject({ bucket: "locked", key: "short/a" })), false, "COMPLIANCE");
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        await store.deleteObject({ bucket: "locked", key: "short/a" });
        break;
      } catch (error) {
        if ((error as StowageError).reason !== Reason.ObjectLocked || Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
    expect(await store.headObject({ bucket: "locked", key: "short/a" })).toBeUndefined();
  });

  it("maps the store's own refusal to OBJECT_LOCKED when the store's clock says a retention still protects", async () => {
    const behind = host.objectStore("stowage.io/gcp", { instance: "skewed" });
    await behind.init({ ...config, storeEndpoint: skewed.endpoint });
    const data = bytes(KiB, 13);
    const until = inMs(1_500);
    await behind.putObject({ bucket: "skewed", key: "k", body: chunks(data), size: data.length, protection: { retention: { mode: "compliance", retainUntil: until } } });
    // The plugin's own check passes once its clock is past the retention; the store's, a minute behind, refuses.
    while (Date.now() <= until.getTime() + 50) await new Promise((resolve) => setTimeout(resolve, 100));
    expectLocked(await failure(behind.deleteObject({ bucket: "skewed", key: "k" })), false, "COMPLIANCE");
    expectLocked(await failure(behind.putObject({ bucket: "skewed", key: "k", body: chunks(bytes(KiB, 14)), size: KiB })), false, "COMPLIANCE");
    expect(await buffer((await behind.getObject({ bucket: "skewed", key: "k" })).body)).toEqual(data);
  });

  it("refuses protection in a bucket without object retention (BUCKET_NOT_LOCKABLE) and stores nothing", async () => {
    const notLockable = (error: StowageError): void => {
      expect(error.code).toBe(Code.FailedPrecondition);
      expect(error.reason).toBe(Reason.BucketNotLockable);
      expect(error.metadata.bucket).toBe("plain");
    };
    notLockable(await failure(put("a", bytes(KiB, 9), { protection: { retention: { mode: "governance", retainUntil: inMs(HOUR) } } }, "plain")));
    notLockable(await failure(put("a", bytes(KiB, 9), { protection: { legalHold: true } }, "plain")));
    expect(await store.headObject({ bucket: "plain", key: "a" })).toBeUndefined();
    await put("b", bytes(KiB, 10), {}, "plain");
    notLockable(await failure(lock.setRetention({ bucket: "plain", key: "b", retention: { mode: "governance", retainUntil: inMs(HOUR) } })));
    notLockable(await failure(lock.setLegalHold({ bucket: "plain", key: "b", legalHold: true })));
    expect((await store.headObject({ bucket: "plain", key: "b" }))?.protection).toBeUndefined();
    await store.deleteObject({ bucket: "plain", key: "b" });
  });

  it("reports a bucket retention policy's expiry as a compliance retention and maps its refusal", async () => {
    await put("p", bytes(KiB, 11), {}, "policy");
    const protection = (await store.headObject({ bucket: "policy", key: "p" }))?.protection;
    expect(protection?.retention?.mode).toBe("compliance");
    expect(protection?.retention?.retainUntil.getTime()).toBeGreaterThan(Date.now() + HOUR - 60_000);
    expectLocked(await failure(store.deleteObject({ bucket: "policy", key: "p", bypassGovernance: true })), false, "COMPLIANCE");
    expectLocked(await failure(put("p", bytes(KiB, 12), {}, "policy")), false, "COMPLIANCE");
  });
});
