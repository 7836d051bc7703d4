/**
 * The local ObjectStore never reaches outside its root: planted symbolic links (to directories
 * and files, dangling, to the root's parent), hard links and mount points inside the root make
 * every operation fail with PERMISSION_DENIED/UNSAFE_PATH naming the component, and leave the
 * outside byte for byte as it was.
 */
import { Code, Reason, StowageError, type ObjectStore } from "@stowage/sdk";
import { link, mkdir, mkdtemp, readFile, readdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { pictureOf, tryMount, unmount } from "../../test/support/filesystem.js";
import { LocalObjectStore } from "./local-object-store.js";
import { rejection } from "@stowage/sdk/testing";

const BUCKET = "b";
let base: string; // holds root/ and outside/
let root: string;
let outside: string;
let store: LocalObjectStore;
let before: Record<string, string>;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), "stowage-local-confine-"));
  root = join(base, "root");
  outside = join(base, "outside");
  await mkdir(join(root, BUCKET), { recursive: true });
  // The outside holds a genuine object file, so that a store that followed a link would serve it.
  const donor = new LocalObjectStore();
  await mkdir(join(outside, BUCKET), { recursive: true });
  await donor.init({ root: outside });
  await donor.putObject({ bucket: BUCKET, key: "victim", body: Readable.from([Buffer.from("outside secret")]) });
  await donor.close();
  await rm(join(outside, BUCKET, "~tmp"), { recursive: true });
  await rename(join(outside, BUCKET, "victim~o"), join(outside, "victim~o"));
  await rm(join(outside, BUCKET), { recursive: true });
  await writeFile(join(outside, "file"), "plain outside file");
  store = new LocalObjectStore();
  await store.init({ root, fsync: "false" });
  before = await pictureOf(outside);
});

afterEach(async () => {
  await store.close();
  await rm(base, { recursive: true, force: true });
});


/** Expects PERMISSION_DENIED/UNSAFE_PATH naming `component` (its absolute path). */
async function expectUnsafe(promise: Promise<unknown>, component: string): Promise<void> {
  const error = await rejection(promise);
  expect({ code: error.code, reason: error.reason, path: error.metadata.path }).toEqual({
    code: Code.PermissionDenied,
    reason: Reason.UnsafePath,
    path: component,
  });
  expect(error.message).toContain(component);
}

function put(key: string, s: ObjectStore = store): Promise<unknown> {
  return s.putObject({ bucket: BUCKET, key, body: Readable.from([Buffer.from("inside")]) });
}

async function get(key: string): Promise<string> {
  const output = await store.getObject({ bucket: BUCKET, key });
  return Buffer.concat(await output.body.toArray()).toString();
}

async function listKeys(prefix?: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const page of store.listObjects({ bucket: BUCKET, prefix })) keys.push(...page.objects.map((o) => o.key), ...page.commonPrefixes);
  return keys;
}

/** Every object operation on `key` fails with UNSAFE_PATH naming `component`. */
async function expectEveryOperationRefused(key: string, component: string): Promise<void> {
  await expectUnsafe(put(key), component);
  await expectUnsafe(store.getObject({ bucket: BUCKET, key }), component);
  await expectUnsafe(store.headObject({ bucket: BUCKET, key }), component);
  await expectUnsafe(store.deleteObject({ bucket: BUCKET, key }), component);
}

