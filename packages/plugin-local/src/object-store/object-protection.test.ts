/**
 * Object protection in the local ObjectStore (contract 5.9), enforced by the plugin itself. The
 * store's clock is injected, so retentions expire when the test says, never by waiting.
 */
import { Code, Reason, type ObjectProtection, type ProtectionInput } from "@stowage/sdk";
import { rejection } from "@stowage/sdk/testing";
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { objectPath } from "./key-layout.js";
import { LOCAL_ENFORCED_BY, LocalObjectStore } from "./local-object-store.js";
import { RECORD_OFFSET } from "./object-file.js";
import { SLOT_BYTES, decodeRecord, encodeRecord, encodeSlot } from "./protection-record.js";

const BUCKET = "b";
const HOUR = 3_600_000;
let base: string;
let root: string;
let clock: number;
let store: LocalObjectStore;

async function start(config: Record<string, string> = { objectLock: "true" }): Promise<LocalObjectStore> {
  const s = new LocalObjectStore({ now: () => clock });
  await s.init({ root, ...config });
  return s;
}

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), "stowage-local-lock-"));
  root = join(base, "root");
  await mkdir(join(root, BUCKET), { recursive: true });
  clock = Date.parse("2030-01-01T00:00:00Z");
  store = await start();
});

afterEach(async () => {
  await store.close();
  await rm(base, { recursive: true, force: true });
});

const lock = (s: LocalObjectStore = store) => s.objectLock;
const at = (ms: number): Date => new Date(clock + ms);

async function put(key: string, body: string, extra: { protection?: ProtectionInput; bypassGovernance?: boolean } = {}, s = store): Promise<void> {
  await s.putObject({ bucket: BUCKET, key, body: Readable.from([Buffer.from(body)]), ...extra });
}

async function read(key: string, s = store): Promise<string> {
  const output = await s.getObject({ bucket: BUCKET, key });
  return Buffer.concat(await output.body.toArray()).toString();
}

/** The file of `key`, on disk. */
const fileOf = (key: string): string => join(root, BUCKET, ...objectPath(key));

