/**
 * Fault trials of the plugin host (issue 11, items 3 and 5):
 *
 * - Wedged plugins: a plugin process stopped with SIGSTOP, deadlocked or busy-looping is found by
 *   the health checks, killed and relaunched with its Init replayed; its in-flight calls, which have
 *   no deadline, fail with UNAVAILABLE/PLUGIN_UNRESPONSIVE instead of hanging.
 * - Random calls: fast-check sends random calls with random (often malformed) arguments through the
 *   host to real plugin processes (the SDK's memory fixture and plugin-local); every outcome is a
 *   success or a typed StowageError other than INTERNAL, no plugin process dies, no call hangs.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { Code, Reason, StowageError, codeName, silentLogger } from "@stowage/sdk";
import { PluginHost, nodePluginCommand, type PluginCommand, type PluginHostOptions, type HostBlockStore, type HostObjectStore } from "@stowage/sdk/host";
import { createLocalVolume } from "@stowage/plugin-local";
import { recordTrial, runs } from "./support/trials.js";

const MEMORY_FIXTURE = fileURLToPath(new URL("../../packages/sdk/test/fixtures/memory-plugin.mjs", import.meta.url));
const PLUGIN_LOCAL = fileURLToPath(new URL("../../packages/plugin-local/dist/main.js", import.meta.url));
const FIXTURE = "fixture.stowage.io/memory";
const LOCAL = "stowage.io/local";

const scratch: string[] = [];
const stopped: number[] = [];

afterAll(async () => {
  for (const pid of stopped) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone, as it should be.
    }
  }
  await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "stowage-host-trial-"));
  scratch.push(dir);
  return dir;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(predicate: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${String(timeoutMs)} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function startHost(command: PluginCommand, options: PluginHostOptions = {}): Promise<PluginHost> {
  const host = new PluginHost({ plugins: [command], logger: silentLogger, ...options });
  await host.start();
  return host;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

describe("wedged plugins", () => {
  const WEDGES = ["sigstop", "busy-loop", "deadlock"] as const;

  it("a stopped, deadlocked or busy-looping plugin is replaced; its in-flight calls fail with PLUGIN_UNRESPONSIVE", async () => {
    const n = runs(5);
    const detection: number[] = [];
    const seen = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const how = WEDGES[i % WEDGES.length] ?? "sigstop";
      seen.set(how, (seen.get(how) ?? 0) + 1);
      // SIGSTOP is tried on plugin-local, the two in-process wedges on the fixture (which has them on command).
      const local = how === "sigstop";
      const root = local ? await tempDir() : "";
      const host = await startHost(local ? nodePluginCommand(PLUGIN_LOCAL) : { command: process.execPath, args: [MEMORY_FIXTURE] }, {
        healthCheck: { intervalMs: 100, timeoutMs: 300, failures: 2 },
        defaultTimeoutMs: 0,
        streamIdleTimeoutMs: 0,
      });
      try {
        const store = host.objectStore(local ? LOCAL : FIXTURE);
        await store.init(local ? { root, createBuckets: "true" } : { buckets: "b" });
        await store.putObject({ bucket: "b", key: "k", body: Readable.from([Buffer.alloc(1024, 1)]) });
        const pid = host.plugins()[0]?.pid ?? -1;
        const wedgedAt = Date.now();
        let wedging: Promise<unknown> | undefined;
        if (how === "sigstop") {
          stopped.push(pid);
          process.kill(pid, "SIGSTOP");
        } else {
          wedging = store.deleteObject({ bucket: "b", key: how === "busy-loop" ? "wedge-busy" : "wedge-deadlock" });
        }
        // Calls without any deadline, sent to the wedged process: none may hang.
        const inFlight: Promise<unknown>[] = [store.headObject({ bucket: "b", key: "k" }), (async () => (await store.getObject({ bucket: "b", key: "k" })).body.toArray())()];
        if (wedging !== undefined) inFlight.push(wedging);
        const outcomes = await Promise.allSettled(inFlight);
        detection.push(Date.now() - wedgedAt);
        for (const outcome of outcomes) {
          expect(outcome.status).toBe("rejected");
          const error = (outcome as PromiseRejectedResult).reason as unknown;
          expect(error).toBeInstanceOf(StowageError);
          expect(error).toMatchObject({ code: Code.Unavailable, reason: Reason.PluginUnresponsive });
        }
        await until(() => !alive(pid), `the wedged process ${String(pid)} exits`);
        // Relaunched with Init replayed: the bucket is there again (plugin-local even keeps the object).
        const after = await store.headObject({ bucket: "b", key: "k" });
        if (local) expect(after?.size).toBe(1024);
        else expect(after).toBeUndefined();
        expect(host.plugins()[0]?.pid).not.toBe(pid);
      } finally {
        await host.close();
      }
    }
    recordTrial({
      trial: "wedged plugin (SIGSTOP on plugin-local, busy loop and deadlock on the SDK fixture), health checks every 100 ms, 2 failures",
      runs: n,
      result: `${String(n)} of ${String(n)} detected, killed and relaunched with Init replayed (${[...seen].map(([k, v]) => `${String(v)} ${k}`).join(", ")}); every in-flight call without a deadline failed with UNAVAILABLE/PLUGIN_UNRESPONSIVE; wedge to failure: median ${String(median(detection))} ms, max ${String(Math.max(...detection))} ms`,
    });
  }, 300_000);
});

/** One random call: what it is, and how to run it against a target. */
interface RandomCall {
  readonly name: string;
  run(target: Target): Promise<unknown>;
}

