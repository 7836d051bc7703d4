/**
 * Object protection (contract 5.9) in the IBM COS plugin, which uses the S3 ObjectStore of
 * `@stowage/plugin-aws`: through the real host and the built `stowage-plugin-ibm-cos` executable,
 * with MinIO (site region us-geo) standing in for IBM COS's S3 Object Lock. Run `pnpm run build`
 * first. The plugin-aws tests cover the whole behaviour; this proves the IBM plugin announces and
 * serves it.
 */
import { CreateBucketCommand, ListObjectVersionsCommand, S3Client } from "@aws-sdk/client-s3";
import { Reason, type ObjectLock } from "@stowage/sdk";
import { PluginHost, nodePluginCommand, type HostObjectStore } from "@stowage/sdk/host";
import { rejection } from "@stowage/sdk/testing";
import { startMinio, type MinioServer } from "@stowage/test-servers";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buffer } from "node:stream/consumers";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const LOCKED = "cos-locked";
const PLAIN = "cos-plain";

async function* text(value: string): AsyncGenerator<Uint8Array> {
  yield Buffer.from(value);
}

describe("IBM COS object protection through the PluginHost (MinIO as the store)", () => {
  let minio: MinioServer;
  let s3: S3Client;
  let host: PluginHost;
  let dir: string;
  let store: HostObjectStore;
  let lock: ObjectLock;

  beforeAll(async () => {
    minio = await startMinio({ region: "us-geo" });
    s3 = new S3Client({ endpoint: minio.endpoint, region: minio.region, forcePathStyle: true, credentials: { accessKeyId: minio.accessKey, secretAccessKey: minio.secretKey } });
    await s3.send(new CreateBucketCommand({ Bucket: LOCKED, ObjectLockEnabledForBucket: true }));
    await s3.send(new CreateBucketCommand({ Bucket: PLAIN }));
    dir = await mkdtemp(join(tmpdir(), "stowage-ibm-lock-"));
    const file = join(dir, "cos_credentials");
    await writeFile(file, JSON.stringify({ apikey: "unused", resource_instance_id: "crn:x", cos_hmac_keys: { access_key_id: minio.accessKey, secret_access_key: minio.secretKey } }));
    host = new PluginHost({ plugins: [nodePluginCommand(MAIN)] });
    await host.start();
    store = host.objectStore("stowage.io/ibm-cos");
    await store.init({ region: "us-geo", s3Url: minio.endpoint, s3ForcePathStyle: "true", credentialsFile: file });
    if (store.objectLock === undefined) throw new Error("the plugin does not announce OBJECT_LOCK");
    lock = store.objectLock;
  }, 60_000);

  afterAll(async () => {
    await host.close();
    s3.destroy();
    await minio.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("announces OBJECT_LOCK and reports the bucket's Object Lock", async () => {
    expect(host.plugins().find((p) => p.descriptor.name === "stowage.io/ibm-cos")?.descriptor.capabilities).toContain("OBJECT_LOCK");
    expect(await lock.getBucketProtection({ bucket: LOCKED })).toEqual({ lockable: true, enforcedBy: "the store (S3 Object Lock)" });
    expect((await lock.getBucketProtection({ bucket: PLAIN })).lockable).toBe(false);
  });

  it("protects a put, refuses its delete without a delete marker, and deletes the version with the bypass", async () => {
    await store.putObject({ bucket: LOCKED, key: "k", body: text("cos"), protection: { retention: { mode: "governance", retainUntil: new Date(Date.now() + 600_000) } } });
    expect((await store.headObject({ bucket: LOCKED, key: "k" }))?.protection?.retention?.mode).toBe("governance");
    expect((await rejection(store.deleteObject({ bucket: LOCKED, key: "k" }))).reason).toBe(Reason.ObjectLocked);
    expect((await buffer((await store.getObject({ bucket: LOCKED, key: "k" })).body)).toString()).toBe("cos");
    expect((await lock.setLegalHold({ bucket: LOCKED, key: "k", legalHold: true })).legalHold).toBe(true);
    expect((await rejection(store.deleteObject({ bucket: LOCKED, key: "k", bypassGovernance: true }))).reason).toBe(Reason.ObjectLocked);
    await lock.setLegalHold({ bucket: LOCKED, key: "k", legalHold: false });
    await store.deleteObject({ bucket: LOCKED, key: "k", bypassGovernance: true });
    const left = await s3.send(new ListObjectVersionsCommand({ Bucket: LOCKED, Prefix: "k" }));
    expect({ versions: left.Versions ?? [], markers: left.DeleteMarkers ?? [] }).toEqual({ versions: [], markers: [] });
    const put = await rejection(store.putObject({ bucket: PLAIN, key: "k", body: text("x"), protection: { legalHold: true } }));
    expect(put.reason).toBe(Reason.BucketNotLockable);
  });
});
