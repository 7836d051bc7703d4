/**
 * Item 0 of the hardening issue: tens of thousands of mixed calls through one PluginHost and one
 * plugin of each kind, under `ulimit -n 1024`, must leave the open descriptors and resident memory
 * of the host and of the plugin flat. Each soak runs in a child process (soak/soak-driver.mjs) so
 * that the limit applies to the host and, inherited, to the plugin.
 */
import { execFile } from "node:child_process";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { DIRECT_TRANSFER_DEFAULTS, nodePluginCommand, type PluginCommand } from "@stowage/sdk/host";
import { startMinio, type MinioServer } from "@stowage/test-servers";
import { Client } from "minio";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// The plugins' own test fixtures: a server, its credentials and the matching plugin config.
import { startAzuriteFixture } from "../../packages/plugin-azure/test/support/blob-fixture.js";
import { startGcsFixture } from "../../packages/plugin-gcp/test/support/gcs.js";
import { recordTrial, repoRoot, runs } from "./support/trials.js";

const DRIVER = fileURLToPath(new URL("../soak/soak-driver.mjs", import.meta.url));
const MiB = 1024 * 1024;
const OPEN_FILE_LIMIT = 1024;
const CONCURRENCY = 32;

interface Sample {
  readonly done: number;
  readonly hostFds: number;
  readonly pluginFds: number;
  readonly hostRss: number;
  readonly hostHeap: number;
  readonly pluginRss: number;
  readonly pluginHeap: number;
}
interface Summary {
  readonly ops: number;
  readonly seconds: number;
  readonly counts: Record<string, number>;
  readonly failures: string[];
  readonly failureCount: number;
  readonly pluginPidBefore: number;
  readonly pluginPidAfter: number;
}

async function soak(name: string, command: PluginCommand, plugin: string, config: Record<string, string>, bucket: string, ops: number, largeBytes = 64 * MiB): Promise<void> {
  // Eight large PUT+GETs spread over the run, never at its very end (the driver runs them in the
  // middle of each eighth), so the last samples measure the steady state, not a transfer's peak.
  const spec = { command, plugin, config, bucket, ops, concurrency: CONCURRENCY, keys: 200, largeEvery: Math.floor(ops / 8), largeBytes, samples: 40 };
  const { stdout } = await promisify(execFile)("prlimit", [`--nofile=${String(OPEN_FILE_LIMIT)}`, process.execPath, "--expose-gc", DRIVER, JSON.stringify(spec)], {
    maxBuffer: 16 * MiB,
    cwd: repoRoot,
  });
  const records = stdout.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as { sample?: Sample; summary?: Summary });
  const samples = records.flatMap((r) => (r.sample === undefined ? [] : [r.sample]));
  const summary = records.find((r) => r.summary !== undefined)?.summary;
  expect(summary).toBeDefined();
  if (summary === undefined) return;
  expect(summary.failures).toEqual([]);
  expect(summary.ops).toBe(ops);
  expect(summary.pluginPidAfter).toBe(summary.pluginPidBefore);
  // Flat: compare the last quarter of the run with the second quarter (the first is warm-up: V8's
  // heap and the allocator's arenas grow to their working size, and the first large transfers
  // happen). In-flight calls hold up to two descriptors each (a data-channel connection on each
  // side), so the bound allows for that, not for growth with the number of calls.
  const quarter = Math.max(1, Math.floor(samples.length / 4));
  const early = samples.slice(quarter, 2 * quarter);
  const late = samples.slice(-quarter);
  const max = (xs: readonly Sample[], f: (s: Sample) => number): number => Math.max(...xs.map(f));
  const mean = (xs: readonly Sample[], f: (s: Sample) => number): number => xs.reduce((a, s) => a + f(s), 0) / xs.length;
  const figures = {
    hostFds: [max(early, (s) => s.hostFds), max(late, (s) => s.hostFds)],
    pluginFds: [max(early, (s) => s.pluginFds), max(late, (s) => s.pluginFds)],
    hostRssMiB: [mean(early, (s) => s.hostRss) / MiB, mean(late, (s) => s.hostRss) / MiB],
    hostHeapMiB: [mean(early, (s) => s.hostHeap) / MiB, mean(late, (s) => s.hostHeap) / MiB],
    pluginRssMiB: [mean(early, (s) => s.pluginRss) / MiB, mean(late, (s) => s.pluginRss) / MiB],
    pluginHeapMiB: [mean(early, (s) => s.pluginHeap) / MiB, mean(late, (s) => s.pluginHeap) / MiB],
  };
  const fmt = ([a, b]: number[]) => `${(a ?? 0).toFixed(0)}→${(b ?? 0).toFixed(0)}`;
  recordTrial({
    trial: `soak: ${name}, ${String(CONCURRENCY)} in flight, ulimit -n ${String(OPEN_FILE_LIMIT)}`,
    runs: ops,
    result: `0 failures (${String(summary.counts.notFound ?? 0)} expected NOT_FOUND), no relaunch, ${(ops / summary.seconds).toFixed(0)} calls/s; fds host ${fmt(figures.hostFds)}, plugin ${fmt(figures.pluginFds)}; RSS MiB host ${fmt(figures.hostRssMiB)}, plugin ${fmt(figures.pluginRssMiB)}; heap after GC MiB host ${fmt(figures.hostHeapMiB)}, plugin ${fmt(figures.pluginHeapMiB)}`,
  });
  expect(figures.hostFds[1]).toBeLessThanOrEqual((figures.hostFds[0] ?? 0) + 2 * CONCURRENCY);
  expect(figures.pluginFds[1]).toBeLessThanOrEqual((figures.pluginFds[0] ?? 0) + 2 * CONCURRENCY);
  // Memory, sampled after a full collection in both processes: the allocator and the large
  // transfers move RSS by some MiB either way, the live heap by less; a leak of a few KiB per call
  // (a socket's buffers, a listener) grows both by tens of MiB over the run. The host's RSS may also
  // keep what the allocator held for one direct put's part buffers (partMemory) after they were
  // freed: its live heap, checked below, is what shows a leak.
  const partMemoryMiB = DIRECT_TRANSFER_DEFAULTS.partMemory / (1024 * 1024);
  expect(figures.hostRssMiB[1]).toBeLessThanOrEqual((figures.hostRssMiB[0] ?? 0) * 1.15 + 16 + partMemoryMiB);
  expect(figures.pluginRssMiB[1]).toBeLessThanOrEqual((figures.pluginRssMiB[0] ?? 0) * 1.15 + 16);
  expect(figures.hostHeapMiB[1]).toBeLessThanOrEqual((figures.hostHeapMiB[0] ?? 0) * 1.1 + 4);
  expect(figures.pluginHeapMiB[1]).toBeLessThanOrEqual((figures.pluginHeapMiB[0] ?? 0) * 1.1 + 4);
}