interface Target {
  readonly objects: HostObjectStore;
  readonly blocks: HostBlockStore;
  readonly volumeId: string;
}

/** Keys the fixture treats as commands (crash, throw, wedge): left out of random calls. */
const FIXTURE_COMMANDS = new Set(["crash", "boom", "denied", "wedge-busy", "wedge-deadlock"]);

const loneSurrogate = fc.constantFrom("\uD800", "\uDBFF", "\uDC00", "\uDFFF");
// Mostly plausible values, so that most calls reach the plugin; now and then a malformed one.
const text = fc.oneof(
  { weight: 30, arbitrary: fc.string({ maxLength: 24 }) },
  { weight: 3, arbitrary: fc.string({ unit: "binary", maxLength: 12 }) },
  { weight: 2, arbitrary: fc.tuple(fc.string({ maxLength: 6 }), loneSurrogate, fc.string({ maxLength: 6 })).map(([a, s, b]) => a + s + b) },
  { weight: 2, arbitrary: fc.constantFrom("", "/", "..", "a/../b", "a\u0000b", "a\nb", "x".repeat(1100)) },
);
const name = fc.oneof({ weight: 30, arbitrary: text.filter((k) => !FIXTURE_COMMANDS.has(k)) }, { weight: 1, arbitrary: fc.anything() });
const bucket = fc.oneof({ weight: 10, arbitrary: fc.constant("b") }, { weight: 1, arbitrary: name });
const number = fc.oneof(
  { weight: 20, arbitrary: fc.nat({ max: 5000 }) },
  { weight: 2, arbitrary: fc.integer({ min: -10, max: 10 }) },
  { weight: 1, arbitrary: fc.double() },
  { weight: 2, arbitrary: fc.constantFrom(Number.NaN, Infinity, -Infinity, 2 ** 31, 2 ** 31 - 1, 2 ** 53, 2 ** 64, 1.5, -0) },
  { weight: 1, arbitrary: fc.anything() },
);
const optional = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined, freq: 2 });
const stringMap = fc.oneof(
  { weight: 10, arbitrary: fc.dictionary(text, text, { maxKeys: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(text, fc.anything(), { maxKeys: 2 }) },
  { weight: 1, arbitrary: fc.anything() },
);
const options = fc.oneof(
  { weight: 20, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.record({ timeoutMs: optional(number) }) },
  { weight: 1, arbitrary: fc.anything() },
);
const body = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 4096 }).map((bytes) => ({ kind: "bytes", make: () => Readable.from([Buffer.from(bytes)]) })) },
  { weight: 1, arbitrary: fc.array(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.anything()), { maxLength: 3 }).map((chunks) => ({ kind: "mixed", make: () => (async function* () { yield* chunks; })() })) },
  { weight: 1, arbitrary: fc.anything().map((value) => ({ kind: "anything", make: () => value })) },
);
const pv = fc.oneof(fc.anything(), fc.record({ spec: fc.record({ csi: fc.record({ driver: fc.constantFrom("local.stowage.io", "fixture.stowage.io", "other"), volumeHandle: text }) }) }));

/** Reads at most `maxPages` pages of a listing, then lets it go. */
async function drain(listing: AsyncIterable<unknown>, maxPages = 3): Promise<void> {
  const pages = listing[Symbol.asyncIterator]();
  try {
    for (let i = 0; i < maxPages; i++) if ((await pages.next()).done === true) return;
  } finally {
    await pages.return?.();
  }
}

const any = (value: unknown): never => value as never;

