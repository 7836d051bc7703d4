import { Reason, StowageError } from "@stowage/sdk";
import { PluginHost, nodePluginCommand } from "@stowage/sdk/host";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytes, chunks, incompleteUploads, startMinioFixture, type MinioFixture } from "../test/support/minio.js";
import { buffer } from "node:stream/consumers";
import { sha256Hex } from "@stowage/sdk/testing";

// The process-level test runs the built executable: `pnpm run build` first.
const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const MiB = 1024 * 1024;

describe("stowage-plugin-aws through the PluginHost against MinIO", () => {
  let minio: MinioFixture;
  let host: PluginHost;
  let dir: string;
  let config: Record<string, string>;

  beforeAll(async () => {
    minio = await startMinioFixture();
    await minio.oob.makeBucket("hosted", minio.server.region);
    dir = await mkdtemp(join(tmpdir(), "stowage-aws-host-"));
    const file = join(dir, "cloud");
    await writeFile(file, `[default]\naws_access_key_id=${minio.server.accessKey}\naws_secret_access_key=${minio.server.secretKey}\n`);
    config = { ...minio.config, credentialsFile: file, partSize: "5MiB" };
    host = new PluginHost({ plugins: [nodePluginCommand(MAIN)] });
    await host.start();
  }, 60_000);

  afterAll(async () => {
    await host.close();
    await minio.server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("announces both plugins with their capabilities", () => {
    const plugins = host.plugins().map((p) => `${p.descriptor.kind} ${p.descriptor.name} ${p.descriptor.capabilities.join(",")}`);
    expect(plugins).toContain("object-store stowage.io/aws RANGED_READS,SIGNED_GET_URLS,SIGNED_PUT_URLS,OBJECT_METADATA,DIRECT_TRANSFER,OBJECT_LOCK");
    expect(plugins.some((p) => p.startsWith("block-store stowage.io/aws"))).toBe(true);
  });

  it("rejects unknown keys across the process boundary", async () => {
    const store = host.objectStore("stowage.io/aws", { instance: "bad" });
    try {
      await store.init({ ...config, bogus: "1" });
      expect.unreachable();
    } catch (error) {
      expect((error as StowageError).reason).toBe(Reason.InvalidConfig);
      expect((error as StowageError).metadata.valid_keys).toContain("s3ForcePathStyle");
    }
  });

  it("streams a 12 MiB multipart put and get, with metadata and ranges", async () => {
    const store = host.objectStore("stowage.io/aws");
    await store.init(config);
    const data = bytes(12 * MiB);
    const put = await store.putObject({ bucket: "hosted", key: "via/host.bin", body: chunks(data), size: data.length, metadata: { via: "host" } });
    expect(put.size).toBe(data.length);
    expect(sha256Hex(await buffer(await minio.oob.getObject("hosted", "via/host.bin")))).toBe(sha256Hex(data));
    expect((await minio.oob.statObject("hosted", "via/host.bin")).metaData.via).toBe("host");
    const got = await store.getObject({ bucket: "hosted", key: "via/host.bin", range: { offset: MiB, length: MiB } });
    expect(sha256Hex(await buffer(got.body))).toBe(sha256Hex(data.subarray(MiB, 2 * MiB)));
    expect(await store.headObject({ bucket: "hosted", key: "nope" })).toBeUndefined();
    expect(await incompleteUploads(minio.oob, "hosted")).toEqual([]);
  }, 60_000);
});
