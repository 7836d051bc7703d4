/**
 * Temporary files are named after their writer and reclaimed once it is dead: at once for a
 * writer of this host whose process is gone (or whose PID was recycled), after the stale period
 * for a writer elsewhere that stopped refreshing them, never while the writer lives.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LocalBlockStore } from "../block-store/local-block-store.js";
import { LocalObjectStore } from "../object-store/local-object-store.js";
import { currentOwner, ownerLiveness, ownerTag, processOwner, type Owner } from "./owner.js";
import { LEASE_REFRESH_MS } from "./temp-files.js";

let root: string;
const children: ChildProcess[] = [];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "stowage-local-temp-"));
});

afterEach(async () => {
  for (const child of children.splice(0)) child.kill("SIGKILL");
  await rm(root, { recursive: true, force: true });
});

/** A process that runs until the test ends. */
async function liveProcess(): Promise<Owner> {
  const child = spawn("sleep", ["600"], { stdio: "ignore" });
  children.push(child);
  await once(child, "spawn");
  const owner = processOwner(child.pid ?? -1);
  if (owner === undefined) throw new Error("no /proc entry for the child");
  return owner;
}

/** A process that ran and was killed: its PID is gone. */
async function deadProcess(): Promise<Owner> {
  const child = spawn("sleep", ["600"], { stdio: "ignore" });
  await once(child, "spawn");
  const owner = processOwner(child.pid ?? -1);
  child.kill("SIGKILL");
  await once(child, "exit");
  if (owner === undefined) throw new Error("no /proc entry for the child");
  return owner;
}

const REMOTE_HOST = "ffffffffffffffff";
const HOUR = 60 * 60 * 1000;

/** Plants a part of `owner`, `ageMs` old, in `dir`; returns its name. */
async function plant(dir: string, owner: Owner, ageMs = 0, stem = "upload"): Promise<string> {
  await mkdir(dir, { recursive: true });
  const name = `${stem}.${ownerTag(owner)}.${"ab".repeat(8)}.part`;
  await writeFile(join(dir, name), Buffer.alloc(1000));
  const when = new Date(Date.now() - ageMs);
  await utimes(join(dir, name), when, when);
  return name;
}

async function plantLegacy(dir: string, name: string, ageMs: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, name), "legacy");
  const when = new Date(Date.now() - ageMs);
  await utimes(join(dir, name), when, when);
}

describe("owners", () => {
  it("tell live, dead, recycled and remote writers apart", async () => {
    expect(ownerLiveness(currentOwner())).toBe("alive");
    const live = await liveProcess();
    expect(ownerLiveness(live)).toBe("alive");
    expect(ownerLiveness(await deadProcess())).toBe("dead");
    // The same PID with another start time: the PID was recycled, the writer is dead.
    expect(ownerLiveness({ ...live, start: String(Number(live.start) + 1) })).toBe("dead");
    expect(ownerLiveness({ ...live, host: REMOTE_HOST })).toBe("remote");
  });
});

