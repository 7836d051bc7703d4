/// <reference lib="dom" />
// mockttp's types (through @peculiar/x509) use WebCrypto DOM types.
/**
 * Fault tests: a mockttp reverse proxy between the store and Azurite answers some requests with
 * 503s, resets connections, or never answers; everything else is forwarded to Azurite.
 */
import { Code, Reason, StowageError } from "@stowage/sdk";
import { getLocal, type Mockttp } from "mockttp";
import { PassThrough } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { blobExists, bytes, chunks, startAzuriteFixture, type AzuriteFixture } from "../../test/support/blob-fixture.js";
import { BlobObjectStore } from "./blob-object-store.js";
import { rejection, sha256Hex } from "@stowage/sdk/testing";
import { buffer } from "node:stream/consumers";

const MiB = 1024 * 1024;
const CONTAINER = "faults";
let azurite: AzuriteFixture;
let proxy: Mockttp;
let store: BlobObjectStore;
let hangStore: BlobObjectStore;

beforeAll(async () => {
  azurite = await startAzuriteFixture([CONTAINER]);
  proxy = getLocal();
  await proxy.start();
  const config = {
    ...azurite.config,
    storageAccountURI: `http://127.0.0.1:${String(proxy.port)}/${azurite.server.accountName}`,
    blockSizeInBytes: String(MiB),
    uploadConcurrency: "2",
    maxRetries: "3",
  };
  store = new BlobObjectStore({ configure: { retryDelayMs: 20 } });
  await store.init({ ...config, requestTimeoutSeconds: "30" });
  // A short deadline for the tests of servers that stop answering.
  hangStore = new BlobObjectStore({ configure: { retryDelayMs: 20 } });
  await hangStore.init({ ...config, requestTimeoutSeconds: "2", idleTimeoutSeconds: "2" });
}, 60_000);

afterEach(async () => {
  proxy.reset();
});

afterAll(async () => {
  await proxy.stop();
  await azurite.stop();
});

/** Forwards everything no other rule matched to Azurite. */
async function forwardTheRest(): Promise<void> {
  await proxy.forUnmatchedRequest().thenForwardTo(new URL(azurite.server.blobEndpoint).origin);
}

