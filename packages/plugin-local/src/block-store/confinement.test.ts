/**
 * The local BlockStore never reaches outside its root: volume files, snapshot files and records,
 * and the volumes/ and snapshots/ directories themselves, when planted as links (or hard links,
 * or mount points), make every operation fail with PERMISSION_DENIED/UNSAFE_PATH naming them, and
 * leave the outside byte for byte as it was.
 */
import { Code, Reason } from "@stowage/sdk";
import { link, mkdir, mkdtemp, readdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { pictureOf, tryMount, unmount } from "../../test/support/filesystem.js";
import { LocalBlockStore } from "./local-block-store.js";
import { createLocalVolume } from "./volumes.js";
import { rejection } from "@stowage/sdk/testing";

let base: string;
let root: string;
let outside: string;
let store: LocalBlockStore;
let before: Record<string, string>;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), "stowage-local-bs-confine-"));
  root = join(base, "root");
  outside = join(base, "outside");
  await mkdir(root);
  await mkdir(outside);
  await writeFile(join(outside, "disk.img"), Buffer.alloc(64 * 1024, 0x5a));
  await writeFile(join(outside, "record.json"), JSON.stringify({ secret: true }));
  store = new LocalBlockStore();
  await store.init({ root });
  before = await pictureOf(outside);
});

afterEach(async () => {
  await store.idle();
  await store.close();
  await rm(base, { recursive: true, force: true });
});

async function expectUnsafe(promise: Promise<unknown>, component: string): Promise<void> {
  const { code, reason, metadata } = await rejection(promise);
  expect({ code, reason, path: metadata.path }).toEqual({ code: Code.PermissionDenied, reason: Reason.UnsafePath, path: component });
}

/** A ready snapshot of a fresh volume. */
async function readySnapshot(): Promise<string> {
  const volume = await createLocalVolume(root, { sizeBytes: 4096, fill: 1 });
  const snapshot = await store.createSnapshot({ volumeId: volume.volumeId });
  await store.idle();
  expect((await store.getSnapshot(snapshot.snapshotId)).state).toBe("ready");
  return snapshot.snapshotId;
}

describe("planted links", () => {
  it("refuse a volume file that is a link: info, snapshot; a delete removes the link only", async () => {
    await mkdir(join(root, "volumes"), { recursive: true });
    await symlink(join(outside, "disk.img"), join(root, "volumes", "vol-x.img"));
    const component = join(root, "volumes", "vol-x.img");
    await expectUnsafe(store.getVolumeInfo({ volumeId: "vol-x" }), component);
    await expectUnsafe(store.createSnapshot({ volumeId: "vol-x" }), component);
    await store.deleteVolume({ volumeId: "vol-x" });
    expect(await readdir(join(root, "volumes"))).toEqual([]);
    expect(await pictureOf(outside)).toEqual(before);
  });

  it("refuse a volume file with a second hard link", async () => {
    await link(join(outside, "disk.img"), join(root, "volumes", "vol-h.img"));
    before = await pictureOf(outside);
    await expectUnsafe(store.getVolumeInfo({ volumeId: "vol-h" }), join(root, "volumes", "vol-h.img"));
    await expectUnsafe(store.createSnapshot({ volumeId: "vol-h" }), join(root, "volumes", "vol-h.img"));
    expect(await pictureOf(outside)).toEqual(before);
  });

  it("refuse a volume's attribute file that is a link", async () => {
    const volume = await createLocalVolume(root, { sizeBytes: 1024 });
    await rm(join(root, "volumes", `${volume.volumeId}.json`));
    await symlink(join(outside, "record.json"), join(root, "volumes", `${volume.volumeId}.json`));
    await expectUnsafe(store.getVolumeInfo({ volumeId: volume.volumeId }), join(root, "volumes", `${volume.volumeId}.json`));
    expect(await pictureOf(outside)).toEqual(before);
  });

  it("refuse a snapshot image or record that is a link: restore, get", async () => {
    const snapshotId = await readySnapshot();
    await rm(join(root, "snapshots", `${snapshotId}.img`));
    await symlink(join(outside, "disk.img"), join(root, "snapshots", `${snapshotId}.img`));
    await expectUnsafe(store.createVolumeFromSnapshot({ snapshotId }), join(root, "snapshots", `${snapshotId}.img`));
    expect((await readdir(join(root, "volumes"))).filter((name) => name.endsWith(".part"))).toEqual([]);
    await rm(join(root, "snapshots", `${snapshotId}.json`));
    await symlink(join(outside, "record.json"), join(root, "snapshots", `${snapshotId}.json`));
    await expectUnsafe(store.getSnapshot(snapshotId), join(root, "snapshots", `${snapshotId}.json`));
    // Listings skip what is not a plain record.
    expect((await store.listSnapshots({})).snapshots.map((s) => s.snapshotId)).toEqual([]);
    await store.deleteSnapshot(snapshotId);
    expect(await pictureOf(outside)).toEqual(before);
  });

  it("refuse volumes/ or snapshots/ replaced by links, for every operation, and at init", async () => {
    const snapshotId = await readySnapshot();
    const volumeId = (await store.listSnapshots({})).snapshots[0]?.volumeId ?? "";
    for (const area of ["volumes", "snapshots"]) {
      const component = join(root, area);
      await rename(component, join(root, `${area}.real`));
      await symlink(outside, component);
      await expectUnsafe(store.getVolumeInfo({ volumeId }), component);
      await expectUnsafe(store.createSnapshot({ volumeId }), component);
      await expectUnsafe(store.getSnapshot(snapshotId), component);
      await expectUnsafe(store.listSnapshots({}), component);
      await expectUnsafe(store.createVolumeFromSnapshot({ snapshotId }), component);
      await expectUnsafe(store.deleteSnapshot(snapshotId), component);
      await expectUnsafe(store.deleteVolume({ volumeId }), component);
      await expectUnsafe(new LocalBlockStore().init({ root }), component);
      if (area === "volumes") await expectUnsafe(createLocalVolume(root, { sizeBytes: 10 }), component);
      await rm(component);
      await rename(join(root, `${area}.real`), component);
    }
    expect(await pictureOf(outside)).toEqual(before);
  });

  it("refuse a volume directory that is a mount point", async ({ skip }) => {
    await rename(join(root, "volumes"), join(root, "volumes.real"));
    await mkdir(join(root, "volumes"));
    const refused = await tryMount(["--bind", outside, join(root, "volumes")]);
    if (refused !== undefined) return skip(refused);
    try {
      await expectUnsafe(store.getVolumeInfo({ volumeId: "disk" }), join(root, "volumes"));
      await expectUnsafe(store.createSnapshot({ volumeId: "disk" }), join(root, "volumes"));
    } finally {
      await unmount(join(root, "volumes"));
    }
    expect(await pictureOf(outside)).toEqual(before);
  });
});
