/**
 * Trials: stowage-plugin-local killed (SIGKILL, through the PluginHost's reported pid) in the
 * middle of puts, gets, snapshots and restores, sharing its root with a live writer, and run out of
 * disk. After the next call (which relaunches the plugin and replays Init) nothing is left behind:
 * no temporary bytes, no partial object or volume, a sane snapshot state; the killed calls fail
 * with UNAVAILABLE/PLUGIN_CRASHED.
 */
import { Code, Reason, StowageError, silentLogger } from "@stowage/sdk";
import { PluginHost, nodePluginCommand, type HostObjectStore } from "@stowage/sdk/host";
import { createLocalVolume, INTERRUPTED_MESSAGE } from "@stowage/plugin-local";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openFileDescriptors, recordTrial, repoRoot, runs } from "./support/trials.js";
import { sha256Hex } from "@stowage/sdk/testing";

const MAIN = join(repoRoot, "packages", "plugin-local", "dist", "main.js");
const NAME = "stowage.io/local";
const MiB = 1024 * 1024;
const run = promisify(execFile);

let base: string;
let host: PluginHost;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), "stowage-trial-local-"));
  // Every kill is a crash: let the host restart the plugin as often as the trials need.
  host = new PluginHost({ plugins: [nodePluginCommand(MAIN)], logger: silentLogger, restart: { maxCrashes: 1000, windowMs: 60_000 } });
  await host.start();
}, 60_000);

afterAll(async () => {
  await host.close();
  await rm(base, { recursive: true, force: true });
});

