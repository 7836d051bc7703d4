/**
 * A store that stops answering or dies mid-transfer, through a real PluginHost and the built plugin
 * process: MinIO frozen with SIGSTOP (sockets open, nothing answered) or killed with SIGKILL. Every
 * call ends within the configured timeouts with UNAVAILABLE/BACKEND_UNAVAILABLE (DEADLINE_EXCEEDED
 * only when the caller's own deadline is the shorter), and no multipart upload stays open once
 * MinIO is back.
 */
import { Code, Reason, StowageError } from "@stowage/sdk";
import { PluginHost, nodePluginCommand, type HostObjectStore } from "@stowage/sdk/host";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { bytes, chunks, exists, incompleteUploads, startMinioFixture, type MinioFixture } from "../test/support/minio.js";
import { buffer } from "node:stream/consumers";
import { sha256Hex } from "@stowage/sdk/testing";

// The process-level test runs the built executable: `pnpm run build` first.
const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const MiB = 1024 * 1024;
const BUCKET = "faults";
/** A hang guard only: every call must end long before it. */
const HANG_GUARD_MS = 90_000;
/** Short timeouts, so a stalled MinIO is noticed within seconds. */
const TIMEOUTS = { connectTimeoutSeconds: "2", requestTimeoutSeconds: "4", idleTimeoutSeconds: "2" };

/** Polls `check` until it holds (a generous bound; never a timing assertion). */
async function eventually(check: () => Promise<boolean>, boundMs = 60_000): Promise<void> {
  const end = Date.now() + boundMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(250);
  }
}

async function failure(promise: Promise<unknown>): Promise<StowageError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(StowageError);
    return error as StowageError;
  }
  throw new Error("expected the call to fail");
}

/** A body of `total` MiB that calls `fault` once `after` MiB have been handed out. */
async function* faultingBody(totalMiB: number, afterMiB: number, fault: () => void | Promise<void>): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < totalMiB; i++) {
    if (i === afterMiB) await fault();
    yield bytes(MiB);
  }
}

