/**
 * The confinement itself, in both modes: the race-free one on /proc and the lstat fallback used
 * where /proc is missing (forced here). Both refuse planted links and other file systems, name the
 * component, and close every descriptor they open.
 */
import { Code, Reason, StowageError } from "@stowage/sdk";
import { readdirSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { pictureOf, tryMount, unmount } from "../../test/support/filesystem.js";
import { ConfinedRoot, type ConfinementMode } from "./confined-root.js";

let base: string;
let root: string;
let outside: string;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), "stowage-confined-root-"));
  root = join(base, "root");
  outside = join(base, "outside");
  await mkdir(join(root, "a", "b"), { recursive: true });
  await mkdir(outside);
  await writeFile(join(outside, "file"), "outside");
  await writeFile(join(root, "a", "b", "file"), "inside");
});

afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

async function unsafe(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(StowageError);
    const { code, reason, metadata } = error as StowageError;
    expect([code, reason]).toEqual([Code.PermissionDenied, Reason.UnsafePath]);
    return metadata.path;
  }
  throw new Error("expected UNSAFE_PATH");
}

function openDescriptors(): number {
  return readdirSync("/proc/self/fd").length;
}

describe.each<ConfinementMode>(["proc-fd", "lstat"])("in %s mode", (mode) => {
  it("walks, opens, creates, renames and removes inside the root", async () => {
    const confined = await ConfinedRoot.open(root, { mode });
    expect(confined.mode).toBe(mode);
    const top = confined.acquire();
    try {
      const b = await top.walk(["a", "b"]);
      expect(b?.path).toBe(join(root, "a", "b"));
      const opened = await b?.openFile("file");
      expect(await opened?.handle.readFile("utf8")).toBe("inside");
      await opened?.handle.close();
      const made = await b?.walk(["c", "d"], { create: 0o700 });
      expect(made?.path).toBe(join(root, "a", "b", "c", "d"));
      const created = await made?.createFile("new", 0o600);
      await created?.writeFile("new");
      await created?.close();
      if (b !== undefined && made !== undefined) await made.rename("new", b, "moved");
      expect(await top.openFileAt(["a", "b", "moved"]).then(async (f) => (await f?.handle.close(), f?.stats.size))).toBe(3);
      expect(await b?.unlink("moved")).toBe(true);
      expect(await b?.unlink("moved")).toBe(false);
      made?.close();
      b?.close();
      expect(await top.walk(["a", "missing"])).toBeUndefined();
      expect(await top.openFileAt(["a", "b", "missing"])).toBeUndefined();
    } finally {
      top.close();
      confined.retire();
    }
  });

  it("refuses links to directories and files, dangling links and links to the root's parent, naming them", async () => {
    await symlink(outside, join(root, "a", "dir"));
    await symlink(join(outside, "file"), join(root, "a", "tofile"));
    await symlink(join(base, "nowhere"), join(root, "a", "dangling"));
    await symlink("../..", join(root, "a", "up"));
    const before = await pictureOf(outside);
    const confined = await ConfinedRoot.open(root, { mode });
    const top = confined.acquire();
    try {
      for (const name of ["dir", "tofile", "dangling", "up"]) {
        const component = join(root, "a", name);
        expect(await unsafe(top.walk(["a", name, "x"])), name).toBe(component);
        expect(await unsafe(top.walk(["a", name, "x"], { create: 0o700 })), name).toBe(component);
        expect(await unsafe(top.openFileAt(["a", name, "file"])), name).toBe(component);
        const a = await top.walk(["a"]);
        try {
          expect(await unsafe(a?.child(name) ?? Promise.resolve()), name).toBe(component);
          expect(await unsafe(a?.openFile(name) ?? Promise.resolve()), name).toBe(component);
          expect(await unsafe(a?.createFile(name, 0o600) ?? Promise.resolve()), name).toBe(component);
        } finally {
          a?.close();
        }
      }
    } finally {
      top.close();
      confined.retire();
    }
    expect(await readdir(base)).not.toContain("nowhere");
    expect(await pictureOf(outside)).toEqual(before);
  });

  it("refuses another file system mounted inside the root", async ({ skip }) => {
    const mountPoint = join(root, "a", "mnt");
    await mkdir(mountPoint);
    const refused = await tryMount(["-t", "tmpfs", "-o", "size=1m", "tmpfs", mountPoint]);
    if (refused !== undefined) return skip(refused);
    const confined = await ConfinedRoot.open(root, { mode });
    const top = confined.acquire();
    try {
      expect(await unsafe(top.walk(["a", "mnt"]))).toBe(mountPoint);
      expect(await unsafe(top.walk(["a", "mnt", "x"], { create: 0o700 }))).toBe(mountPoint);
      expect(await readdir(mountPoint)).toEqual([]);
    } finally {
      top.close();
      confined.retire();
      await unmount(mountPoint);
    }
  });

  it("creates with exactly the modes asked for, whatever the umask", async () => {
    const previous = process.umask(0o077);
    try {
      const confined = await ConfinedRoot.open(root, { mode });
      const top = confined.acquire();
      try {
        const made = await top.walk(["m", "n"], { create: 0o750 });
        const file = await made?.createFile("f", 0o640);
        await file?.close();
        made?.close();
      } finally {
        top.close();
        confined.retire();
      }
    } finally {
      process.umask(previous);
    }
    expect((await stat(join(root, "m"))).mode & 0o777).toBe(0o750);
    expect((await stat(join(root, "m", "n"))).mode & 0o777).toBe(0o750);
    expect((await stat(join(root, "m", "n", "f"))).mode & 0o777).toBe(0o640);
  });

  it("closes every descriptor it opens, on success and on refusal", async () => {
    await symlink(outside, join(root, "a", "dir"));
    const confined = await ConfinedRoot.open(root, { mode });
    const baseline = openDescriptors();
    for (let i = 0; i < 50; i++) {
      const top = confined.acquire();
      try {
        (await top.walk(["a", "b"]))?.close();
        (await top.walk(["a", "x", String(i)], { create: 0o700 }))?.close();
        await (await top.openFileAt(["a", "b", "file"]))?.handle.close();
        await unsafe(top.walk(["a", "dir", "y"]));
        await unsafe(top.openFileAt(["a", "dir", "file"]));
      } finally {
        top.close();
      }
    }
    expect(openDescriptors()).toBe(baseline);
    confined.retire();
    expect(openDescriptors()).toBe(baseline - 1); // the root's own
  });
});

