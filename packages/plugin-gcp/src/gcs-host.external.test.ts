/**
 * The Cloud Storage ObjectStore through the real host and the built executable, against
 * fake-gcs-server. Run `pnpm run build` first.
 */
import { Code, Reason, StowageError } from "@stowage/sdk";
import { PluginHost, nodePluginCommand } from "@stowage/sdk/host";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytes, chunks, oobDownload, oobMetadata, startGcsFixture, verifyV4, type GcsFixture } from "../test/support/gcs.js";
import { buffer } from "node:stream/consumers";
import { sha256Hex } from "@stowage/sdk/testing";

const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const MiB = 1024 * 1024;

describe("stowage-plugin-gcp (Cloud Storage) through the PluginHost against fake-gcs-server", () => {
  let fx: GcsFixture;
  let host: PluginHost;
  let config: Record<string, string>;

  beforeAll(async () => {
    fx = await startGcsFixture();
    await fx.createBucket("hosted");
    config = { ...fx.config, bucket: "hosted", prefix: "velero", chunkSize: "1MiB", caCert: "ignored" };
    host = new PluginHost({ plugins: [nodePluginCommand(MAIN)] });
    await host.start();
  }, 60_000);

  afterAll(async () => {
    await host.close();
    await fx.stop();
  });

  it("announces the ObjectStore with its capabilities next to the BlockStore", () => {
    const plugins = host.plugins().map((p) => `${p.descriptor.kind} ${p.descriptor.name} ${p.descriptor.capabilities.join(",")}`);
    expect(plugins).toContain("object-store stowage.io/gcp RANGED_READS,SIGNED_GET_URLS,SIGNED_PUT_URLS,OBJECT_METADATA,DIRECT_TRANSFER,OBJECT_LOCK");
    expect(plugins.some((p) => p.startsWith("block-store stowage.io/gcp"))).toBe(true);
  });

  it("rejects unknown keys and bad credentials files across the process boundary", async () => {
    const store = host.objectStore("stowage.io/gcp", { instance: "bad" });
    try {
      await store.init({ ...config, storeEndpiont: "x" });
      expect.unreachable();
    } catch (error) {
      expect((error as StowageError).reason).toBe(Reason.InvalidConfig);
      expect((error as StowageError).metadata.valid_keys).toContain("storeEndpoint");
    }
    try {
      await store.init({ ...config, credentialsFile: "/nonexistent/key.json" });
      expect.unreachable();
    } catch (error) {
      expect((error as StowageError).reason).toBe(Reason.InvalidConfig);
      expect((error as StowageError).message).toContain("credentialsFile");
    }
  });

  it("streams a 12 MiB resumable put and get, with metadata, ranges, signed URLs and idempotent deletes", async () => {
    const store = host.objectStore("stowage.io/gcp");
    await store.init(config);
    const data = bytes(12 * MiB + 5, 21);
    const put = await store.putObject({ bucket: "hosted", key: "via/host.bin", body: chunks(data, MiB), size: data.length, metadata: { via: "host" } });
    expect(put.size).toBe(data.length);
    expect(sha256Hex(await oobDownload(fx.server.endpoint, "hosted", "via/host.bin"))).toBe(sha256Hex(data));
    expect((await oobMetadata(fx.server.endpoint, "hosted", "via/host.bin"))?.metadata).toEqual({ via: "host" });
    const got = await store.getObject({ bucket: "hosted", key: "via/host.bin", range: { offset: MiB, length: MiB } });
    expect(got.object.size).toBe(data.length);
    expect(sha256Hex(await buffer(got.body))).toBe(sha256Hex(data.subarray(MiB, 2 * MiB)));
    const whole = await store.getObject({ bucket: "hosted", key: "via/host.bin" });
    expect(sha256Hex(await buffer(whole.body))).toBe(sha256Hex(data));
    expect(await store.headObject({ bucket: "hosted", key: "nope" })).toBeUndefined();

    const signed = await store.createSignedUrl({ bucket: "hosted", key: "via/host.bin", ttlSeconds: 60 });
    expect(verifyV4(signed.url, "GET", fx.account.publicKey)).toBe(true);

    await store.deleteObject({ bucket: "hosted", key: "via/host.bin" });
    await store.deleteObject({ bucket: "hosted", key: "via/host.bin" });
    expect(await oobMetadata(fx.server.endpoint, "hosted", "via/host.bin")).toBeUndefined();
    try {
      await store.deleteObject({ bucket: "missing-bucket", key: "k" });
      expect.unreachable();
    } catch (error) {
      expect([(error as StowageError).code, (error as StowageError).reason]).toEqual([Code.NotFound, Reason.BucketNotFound]);
    }
  }, 60_000);
});
