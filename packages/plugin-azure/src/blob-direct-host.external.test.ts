import { Code, Reason } from "@stowage/sdk";
import { PluginHost, nodePluginCommand, type TransferEvent } from "@stowage/sdk/host";
import { rejection, sha256Hex } from "@stowage/sdk/testing";
import { createHash } from "node:crypto";
import { buffer } from "node:stream/consumers";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blobExists, bytes, chunks, startAzuriteFixture, type AzuriteFixture } from "../test/support/blob-fixture.js";

// Direct transfer end to end (contract 5.8): the PluginHost moves the bodies to and from Azurite
// with the requests stowage-plugin-azure signs; its onTransfer events tell which path each body
// took. The process-level tests run the built executable: build first.
const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const MiB = 1024 * 1024;
const CONTAINER = "direct-host";

let azurite: AzuriteFixture;
let host: PluginHost;
let config: Record<string, string>;
const events: TransferEvent[] = [];

beforeAll(async () => {
  azurite = await startAzuriteFixture([CONTAINER]);
  config = { ...azurite.config, blockSize: "2MiB" };
  host = new PluginHost({ plugins: [nodePluginCommand(MAIN)], onTransfer: (event) => events.push(event), directTransfer: { readPartSize: 3 * MiB, minPutSize: 0 } });
  await host.start();
}, 60_000);

afterAll(async () => {
  await host.close();
  await azurite.stop();
});

function lastEvents(count: number): TransferEvent[] {
  return events.slice(-count);
}