/** Polls `probe` until it returns a value; the bound is a hang guard, never a timing assertion. */
async function eventually<T>(probe: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`never saw ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The pid of the plugin process serving the default instance. */
function pluginPid(): number {
  const pid = host.plugins().find((p) => p.descriptor.name === NAME)?.pid;
  if (pid === undefined) throw new Error("the plugin does not run");
  return pid;
}

/** Kills the plugin process (SIGKILL) and waits until it is gone, so that the next call relaunches it. */
async function killPlugin(): Promise<void> {
  const pid = pluginPid();
  process.kill(pid, "SIGKILL");
  await eventually(async () => {
    try {
      const state = (await readFile(`/proc/${String(pid)}/stat`, "latin1")).split(") ")[1]?.[0];
      return state === "Z" ? true : undefined;
    } catch {
      return true; // gone
    }
  }, `the end of pid ${String(pid)}`);
}

/** Temporary files (`*.part`, and the names of earlier versions) under `dir`, and their bytes. */
async function leftovers(dir: string): Promise<{ files: string[]; bytes: number }> {
  const files: string[] = [];
  let bytes = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !/\.part$|\.partial$|\.tmp$/.test(entry.name)) continue;
    const path = join(entry.parentPath, entry.name);
    files.push(path.slice(dir.length + 1));
    bytes += (await stat(path)).size;
  }
  return { files, bytes };
}

/** A body that yields `before` bytes, waits for `gate`, then yields `after` bytes. */
async function* gatedBody(before: number, gate: Promise<unknown>, after = 0): AsyncGenerator<Uint8Array> {
  const chunk = Buffer.alloc(256 * 1024, 0x6b);
  for (let sent = 0; sent < before; sent += chunk.length) yield chunk.subarray(0, Math.min(chunk.length, before - sent));
  await gate;
  for (let sent = 0; sent < after; sent += chunk.length) yield chunk.subarray(0, Math.min(chunk.length, after - sent));
}

/** Waits until a temporary file of at least `minBytes` exists under `dir`; returns its name. */
async function partWritten(dir: string, minBytes: number): Promise<string> {
  return eventually(async () => {
    const names = await readdir(dir).catch(() => []);
    for (const name of names.filter((n) => n.endsWith(".part"))) {
      const size = await stat(join(dir, name)).then((s) => s.size, () => 0);
      if (size >= minBytes) return name;
    }
    return undefined;
  }, `a temporary file of ${String(minBytes)} bytes in ${dir}`);
}

/** Expects the call to fail because the plugin died. */
async function expectCrashed(promise: Promise<unknown>): Promise<void> {
  let failure: unknown;
  try {
    await promise;
  } catch (error) {
    failure = error;
  }
  expect(failure).toBeInstanceOf(StowageError);
  expect({ code: (failure as StowageError).code, reason: (failure as StowageError).reason }).toEqual({ code: Code.Unavailable, reason: Reason.PluginCrashed });
}

describe("plugin-local killed mid-call", () => {
  it("mid-PUT: the killed put fails typed, and the next call leaves no temporary byte and no partial object", async () => {
    const root = join(base, "puts");
    await mkdir(join(root, "b"), { recursive: true });
    const store = host.objectStore(NAME);
    await store.init({ root });
    const count = runs(20);
    let reclaimed = 0;
    for (let i = 0; i < count; i++) {
      const key = `backups/b${String(i)}/b${String(i)}.tar.gz`;
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      const putting = store.putObject({ bucket: "b", key, body: gatedBody(2 * MiB, gate, MiB), size: 3 * MiB });
      putting.catch(() => undefined);
      await partWritten(join(root, "b", "~tmp"), MiB);
      reclaimed += (await leftovers(root)).bytes;
      await killPlugin();
      open(); // the body ends; the put must fail all the same
      await expectCrashed(putting);
      // The next call relaunches the plugin; its replayed Init reclaims the dead writer's part.
      expect(await store.headObject({ bucket: "b", key })).toBeUndefined();
      expect(await leftovers(root)).toEqual({ files: [], bytes: 0 });
    }
    recordTrial({ trial: "kill plugin-local mid-PUT (3 MiB put, killed after ≥ 1 MiB written)", runs: count, result: `every put failed UNAVAILABLE/PLUGIN_CRASHED; ${(reclaimed / MiB).toFixed(1)} MiB of parts reclaimed by the relaunched plugin's Init; 0 bytes left, no partial object` });
  }, 600_000);

  it("mid-GET: the killed read fails typed, the object stays whole, nothing is left", async () => {
    const root = join(base, "gets");
    await mkdir(join(root, "b"), { recursive: true });
    const store = host.objectStore(NAME);
    await store.init({ root });
    const data = Buffer.alloc(16 * MiB);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32BE(i, i);
    await store.putObject({ bucket: "b", key: "big", body: Readable.from([data]), size: data.length });
    const count = runs(10);
    for (let i = 0; i < count; i++) {
      const output = await store.getObject({ bucket: "b", key: "big" });
      const reader = output.body[Symbol.asyncIterator]();
      expect((await reader.next()).done).toBe(false);
      await killPlugin();
      await expectCrashed((async () => {
        let next = await reader.next();
        while (next.done !== true) next = await reader.next();
      })());
      const again = await store.getObject({ bucket: "b", key: "big" });
      expect(sha256Hex(Buffer.concat(await again.body.toArray()))).toBe(sha256Hex(data));
      expect(await leftovers(root)).toEqual({ files: [], bytes: 0 });
    }
    recordTrial({ trial: "kill plugin-local mid-GET (16 MiB object, killed after the first chunk)", runs: count, result: "every read failed UNAVAILABLE/PLUGIN_CRASHED; the object read back whole after the relaunch; 0 bytes left" });
  }, 600_000);

  it("mid-snapshot and mid-restore: no copy left behind, the snapshot reported failed (interrupted), no partial volume", async () => {
    const root = join(base, "blocks");
    const volume = await createLocalVolume(root, { sizeBytes: 8 * MiB, fill: Buffer.from("stowage-trial") });
    const store = host.blockStore(NAME);
    // 200 ms per MiB: each copy runs about 1.6 s, long enough to be killed in the middle.
    await store.init({ root, copyDelayMs: "200" });
    const count = runs(3);
    for (let i = 0; i < count; i++) {
      const snapshot = await store.createSnapshot({ volumeId: volume.volumeId });
      await partWritten(join(root, "snapshots"), 1);
      await killPlugin();
      // The next call relaunches the plugin: the copy it was running is gone, its part reclaimed.
      const after = await store.getSnapshot(snapshot.snapshotId);
      expect({ state: after.state, message: after.message }).toEqual({ state: "failed", message: INTERRUPTED_MESSAGE });
      expect(await leftovers(root)).toEqual({ files: [], bytes: 0 });
      await store.deleteSnapshot(snapshot.snapshotId);
    }
    const ready = await store.createSnapshot({ volumeId: volume.volumeId });
    await eventually(async () => ((await store.getSnapshot(ready.snapshotId)).state === "ready" ? true : undefined), "a ready snapshot");
    for (let i = 0; i < count; i++) {
      const restoring = store.createVolumeFromSnapshot({ snapshotId: ready.snapshotId });
      restoring.catch(() => undefined);
      await partWritten(join(root, "volumes"), 1);
      await killPlugin();
      await expectCrashed(restoring);
      expect((await store.getSnapshot(ready.snapshotId)).state).toBe("ready");
      expect(await leftovers(root)).toEqual({ files: [], bytes: 0 });
      expect((await readdir(join(root, "volumes"))).sort()).toEqual([`${volume.volumeId}.img`, `${volume.volumeId}.json`]);
    }
    await store.deleteSnapshot(ready.snapshotId);
    recordTrial({ trial: "kill plugin-local mid-snapshot and mid-restore (8 MiB volume, copies slowed to ~1.6 s)", runs: 2 * count, result: "snapshots reported failed (interrupted) after the relaunch; restores failed UNAVAILABLE/PLUGIN_CRASHED and left no volume; 0 bytes of copies left" });
  }, 600_000);

  it("with a live writer sharing the root: its part survives the sweep of the relaunched plugin, and its put completes", async () => {
    const root = join(base, "shared");
    await mkdir(join(root, "b"), { recursive: true });
    const killed = host.objectStore(NAME);
    const live = host.objectStore(NAME, { instance: "live-writer" });
    await killed.init({ root });
    await live.init({ root });
    const count = runs(3);
    for (let i = 0; i < count; i++) {
      let openLive!: () => void;
      const liveGate = new Promise<void>((resolve) => (openLive = resolve));
      const livePut = live.putObject({ bucket: "b", key: `live/${String(i)}`, body: gatedBody(2 * MiB, liveGate, MiB), size: 3 * MiB });
      livePut.catch(() => undefined);
      const livePart = await partWritten(join(root, "b", "~tmp"), MiB);
      let openDoomed!: () => void;
      const doomedGate = new Promise<void>((resolve) => (openDoomed = resolve));
      const doomedPut = killed.putObject({ bucket: "b", key: `doomed/${String(i)}`, body: gatedBody(2 * MiB, doomedGate, MiB), size: 3 * MiB });
      doomedPut.catch(() => undefined);
      const doomedPart = await eventually(async () => {
        const parts = (await readdir(join(root, "b", "~tmp"))).filter((n) => n.endsWith(".part") && n !== livePart);
        return parts[0];
      }, "the doomed writer's part");
      await killPlugin();
      openDoomed();
      await expectCrashed(doomedPut);
      // Relaunched, the killed instance sweeps at Init: the dead part goes, the live one stays.
      expect(await killed.headObject({ bucket: "b", key: `doomed/${String(i)}` })).toBeUndefined();
      const parts = await readdir(join(root, "b", "~tmp"));
      expect(parts).toContain(livePart);
      expect(parts).not.toContain(doomedPart);
      // So does a sweep of the live writer's own instance.
      await live.init({ root });
      expect(await readdir(join(root, "b", "~tmp"))).toEqual([livePart]);
      openLive();
      expect((await livePut).size).toBe(3 * MiB);
      expect(await leftovers(root)).toEqual({ files: [], bytes: 0 });
    }
    recordTrial({ trial: "kill one of two plugin-local processes sharing a root mid-PUT", runs: count, result: "the dead writer's part was reclaimed at the relaunch; the live writer's part survived both sweeps and its put completed; 0 bytes left" });
  }, 600_000);
});