describe("names", () => {
  it("are single components: anything else is a bug, refused before any system call", async () => {
    const confined = await ConfinedRoot.open(root);
    const top = confined.acquire();
    try {
      for (const bad of ["..", ".", "", "a/b", "x\0y"]) {
        await expect(top.walk(["a", bad])).rejects.toMatchObject({ code: Code.Internal });
        await expect(top.tryWalk([bad, "etc"])).rejects.toMatchObject({ code: Code.Internal });
        await expect(top.openFileAt(["a", bad, "file"])).rejects.toMatchObject({ code: Code.Internal });
      }
    } finally {
      top.close();
      confined.retire();
    }
  });
});

describe("the root", () => {
  it("is opened through a link once; a missing or non-directory root fails", async () => {
    await symlink(root, join(base, "alias"));
    const confined = await ConfinedRoot.open(join(base, "alias"));
    expect(confined.path).toBe(root);
    confined.retire();
    await expect(ConfinedRoot.open(join(base, "missing"))).rejects.toMatchObject({ code: "ENOENT" });
    await expect(ConfinedRoot.open(join(outside, "file"))).rejects.toMatchObject({ code: "ENOTDIR" });
  });

  it("keeps its descriptor open until the last operation using it has ended", async () => {
    const confined = await ConfinedRoot.open(root);
    const top = confined.acquire();
    confined.retire();
    expect(() => confined.acquire()).toThrow(/retired/);
    // Still usable by the operation that acquired it before.
    const b = await top.walk(["a", "b"]);
    expect(b?.path).toBe(join(root, "a", "b"));
    b?.close();
    top.close();
  });
});