describe("through a fault proxy", () => {
  it("stages at most uploadConcurrency blocks at once and reads the body at most blockSize × (uploadConcurrency + 1) ahead", async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    let stagedBytes = 0;
    let pulled = 0;
    let maxAhead = 0;
    await proxy
      .forPut(/\/faults\/bounded/)
      .matching((request) => request.url.includes("comp=block") && !request.url.includes("comp=blocklist"))
      .thenPassThrough({
        beforeRequest: (request) => {
          inFlight += 1;
          maxInFlight = Math.max(maxInFlight, inFlight);
          const url = new URL(request.url);
          return { url: `${new URL(azurite.server.blobEndpoint).origin}${url.pathname}${url.search}` };
        },
        beforeResponse: async (_response, request) => {
          // Slow answers, so an unbounded reader would run far ahead of the staged blocks.
          await new Promise((resolve) => setTimeout(resolve, 200));
          stagedBytes += Number(request.headers["content-length"] ?? 0);
          inFlight -= 1;
        },
      });
    await forwardTheRest();
    const data = bytes(12 * MiB);
    async function* body(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < data.length; i += 64 * 1024) {
        pulled += 64 * 1024;
        maxAhead = Math.max(maxAhead, pulled - stagedBytes);
        yield data.subarray(i, i + 64 * 1024);
      }
    }
    await store.putObject({ bucket: CONTAINER, key: "bounded", body: body(), size: data.length });
    expect(maxInFlight).toBe(2);
    expect(maxAhead).toBeLessThanOrEqual(MiB * (2 + 1) + 64 * 1024);
    expect(sha256Hex(await azurite.oob.getContainerClient(CONTAINER).getBlobClient("bounded").downloadToBuffer())).toBe(sha256Hex(data));
  }, 30_000);

  it("retries 503 answers and then succeeds", async () => {
    let answered = 0;
    const flaky = await proxy
      .forPut(/\/faults\/flaky/)
      .matching(() => {
        answered += 1;
        return true;
      })
      .times(2)
      .thenReply(503, "<?xml version=\"1.0\"?><Error><Code>ServerBusy</Code><Message>busy</Message></Error>", {
      "content-type": "application/xml",
      "x-ms-error-code": "ServerBusy",
    });
    await forwardTheRest();
    const data = bytes(3 * MiB);
    await store.putObject({ bucket: CONTAINER, key: "flaky", body: chunks(data), size: data.length });
    // Both 503s were served (the rule is used up) and the put still succeeded.
    expect(await flaky.isPending()).toBe(false);
    expect(answered).toBeGreaterThanOrEqual(2);
    expect(sha256Hex(await buffer((await store.getObject({ bucket: CONTAINER, key: "flaky" })).body))).toBe(sha256Hex(data));
  }, 30_000);

  it("surfaces 503s that outlast the retries as UNAVAILABLE", async () => {
    const busy = await proxy.forHead(/\/faults\/busy/).always().thenReply(503, "", { "x-ms-error-code": "ServerBusy" });
    await forwardTheRest();
    const error = await rejection(store.headObject({ bucket: CONTAINER, key: "busy" }));
    expect(error.code).toBe(Code.Unavailable);
    expect(error.reason).toBe(Reason.BackendUnavailable);
    expect((await busy.getSeenRequests()).length).toBe(4);
  }, 30_000);

  it("commits nothing when block uploads keep being reset, and says so", async () => {
    const reset = await proxy
      .forPut(/\/faults\/reset-me/)
      .matching((request) => request.url.includes("comp=block") && !request.url.includes("comp=blocklist"))
      .always()
      .thenResetConnection();
    await forwardTheRest();
    const error = await rejection(store.putObject({ bucket: CONTAINER, key: "reset-me", body: chunks(bytes(4 * MiB)) }));
    expect(error.code).toBe(Code.Unavailable);
    expect((await reset.getSeenRequests()).length).toBeGreaterThanOrEqual(4);
    expect(await blobExists(azurite.oob, CONTAINER, "reset-me")).toBe(false);
  }, 30_000);

  it("survives one reset mid-upload", async () => {
    await proxy
      .forPut(/\/faults\/reset-once/)
      .matching((request) => request.url.includes("comp=block") && !request.url.includes("comp=blocklist"))
      .once()
      .thenResetConnection();
    await forwardTheRest();
    const data = bytes(4 * MiB + 7);
    await store.putObject({ bucket: CONTAINER, key: "reset-once", body: chunks(data, 100_000) });
    expect(sha256Hex(await azurite.oob.getContainerClient(CONTAINER).getBlobClient("reset-once").downloadToBuffer())).toBe(sha256Hex(data));
  }, 30_000);

  it("a body cut short by the server fails the read with UNAVAILABLE, not CANCELLED", async () => {
    await forwardTheRest();
    await store.putObject({ bucket: CONTAINER, key: "cut-short", body: chunks(bytes(64 * 1024)) });
    const head = await azurite.oob.getContainerClient(CONTAINER).getBlobClient("cut-short").getProperties();
    // Headers of the real blob, but only 1000 of its 65,536 bytes, then the connection is cut.
    const partial = new PassThrough();
    partial.write(Buffer.alloc(1000));
    const cut = await proxy.forGet(/\/faults\/cut-short/).once().thenStream(200, partial, {
      "content-length": "65536",
      "content-type": "application/octet-stream",
      etag: head.etag ?? "",
      "last-modified": head.lastModified?.toUTCString() ?? "",
      "x-ms-blob-type": "BlockBlob",
    });
    partial.on("error", () => undefined);
    setTimeout(() => partial.destroy(new Error("cut by the test")), 300);
    const out = await store.getObject({ bucket: CONTAINER, key: "cut-short" });
    try {
      await buffer(out.body);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(StowageError);
      expect((error as StowageError).code).toBe(Code.Unavailable);
    }
    expect((await cut.getSeenRequests()).length).toBeGreaterThanOrEqual(1);
  }, 30_000);

  it("a body that stalls mid-way ends with UNAVAILABLE/BACKEND_UNAVAILABLE; a reader that pauses does not", async () => {
    await forwardTheRest();
    const data = bytes(256 * 1024);
    await store.putObject({ bucket: CONTAINER, key: "stalls", body: chunks(data) });
    const head = await azurite.oob.getContainerClient(CONTAINER).getBlobClient("stalls").getProperties();
    const stalled = new PassThrough();
    stalled.write(Buffer.alloc(1000));
    await proxy.forGet(/\/faults\/stalls/).once().thenStream(200, stalled, {
      "content-length": String(data.length),
      etag: head.etag ?? "",
      "last-modified": head.lastModified?.toUTCString() ?? "",
      "x-ms-blob-type": "BlockBlob",
    });
    const out = await hangStore.getObject({ bucket: CONTAINER, key: "stalls" });
    try {
      await buffer(out.body);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(StowageError);
      expect((error as StowageError).code).toBe(Code.Unavailable);
      expect((error as StowageError).reason).toBe(Reason.BackendUnavailable);
    } finally {
      stalled.destroy();
    }
    // The rule was used once: now the read goes to Azurite. A reader that waits longer than
    // idleTimeoutSeconds (2 s) before reading still gets the whole body.
    const paused = await hangStore.getObject({ bucket: CONTAINER, key: "stalls" });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(sha256Hex(await buffer(paused.body))).toBe(sha256Hex(data));
  }, 30_000);

  it("ends calls to a server that never answers with UNAVAILABLE/BACKEND_UNAVAILABLE", async () => {
    await proxy.forAnyRequest().matching((request) => request.url.includes("/faults/hang")).thenTimeout();
    await forwardTheRest();
    for (const call of [
      () => hangStore.headObject({ bucket: CONTAINER, key: "hang" }),
      () => hangStore.getObject({ bucket: CONTAINER, key: "hang" }),
      () => hangStore.deleteObject({ bucket: CONTAINER, key: "hang" }),
      () => hangStore.putObject({ bucket: CONTAINER, key: "hang", body: chunks(bytes(3 * MiB)) }),
    ]) {
      const error = await rejection(call());
      expect(error.code).toBe(Code.Unavailable);
      expect(error.reason).toBe(Reason.BackendUnavailable);
    }
    expect(await blobExists(azurite.oob, CONTAINER, "hang")).toBe(false);
  }, 60_000);

  it("a caller's cancellation ends a hung call as CANCELLED", async () => {
    await proxy.forAnyRequest().matching((request) => request.url.includes("/faults/hang")).thenTimeout();
    await forwardTheRest();
    const controller = new AbortController();
    const pending = hangStore.headObject({ bucket: CONTAINER, key: "hang" }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 200);
    const error = await rejection(pending);
    expect(error.code).toBe(Code.Canceled);
  }, 30_000);
});