describe("plugin-local's descriptors", () => {
  it("return to their count after many calls, refusals of planted links included", async () => {
    const root = join(base, "descriptors");
    await mkdir(join(root, "b", "deep"), { recursive: true });
    await mkdir(join(base, "elsewhere"));
    await symlink(join(base, "elsewhere"), join(root, "b", "link"));
    const store = host.objectStore(NAME);
    await store.init({ root });
    await store.headObject({ bucket: "b", key: "warm-up" });
    const pid = pluginPid();
    const baseline = openFileDescriptors(pid);
    const count = runs(200);
    let refused = 0;
    for (let i = 0; i < count; i++) {
      const key = `deep/${String(i % 13)}/object-${String(i)}`;
      await store.putObject({ bucket: "b", key, body: gatedBody(4096, Promise.resolve()), size: 4096 });
      await store.headObject({ bucket: "b", key });
      const output = await store.getObject({ bucket: "b", key });
      await output.body.toArray();
      if (i % 10 === 0) for await (const page of store.listObjects({ bucket: "b", prefix: "deep/" })) expect(page.objects.length).toBeGreaterThan(0);
      await store.deleteObject({ bucket: "b", key });
      const error = await store.putObject({ bucket: "b", key: `link/${String(i)}`, body: gatedBody(10, Promise.resolve()), size: 10 }).catch((e: unknown) => e);
      if (error instanceof StowageError && error.reason === Reason.UnsafePath) refused++;
    }
    expect(refused).toBe(count);
    expect(await readdir(join(base, "elsewhere"))).toEqual([]);
    // Connections of the data channel close a moment after their call: wait for the count to settle.
    const settled = await eventually(async () => (openFileDescriptors(pid) <= baseline ? openFileDescriptors(pid) : undefined), "the descriptor count back at its baseline");
    recordTrial({ trial: "plugin-local descriptors over many calls (put, head, get, list, delete, refused put through a planted link)", runs: count, result: `open descriptors of the plugin ${String(baseline)} before, ${String(settled)} after; every put through the link refused UNSAFE_PATH, nothing written outside` });
  }, 600_000);
});

