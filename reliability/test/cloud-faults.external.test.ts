/**
 * Trials of cloud stores that die or stall under the cloud plugins, through a real PluginHost and
 * the built plugin executables:
 *
 * - MinIO killed (SIGKILL, then restarted on its data) and stopped (SIGSTOP, then continued) in the
 *   middle of a multipart put through plugin-aws: the same code and reason every time, within the
 *   configured timeouts, and no multipart upload left once MinIO is back;
 * - the Managed Disks and Persistent Disk BlockStores against the Compute doubles with injected
 *   faults mid-snapshot and mid-restore: 429 with Retry-After and 500 (retried: the call succeeds),
 *   and a request that is never answered (a typed UNAVAILABLE/BACKEND_UNAVAILABLE, no hang).
 */
import { Code, Reason, StowageError, type Snapshot } from "@stowage/sdk";
import { PluginHost, nodePluginCommand, type HostBlockStore, type HostObjectStore } from "@stowage/sdk/host";
import { startMinio, type MinioServer } from "@stowage/test-servers";
import { Client } from "minio";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDisk, doubleConfig, startArmComputeDouble, writeCredentialsFile, type ArmComputeDouble } from "../../packages/plugin-azure/test/support/arm-compute-double.js";
import { ComputeDouble } from "../../packages/plugin-gcp/test/support/compute-double.js";
import { recordTrial, runs } from "./support/trials.js";

const executable = (pkg: string): string => fileURLToPath(new URL(`../../packages/${pkg}/dist/main.js`, import.meta.url));
const MiB = 1024 * 1024;
/** A hang guard only: every call must end long before it. */
const HANG_GUARD_MS = 90_000;
/** Short backend timeouts, so a dead or stalled store is noticed within seconds. */
const TIMEOUTS = { connectTimeoutSeconds: "2", requestTimeoutSeconds: "4", idleTimeoutSeconds: "2" };

/** The failure of `promise`, which must fail with a StowageError. */
async function failure(promise: Promise<unknown>): Promise<StowageError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(StowageError);
    return error as StowageError;
  }
  throw new Error("expected the call to fail");
}

/** Polls `check` until it holds, within a generous bound; returns how long it took. */
async function eventually(check: () => Promise<boolean>, boundMs = 90_000): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > boundMs) throw new Error("condition not met in time");
    await sleep(250);
  }
  return Date.now() - started;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