describe("object protection (contract 5.9)", () => {
  it("stores a put's protection and reports it in head, get and listings (5.9.3, 5.9.4)", async () => {
    const protection: ObjectProtection = { retention: { mode: "compliance", retainUntil: at(HOUR) }, legalHold: true };
    await put("k", "protected body", { protection });
    expect((await store.headObject({ bucket: BUCKET, key: "k" }))?.protection).toEqual(protection);
    const got = await store.getObject({ bucket: BUCKET, key: "k" });
    expect(got.object.protection).toEqual(protection);
    got.body.destroy();
    const listed = [];
    for await (const page of store.listObjects({ bucket: BUCKET })) listed.push(...page.objects);
    expect(listed.map((o) => [o.key, o.protection])).toEqual([["k", protection]]);
    // A plain put in a lockable bucket is unprotected, and says nothing.
    await put("plain", "x");
    expect((await store.headObject({ bucket: BUCKET, key: "plain" }))?.protection).toBeUndefined();
  });

  it("refuses deleting a protected object with OBJECT_LOCKED and its metadata, and leaves it intact (5.9.5, 5.9.6)", async () => {
    const until = at(HOUR);
    await put("k", "keep me", { protection: { retention: { mode: "governance", retainUntil: until } }, });
    const before = await store.headObject({ bucket: BUCKET, key: "k" });
    const error = await rejection(store.deleteObject({ bucket: BUCKET, key: "k" }));
    expect([error.code, error.reason]).toEqual([Code.FailedPrecondition, Reason.ObjectLocked]);
    expect(error.metadata).toEqual({ bucket: BUCKET, key: "k", legal_hold: "false", mode: "GOVERNANCE", retain_until: until.toISOString() });
    expect(error.message).toContain(until.toISOString());
    expect(await read("k")).toBe("keep me");
    expect(await store.headObject({ bucket: BUCKET, key: "k" })).toEqual(before);
  });

  it("refuses overwriting a protected object before reading the body, and stores nothing (5.9.7)", async () => {
    await put("k", "original", { protection: { legalHold: true } });
    let pulled = false;
    async function* body(): AsyncGenerator<Uint8Array> {
      pulled = true;
      yield Buffer.from("replacement");
    }
    const error = await rejection(store.putObject({ bucket: BUCKET, key: "k", body: body(), bypassGovernance: true }));
    expect([error.code, error.reason, error.metadata.legal_hold]).toEqual([Code.FailedPrecondition, Reason.ObjectLocked, "true"]);
    expect(pulled).toBe(false);
    expect(await read("k")).toBe("original");
    // Nothing left in the temporary area either.
    expect(await readdir(join(root, BUCKET, "~tmp")).catch(() => [])).toEqual([]);
  });

  it("extends a retention; refuses shortening, changing or removing a compliance retention (5.9.9)", async () => {
    await put("k", "x", { protection: { retention: { mode: "compliance", retainUntil: at(HOUR) } } });
    const extended = await lock().setRetention({ bucket: BUCKET, key: "k", retention: { mode: "compliance", retainUntil: at(2 * HOUR) } });
    expect(extended).toEqual({ retention: { mode: "compliance", retainUntil: at(2 * HOUR) }, legalHold: false });
    for (const retention of [{ mode: "compliance" as const, retainUntil: at(HOUR) }, { mode: "governance" as const, retainUntil: at(3 * HOUR) }, undefined]) {
      const error = await rejection(lock().setRetention({ bucket: BUCKET, key: "k", retention, bypassGovernance: true }));
      expect([error.code, error.reason, error.metadata.mode], JSON.stringify(retention)).toEqual([Code.FailedPrecondition, Reason.ObjectLocked, "COMPLIANCE"]);
    }
    expect((await store.headObject({ bucket: BUCKET, key: "k" }))?.protection).toEqual(extended);
    expect((await rejection(store.deleteObject({ bucket: BUCKET, key: "k", bypassGovernance: true }))).reason).toBe(Reason.ObjectLocked);
  });

  it("lets bypassGovernance shorten or remove a governance retention, replace and delete the object (5.9.2, 5.9.6, 5.9.7, 5.9.9)", async () => {
    const governance = { mode: "governance" as const, retainUntil: at(2 * HOUR) };
    await put("k", "v1", { protection: { retention: governance } });
    expect((await rejection(lock().setRetention({ bucket: BUCKET, key: "k", retention: { ...governance, retainUntil: at(HOUR) } }))).reason).toBe(Reason.ObjectLocked);
    expect(await lock().setRetention({ bucket: BUCKET, key: "k", retention: { ...governance, retainUntil: at(HOUR) }, bypassGovernance: true })).toEqual({
      retention: { ...governance, retainUntil: at(HOUR) },
      legalHold: false,
    });
    expect((await rejection(put("k", "v2"))).reason).toBe(Reason.ObjectLocked);
    await put("k", "v2", { bypassGovernance: true, protection: { retention: governance } });
    expect(await read("k")).toBe("v2");
    expect(await lock().setRetention({ bucket: BUCKET, key: "k", retention: undefined, bypassGovernance: true })).toEqual({ legalHold: false });
    expect((await store.headObject({ bucket: BUCKET, key: "k" }))?.protection).toBeUndefined();
    await lock().setRetention({ bucket: BUCKET, key: "k", retention: governance });
    await store.deleteObject({ bucket: BUCKET, key: "k", bypassGovernance: true });
    expect(await store.headObject({ bucket: BUCKET, key: "k" })).toBeUndefined();
    await expect(stat(fileOf("k"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("places and releases legal holds idempotently; a hold beats bypassGovernance and survives its release of nothing else (5.9.2, 5.9.10)", async () => {
    const retention = { mode: "governance" as const, retainUntil: at(HOUR) };
    await put("k", "x", { protection: { retention } });
    expect(await lock().setLegalHold({ bucket: BUCKET, key: "k", legalHold: true })).toEqual({ retention, legalHold: true });
    expect(await lock().setLegalHold({ bucket: BUCKET, key: "k", legalHold: true })).toEqual({ retention, legalHold: true });
    const error = await rejection(store.deleteObject({ bucket: BUCKET, key: "k", bypassGovernance: true }));
    expect([error.reason, error.metadata.legal_hold]).toEqual([Reason.ObjectLocked, "true"]);
    expect((await rejection(put("k", "y", { bypassGovernance: true }))).reason).toBe(Reason.ObjectLocked);
    expect(await lock().setLegalHold({ bucket: BUCKET, key: "k", legalHold: false })).toEqual({ retention, legalHold: false });
    expect(await lock().setLegalHold({ bucket: BUCKET, key: "k", legalHold: false })).toEqual({ retention, legalHold: false });
    // Releasing the hold left the retention in force.
    expect((await rejection(store.deleteObject({ bucket: BUCKET, key: "k" }))).reason).toBe(Reason.ObjectLocked);
    // A hold alone, on an unprotected object.
    await put("h", "x");
    await lock().setLegalHold({ bucket: BUCKET, key: "h", legalHold: true });
    expect((await rejection(store.deleteObject({ bucket: BUCKET, key: "h", bypassGovernance: true }))).metadata).toEqual({ bucket: BUCKET, key: "h", legal_hold: "true" });
    await lock().setLegalHold({ bucket: BUCKET, key: "h", legalHold: false });
    await store.deleteObject({ bucket: BUCKET, key: "h" });
  });

  it("stops protecting when the retention ends, as the store's clock says, and still reports it (5.9.2, 5.9.3)", async () => {
    const retention = { mode: "compliance" as const, retainUntil: at(2000) };
    await put("k", "x", { protection: { retention } });
    expect((await rejection(store.deleteObject({ bucket: BUCKET, key: "k" }))).reason).toBe(Reason.ObjectLocked);
    clock += 2001;
    expect((await store.headObject({ bucket: BUCKET, key: "k" }))?.protection).toEqual({ retention, legalHold: false });
    // An expired retention may be replaced by any retention, even in another mode.
    expect((await lock().setRetention({ bucket: BUCKET, key: "k", retention: { mode: "governance", retainUntil: at(1000) } })).retention?.mode).toBe("governance");
    clock += 1001;
    await put("k", "replaced");
    expect(await read("k")).toBe("replaced");
    await store.deleteObject({ bucket: BUCKET, key: "k" });
  });

  it("refuses a retention without a mode or not in the future, and a missing object (5.9.4, 5.9.9)", async () => {
    const past = { mode: "governance" as const, retainUntil: at(-1) };
    expect((await rejection(put("k", "x", { protection: { retention: past } }))).code).toBe(Code.InvalidArgument);
    expect(await store.headObject({ bucket: BUCKET, key: "k" })).toBeUndefined();
    const noMode = { mode: "" as "governance", retainUntil: at(HOUR) };
    expect((await rejection(put("k", "x", { protection: { retention: noMode } }))).code).toBe(Code.InvalidArgument);
    const missing = await rejection(lock().setRetention({ bucket: BUCKET, key: "nope", retention: { mode: "governance", retainUntil: at(HOUR) } }));
    expect([missing.code, missing.reason]).toEqual([Code.NotFound, Reason.ObjectNotFound]);
    expect((await rejection(lock().setLegalHold({ bucket: BUCKET, key: "nope", legalHold: true }))).reason).toBe(Reason.ObjectNotFound);
    expect((await rejection(lock().getBucketProtection({ bucket: "no-bucket" }))).reason).toBe(Reason.BucketNotFound);
    // With createBuckets, the first put creates the bucket: it is lockable already.
    const creating = await start({ objectLock: "true", createBuckets: "true" });
    try {
      expect((await lock(creating).getBucketProtection({ bucket: "no-bucket" })).lockable).toBe(true);
    } finally {
      await creating.close();
    }
  });

  it("reports every bucket lockable with objectLock, none without; refuses protection there with BUCKET_NOT_LOCKABLE (5.9.11, 5.9.12)", async () => {
    expect(await lock().getBucketProtection({ bucket: BUCKET })).toEqual({ lockable: true, enforcedBy: LOCAL_ENFORCED_BY });
    expect(LOCAL_ENFORCED_BY).toMatch(/^the plugin only: /);
    const plain = await start({});
    try {
      expect(await lock(plain).getBucketProtection({ bucket: BUCKET })).toEqual({ lockable: false, enforcedBy: LOCAL_ENFORCED_BY });
      const refusals = [
        await rejection(put("k", "x", { protection: { legalHold: true } }, plain)),
        await rejection(put("k", "x", { protection: { retention: { mode: "governance", retainUntil: at(HOUR) } } }, plain)),
        await rejection(lock(plain).setRetention({ bucket: BUCKET, key: "k", retention: { mode: "governance", retainUntil: at(HOUR) } })),
        await rejection(lock(plain).setLegalHold({ bucket: BUCKET, key: "k", legalHold: true })),
      ];
      expect(refusals.map((e) => [e.code, e.reason, e.metadata.bucket])).toEqual(Array(4).fill([Code.FailedPrecondition, Reason.BucketNotLockable, BUCKET]));
      expect(await plain.headObject({ bucket: BUCKET, key: "k" })).toBeUndefined();
      // Asking for no protection is a plain put.
      await put("k", "x", { protection: { legalHold: false } }, plain);
      expect((await plain.headObject({ bucket: BUCKET, key: "k" }))?.protection).toBeUndefined();
    } finally {
      await plain.close();
    }
  });

  it("keeps protection across a restart, and enforces it even with objectLock turned off", async () => {
    const protection = { retention: { mode: "compliance" as const, retainUntil: at(HOUR) }, legalHold: false };
    await put("k", "durable", { protection });
    await lock().setLegalHold({ bucket: BUCKET, key: "k", legalHold: true });
    await store.close();
    store = await start();
    expect((await store.headObject({ bucket: BUCKET, key: "k" }))?.protection).toEqual({ ...protection, legalHold: true });
    expect((await rejection(store.deleteObject({ bucket: BUCKET, key: "k" }))).reason).toBe(Reason.ObjectLocked);
    await store.close();
    store = await start({});
    expect((await store.headObject({ bucket: BUCKET, key: "k" }))?.protection).toEqual({ ...protection, legalHold: true });
    expect((await rejection(store.deleteObject({ bucket: BUCKET, key: "k" }))).reason).toBe(Reason.ObjectLocked);
    expect((await rejection(put("k", "x"))).reason).toBe(Reason.ObjectLocked);
    expect(await read("k")).toBe("durable");
  });

  it("changes protection in place: same file, body, etag and modification time", async () => {
    await put("k", "in place");
    const before = await store.headObject({ bucket: BUCKET, key: "k" });
    const inode = (await stat(fileOf("k"))).ino;
    for (let i = 1; i <= 3; i++) {
      await lock().setRetention({ bucket: BUCKET, key: "k", retention: { mode: "governance", retainUntil: at(i * HOUR) } });
      await lock().setLegalHold({ bucket: BUCKET, key: "k", legalHold: i % 2 === 1 });
    }
    const after = await store.headObject({ bucket: BUCKET, key: "k" });
    expect((await stat(fileOf("k"))).ino).toBe(inode);
    expect(after).toEqual({ ...before, protection: { retention: { mode: "governance", retainUntil: at(3 * HOUR) }, legalHold: true } });
    expect(await read("k")).toBe("in place");
  });

  it("reads format-1 files (written without objectLock) as unprotected, and rewrites one once to protect it", async () => {
    await store.close();
    const plain = await start({});
    await put("old", "old body", {}, plain);
    await plain.close();
    expect((await readFile(fileOf("old"))).subarray(0, 8).toString()).toBe("STOWOBJ1");
    store = await start();
    const before = await store.headObject({ bucket: BUCKET, key: "old" });
    expect(before?.protection).toBeUndefined();
    const hold = await lock().setLegalHold({ bucket: BUCKET, key: "old", legalHold: true });
    expect(hold).toEqual({ legalHold: true });
    expect((await readFile(fileOf("old"))).subarray(0, 8).toString()).toBe("STOWOBJ2");
    expect(await store.headObject({ bucket: BUCKET, key: "old" })).toEqual({ ...before, protection: hold });
    expect(await read("old")).toBe("old body");
    expect((await rejection(store.deleteObject({ bucket: BUCKET, key: "old" }))).reason).toBe(Reason.ObjectLocked);
    // And a format-1 object that nobody protects is deleted as before.
    await store.close();
    const again = await start({});
    await put("old2", "x", {}, again);
    await again.close();
    store = await start();
    await store.deleteObject({ bucket: BUCKET, key: "old2" });
    expect(await store.headObject({ bucket: BUCKET, key: "old2" })).toBeUndefined();
  });

  it("keeps the previous protection when the slot being written is torn", async () => {
    await put("k", "x", { protection: { legalHold: true } });
    await lock().setLegalHold({ bucket: BUCKET, key: "k", legalHold: false }); // generation 2, slot 1
    await lock().setLegalHold({ bucket: BUCKET, key: "k", legalHold: true }); // generation 3, slot 0
    // Tear slot 0 (the newest): slot 1 (no hold) is in force again, as if the last change never happened.
    const file = await open(fileOf("k"), "r+");
    try {
      await file.write(Buffer.from([0xff, 0xff]), 0, 2, RECORD_OFFSET + 6);
    } finally {
      await file.close();
    }
    expect((await store.headObject({ bucket: BUCKET, key: "k" }))?.protection).toBeUndefined();
    await store.deleteObject({ bucket: BUCKET, key: "k" });
  });

  it("fails closed on a format-2 file whose record is unreadable: DATA_LOSS, never unprotected", async () => {
    await put("k", "x", { protection: { legalHold: true } });
    const file = await open(fileOf("k"), "r+");
    try {
      await file.write(Buffer.alloc(2 * SLOT_BYTES, 0xee), 0, 2 * SLOT_BYTES, RECORD_OFFSET);
    } finally {
      await file.close();
    }
    expect((await rejection(store.headObject({ bucket: BUCKET, key: "k" }))).code).toBe(Code.DataLoss);
    expect((await rejection(store.deleteObject({ bucket: BUCKET, key: "k", bypassGovernance: true }))).code).toBe(Code.DataLoss);
    expect((await rejection(put("k", "y"))).code).toBe(Code.DataLoss);
    expect((await stat(fileOf("k"))).size).toBeGreaterThan(0);
  });

  it("serialises a delete racing a legal hold on the same key: the hold is never lost", async () => {
    for (let round = 0; round < 20; round++) {
      const key = `race-${round}`;
      await put(key, "x");
      // Both orders of arrival.
      const calls = [() => store.deleteObject({ bucket: BUCKET, key }), () => lock().setLegalHold({ bucket: BUCKET, key, legalHold: true })] as const;
      const [deleted, held] =
        round % 2 === 0
          ? await Promise.allSettled([calls[0](), calls[1]()])
          : await Promise.allSettled([calls[1](), calls[0]()]).then(([h, d]) => [d, h] as const);
      const info = await store.headObject({ bucket: BUCKET, key });
      if (deleted.status === "fulfilled") {
        // The delete ran first: the hold found no object, and none is left.
        expect(held.status).toBe("rejected");
        expect(info).toBeUndefined();
      } else {
        expect(held.status).toBe("fulfilled");
        expect(info?.protection).toEqual({ legalHold: true });
        await lock().setLegalHold({ bucket: BUCKET, key, legalHold: false });
      }
    }
  });

  it("refuses a signed PUT over a protected object with 409, and leaves it intact (5.7.4, 5.9.7)", async () => {
    await put("k", "original", { protection: { retention: { mode: "governance", retainUntil: at(HOUR) } } });
    // The signed-URL server checks expiry with the same clock: sign it "now".
    const { url } = await store.createSignedUrl({ bucket: BUCKET, key: "k", method: "PUT", ttlSeconds: 60 });
    const response = await fetch(url, { method: "PUT", body: "overwritten" });
    expect(response.status).toBe(409);
    expect(await response.text()).toMatch(/protected by governance retention until/);
    expect(await read("k")).toBe("original");
    // An unprotected key is still written through its URL.
    const other = await store.createSignedUrl({ bucket: BUCKET, key: "free", method: "PUT", ttlSeconds: 60 });
    expect((await fetch(other.url, { method: "PUT", body: "new" })).status).toBe(200);
  });
});

describe("protection record", () => {
  it("round-trips, picks the valid slot with the highest generation, and rejects damage", () => {
    const protection: ObjectProtection = { retention: { mode: "governance", retainUntil: new Date(1_900_000_000_123) }, legalHold: true };
    const record = encodeRecord(protection);
    expect(decodeRecord(record)).toEqual({ protection, generation: 1, slot: 0 });
    encodeSlot({ legalHold: false }, 2).copy(record, SLOT_BYTES);
    expect(decodeRecord(record)).toEqual({ protection: { legalHold: false }, generation: 2, slot: 1 });
    record[SLOT_BYTES + 4] = 1; // damage slot 1: its check no longer matches
    expect(decodeRecord(record)).toEqual({ protection, generation: 1, slot: 0 });
    record[0] = 9;
    expect(decodeRecord(record)).toBeUndefined();
    expect(decodeRecord(Buffer.alloc(2 * SLOT_BYTES))).toBeUndefined();
  });
});
