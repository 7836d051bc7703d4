import { Code, Reason, StowageError } from "@stowage/sdk";
import { PluginHost, nodePluginCommand } from "@stowage/sdk/host";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytes, chunks, startAzuriteFixture, type AzuriteFixture } from "../test/support/blob-fixture.js";
import { buffer } from "node:stream/consumers";
import { sha256Hex } from "@stowage/sdk/testing";

// The process-level test runs the built executable: build first.
const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const MiB = 1024 * 1024;

describe("stowage-plugin-azure (Blob ObjectStore) through the PluginHost against Azurite", () => {
  let azurite: AzuriteFixture;
  let host: PluginHost;

  beforeAll(async () => {
    azurite = await startAzuriteFixture(["hosted"]);
    host = new PluginHost({ plugins: [nodePluginCommand(MAIN)] });
    await host.start();
  }, 60_000);

  afterAll(async () => {
    await host.close();
    await azurite.stop();
  });

  it("announces the ObjectStore with its capabilities", () => {
    const plugins = host.plugins().map((p) => `${p.descriptor.kind} ${p.descriptor.name} ${p.descriptor.capabilities.join(",")}`);
    expect(plugins).toContain("object-store stowage.io/azure RANGED_READS,SIGNED_GET_URLS,OBJECT_METADATA,DIRECT_TRANSFER,OBJECT_LOCK");
  });

  it("rejects unknown keys across the process boundary, and never echoes the key", async () => {
    const store = host.objectStore("stowage.io/azure", { instance: "bad" });
    try {
      await store.init({ ...azurite.config, bogus: "1" });
      expect.unreachable();
    } catch (error) {
      expect((error as StowageError).reason).toBe(Reason.InvalidConfig);
      expect((error as StowageError).metadata.valid_keys).toContain("storageAccountKeyEnvVar");
      expect((error as StowageError).message).not.toContain(azurite.server.accountKey);
    }
  });

  it("streams a 12 MiB staged put and get, with metadata, ranges and a signed URL", async () => {
    const store = host.objectStore("stowage.io/azure");
    await store.init({ ...azurite.config, blockSizeInBytes: String(2 * MiB) });
    const data = bytes(12 * MiB);
    const put = await store.putObject({ bucket: "hosted", key: "via/host.bin", body: chunks(data), size: data.length, metadata: { "backup-name": "host" } });
    expect(put.size).toBe(data.length);
    const client = azurite.oob.getContainerClient("hosted").getBlockBlobClient("via/host.bin");
    expect(sha256Hex(await client.downloadToBuffer())).toBe(sha256Hex(data));
    expect(((await client.getBlockList("committed")).committedBlocks ?? []).length).toBe(6);
    expect((await store.headObject({ bucket: "hosted", key: "via/host.bin" }))?.metadata).toEqual({ "backup-name": "host" });
    const got = await store.getObject({ bucket: "hosted", key: "via/host.bin", range: { offset: MiB, length: MiB } });
    expect(sha256Hex(await buffer(got.body))).toBe(sha256Hex(data.subarray(MiB, 2 * MiB)));
    const signed = await store.createSignedUrl({ bucket: "hosted", key: "via/host.bin", ttlSeconds: 30 });
    const response = await fetch(signed.url, { headers: { Range: "bytes=0-9" } });
    expect(Buffer.from(await response.arrayBuffer()).equals(data.subarray(0, 10))).toBe(true);
    await store.deleteObject({ bucket: "hosted", key: "via/host.bin" });
    await store.deleteObject({ bucket: "hosted", key: "via/host.bin" });
    expect(await store.headObject({ bucket: "hosted", key: "via/host.bin" })).toBeUndefined();
    try {
      await store.createSignedUrl({ bucket: "hosted", key: "k", method: "PUT", ttlSeconds: 30 });
      expect.unreachable();
    } catch (error) {
      expect((error as StowageError).code).toBe(Code.Unimplemented);
    }
  }, 60_000);
});