const call: fc.Arbitrary<RandomCall> = fc.oneof(
  fc.record({ bucket, key: name, o: options }).map(({ bucket: b, key, o }) => ({ name: "headObject", run: (t: Target) => t.objects.headObject(any({ bucket: b, key }), any(o)) })),
  fc.record({ bucket, key: name, o: options }).map(({ bucket: b, key, o }) => ({ name: "deleteObject", run: (t: Target) => t.objects.deleteObject(any({ bucket: b, key }), any(o)) })),
  fc.record({ bucket, key: name, body, size: optional(number), contentType: optional(name), metadata: optional(stringMap), sha256: optional(fc.oneof(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 40 }), fc.anything())), o: options }).map(
    ({ bucket: b, key, body: bd, size, contentType, metadata, sha256, o }) => ({
      name: "putObject",
      run: (t: Target) => t.objects.putObject(any({ bucket: b, key, body: bd.make(), size, contentType, metadata, sha256 }), any(o)),
    }),
  ),
  fc.record({ bucket, key: name, range: optional(fc.oneof(fc.record({ offset: number, length: optional(number) }), fc.anything())), o: options }).map(({ bucket: b, key, range, o }) => ({
    name: "getObject",
    run: async (t: Target) => {
      const got = await t.objects.getObject(any({ bucket: b, key, range }), any(o));
      await got.body.toArray();
    },
  })),
  fc.record({ bucket, prefix: optional(name), delimiter: optional(name), pageSize: optional(number), maxPages: optional(number), pageToken: optional(name), o: options }).map(({ o, ...input }) => ({
    name: "listObjects",
    run: (t: Target) => drain(t.objects.listObjects(any(input), any(o))),
  })),
  fc.record({ bucket, key: name, method: optional(fc.oneof(fc.constantFrom("GET", "PUT"), name)), ttlSeconds: number, o: options }).map(({ bucket: b, key, method, ttlSeconds, o }) => ({
    name: "createSignedUrl",
    run: (t: Target) => t.objects.createSignedUrl(any({ bucket: b, key, method, ttlSeconds }), any(o)),
  })),
  fc.record({ volumeId: fc.oneof(fc.constant("VOLUME"), name), zone: optional(name), tags: optional(stringMap), o: options }).map(({ volumeId, zone, tags, o }) => ({
    name: "createSnapshot",
    run: (t: Target) => t.blocks.createSnapshot(any({ volumeId: volumeId === "VOLUME" ? t.volumeId : volumeId, zone, tags }), any(o)),
  })),
  fc.record({ id: name, o: options }).map(({ id, o }) => ({ name: "getSnapshot", run: (t: Target) => t.blocks.getSnapshot(any(id), any(o)) })),
  fc.record({ id: name, o: options }).map(({ id, o }) => ({ name: "deleteSnapshot", run: (t: Target) => t.blocks.deleteSnapshot(any(id), any(o)) })),
  fc.record({ tagFilter: optional(stringMap), pageSize: optional(number), pageToken: optional(name), o: options }).map(({ o, ...input }) => ({
    name: "listSnapshots",
    run: (t: Target) => t.blocks.listSnapshots(any(input), any(o)),
  })),
  fc.record({ snapshotId: name, volumeType: optional(name), zone: optional(name), iops: optional(number), tags: optional(stringMap), o: options }).map(({ o, ...input }) => ({
    name: "createVolumeFromSnapshot",
    run: (t: Target) => t.blocks.createVolumeFromSnapshot(any(input), any(o)),
  })),
  fc.record({ volumeId: fc.oneof(fc.constant("VOLUME"), name), zone: optional(name), o: options }).map(({ volumeId, zone, o }) => ({
    name: "getVolumeInfo",
    run: (t: Target) => t.blocks.getVolumeInfo(any({ volumeId: volumeId === "VOLUME" ? t.volumeId : volumeId, zone }), any(o)),
  })),
  fc.record({ volumeId: name, zone: optional(name), o: options }).map(({ volumeId, zone, o }) => ({ name: "deleteVolume", run: (t: Target) => t.blocks.deleteVolume(any({ volumeId, zone }), any(o)) })),
  fc.record({ pv, o: options }).map(({ pv: value, o }) => ({ name: "getVolumeId", run: (t: Target) => t.blocks.getVolumeId(value, any(o)) })),
  fc.record({ pv, volumeId: name, o: options }).map(({ pv: value, volumeId, o }) => ({ name: "setVolumeId", run: (t: Target) => t.blocks.setVolumeId(value, any(volumeId), any(o)) })),
  fc.record({ config: stringMap, o: options }).map(({ config, o }) => ({ name: "init (object store)", run: (t: Target) => t.objects.init(any(config), any(o)) })),
);

/** A generous bound per call: a hang, not a slow call, is what it catches. */
const HANG_GUARD_MS = 30_000;

interface Tally {
  calls: number;
  ok: number;
  byCode: Map<string, number>;
  untyped: string[];
  internal: string[];
  crashes: string[];
  hangs: string[];
}

