/**
 * Azurite frozen with SIGSTOP (sockets open, nothing answered) mid-transfer, through a real
 * PluginHost and the built plugin process: every call ends within the configured timeouts with
 * UNAVAILABLE/BACKEND_UNAVAILABLE, and a put that failed commits nothing. The plugin's own timeouts
 * are under test, so its bodies go through it (`directTransfer: false`); the last case freezes
 * Azurite under a direct read, which the host's idle timeout ends.
 */
import { Code, Reason, StowageError } from "@stowage/sdk";
import { PluginHost, nodePluginCommand, type HostObjectStore } from "@stowage/sdk/host";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { blobExists, bytes, chunks, startAzuriteFixture, type AzuriteFixture } from "../test/support/blob-fixture.js";

// The process-level test runs the built executable: build first.
const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const MiB = 1024 * 1024;
const CONTAINER = "stalls";
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

describe("stowage-plugin-azure (Blob) through the PluginHost when Azurite stalls", () => {
  let azurite: AzuriteFixture;
  let host: PluginHost;
  let store: HostObjectStore;

  beforeAll(async () => {
    azurite = await startAzuriteFixture([CONTAINER]);
    host = new PluginHost({ plugins: [nodePluginCommand(MAIN)] });
    await host.start();
    store = host.objectStore("stowage.io/azure");
    await store.init({
      ...azurite.config,
      blockSizeInBytes: String(MiB),
      uploadConcurrency: "2",
      maxRetries: "1",
      connectTimeoutSeconds: "2",
      requestTimeoutSeconds: "4",
      idleTimeoutSeconds: "2",
      // The bodies must pass through the plugin, whose timeouts these cases test.
      directTransfer: "false",
    });
  }, 60_000);

  afterEach(() => {
    azurite.server.resume();
  });

  afterAll(async () => {
    await host.close();
    await azurite.stop();
  });

  it("a put into a frozen Azurite fails with UNAVAILABLE/BACKEND_UNAVAILABLE and commits nothing", async () => {
    async function* body(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 24; i++) {
        if (i === 6) azurite.server.pause();
        yield bytes(MiB);
      }
    }
    const error = await failure(store.putObject({ bucket: CONTAINER, key: "frozen/put.bin", body: body() }, { timeoutMs: HANG_GUARD_MS }));
    expect(error.code).toBe(Code.Unavailable);
    expect(error.reason).toBe(Reason.BackendUnavailable);
    azurite.server.resume();
    expect(await blobExists(azurite.oob, CONTAINER, "frozen/put.bin")).toBe(false);
  }, 120_000);

  it("a read from Azurite frozen mid-body fails with UNAVAILABLE/BACKEND_UNAVAILABLE", async () => {
    const data = bytes(48 * MiB);
    await store.putObject({ bucket: CONTAINER, key: "frozen/get.bin", body: chunks(data), size: data.length });
    const out = await store.getObject({ bucket: CONTAINER, key: "frozen/get.bin" }, { timeoutMs: HANG_GUARD_MS });
    let read = 0;
    const reading = (async () => {
      for await (const chunk of out.body as AsyncIterable<Uint8Array>) {
        read += chunk.byteLength;
        if (read >= MiB && read - chunk.byteLength < MiB) azurite.server.pause();
      }
    })();
    const error = await failure(reading);
    expect(error.code).toBe(Code.Unavailable);
    expect(error.reason).toBe(Reason.BackendUnavailable);
    expect(read).toBeLessThan(data.length);
  }, 120_000);

  it("a direct read (contract 5.8) from Azurite frozen mid-body fails with UNAVAILABLE/BACKEND_UNAVAILABLE after the host's idle timeout", async () => {
    const data = bytes(48 * MiB);
    await store.putObject({ bucket: CONTAINER, key: "frozen/direct.bin", body: chunks(data), size: data.length });
    const events: string[] = [];
    const direct = new PluginHost({
      plugins: [nodePluginCommand(MAIN)],
      streamIdleTimeoutMs: 2000,
      directTransfer: { readPartSize: MiB, attempts: 2 },
      onTransfer: (event) => events.push(`${event.operation} ${event.path}`),
    });
    try {
      await direct.start();
      const client = direct.objectStore("stowage.io/azure");
      await client.init({ ...azurite.config, requestTimeoutSeconds: "4" });
      const out = await client.getObject({ bucket: CONTAINER, key: "frozen/direct.bin" }, { timeoutMs: HANG_GUARD_MS });
      let read = 0;
      const reading = (async () => {
        for await (const chunk of out.body as AsyncIterable<Uint8Array>) {
          read += chunk.byteLength;
          if (read >= 8 * MiB && read - chunk.byteLength < 8 * MiB) {
            events.push("paused");
            azurite.server.pause();
          }
        }
      })();
      const error = await failure(reading);
      expect(events).toEqual(["get direct", "paused"]);
      expect(error.code).toBe(Code.Unavailable);
      expect(error.reason).toBe(Reason.BackendUnavailable);
      expect(read).toBeLessThan(data.length);
    } finally {
      azurite.server.resume();
      await direct.close();
    }
  }, 120_000);

  it("head and delete against a frozen Azurite fail with UNAVAILABLE/BACKEND_UNAVAILABLE", async () => {
    azurite.server.pause();
    for (const call of [
      () => store.headObject({ bucket: CONTAINER, key: "frozen/head" }, { timeoutMs: HANG_GUARD_MS }),
      () => store.deleteObject({ bucket: CONTAINER, key: "frozen/head" }, { timeoutMs: HANG_GUARD_MS }),
    ]) {
      const error = await failure(call());
      expect(error.code).toBe(Code.Unavailable);
      expect(error.reason).toBe(Reason.BackendUnavailable);
    }
  }, 120_000);
});
