/**
 * fake-gcs-server frozen with SIGSTOP (sockets open, nothing answered) mid-transfer, through a real
 * PluginHost and the built plugin process: every call ends within the configured timeouts with
 * UNAVAILABLE/BACKEND_UNAVAILABLE, and a put that failed leaves no object. The bodies go through the
 * plugin (the host's direct transfer is off), whose requestTimeout and idleTimeout are under test;
 * the last case reads directly, bounded by the host's streamIdleTimeoutMs instead.
 */
import { Code, Reason, StowageError } from "@stowage/sdk";
import { PluginHost, nodePluginCommand, type HostObjectStore } from "@stowage/sdk/host";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { bytes, oobMetadata, startGcsFixture, type GcsFixture } from "../test/support/gcs.js";

const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const MiB = 1024 * 1024;
const BUCKET = "stalls";
/** A hang guard only: every call must end long before it. */
const HANG_GUARD_MS = 90_000;

async function failure(promise: Promise<unknown>): Promise<StowageError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(StowageError);
    return error as StowageError;
  }
  throw new Error("expected the call to fail");
}

describe("stowage-plugin-gcp (Cloud Storage) through the PluginHost when fake-gcs-server stalls", () => {
  let fx: GcsFixture;
  let host: PluginHost;
  let store: HostObjectStore;

  beforeAll(async () => {
    fx = await startGcsFixture();
    await fx.createBucket(BUCKET);
    host = new PluginHost({ plugins: [nodePluginCommand(MAIN)], directTransfer: false });
    await host.start();
    store = host.objectStore("stowage.io/gcp");
    await store.init({ ...fx.config, chunkSize: "1MiB", requestTimeoutSeconds: "4", idleTimeoutSeconds: "2" });
  }, 60_000);

  afterEach(() => {
    fx.server.resume();
  });

  afterAll(async () => {
    await host.close();
    await fx.stop();
  });

  it("a put into a frozen server fails with UNAVAILABLE/BACKEND_UNAVAILABLE and leaves no object", async () => {
    async function* body(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 24; i++) {
        if (i === 6) fx.server.pause();
        yield bytes(MiB);
      }
    }
    const error = await failure(store.putObject({ bucket: BUCKET, key: "frozen/put.bin", body: body() }, { timeoutMs: HANG_GUARD_MS }));
    expect(error.code).toBe(Code.Unavailable);
    expect(error.reason).toBe(Reason.BackendUnavailable);
    fx.server.resume();
    expect(await oobMetadata(fx.server.endpoint, BUCKET, "frozen/put.bin")).toBeUndefined();
  }, 120_000);

  it("a read from a server frozen mid-body fails with UNAVAILABLE/BACKEND_UNAVAILABLE", async () => {
    const data = bytes(48 * MiB);
    // Written out of band in one request (fake-gcs-server takes its time over many resumable chunks).
    const upload = await fetch(`${fx.server.endpoint}/upload/storage/v1/b/${BUCKET}/o?uploadType=media&name=${encodeURIComponent("frozen/get.bin")}`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: new Uint8Array(data),
    });
    expect(upload.status).toBe(200);
    await upload.body?.cancel();
    const out = await store.getObject({ bucket: BUCKET, key: "frozen/get.bin" }, { timeoutMs: HANG_GUARD_MS });
    let read = 0;
    const reading = (async () => {
      for await (const chunk of out.body as AsyncIterable<Uint8Array>) {
        read += chunk.byteLength;
        if (read >= MiB && read - chunk.byteLength < MiB) fx.server.pause();
      }
    })();
    const error = await failure(reading);
    expect(error.code).toBe(Code.Unavailable);
    expect(error.reason).toBe(Reason.BackendUnavailable);
    expect(read).toBeLessThan(data.length);
  }, 120_000);

  it("a direct read (contract 5.8) from a server frozen mid-body fails with UNAVAILABLE/BACKEND_UNAVAILABLE within the host's idle timeout", async () => {
    const direct = new PluginHost({ plugins: [nodePluginCommand(MAIN)], streamIdleTimeoutMs: 2000, directTransfer: { readPartSize: 4 * MiB, attempts: 2 } });
    await direct.start();
    try {
      const client = direct.objectStore("stowage.io/gcp");
      await client.init({ ...fx.config, chunkSize: "1MiB" });
      const data = bytes(16 * MiB);
      await client.putObject({ bucket: BUCKET, key: "frozen/direct.bin", body: (async function* () { yield data; })(), size: data.length });
      const out = await client.getObject({ bucket: BUCKET, key: "frozen/direct.bin" }, { timeoutMs: HANG_GUARD_MS });
      let read = 0;
      const reading = (async () => {
        for await (const chunk of out.body as AsyncIterable<Uint8Array>) {
          read += chunk.byteLength;
          if (read >= MiB && read - chunk.byteLength < MiB) fx.server.pause();
        }
      })();
      const error = await failure(reading);
      expect([error.code, error.reason]).toEqual([Code.Unavailable, Reason.BackendUnavailable]);
      expect(read).toBeLessThan(data.length);
    } finally {
      fx.server.resume();
      await direct.close();
    }
  }, 120_000);

  it("head, list and delete against a frozen server fail with UNAVAILABLE/BACKEND_UNAVAILABLE", async () => {
    fx.server.pause();
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
});