describe("direct transfer through the PluginHost against Azurite", () => {
  it("announces DIRECT_TRANSFER", () => {
    const azure = host.plugins().find((p) => p.descriptor.kind === "object-store" && p.descriptor.name === "stowage.io/azure");
    expect(azure?.descriptor.capabilities).toContain("DIRECT_TRANSFER");
  });

  it("puts and gets empty, one-part and multi-part bodies directly, whole and ranged, with content type and metadata", async () => {
    const store = host.objectStore("stowage.io/azure");
    await store.init(config);
    for (const size of [0, 3000, 2 * MiB, 9 * MiB + 5]) {
      const data = bytes(size);
      const key = `direct/${String(size)}`;
      const sha256 = createHash("sha256").update(data).digest();
      const put = await store.putObject({ bucket: CONTAINER, key, body: chunks(data, 256 * 1024 + 3), size, sha256, contentType: "application/x-tar", metadata: { "backup-name": "direct" } });
      expect(put.size).toBe(size);
      expect(Buffer.from(put.sha256 ?? []).equals(sha256)).toBe(true);
      const got = await store.getObject({ bucket: CONTAINER, key });
      expect(got).toMatchObject({ contentLength: size, offset: 0, object: { size, etag: put.etag, contentType: "application/x-tar", metadata: { "backup-name": "direct" } } });
      expect(sha256Hex(await buffer(got.body))).toBe(sha256Hex(data));
      // Neither body passed through the plugin process.
      expect(lastEvents(2)).toEqual([
        { operation: "put", plugin: "stowage.io/azure", path: "direct" },
        { operation: "get", plugin: "stowage.io/azure", path: "direct" },
      ]);
      const blocks = (await azurite.oob.getContainerClient(CONTAINER).getBlockBlobClient(key).getBlockList("committed")).committedBlocks ?? [];
      expect(blocks.length).toBe(size > 2 * MiB ? Math.ceil(size / (2 * MiB)) : 0);
      if (size > 10) {
        const length = Math.min(size - 7, 7 * MiB);
        const ranged = await store.getObject({ bucket: CONTAINER, key, range: { offset: 7, length } });
        expect([ranged.contentLength, ranged.offset, ranged.object.size]).toEqual([length, 7, size]);
        expect(sha256Hex(await buffer(ranged.body))).toBe(sha256Hex(data.subarray(7, 7 + length)));
        expect(lastEvents(1)[0]?.path).toBe("direct");
      }
    }
  }, 60_000);

  it("fails as PutObject and GetObject would, storing nothing", async () => {
    const store = host.objectStore("stowage.io/azure");
    await store.init(config);
    expect((await rejection(store.getObject({ bucket: CONTAINER, key: "missing" }))).reason).toBe(Reason.ObjectNotFound);
    expect((await rejection(store.getObject({ bucket: "no-such-container", key: "k" }))).reason).toBe(Reason.BucketNotFound);
    expect((await rejection(store.putObject({ bucket: "no-such-container", key: "k", body: chunks(bytes(10)), size: 10 }))).reason).toBe(Reason.BucketNotFound);
    const data = bytes(5 * MiB);
    const wrongSha = await rejection(store.putObject({ bucket: CONTAINER, key: "bad/sha", body: chunks(data), size: data.length, sha256: new Uint8Array(32) }));
    expect([wrongSha.code, wrongSha.reason]).toEqual([Code.DataLoss, Reason.IntegrityMismatch]);
    const short = await rejection(store.putObject({ bucket: CONTAINER, key: "bad/short", body: chunks(data), size: data.length + 1 }));
    expect(short.reason).toBe(Reason.IntegrityMismatch);
    const long = await rejection(store.putObject({ bucket: CONTAINER, key: "bad/long", body: chunks(data), size: data.length - 1 }));
    expect(long.reason).toBe(Reason.IntegrityMismatch);
    const small = await rejection(store.putObject({ bucket: CONTAINER, key: "bad/small", body: chunks(data.subarray(0, 10)), size: 10, sha256: new Uint8Array(32) }));
    expect(small.reason).toBe(Reason.IntegrityMismatch);
    for (const key of ["bad/sha", "bad/short", "bad/long", "bad/small"]) expect(await blobExists(azurite.oob, CONTAINER, key)).toBe(false);
    await store.putObject({ bucket: CONTAINER, key: "ten", body: chunks(data.subarray(0, 10)), size: 10 });
    expect((await rejection(store.getObject({ bucket: CONTAINER, key: "ten", range: { offset: 11 } }))).reason).toBe(Reason.InvalidRange);
  }, 60_000);

  it("leaves nothing visible when the caller cancels mid-put", async () => {
    const store = host.objectStore("stowage.io/azure");
    await store.init(config);
    const controller = new AbortController();
    async function* slow(): AsyncGenerator<Uint8Array> {
      yield bytes(5 * MiB);
      controller.abort();
      yield bytes(MiB);
    }
    const error = await rejection(store.putObject({ bucket: CONTAINER, key: "cancelled", body: slow(), size: 6 * MiB }, { signal: controller.signal }));
    expect(error.code).toBe(Code.Canceled);
    expect(await blobExists(azurite.oob, CONTAINER, "cancelled")).toBe(false);
  }, 60_000);

  it("sends the body through the plugin when the configuration sets directTransfer: false, or the size is unknown", async () => {
    const declining = host.objectStore("stowage.io/azure", { instance: "declining" });
    await declining.init({ ...config, directTransfer: "false" });
    const data = bytes(3 * MiB);
    await declining.putObject({ bucket: CONTAINER, key: "declined", body: chunks(data), size: data.length });
    expect(sha256Hex(await buffer((await declining.getObject({ bucket: CONTAINER, key: "declined" })).body))).toBe(sha256Hex(data));
    expect(lastEvents(2).map((e) => [e.path, e.fallback])).toEqual([
      ["data-channel", "the plugin declined"],
      ["data-channel", "the plugin declined"],
    ]);
    const direct = host.objectStore("stowage.io/azure");
    await direct.init(config);
    await direct.putObject({ bucket: CONTAINER, key: "unsized", body: chunks(data) });
    expect(lastEvents(1)[0]).toEqual({ operation: "put", plugin: "stowage.io/azure", path: "data-channel" });
  }, 60_000);
});

describe("a direct read of a blob replaced mid-read", () => {
  let small: PluginHost;

  beforeAll(async () => {
    // Small ranges, one at a time: most of the body is read after the blob was replaced.
    small = new PluginHost({ plugins: [nodePluginCommand(MAIN)], directTransfer: { readPartSize: 64 * 1024, concurrency: 1, minPutSize: 0 } });
    await small.start();
  }, 60_000);

  afterAll(async () => {
    await small.close();
  });

  it("fails with ABORTED (the plan's if-match gets 412) instead of mixing versions", async () => {
    const store = small.objectStore("stowage.io/azure");
    await store.init(config);
    const first = bytes(8 * MiB);
    await store.putObject({ bucket: CONTAINER, key: "replaced", body: chunks(first), size: first.length });
    const got = await store.getObject({ bucket: CONTAINER, key: "replaced" });
    await azurite.oob.getContainerClient(CONTAINER).getBlockBlobClient("replaced").upload(Buffer.from("second version"), 14);
    const error = await rejection(buffer(got.body));
    expect(error.code).toBe(Code.Aborted);
  }, 60_000);
});
