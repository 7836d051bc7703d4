/**
 * Object protection (contract 5.9) of the Blob ObjectStore through the PluginHost, against Azurite
 * behind the version-level immutability double of `@stowage/test-servers` (Azurite does not
 * implement immutability policies or legal holds: its handlers answer 501).
 */
import { Code, Reason, StowageError, type ObjectLock, type ObjectStore } from "@stowage/sdk";
import { PluginHost, nodePluginCommand } from "@stowage/sdk/host";
import { startAzureImmutabilityProxy, type AzureImmutabilityProxy } from "@stowage/test-servers";
import { fileURLToPath } from "node:url";
import { buffer } from "node:stream/consumers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobObjectStore } from "./blob/blob-object-store.js";
import { ENFORCED_BY } from "./blob/object-lock.js";
import { chunks, startAzuriteFixture, type AzuriteFixture } from "../test/support/blob-fixture.js";

// The process-level test runs the built executable: build first.
const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const HOUR = 3600_000;

/** The StowageError a call fails with. */
async function failure(call: Promise<unknown>): Promise<StowageError> {
  try {
    await call;
  } catch (error) {
    if (error instanceof StowageError) return error;
    throw error;
  }
  throw new Error("the call succeeded");
}

function expectLocked(error: StowageError, metadata: Record<string, string>): void {
  expect(error.code).toBe(Code.FailedPrecondition);
  expect(error.reason).toBe(Reason.ObjectLocked);
  expect(error.metadata).toMatchObject(metadata);
}

/** `date` rounded up to a whole second, as the plugin stores it. */
function toSecond(date: Date): Date {
  return new Date(Math.ceil(date.getTime() / 1000) * 1000);
}