describe("the object store's sweep", () => {
  it("reclaims at init the parts of dead writers and stale remote ones, and nothing else", async () => {
    const temp = join(root, "b", "~tmp");
    const dead = await plant(temp, await deadProcess());
    const recycled = await plant(temp, { ...(await liveProcess()), start: "1" });
    const live = await plant(temp, await liveProcess(), 2 * 24 * HOUR); // old, but its writer runs
    const remoteFresh = await plant(temp, { host: REMOTE_HOST, pid: 1, start: "1" }, 60_000);
    const remoteStale = await plant(temp, { host: REMOTE_HOST, pid: 2, start: "1" }, HOUR);
    await plantLegacy(temp, `${"0".repeat(24)}.part`, 2 * 24 * HOUR);
    await plantLegacy(temp, `${"1".repeat(24)}.part`, HOUR);
    await writeFile(join(temp, "not-ours"), "left alone");
    const store = new LocalObjectStore();
    await store.init({ root });
    await store.close();
    expect((await readdir(temp)).sort()).toEqual([live, remoteFresh, `${"1".repeat(24)}.part`, "not-ours"].sort());
    expect([dead, recycled, remoteStale]).not.toContain(live);
  });

  it("honours staleTempSeconds for remote writers", async () => {
    const temp = join(root, "b", "~tmp");
    const remote = await plant(temp, { host: REMOTE_HOST, pid: 3, start: "1" }, 200_000);
    const store = new LocalObjectStore();
    await store.init({ root });
    expect(await readdir(temp)).toEqual([remote]); // younger than the default 600 s
    await store.init({ root, staleTempSeconds: "150" });
    await store.close();
    expect(await readdir(temp)).toEqual([]);
  });

  it("reclaims periodically, without waiting for the next init", async () => {
    const store = new LocalObjectStore();
    await store.init({ root, tempSweepSeconds: "1" });
    try {
      const temp = join(root, "b", "~tmp");
      await plant(temp, await deadProcess());
      const deadline = Date.now() + 30_000; // a hang guard, not a timing assertion
      while ((await readdir(temp)).length > 0) {
        if (Date.now() > deadline) throw new Error("the periodic sweep never ran");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await store.close();
    }
  });

  it("leaves the part of a put in flight alone, and refreshes it while it runs", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const store = new LocalObjectStore();
    try {
      await mkdir(join(root, "b"));
      await store.init({ root, tempSweepSeconds: "0" });
      const body = new PassThrough();
      const putting = store.putObject({ bucket: "b", key: "k", body });
      body.write(Buffer.alloc(1000, 1));
      const temp = join(root, "b", "~tmp");
      let parts: string[] = [];
      while (parts.length === 0) parts = (await readdir(temp).catch(() => [])).filter((name) => name.endsWith(".part"));
      const part = join(temp, parts[0] ?? "");
      // Made to look abandoned long ago: a sweep still keeps it (its writer, this process, runs).
      const old = new Date(Date.now() - 2 * HOUR);
      await utimes(part, old, old);
      await store.init({ root, tempSweepSeconds: "0" });
      expect((await readdir(temp)).filter((name) => name.endsWith(".part"))).toEqual(parts);
      // The refresh gives it a recent modification time, which remote sweepers go by.
      vi.advanceTimersByTime(LEASE_REFRESH_MS);
      const deadline = Date.now() + 30_000; // a hang guard
      while ((await stat(part)).mtimeMs < Date.now() - HOUR) {
        if (Date.now() > deadline) throw new Error("the part was never refreshed");
        await new Promise((resolve) => setImmediate(resolve));
      }
      body.end(Buffer.alloc(10));
      await putting;
    } finally {
      vi.useRealTimers();
      await store.close();
    }
  });
});

describe("the block store's sweep", () => {
  it("reclaims at init the copies of dead writers in volumes/ and snapshots/, and old orphan attribute files", async () => {
    const deadOwner = await deadProcess();
    await plant(join(root, "volumes"), deadOwner, 0, "vol-1.img");
    await plant(join(root, "snapshots"), deadOwner, 0, "snap-1.img");
    const live = await plant(join(root, "snapshots"), await liveProcess(), 0, "snap-2.img");
    await plantLegacy(join(root, "snapshots"), "snap-3.img.partial", 2 * 24 * HOUR);
    await plantLegacy(join(root, "volumes"), "vol-4.json", HOUR); // no vol-4.img: a restore died before its rename
    await plantLegacy(join(root, "volumes"), "vol-5.json", 60_000); // maybe a volume being created: too young
    const store = new LocalBlockStore();
    await store.init({ root });
    await store.close();
    expect(await readdir(join(root, "volumes"))).toEqual(["vol-5.json"]);
    expect(await readdir(join(root, "snapshots"))).toEqual([live]);
  });
});