describe("planted links", () => {
  it("refuse a bucket directory that is a link, for every operation", async () => {
    await rm(join(root, BUCKET), { recursive: true });
    await symlink(outside, join(root, BUCKET));
    const component = join(root, BUCKET);
    await expectEveryOperationRefused("victim", component);
    await expectUnsafe(listKeys(), component);
    await expectUnsafe(store.createSignedUrl({ bucket: BUCKET, key: "victim", method: "GET", ttlSeconds: 60 }), component);
    expect(await pictureOf(outside)).toEqual(before);
  });

  it("refuse a link among a key's directories, for every operation", async () => {
    await symlink(outside, join(root, BUCKET, "sub"));
    await expectEveryOperationRefused("sub/victim", join(root, BUCKET, "sub"));
    await expectEveryOperationRefused("sub/deeper/x", join(root, BUCKET, "sub"));
    // Listings never follow it: the link is not ours, so it is not listed either.
    expect(await listKeys()).toEqual([]);
    expect(await listKeys("sub/")).toEqual([]);
    expect(await pictureOf(outside)).toEqual(before);
  });

  it("refuse a link to a file, a dangling link and a link to the root's parent in a key's path", async () => {
    await symlink(join(outside, "file"), join(root, BUCKET, "tofile"));
    await symlink(join(base, "nowhere"), join(root, BUCKET, "dangling"));
    await symlink("../..", join(root, BUCKET, "up"));
    for (const name of ["tofile", "dangling", "up"]) await expectEveryOperationRefused(`${name}/victim`, join(root, BUCKET, name));
    expect((await readdir(base)).sort()).toEqual(["outside", "root"]); // nothing created beside the root, no "nowhere"
    expect(await pictureOf(outside)).toEqual(before);
  });

  it("refuse a temporary area that is a link: uploads never land outside", async () => {
    await symlink(outside, join(root, BUCKET, "~tmp"));
    await expectUnsafe(put("k"), join(root, BUCKET, "~tmp"));
    expect(await pictureOf(outside)).toEqual(before);
  });

  it("never follow a link in an object's own place: reads refuse it, puts and deletes replace or remove the link itself", async () => {
    await symlink(join(outside, "victim~o"), join(root, BUCKET, "x~o"));
    await expectUnsafe(store.getObject({ bucket: BUCKET, key: "x" }), join(root, BUCKET, "x~o"));
    await expectUnsafe(store.headObject({ bucket: BUCKET, key: "x" }), join(root, BUCKET, "x~o"));
    expect(await listKeys()).toEqual([]);
    await store.deleteObject({ bucket: BUCKET, key: "x" });
    expect(await readdir(join(root, BUCKET))).not.toContain("x~o");
    await symlink(join(outside, "victim~o"), join(root, BUCKET, "x~o"));
    await put("x");
    expect(await get("x")).toBe("inside");
    expect(await pictureOf(outside)).toEqual(before);
  });

  it("refuse an object file with a second hard link (it may be a file outside the root)", async () => {
    await link(join(outside, "victim~o"), join(root, BUCKET, "h~o"));
    before = await pictureOf(outside); // the link count of the outside file changed: the picture is taken now
    await expectUnsafe(store.getObject({ bucket: BUCKET, key: "h" }), join(root, BUCKET, "h~o"));
    await expectUnsafe(store.headObject({ bucket: BUCKET, key: "h" }), join(root, BUCKET, "h~o"));
    expect(await pictureOf(outside)).toEqual(before);
  });

  it("refuse signed URLs that would reach through a link", async () => {
    await mkdir(join(root, BUCKET, "sub"));
    const url = (await store.createSignedUrl({ bucket: BUCKET, key: "sub/victim", method: "GET", ttlSeconds: 60 })).url;
    const putUrl = (await store.createSignedUrl({ bucket: BUCKET, key: "sub/new", method: "PUT", ttlSeconds: 60 })).url;
    await rm(join(root, BUCKET, "sub"), { recursive: true });
    await symlink(outside, join(root, BUCKET, "sub"));
    const got = await fetch(url);
    expect(got.status).toBe(403);
    const text = await got.text();
    expect(text).not.toContain("outside secret");
    expect(text).not.toContain(root); // no paths in answers to the network
    expect((await fetch(putUrl, { method: "PUT", body: "x" })).status).toBe(403);
    expect(await pictureOf(outside)).toEqual(before);
  });

  it("keep a link swapped in between operations from reaching outside (deterministic interleaving)", async () => {
    const sub = join(root, BUCKET, "sub");
    const parked = join(root, BUCKET, "parked");
    await mkdir(sub);
    for (let round = 0; round < 30; round++) {
      // A real directory: the operations work.
      await put("sub/x");
      expect(await get("sub/x")).toBe("inside");
      // Swapped for a link to the outside: the same operations are refused.
      await rename(sub, parked);
      await symlink(outside, sub);
      await expectEveryOperationRefused("sub/x", sub);
      await rm(sub);
      await rename(parked, sub);
      await store.deleteObject({ bucket: BUCKET, key: "sub/x" });
      await mkdir(sub, { recursive: true });
    }
    expect(await pictureOf(outside)).toEqual(before);
  });

  it("keep a link swapped in concurrently from reaching outside (any interleaving)", async () => {
    const sub = join(root, BUCKET, "sub");
    const parked = join(root, BUCKET, "parked");
    await mkdir(sub);
    let swapping = true;
    /** Puts `make` in the place of `sub`, clearing whatever a put created there meanwhile. */
    const replaceSub = async (make: () => Promise<void>): Promise<void> => {
      for (;;) {
        try {
          await rm(sub, { recursive: true, force: true }); // a link is removed, not followed
          return await make();
        } catch (error) {
          if (!["EEXIST", "ENOTEMPTY"].includes((error as NodeJS.ErrnoException).code ?? "")) throw error;
        }
      }
    };
    const swapper = (async () => {
      let swaps = 0;
      while (swapping) {
        await rename(sub, parked);
        await replaceSub(() => symlink(outside, sub));
        await new Promise((resolve) => setImmediate(resolve));
        await replaceSub(() => rename(parked, sub));
        swaps++;
      }
      return swaps;
    })();
    const outcomes = new Map<string, number>();
    const note = (outcome: string): void => void outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    try {
    for (let i = 0; i < 200; i++) {
      for (const call of [() => put(`sub/k${String(i % 7)}`), () => get(`sub/k${String(i % 7)}`), () => store.deleteObject({ bucket: BUCKET, key: `sub/k${String(i % 5)}` })]) {
        try {
          await call();
          note("ok");
        } catch (error) {
          // Refused, not there (an object may live in the parked directory at that moment), or
          // changing too fast to open: never anything else.
          expect(error).toBeInstanceOf(StowageError);
          const { code, reason } = error as StowageError;
          if (code === Code.Internal) throw new Error(`internal: ${(error as Error).message}`, { cause: error });
          expect([`${String(Code.PermissionDenied)}/${Reason.UnsafePath}`, `${String(Code.NotFound)}/${Reason.ObjectNotFound}`, `${String(Code.Unavailable)}/undefined`]).toContain(
            `${String(code)}/${String(reason)}`,
          );
          note(String(reason));
        }
      }
    }
    } finally {
      swapping = false;
    }
    expect(await swapper).toBeGreaterThan(0);
    expect(outcomes.get("ok")).toBeGreaterThan(0);
    expect(await pictureOf(outside)).toEqual(before);
  });
});

