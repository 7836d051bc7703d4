/**
 * Everything plugin-local creates gets an explicit mode, private by default (directories 0700,
 * files 0600) and exactly what `dirMode`/`fileMode` say otherwise, whatever the umask.
 */
import { Code, Reason, StowageError } from "@stowage/sdk";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LocalBlockStore } from "./block-store/local-block-store.js";
import { createLocalVolume } from "./block-store/volumes.js";
import { LocalObjectStore } from "./object-store/local-object-store.js";

let root: string;
let umask: number;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "stowage-local-modes-"));
  umask = process.umask(0); // the most permissive umask: nothing is taken away
});

afterEach(async () => {
  process.umask(umask);
  await rm(root, { recursive: true, force: true });
});

/** The permission bits of every entry under `dir`, by relative path. */
async function modes(dir: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    result[path.slice(dir.length + 1)] = ((await stat(path)).mode & 0o777).toString(8);
  }
  return result;
}

async function fillObjectStore(config: Record<string, string>): Promise<void> {
  const store = new LocalObjectStore();
  try {
    await store.init({ root, createBuckets: "true", ...config });
    await store.putObject({ bucket: "b", key: "backups/b1/b1.tar.gz", body: Readable.from([Buffer.from("x")]) });
    await store.putObject({ bucket: "b", key: "top", body: Readable.from([Buffer.from("y")]) });
  } finally {
    await store.close();
  }
}

async function fillBlockStore(config: Record<string, string>): Promise<void> {
  const store = new LocalBlockStore();
  try {
    await store.init({ root, ...config });
    const volume = await createLocalVolume(root, { volumeId: "vol-1", sizeBytes: 4096, fill: 7, ...(config.fileMode === undefined ? {} : { fileMode: Number.parseInt(config.fileMode, 8) }) });
    const snapshot = await store.createSnapshot({ volumeId: volume.volumeId });
    await store.idle();
    await store.createVolumeFromSnapshot({ snapshotId: snapshot.snapshotId });
  } finally {
    await store.close();
  }
}

describe("the object store", () => {
  it("creates directories 0700 and files 0600 by default, even under umask 000", async () => {
    await fillObjectStore({});
    const found = await modes(root);
    expect(Object.keys(found).sort()).toEqual(["b", "b/backups", "b/backups/b1", "b/backups/b1/b1.tar.gz~o", "b/top~o", "b/~tmp"]);
    for (const [path, mode] of Object.entries(found)) expect(mode, path).toBe(path.endsWith("~o") ? "600" : "700");
  });

  it("uses dirMode and fileMode exactly", async () => {
    process.umask(0o077); // would take the group bits away
    await fillObjectStore({ dirMode: "0750", fileMode: "640" });
    for (const [path, mode] of Object.entries(await modes(root))) expect(mode, path).toBe(path.endsWith("~o") ? "640" : "750");
  });

  it("refuses modes that are not octal permission bits or lock the plugin out", async () => {
    for (const [key, value] of [["dirMode", "0600"], ["dirMode", "rwx"], ["fileMode", "0400"], ["fileMode", "4755"], ["fileMode", "0o7777"]] as const) {
      const error = await new LocalObjectStore().init({ root, [key]: value }).catch((e: unknown) => e);
      expect(error, `${key}=${value}`).toBeInstanceOf(StowageError);
      expect({ code: (error as StowageError).code, reason: (error as StowageError).reason, key: (error as StowageError).metadata.key }).toEqual({ code: Code.InvalidArgument, reason: Reason.InvalidConfig, key });
    }
  });
});

describe("the block store", () => {
  it("creates directories 0700 and files 0600 by default, even under umask 000", async () => {
    await fillBlockStore({});
    const found = await modes(root);
    expect(Object.keys(found).length).toBeGreaterThanOrEqual(8); // volumes/, snapshots/, two volumes, a snapshot, their records
    for (const [path, mode] of Object.entries(found)) expect(mode, path).toBe(path.includes(".") ? "600" : "700");
  });

  it("uses dirMode and fileMode exactly", async () => {
    await fillBlockStore({ dirMode: "0750", fileMode: "0640" });
    for (const [path, mode] of Object.entries(await modes(root))) expect(mode, path).toBe(path.includes(".") ? "640" : "750");
  });
});