describe("MinIO killed or stopped mid-PUT under plugin-aws", () => {
  let minio: MinioServer;
  let oob: Client;
  let host: PluginHost;
  let store: HostObjectStore;
  let dir: string;
  const BUCKET = "trials";

  beforeAll(async () => {
    minio = await startMinio();
    const url = new URL(minio.endpoint);
    oob = new Client({ endPoint: url.hostname, port: Number(url.port), useSSL: false, accessKey: minio.accessKey, secretKey: minio.secretKey, region: minio.region });
    await oob.makeBucket(BUCKET, minio.region);
    dir = await mkdtemp(join(tmpdir(), "stowage-cloud-trials-"));
    const credentialsFile = join(dir, "cloud");
    await writeFile(credentialsFile, `[default]\naws_access_key_id=${minio.accessKey}\naws_secret_access_key=${minio.secretKey}\n`);
    host = new PluginHost({ plugins: [nodePluginCommand(executable("plugin-aws"))] });
    await host.start();
    store = host.objectStore("stowage.io/aws");
    await store.init({ s3Url: minio.endpoint, region: minio.region, s3ForcePathStyle: "true", credentialsFile, partSize: "5MiB", uploadConcurrency: "2", ...TIMEOUTS });
  }, 120_000);

  afterAll(async () => {
    minio.resume();
    await host.close();
    await minio.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * Uploads begun for `key` and not finished (MinIO lists them by exact key after a restart); -1
   * when one vanished while being listed (the plugin aborted it right then): ask again.
   */
  async function openUploads(key: string): Promise<number> {
    let count = 0;
    try {
      for await (const item of oob.listIncompleteUploads(BUCKET, key, true) as AsyncIterable<{ key: string }>) if (item.key === key) count += 1;
    } catch (error) {
      if ((error as { code?: unknown }).code === "NoSuchUpload") return -1;
      throw error;
    }
    return count;
  }

  /** Puts 40 MiB, calling `fault` after 12 MiB (two 5 MiB parts are out by then). */
  async function faultedPut(key: string, fault: () => Promise<void> | void): Promise<{ error: StowageError; ms: number }> {
    async function* body(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 40; i++) {
        if (i === 12) await fault();
        yield randomBytes(MiB);
      }
    }
    const started = Date.now();
    const error = await failure(store.putObject({ bucket: BUCKET, key, body: body() }, { timeoutMs: HANG_GUARD_MS }));
    return { error, ms: Date.now() - started };
  }

  it("kill MinIO mid-PUT: UNAVAILABLE/BACKEND_UNAVAILABLE every time, no upload left once it is back", async () => {
    const n = runs(3);
    const outcomes = new Set<string>();
    let slowestFailure = 0;
    let slowestCleanup = 0;
    for (let i = 0; i < n; i++) {
      const key = `killed/${String(i)}.bin`;
      const { error, ms } = await faultedPut(key, () => minio.kill());
      outcomes.add(`${String(error.code)}/${error.reason ?? ""}`);
      slowestFailure = Math.max(slowestFailure, ms);
      await minio.restart();
      slowestCleanup = Math.max(slowestCleanup, await eventually(async () => (await openUploads(key)) === 0));
    }
    expect([...outcomes]).toEqual([`${String(Code.Unavailable)}/${Reason.BackendUnavailable}`]);
    recordTrial({
      trial: "kill MinIO mid-PUT (plugin-aws)",
      runs: n,
      result: `always UNAVAILABLE/BACKEND_UNAVAILABLE; put failed within ${seconds(slowestFailure)}; its multipart upload aborted within ${seconds(slowestCleanup)} of MinIO's restart`,
    });
  }, 600_000);

  it("stop MinIO mid-PUT: UNAVAILABLE/BACKEND_UNAVAILABLE within the timeouts, no upload left once it runs again", async () => {
    const n = runs(3);
    const outcomes = new Set<string>();
    let slowestFailure = 0;
    let slowestCleanup = 0;
    for (let i = 0; i < n; i++) {
      const key = `stopped/${String(i)}.bin`;
      const { error, ms } = await faultedPut(key, () => {
        minio.pause();
      });
      outcomes.add(`${String(error.code)}/${error.reason ?? ""}`);
      slowestFailure = Math.max(slowestFailure, ms);
      minio.resume();
      slowestCleanup = Math.max(slowestCleanup, await eventually(async () => (await openUploads(key)) === 0));
    }
    expect([...outcomes]).toEqual([`${String(Code.Unavailable)}/${Reason.BackendUnavailable}`]);
    recordTrial({
      trial: "stop MinIO mid-PUT (plugin-aws)",
      runs: n,
      result: `always UNAVAILABLE/BACKEND_UNAVAILABLE; put failed within ${seconds(slowestFailure)} (requestTimeoutSeconds 4, idleTimeoutSeconds 2); its multipart upload aborted within ${seconds(slowestCleanup)} of MinIO's SIGCONT`,
    });
  }, 600_000);
});

describe("Managed Disks BlockStore against the Microsoft.Compute double with faults", () => {
  let double: ArmComputeDouble;
  let host: PluginHost;
  let store: HostBlockStore;
  let dir: string;

  beforeAll(async () => {
    double = await startArmComputeDouble();
    dir = await mkdtemp(join(tmpdir(), "stowage-cloud-trials-disks-"));
    await createDisk(double, "trial-disk");
    host = new PluginHost({ plugins: [nodePluginCommand(executable("plugin-azure"))] });
    await host.start();
    store = host.blockStore("stowage.io/azure");
    await store.init(doubleConfig(double, await writeCredentialsFile(double, dir), TIMEOUTS));
  }, 120_000);

  afterAll(async () => {
    await host.close();
    await double.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("429 with Retry-After and 500 mid-snapshot and mid-restore are retried; the calls succeed", async () => {
    const n = runs(2);
    let retried = 0;
    for (let i = 0; i < n; i++) {
      // Mid-snapshot: the first poll of the operation is throttled, then the snapshot's PUT fails once.
      const throttled = double.injectFault({ method: "GET", path: /\/DiskOperations\//, status: 429, code: "TooManyRequests", retryAfterSeconds: 1 });
      const failedPut = double.injectFault({ method: "PUT", path: /\/snapshots\//, status: 500, code: "InternalServerError" });
      const snapshot: Snapshot = await store.createSnapshot({ volumeId: "trial-disk" }, { timeoutMs: HANG_GUARD_MS });
      expect(snapshot.state).toBe("ready");
      // Mid-restore: the same faults on the new disk.
      const throttledRestore = double.injectFault({ method: "GET", path: /\/DiskOperations\//, status: 429, code: "TooManyRequests", retryAfterSeconds: 1 });
      const failedRestore = double.injectFault({ method: "PUT", path: /\/disks\/restore-/, status: 500, code: "InternalServerError" });
      const volumeId = await store.createVolumeFromSnapshot({ snapshotId: snapshot.snapshotId, volumeType: "Premium_LRS" }, { timeoutMs: HANG_GUARD_MS });
      expect(volumeId).toMatch(/^restore-/);
      retried += throttled.hits() + failedPut.hits() + throttledRestore.hits() + failedRestore.hits();
      await store.deleteVolume({ volumeId }, { timeoutMs: HANG_GUARD_MS });
      await store.deleteSnapshot(snapshot.snapshotId, { timeoutMs: HANG_GUARD_MS });
    }
    expect(retried).toBe(4 * n);
    recordTrial({ trial: "Managed Disks: 429 (Retry-After) and 500 mid-snapshot and mid-restore", runs: n, result: `all ${String(retried)} injected faults retried; every snapshot and restore succeeded` });
  }, 300_000);

  it("a request never answered mid-snapshot and mid-restore ends the call with UNAVAILABLE/BACKEND_UNAVAILABLE", async () => {
    const n = runs(1);
    let slowest = 0;
    for (let i = 0; i < n; i++) {
      const ready = await store.createSnapshot({ volumeId: "trial-disk" }, { timeoutMs: HANG_GUARD_MS });
      for (const [path, call] of [
        [/\/DiskOperations\//, () => store.createSnapshot({ volumeId: "trial-disk" }, { timeoutMs: HANG_GUARD_MS })],
        [/\/disks\/restore-/, () => store.createVolumeFromSnapshot({ snapshotId: ready.snapshotId, volumeType: "Premium_LRS" }, { timeoutMs: HANG_GUARD_MS })],
      ] as const) {
        const hang = double.injectFault({ path, hang: true, times: 1000 });
        const started = Date.now();
        const error = await failure(call());
        slowest = Math.max(slowest, Date.now() - started);
        expect({ code: error.code, reason: error.reason }).toEqual({ code: Code.Unavailable, reason: Reason.BackendUnavailable });
        // The plugin retried the silent request before giving up.
        expect(hang.hits()).toBeGreaterThan(1);
        double.clearFaults();
      }
      await store.deleteSnapshot(ready.snapshotId, { timeoutMs: HANG_GUARD_MS });
    }
    recordTrial({
      trial: "Managed Disks: a request never answered mid-snapshot and mid-restore",
      runs: n,
      result: `UNAVAILABLE/BACKEND_UNAVAILABLE after the retries, within ${seconds(slowest)} (idleTimeoutSeconds 2); no hang`,
    });
  }, 300_000);
});

describe("Persistent Disk BlockStore against the Compute Engine double with faults", () => {
  const PROJECT = "trial-project";
  const ZONE = "europe-west4-b";
  let double: ComputeDouble;
  let host: PluginHost;
  let store: HostBlockStore;
  let dir: string;

  beforeAll(async () => {
    double = await ComputeDouble.start();
    dir = await mkdtemp(join(tmpdir(), "stowage-cloud-trials-pd-"));
    const credentialsFile = join(dir, "key.json");
    await writeFile(credentialsFile, JSON.stringify(double.serviceAccountKey(PROJECT)));
    await double.insertDisk(PROJECT, { zone: ZONE }, { name: "trial-disk", sizeGb: "5", type: `projects/${PROJECT}/zones/${ZONE}/diskTypes/pd-ssd` });
    host = new PluginHost({ plugins: [nodePluginCommand(executable("plugin-gcp"))] });
    await host.start();
    store = host.blockStore("stowage.io/gcp");
    await store.init({ credentialsFile, computeEndpoint: double.endpoint, requestTimeoutSeconds: "4" });
  }, 120_000);

  afterAll(async () => {
    await host.close();
    await double.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function readySnapshot(): Promise<Snapshot> {
    const snapshot = await store.createSnapshot({ volumeId: "trial-disk", zone: ZONE }, { timeoutMs: HANG_GUARD_MS });
    for (let i = 0; i < 20 && (await store.getSnapshot(snapshot.snapshotId)).state !== "ready"; i++);
    return snapshot;
  }

  it("429 with Retry-After and 500 mid-snapshot and mid-restore are retried; the calls succeed", async () => {
    const n = runs(2);
    let injected = 0;
    for (let i = 0; i < n; i++) {
      // Mid-snapshot: the insert is throttled, then the first look at the new snapshot fails.
      double.failRequests({ method: "POST", path: /^\/global\/snapshots$/, status: 429, reason: "rateLimitExceeded", retryAfterSeconds: 1 });
      double.failRequests({ method: "GET", path: /^\/global\/snapshots\/[^/]+$/, status: 500, reason: "backendError" });
      const snapshot = await readySnapshot();
      expect(double.clearFailures()).toBe(0);
      // Mid-restore: the disk insert is throttled, then waiting for its operation fails.
      double.failRequests({ method: "POST", path: /^\/zones\/[^/]+\/disks$/, status: 429, reason: "rateLimitExceeded", retryAfterSeconds: 1 });
      double.failRequests({ method: "POST", path: /^\/zones\/[^/]+\/operations\/[^/]+\/wait$/, status: 500, reason: "backendError" });
      const volumeId = await store.createVolumeFromSnapshot({ snapshotId: snapshot.snapshotId, zone: ZONE }, { timeoutMs: HANG_GUARD_MS });
      expect(volumeId).not.toBe("");
      expect(double.clearFailures()).toBe(0);
      injected += 4;
      await store.deleteVolume({ volumeId, zone: ZONE }, { timeoutMs: HANG_GUARD_MS });
      await store.deleteSnapshot(snapshot.snapshotId, { timeoutMs: HANG_GUARD_MS });
    }
    recordTrial({ trial: "Persistent Disk: 429 (Retry-After) and 500 mid-snapshot and mid-restore", runs: n, result: `all ${String(injected)} injected faults hit and retried (requestId dedupes the retried inserts); every snapshot and restore succeeded` });
  }, 300_000);

  it("a request never answered mid-snapshot and mid-restore ends the call with UNAVAILABLE/BACKEND_UNAVAILABLE", async () => {
    const n = runs(1);
    let slowest = 0;
    for (let i = 0; i < n; i++) {
      const snapshot = await readySnapshot();
      for (const [path, call] of [
        [/^\/global\/snapshots$/, () => store.createSnapshot({ volumeId: "trial-disk", zone: ZONE }, { timeoutMs: HANG_GUARD_MS })],
        [/^\/zones\/[^/]+\/disks$/, () => store.createVolumeFromSnapshot({ snapshotId: snapshot.snapshotId, zone: ZONE }, { timeoutMs: HANG_GUARD_MS })],
      ] as const) {
        double.failRequests({ method: "POST", path, status: 0, reason: "", hang: true, times: 1000 });
        const started = Date.now();
        const error = await failure(call());
        slowest = Math.max(slowest, Date.now() - started);
        expect({ code: error.code, reason: error.reason }).toEqual({ code: Code.Unavailable, reason: Reason.BackendUnavailable });
        expect(double.clearFailures()).toBeGreaterThan(0);
      }
      await store.deleteSnapshot(snapshot.snapshotId, { timeoutMs: HANG_GUARD_MS });
    }
    recordTrial({
      trial: "Persistent Disk: a request never answered mid-snapshot and mid-restore",
      runs: n,
      result: `UNAVAILABLE/BACKEND_UNAVAILABLE within ${seconds(slowest)} (requestTimeoutSeconds 4); no hang`,
    });
  }, 300_000);
});