const pluginMain = (pkg: string): string => join(repoRoot, "packages", pkg, "dist", "main.js");

describe("soak: descriptors and memory stay flat under ulimit -n 1024", () => {
  let dir: string;
  let minio: MinioServer;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "stowage-soak-"));
    minio = await startMinio();
    const oob = new Client({ endPoint: "127.0.0.1", port: Number(new URL(minio.endpoint).port), useSSL: false, accessKey: minio.accessKey, secretKey: minio.secretKey });
    await oob.makeBucket("soak", minio.region);
  });

  afterAll(async () => {
    await minio.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("stowage.io/local", async () => {
    const root = join(dir, "local");
    await mkdir(join(root, "soak"), { recursive: true });
    await soak("plugin-local", nodePluginCommand(pluginMain("plugin-local")), "stowage.io/local", { root }, "soak", runs(20_000));
  });

  it("stowage.io/aws against MinIO", async () => {
    const command = nodePluginCommand(pluginMain("plugin-aws"), { env: { AWS_ACCESS_KEY_ID: minio.accessKey, AWS_SECRET_ACCESS_KEY: minio.secretKey } });
    await soak("plugin-aws → MinIO", command, "stowage.io/aws", { s3Url: minio.endpoint, region: minio.region, s3ForcePathStyle: "true" }, "soak", runs(10_000));
  });

  it("stowage.io/azure against Azurite", async () => {
    // Azurite keeps blobs in memory; the large overwrites need more than its default 512 MB of extents.
    const azurite = await startAzuriteFixture(["soak"], { extentMemoryLimitMb: 2048 });
    try {
      // Azurite and fake-gcs-server spend far more CPU per byte than the plugins: smaller runs keep CI's time bounded.
      await soak("plugin-azure → Azurite", nodePluginCommand(pluginMain("plugin-azure")), "stowage.io/azure", azurite.config, "soak", runs(5_000), 16 * MiB);
    } finally {
      await azurite.stop();
    }
  });

  it("stowage.io/gcp against fake-gcs-server", async () => {
    const gcs = await startGcsFixture();
    try {
      await gcs.createBucket("soak");
      await soak("plugin-gcp → fake-gcs-server", nodePluginCommand(pluginMain("plugin-gcp")), "stowage.io/gcp", gcs.config, "soak", runs(5_000), 16 * MiB);
    } finally {
      await gcs.stop();
    }
  });
});
