import { Code, Reason, type Snapshot } from "@stowage/sdk";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { volumeImage } from "./layout.js";
import { INTERRUPTED_MESSAGE, LocalBlockStore } from "./local-block-store.js";
import { createLocalVolume } from "./volumes.js";
import { rejection } from "@stowage/sdk/testing";

const MiB = 1024 * 1024;
let root: string;
const stores: LocalBlockStore[] = [];

async function newStore(config: Record<string, string> = {}): Promise<LocalBlockStore> {
  const store = new LocalBlockStore();
  stores.push(store);
  await store.init({ root, ...config });
  return store;
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "stowage-local-bs-"));
});

afterEach(async () => {
  // Cancel whatever still copies, then remove the files.
  for (const store of stores.splice(0)) {
    for (const snapshot of (await store.listSnapshots({ pageSize: 1000 })).snapshots) await store.deleteSnapshot(snapshot.snapshotId);
    await store.idle();
  }
  await rm(root, { recursive: true, force: true });
});


async function waitUntilSettled(store: LocalBlockStore, snapshotId: string, seen: Snapshot[] = []): Promise<Snapshot> {
  for (;;) {
    const snapshot = await store.getSnapshot(snapshotId);
    seen.push(snapshot);
    if (snapshot.state !== "pending") return snapshot;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Polls `probe` until it returns a value (bounded: a hang guard, not a timing assertion). */
async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("condition not reached");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("snapshots", () => {
  it("go from pending, with progress, to ready, and restore byte for byte", async () => {
    const store = await newStore({ copyDelayMs: "60" });
    const pattern = Buffer.from("stowage-local-volume-pattern!");
    const volume = await createLocalVolume(root, { sizeBytes: 5 * MiB + 123, volumeType: "gp3", iops: 3000, zone: "zone-a", fill: pattern });
    const created = await store.createSnapshot({ volumeId: volume.volumeId });
    expect(created).toMatchObject({ state: "pending", progressPercent: 0, volumeId: volume.volumeId, sizeBytes: 5 * MiB + 123, zone: "zone-a" });
    expect(created.snapshotId).toMatch(/^snap-[0-9a-f]{16}$/);
    expect((await rejection(store.createVolumeFromSnapshot({ snapshotId: created.snapshotId }))).reason).toBe(Reason.SnapshotNotReady);

    const seen: Snapshot[] = [];
    const ready = await waitUntilSettled(store, created.snapshotId, seen);
    expect(ready).toMatchObject({ state: "ready", progressPercent: 100, message: "" });
    const progress = seen.filter((s) => s.state === "pending").map((s) => s.progressPercent ?? 0);
    expect(progress.some((p) => p > 0 && p < 100)).toBe(true);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress); // never goes backwards

    const restoredId = await store.createVolumeFromSnapshot({ snapshotId: created.snapshotId });
    expect(restoredId).toMatch(/^vol-[0-9a-f]{16}$/);
    expect(await store.getVolumeInfo({ volumeId: restoredId })).toEqual({
      volumeId: restoredId,
      volumeType: "gp3",
      iops: 3000,
      zone: "zone-a",
      sizeBytes: 5 * MiB + 123,
    });
    expect((await readFile(volumeImage(root, restoredId))).equals(await readFile(volume.path))).toBe(true);

    const overridden = await store.createVolumeFromSnapshot({ snapshotId: created.snapshotId, volumeType: "io2", iops: 9000, zone: "zone-b" });
    expect(await store.getVolumeInfo({ volumeId: overridden })).toMatchObject({ volumeType: "io2", iops: 9000, zone: "zone-b" });
  });

  it("copy sparse volumes quickly and keep them the same size", async () => {
    const store = await newStore();
    const volume = await createLocalVolume(root, { sizeBytes: 64 * MiB });
    const snapshot = await store.createSnapshot({ volumeId: volume.volumeId });
    expect(await waitUntilSettled(store, snapshot.snapshotId)).toMatchObject({ state: "ready" });
    const restored = await store.createVolumeFromSnapshot({ snapshotId: snapshot.snapshotId });
    const copy = await stat(volumeImage(root, restored));
    expect(copy.size).toBe(64 * MiB);
    expect(copy.blocks * 512).toBeLessThan(MiB); // still sparse: the zeroes were not written
  });

  it("carry the volume's tags merged with the caller's (the caller wins)", async () => {
    const store = await newStore();
    const volume = await createLocalVolume(root, { sizeBytes: 4096, tags: { app: "db", team: "a" } });
    const snapshot = await store.createSnapshot({ volumeId: volume.volumeId, tags: { team: "b", backup: "nightly" } });
    expect(snapshot.tags).toEqual({ app: "db", team: "b", backup: "nightly" });
    await waitUntilSettled(store, snapshot.snapshotId);
    expect((await store.getSnapshot(snapshot.snapshotId)).tags).toEqual({ app: "db", team: "b", backup: "nightly" });
  });

  it("are reported failed when the process copying them went away", async () => {
    const first = await newStore({ copyDelayMs: "2000" });
    const volume = await createLocalVolume(root, { sizeBytes: 8 * MiB, fill: 1 });
    const snapshot = await first.createSnapshot({ volumeId: volume.volumeId });
    const second = await newStore();
    const seen = await second.getSnapshot(snapshot.snapshotId);
    expect(seen).toMatchObject({ state: "failed", message: INTERRUPTED_MESSAGE });
    expect((await second.listSnapshots({})).snapshots.map((s) => s.state)).toEqual(["failed"]);
    expect((await rejection(second.createVolumeFromSnapshot({ snapshotId: snapshot.snapshotId }))).reason).toBe(Reason.SnapshotNotReady);
    // The process that runs the copy still knows better.
    expect((await first.getSnapshot(snapshot.snapshotId)).state).toBe("pending");
  });

  it("are cancelled by deletion while pending, leaving no files", async () => {
    const store = await newStore({ copyDelayMs: "2000" });
    const volume = await createLocalVolume(root, { sizeBytes: 8 * MiB, fill: 1 });
    const snapshot = await store.createSnapshot({ volumeId: volume.volumeId });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    await store.deleteSnapshot(snapshot.snapshotId);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await readdir(join(root, "snapshots"))).toEqual([]);
    expect((await rejection(store.getSnapshot(snapshot.snapshotId))).reason).toBe(Reason.SnapshotNotFound);
    await store.deleteSnapshot(snapshot.snapshotId); // idempotent
  });

  it("are listed oldest first, filtered by tags, page by page", async () => {
    const store = await newStore();
    const volume = await createLocalVolume(root, { sizeBytes: 1024 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await store.createSnapshot({ volumeId: volume.volumeId, tags: { parity: i % 2 === 0 ? "even" : "odd", n: String(i) } })).snapshotId);
      await new Promise((resolve) => setTimeout(resolve, 3)); // distinct creation times
    }
    await store.idle();
    const listed: string[] = [];
    let pageToken = "";
    do {
      const page = await store.listSnapshots({ pageSize: 2, pageToken });
      expect(page.snapshots.length).toBeLessThanOrEqual(2);
      listed.push(...page.snapshots.map((s) => s.snapshotId));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(listed).toEqual(ids);
    const even = await store.listSnapshots({ tagFilter: { parity: "even" } });
    expect(even.snapshots.map((s) => s.tags.n)).toEqual(["0", "2", "4"]);
    expect(even.nextPageToken).toBe("");
    expect((await store.listSnapshots({ tagFilter: { parity: "even", n: "2" } })).snapshots.length).toBe(1);
    expect((await rejection(store.listSnapshots({ pageToken: "garbage!" }))).reason).toBe(Reason.InvalidPageToken);
  });

  it("survive a new instance: ready snapshots stay ready", async () => {
    const store = await newStore();
    const volume = await createLocalVolume(root, { sizeBytes: 1024, fill: 9 });
    const snapshot = await store.createSnapshot({ volumeId: volume.volumeId });
    await store.idle();
    const later = await newStore();
    expect(await later.getSnapshot(snapshot.snapshotId)).toMatchObject({ state: "ready", volumeId: volume.volumeId });
    expect((await later.getSnapshot(snapshot.snapshotId)).createdAt).toEqual((await store.getSnapshot(snapshot.snapshotId)).createdAt);
  });

  it("record a failed copy", async () => {
    const store = await newStore({ copyDelayMs: "200" });
    const volume = await createLocalVolume(root, { sizeBytes: 2 * MiB, fill: 1 });
    const snapshot = await store.createSnapshot({ volumeId: volume.volumeId });
    // Take the copy's file away while it is written: the final rename fails.
    const part = await eventually(async () => (await readdir(join(root, "snapshots"))).find((name) => name.endsWith(".part")));
    await rm(join(root, "snapshots", part));
    const settled = await waitUntilSettled(store, snapshot.snapshotId);
    expect(settled.state).toBe("failed");
    expect(settled.message).toContain("copying the volume data failed");
    expect(await (await newStore()).getSnapshot(snapshot.snapshotId)).toMatchObject({ state: "failed", message: settled.message });
  });
});