describe("random calls through the host", () => {
  it("every outcome is a success or a typed error other than INTERNAL; no plugin crashes; no call hangs", async () => {
    const perTarget = runs(500);
    const started = Date.now();
    const tallies: { target: string; tally: Tally }[] = [];
    let failure: unknown;
    for (const target of ["memory fixture", "plugin-local"] as const) {
      const local = target === "plugin-local";
      const root = await tempDir();
      const host = await startHost(local ? nodePluginCommand(PLUGIN_LOCAL) : { command: process.execPath, args: [MEMORY_FIXTURE], env: { FIXTURE_MODE: "with-blocks" } });
      const tally: Tally = { calls: 0, ok: 0, byCode: new Map(), untyped: [], internal: [], crashes: [], hangs: [] };
      tallies.push({ target, tally });
      try {
        const objects = host.objectStore(local ? LOCAL : FIXTURE);
        const blocks = host.blockStore(local ? LOCAL : "fixture.stowage.io/blocks");
        const objectConfig = local ? { root: join(root, "objects"), createBuckets: "true" } : { buckets: "b" };
        await mkdir(join(root, "objects"));
        await mkdir(join(root, "blocks"));
        await objects.init(objectConfig);
        await blocks.init(local ? { root: join(root, "blocks") } : {});
        const volumeId = local ? (await createLocalVolume(join(root, "blocks"), { sizeBytes: 64 * 1024, zone: "z1" })).volumeId : "vol-1";
        const t: Target = { objects, blocks, volumeId };
        const pidOf = (): string => host.plugins().map((p) => String(p.pid)).join(",");
        const pids = pidOf();
        const failed = await fc.assert(
          fc.asyncProperty(call, async (c) => {
            tally.calls += 1;
            let timer: NodeJS.Timeout | undefined;
            const guard = new Promise<"hang">((resolve) => {
              timer = setTimeout(() => resolve("hang"), HANG_GUARD_MS);
            });
            let outcome: unknown;
            try {
              outcome = await Promise.race([c.run(t).then(() => "ok"), guard]);
            } catch (error) {
              outcome = error;
            } finally {
              clearTimeout(timer);
            }
            if (outcome === "hang") tally.hangs.push(c.name);
            else if (outcome === "ok") tally.ok += 1;
            else if (!(outcome instanceof StowageError)) tally.untyped.push(`${c.name}: ${String(outcome)}`);
            else {
              tally.byCode.set(codeName(outcome.code), (tally.byCode.get(codeName(outcome.code)) ?? 0) + 1);
              if (outcome.code === Code.Internal || outcome.code === Code.Unknown) tally.internal.push(`${c.name}: ${outcome.message}`);
            }
            if (pidOf() !== pids) tally.crashes.push(`${c.name}: plugin process changed from ${pids} to ${pidOf()}`);
            // The configuration is put back after a random init, so that later calls reach the store.
            // (After a failed Init the SDK's registry refuses calls with NOT_INITIALIZED, although
            // contract 3.6.3 keeps the previous configuration: reported, not this file's to fix.)
            if (c.name.startsWith("init")) await objects.init(objectConfig);
            return outcome !== "hang" && (outcome === "ok" || (outcome instanceof StowageError && outcome.code !== Code.Internal && outcome.code !== Code.Unknown)) && pidOf() === pids;
          }),
          { numRuns: perTarget, seed: Number(process.env.STOWAGE_TRIAL_SEED ?? "20261111"), endOnFailure: true },
        ).then(
          () => undefined,
          (error: unknown) => error,
        );
        failure ??= failed;
      } finally {
        await host.close();
      }
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const total = tallies.reduce((sum, { tally }) => sum + tally.calls, 0);
    const summary = tallies
      .map(({ target, tally }) => `${target}: ${String(tally.calls)} calls, ${String(tally.ok)} ok, typed errors ${[...tally.byCode].sort((a, b) => b[1] - a[1]).map(([code, count]) => `${code} ${String(count)}`).join(", ")}`)
      .join("; ");
    const bad = tallies.flatMap(({ tally }) => [...tally.untyped, ...tally.internal, ...tally.crashes, ...tally.hangs]);
    recordTrial({
      trial: "random calls through the host (fast-check; the SDK's memory fixture and plugin-local, objects and blocks)",
      runs: total,
      result: `${summary}; untyped ${String(tallies.reduce((s, x) => s + x.tally.untyped.length, 0))}, INTERNAL ${String(tallies.reduce((s, x) => s + x.tally.internal.length, 0))}, plugin crashes ${String(tallies.reduce((s, x) => s + x.tally.crashes.length, 0))}, hangs ${String(tallies.reduce((s, x) => s + x.tally.hangs.length, 0))}; ${seconds} s`,
    });
    expect(bad).toEqual([]);
    if (failure !== undefined) throw failure instanceof Error ? failure : new Error(JSON.stringify(failure));
  }, 600_000);
});