describe("stowage-plugin-aws through the PluginHost when MinIO stalls or dies", () => {
  let minio: MinioFixture;
  let host: PluginHost;
  let dir: string;
  let config: Record<string, string>;
  let store: HostObjectStore;

  beforeAll(async () => {
    minio = await startMinioFixture();
    await minio.oob.makeBucket(BUCKET, minio.server.region);
    dir = await mkdtemp(join(tmpdir(), "stowage-aws-faults-"));
    const file = join(dir, "cloud");
    await writeFile(file, `[default]\naws_access_key_id=${minio.server.accessKey}\naws_secret_access_key=${minio.server.secretKey}\n`);
    config = { ...minio.config, credentialsFile: file, partSize: "5MiB", uploadConcurrency: "2", ...TIMEOUTS };
    // The plugin's own handling of a store that stalls or dies: bodies go through it. The host's
    // handling of the same faults on direct transfers is in direct-host.external.test.ts.
    host = new PluginHost({ plugins: [nodePluginCommand(MAIN)], directTransfer: false });
    await host.start();
    store = host.objectStore("stowage.io/aws");
    await store.init(config);
  }, 60_000);

  afterEach(() => {
    // A failed test must not leave MinIO frozen for the next one.
    minio.server.resume();
  });

  afterAll(async () => {
    await host.close();
    await minio.server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("a put into a frozen MinIO fails with UNAVAILABLE/BACKEND_UNAVAILABLE, and its multipart upload is aborted once MinIO runs again", async () => {
    const body = faultingBody(40, 12, () => {
      minio.server.pause();
    });
    const error = await failure(store.putObject({ bucket: BUCKET, key: "frozen/put.bin", body }, { timeoutMs: HANG_GUARD_MS }));
    expect(error.code).toBe(Code.Unavailable);
    expect(error.reason).toBe(Reason.BackendUnavailable);
    minio.server.resume();
    await eventually(async () => (await incompleteUploads(minio.oob, BUCKET, "frozen/put.bin")).length === 0);
    expect(await exists(minio.oob, BUCKET, "frozen/put.bin")).toBe(false);
  }, 120_000);

  it("a read from MinIO frozen mid-body fails with UNAVAILABLE/BACKEND_UNAVAILABLE", async () => {
    const data = bytes(48 * MiB);
    await store.putObject({ bucket: BUCKET, key: "frozen/get.bin", body: chunks(data), size: data.length });
    const out = await store.getObject({ bucket: BUCKET, key: "frozen/get.bin" }, { timeoutMs: HANG_GUARD_MS });
    let read = 0;
    const reading = (async () => {
      for await (const chunk of out.body as AsyncIterable<Uint8Array>) {
        read += chunk.byteLength;
        if (read >= MiB && read - chunk.byteLength < MiB) minio.server.pause();
      }
    })();
    const error = await failure(reading);
    expect(error.code).toBe(Code.Unavailable);
    expect(error.reason).toBe(Reason.BackendUnavailable);
    expect(read).toBeLessThan(data.length);
  }, 120_000);

  it("head, list and delete against a frozen MinIO fail with UNAVAILABLE/BACKEND_UNAVAILABLE", async () => {
    minio.server.pause();
    for (const call of [
      () => store.headObject({ bucket: BUCKET, key: "frozen/head" }, { timeoutMs: HANG_GUARD_MS }),
      () => store.deleteObject({ bucket: BUCKET, key: "frozen/head" }, { timeoutMs: HANG_GUARD_MS }),
      async () => {
        for await (const page of store.listObjects({ bucket: BUCKET }, { timeoutMs: HANG_GUARD_MS })) expect(page).toBeDefined();
      },
    ]) {
      const error = await failure(call());
      expect(error.code).toBe(Code.Unavailable);
      expect(error.reason).toBe(Reason.BackendUnavailable);
    }
  }, 120_000);

  it("a caller deadline shorter than the timeouts ends the call with DEADLINE_EXCEEDED", async () => {
    const patient = host.objectStore("stowage.io/aws", { instance: "patient" });
    await patient.init({ ...config, requestTimeoutSeconds: "600", idleTimeoutSeconds: "600" });
    minio.server.pause();
    const error = await failure(patient.headObject({ bucket: BUCKET, key: "frozen/deadline" }, { timeoutMs: 1500 }));
    // The host ends the call at its deadline (its status carries no reason), the plugin at the same moment.
    expect(error.code).toBe(Code.DeadlineExceeded);
  }, 60_000);

  it("a put into a MinIO killed mid-way fails with UNAVAILABLE/BACKEND_UNAVAILABLE every time, and leaves no upload once MinIO is back", async () => {
    for (let run = 0; run < 3; run++) {
      const key = `killed/put-${String(run)}.bin`;
      const body = faultingBody(40, 12, () => minio.server.kill());
      const error = await failure(store.putObject({ bucket: BUCKET, key, body }, { timeoutMs: HANG_GUARD_MS }));
      expect({ code: error.code, reason: error.reason }).toEqual({ code: Code.Unavailable, reason: Reason.BackendUnavailable });
      await minio.server.restart();
      // The upload survived the crash; the plugin aborts it in the background once MinIO answers.
      await eventually(async () => (await incompleteUploads(minio.oob, BUCKET, key)).length === 0);
      expect(await exists(minio.oob, BUCKET, key)).toBe(false);
    }
    // MinIO is back and the plugin works again.
    const data = bytes(6 * MiB);
    await store.putObject({ bucket: BUCKET, key: "killed/after.bin", body: chunks(data), size: data.length });
    expect(sha256Hex(await buffer(await minio.oob.getObject(BUCKET, "killed/after.bin")))).toBe(sha256Hex(data));
  }, 240_000);
});