describe("mount points", () => {
  const mounted: string[] = [];
  afterEach(async () => {
    for (const path of mounted.splice(0).reverse()) await unmount(path);
  });

  async function mountOrSkip(skip: (reason: string) => void, args: readonly string[], target: string): Promise<boolean> {
    const refused = await tryMount(args);
    if (refused !== undefined) {
      skip(refused);
      return false;
    }
    mounted.push(target);
    return true;
  }

  it("refuse a bind mount of the outside among a key's directories, and a bucket that is one", async ({ skip }) => {
    const sub = join(root, BUCKET, "mnt");
    await mkdir(sub);
    if (!(await mountOrSkip(skip, ["--bind", outside, sub], sub))) return;
    await expectEveryOperationRefused("mnt/victim", sub);
    await expectEveryOperationRefused("mnt/new/deeper", sub);
    await expectUnsafe(listKeys("mnt/"), sub);
    const other = join(root, "b2");
    await mkdir(other);
    if (!(await mountOrSkip(skip, ["--bind", outside, other], other))) return;
    await expectUnsafe(store.putObject({ bucket: "b2", key: "k", body: Readable.from([Buffer.from("x")]) }), other);
    await expectUnsafe(store.getObject({ bucket: "b2", key: "victim" }), other);
    expect(await pictureOf(outside)).toEqual(before);
  });

  it("refuse an object file that is a bind mount of a file outside", async ({ skip }) => {
    const target = join(root, BUCKET, "f~o");
    await writeFile(target, "");
    if (!(await mountOrSkip(skip, ["--bind", join(outside, "victim~o"), target], target))) return;
    await expectUnsafe(store.getObject({ bucket: BUCKET, key: "f" }), target);
    await expectUnsafe(store.headObject({ bucket: BUCKET, key: "f" }), target);
    expect(await pictureOf(outside)).toEqual(before);
  });

  it("refuse another file system mounted inside the root", async ({ skip }) => {
    const sub = join(root, BUCKET, "fs");
    await mkdir(sub);
    if (!(await mountOrSkip(skip, ["-t", "tmpfs", "-o", "size=1m", "tmpfs", sub], sub))) return;
    await expectEveryOperationRefused("fs/x", sub);
    expect(await readdir(sub)).toEqual([]);
  });
});

describe("the root itself", () => {
  it("may be a link set up by the operator: it is resolved once at init", async () => {
    const alias = join(base, "alias");
    await symlink(root, alias);
    const aliased = new LocalObjectStore();
    try {
      await aliased.init({ root: alias, fsync: "false" });
      await put("k", aliased);
      expect(await readFile(join(root, BUCKET, "k~o"))).toBeInstanceOf(Buffer);
    } finally {
      await aliased.close();
    }
  });
});