describe("volumes and errors", () => {
  it("report NOT_FOUND reasons and treat deletes of missing things as success", async () => {
    const store = await newStore();
    expect((await rejection(store.createSnapshot({ volumeId: "vol-missing" }))).reason).toBe(Reason.VolumeNotFound);
    expect((await rejection(store.getVolumeInfo({ volumeId: "vol-missing" }))).reason).toBe(Reason.VolumeNotFound);
    expect((await rejection(store.getSnapshot("snap-missing"))).reason).toBe(Reason.SnapshotNotFound);
    expect((await rejection(store.createVolumeFromSnapshot({ snapshotId: "snap-missing" }))).reason).toBe(Reason.SnapshotNotFound);
    await store.deleteSnapshot("snap-missing");
    await store.deleteVolume({ volumeId: "vol-missing" });
  });

  it("delete volumes idempotently", async () => {
    const store = await newStore();
    const volume = await createLocalVolume(root, { sizeBytes: 1024, zone: "z" });
    expect(await store.getVolumeInfo({ volumeId: volume.volumeId })).toMatchObject({ zone: "z", sizeBytes: 1024 });
    await store.deleteVolume({ volumeId: volume.volumeId });
    await store.deleteVolume({ volumeId: volume.volumeId });
    expect(await readdir(join(root, "volumes"))).toEqual([]);
  });

  it("refuse IDs that could name other files", async () => {
    const store = await newStore();
    for (const id of ["../x", "a/b", "", ".hidden", "x".repeat(129)]) {
      expect((await rejection(store.getVolumeInfo({ volumeId: id }))).reason, id).toBe(Reason.InvalidName);
      expect((await rejection(store.deleteSnapshot(id))).reason, id).toBe(Reason.InvalidName);
    }
  });

  it("refuse a second volume with the same ID", async () => {
    await createLocalVolume(root, { volumeId: "vol-fixed", sizeBytes: 10 });
    await expect(createLocalVolume(root, { volumeId: "vol-fixed", sizeBytes: 10 })).rejects.toMatchObject({ code: Code.AlreadyExists });
  });

  it("refuse every call before init, and unknown config keys", async () => {
    const fresh = new LocalBlockStore();
    const calls: (() => Promise<unknown>)[] = [
      () => fresh.createSnapshot({ volumeId: "v" }),
      () => fresh.getSnapshot("s"),
      () => fresh.listSnapshots({}),
      () => fresh.deleteSnapshot("s"),
      () => fresh.createVolumeFromSnapshot({ snapshotId: "s" }),
      () => fresh.getVolumeInfo({ volumeId: "v" }),
      () => fresh.deleteVolume({ volumeId: "v" }),
      () => fresh.getVolumeId({}),
      () => fresh.setVolumeId({}, "v"),
    ];
    for (const call of calls) expect((await rejection(call())).reason).toBe(Reason.NotInitialized);
    const error = await rejection(fresh.init({ root, copyDelays: "5" }));
    expect(error.reason).toBe(Reason.InvalidConfig);
    // The old names are accepted keys too (aliases), so valid_keys lists them (clause 5.1.1).
    expect(error.message).toContain("valid keys are [copyDelay, copyDelayMs, credentialsFile, dirMode, fileMode, root, staleTemp, staleTempSeconds, tempSweep, tempSweepSeconds]");
    expect((await rejection(fresh.init({ root: join(root, "nope") }))).reason).toBe(Reason.InvalidConfig);
    await fresh.init({ root, credentialsFile: "/ignored" });
  });
});