describe("stowage-plugin-azure object protection through the PluginHost (Azurite behind the immutability double)", () => {
  let azurite: AzuriteFixture;
  let proxy: AzureImmutabilityProxy;
  let host: PluginHost;
  let store: ObjectStore;
  let lock: ObjectLock;
  const body = (text: string) => ({ body: chunks(Buffer.from(text)), size: Buffer.byteLength(text) });
  const read = async (key: string): Promise<string> => (await buffer((await store.getObject({ bucket: "worm", key })).body)).toString();

  beforeAll(async () => {
    azurite = await startAzuriteFixture(["worm", "plain"]);
    proxy = await startAzureImmutabilityProxy({ azuriteBlobEndpoint: azurite.server.blobEndpoint, accountKey: azurite.server.accountKey, immutableContainers: ["worm"] });
    host = new PluginHost({ plugins: [nodePluginCommand(MAIN)] });
    await host.start();
    store = host.objectStore("stowage.io/azure");
    await store.init({ ...azurite.config, storageAccountURI: proxy.blobEndpoint });
    if (store.objectLock === undefined) throw new Error("the host client has no objectLock");
    lock = store.objectLock;
  }, 60_000);

  afterAll(async () => {
    await host.close();
    await proxy.stop();
    await azurite.stop();
  });

  it("reports which containers can hold protected objects", async () => {
    expect(await lock.getBucketProtection({ bucket: "worm" })).toEqual({ lockable: true, enforcedBy: ENFORCED_BY });
    expect(await lock.getBucketProtection({ bucket: "plain" })).toEqual({ lockable: false, enforcedBy: ENFORCED_BY });
  });

  it("stores a governance retention with the put (an Unlocked policy), reported by head and get", async () => {
    const retainUntil = new Date(Date.now() + HOUR + 123);
    await store.putObject({ bucket: "worm", key: "gov", ...body("v1"), protection: { retention: { mode: "governance", retainUntil } } });
    expect(proxy.current("worm", "gov")?.policy).toEqual({ mode: "Unlocked", until: toSecond(retainUntil) });
    const expected = { retention: { mode: "governance", retainUntil: toSecond(retainUntil) }, legalHold: false };
    expect((await store.headObject({ bucket: "worm", key: "gov" }))?.protection).toEqual(expected);
    const got = await store.getObject({ bucket: "worm", key: "gov" });
    expect(got.object.protection).toEqual(expected);
    got.body.resume();
  });

  it("refuses to delete or overwrite it, leaving it readable; Azure alone would have accepted both", async () => {
    const until = toSecond((await store.headObject({ bucket: "worm", key: "gov" }))?.protection?.retention?.retainUntil ?? new Date());
    const deleted = await failure(store.deleteObject({ bucket: "worm", key: "gov" }));
    expectLocked(deleted, { bucket: "worm", key: "gov", legal_hold: "false", mode: "GOVERNANCE", retain_until: until.toISOString() });
    expect(await read("gov")).toBe("v1");
    expectLocked(await failure(store.putObject({ bucket: "worm", key: "gov", ...body("v2") })), { mode: "GOVERNANCE" });
    expect(await read("gov")).toBe("v1");
    expect(proxy.previous("worm", "gov")).toEqual([]);
  });

  it("extends a retention; shortens a governance one only with bypassGovernance", async () => {
    const later = new Date(Date.now() + 2 * HOUR);
    expect((await lock.setRetention({ bucket: "worm", key: "gov", retention: { mode: "governance", retainUntil: later } })).retention).toEqual({ mode: "governance", retainUntil: toSecond(later) });
    const sooner = new Date(Date.now() + HOUR / 2);
    expectLocked(await failure(lock.setRetention({ bucket: "worm", key: "gov", retention: { mode: "governance", retainUntil: sooner } })), { mode: "GOVERNANCE" });
    const shortened = await lock.setRetention({ bucket: "worm", key: "gov", retention: { mode: "governance", retainUntil: sooner }, bypassGovernance: true });
    expect(shortened.retention).toEqual({ mode: "governance", retainUntil: toSecond(sooner) });
    expect(proxy.current("worm", "gov")?.policy?.until).toEqual(toSecond(sooner));
  });

  it("deletes under a governance retention with bypassGovernance: the policy, the blob and its version", async () => {
    await store.deleteObject({ bucket: "worm", key: "gov", bypassGovernance: true });
    expect(await store.headObject({ bucket: "worm", key: "gov" })).toBeUndefined();
    expect(proxy.current("worm", "gov")).toBeUndefined();
    expect(proxy.previous("worm", "gov")).toEqual([]);
  });

  it("overwrites under a governance retention with bypassGovernance", async () => {
    await store.putObject({ bucket: "worm", key: "gov2", ...body("v1"), protection: { retention: { mode: "governance", retainUntil: new Date(Date.now() + HOUR) } } });
    await store.putObject({ bucket: "worm", key: "gov2", ...body("v2"), bypassGovernance: true });
    expect(await read("gov2")).toBe("v2");
    expect((await store.headObject({ bucket: "worm", key: "gov2" }))?.protection).toBeUndefined();
    await store.deleteObject({ bucket: "worm", key: "gov2" });
  });

  it("never weakens a compliance retention (a Locked policy), then deletes once it lapsed", async () => {
    const retainUntil = new Date(Date.now() + 3000);
    await store.putObject({ bucket: "worm", key: "comp", ...body("c"), protection: { retention: { mode: "compliance", retainUntil } } });
    expect(proxy.current("worm", "comp")?.policy?.mode).toBe("Locked");
    const sooner = new Date(Math.max(Date.now() + 1000, retainUntil.getTime() - 1000));
    for (const bypassGovernance of [false, true]) {
      expectLocked(await failure(lock.setRetention({ bucket: "worm", key: "comp", retention: { mode: "compliance", retainUntil: sooner }, bypassGovernance })), { mode: "COMPLIANCE" });
      expectLocked(await failure(lock.setRetention({ bucket: "worm", key: "comp", bypassGovernance })), { mode: "COMPLIANCE" });
      expectLocked(await failure(store.deleteObject({ bucket: "worm", key: "comp", bypassGovernance })), { mode: "COMPLIANCE" });
    }
    expect(proxy.current("worm", "comp")?.policy?.until).toEqual(toSecond(retainUntil));
    // Poll until the retention lapsed (bounded), then the delete succeeds.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const error = await store.deleteObject({ bucket: "worm", key: "comp" }).then(
        () => undefined,
        (e: unknown) => e,
      );
      if (error === undefined) break;
      expect((error as StowageError).reason).toBe(Reason.ObjectLocked);
      if (Date.now() > deadline) throw new Error("the compliance retention did not lapse");
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(await store.headObject({ bucket: "worm", key: "comp" })).toBeUndefined();
  });

  it("places and releases a legal hold, which no bypass overrides", async () => {
    await store.putObject({ bucket: "worm", key: "held", ...body("h") });
    expect(await lock.setLegalHold({ bucket: "worm", key: "held", legalHold: true })).toEqual({ legalHold: true });
    expect(await lock.setLegalHold({ bucket: "worm", key: "held", legalHold: true })).toEqual({ legalHold: true });
    for (const bypassGovernance of [false, true]) {
      expectLocked(await failure(store.deleteObject({ bucket: "worm", key: "held", bypassGovernance })), { legal_hold: "true" });
      expectLocked(await failure(store.putObject({ bucket: "worm", key: "held", ...body("x"), bypassGovernance })), { legal_hold: "true" });
    }
    expect(await read("held")).toBe("h");
    expect(await lock.setLegalHold({ bucket: "worm", key: "held", legalHold: false })).toEqual({ legalHold: false });
    await store.deleteObject({ bucket: "worm", key: "held" });
    expect(await store.headObject({ bucket: "worm", key: "held" })).toBeUndefined();
    const missing = await failure(lock.setLegalHold({ bucket: "worm", key: "held", legalHold: true }));
    expect(missing.reason).toBe(Reason.ObjectNotFound);
  });

  it("puts with a legal hold atomically", async () => {
    await store.putObject({ bucket: "worm", key: "held2", ...body("h"), protection: { legalHold: true } });
    expect((await store.headObject({ bucket: "worm", key: "held2" }))?.protection).toEqual({ legalHold: true });
    await lock.setLegalHold({ bucket: "worm", key: "held2", legalHold: false });
    await store.deleteObject({ bucket: "worm", key: "held2" });
  });

  it("fails with BUCKET_NOT_LOCKABLE in a container without version-level immutability, storing nothing", async () => {
    const put = await failure(store.putObject({ bucket: "plain", key: "p", ...body("p"), protection: { legalHold: true } }));
    expect(put.code).toBe(Code.FailedPrecondition);
    expect(put.reason).toBe(Reason.BucketNotLockable);
    expect(await store.headObject({ bucket: "plain", key: "p" })).toBeUndefined();
    await store.putObject({ bucket: "plain", key: "p", ...body("p") });
    expect((await failure(lock.setLegalHold({ bucket: "plain", key: "p", legalHold: true }))).reason).toBe(Reason.BucketNotLockable);
    expect((await failure(lock.setRetention({ bucket: "plain", key: "p", retention: { mode: "governance", retainUntil: new Date(Date.now() + HOUR) } }))).reason).toBe(
      Reason.BucketNotLockable,
    );
    await store.deleteObject({ bucket: "plain", key: "p" });
  });

  it("direct transfer: beginPut refuses to overwrite a protected blob", async () => {
    const local = new BlobObjectStore();
    await local.init({ ...azurite.config, storageAccountURI: proxy.blobEndpoint });
    try {
      await store.putObject({ bucket: "worm", key: "direct", ...body("d"), protection: { legalHold: true } });
      expectLocked(await failure(local.directTransfer.beginPut({ bucket: "worm", key: "direct", size: 1 })), { legal_hold: "true" });
      await lock.setLegalHold({ bucket: "worm", key: "direct", legalHold: false });
      expect(await local.directTransfer.beginPut({ bucket: "worm", key: "direct", size: 1 })).toHaveProperty("uploadId");
      await store.deleteObject({ bucket: "worm", key: "direct" });
    } finally {
      local.close();
    }
  });
});