describe("plugin-local out of disk space", () => {
  it("fails a put RESOURCE_EXHAUSTED, leaves nothing, and stores again once space is freed", async ({ skip }) => {
    const root = join(base, "tiny");
    await mkdir(root);
    try {
      await run("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", root]);
    } catch (error) {
      skip(`mounting a small tmpfs as the root is refused here (${error instanceof Error ? error.message.split("\n")[0] : String(error)}), so a full disk cannot be made without filling the machine's own`);
      return;
    }
    try {
      await mkdir(join(root, "b"));
      const store: HostObjectStore = host.objectStore(NAME, { instance: "tiny" });
      await store.init({ root });
      const now = Promise.resolve();
      await store.putObject({ bucket: "b", key: "filler", body: gatedBody(3 * MiB, now), size: 3 * MiB });
      const full = await store.putObject({ bucket: "b", key: "too-big", body: gatedBody(2 * MiB, now), size: 2 * MiB }).catch((e: unknown) => e);
      expect(full).toBeInstanceOf(StowageError);
      expect((full as StowageError).code).toBe(Code.ResourceExhausted);
      expect(await leftovers(root)).toEqual({ files: [], bytes: 0 });
      expect(await store.headObject({ bucket: "b", key: "too-big" })).toBeUndefined();
      await store.deleteObject({ bucket: "b", key: "filler" });
      const fits = await store.putObject({ bucket: "b", key: "too-big", body: gatedBody(2 * MiB, now), size: 2 * MiB });
      expect(fits.size).toBe(2 * MiB);
      recordTrial({ trial: "plugin-local put into a full disk (4 MiB tmpfs root holding 3 MiB, 2 MiB put)", runs: 1, result: "RESOURCE_EXHAUSTED; 0 bytes left; the same put succeeded once the 3 MiB were deleted" });
    } finally {
      await run("umount", ["-l", root]);
    }
  }, 120_000);
});
