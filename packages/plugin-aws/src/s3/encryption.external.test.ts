import { Code, Reason } from "@stowage/sdk";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytes, chunks, exists, incompleteUploads, startMinioFixture, type MinioFixture } from "../../test/support/minio.js";
import { S3ObjectStore } from "./s3-object-store.js";
import { rejection, sha256Hex } from "@stowage/sdk/testing";
import { buffer } from "node:stream/consumers";

// One MinIO over HTTPS (SSE-C needs TLS) with a static KMS key (SSE-S3 and SSE-KMS need a KMS).
const MiB = 1024 * 1024;
const BUCKET = "encrypted";
let minio: MinioFixture;
let dir: string;
let keyFile: string;
let customerKey: Buffer;

/** What an out-of-band HEAD reports about an object's encryption. */
async function oobEncryption(key: string): Promise<Record<string, unknown>> {
  const stat = await minio.oob.statObject(BUCKET, key);
  return Object.fromEntries(Object.entries(stat.metaData as Record<string, unknown>).filter(([name]) => name.toLowerCase().startsWith("x-amz-server-side-encryption")));
}

async function storeWith(config: Record<string, string>): Promise<S3ObjectStore> {
  const store = new S3ObjectStore();
  await store.init({ ...minio.config, partSize: "5MiB", uploadConcurrency: "2", ...config });
  return store;
}

/** Puts a one-part and a three-part object, reads both back through the store and checks their sizes and bytes. */
async function roundTrip(store: S3ObjectStore, prefix: string): Promise<void> {
  for (const [name, size] of [
    ["small", 100_000],
    ["multipart", 11 * MiB + 5],
  ] as const) {
    const key = `${prefix}/${name}`;
    const data = bytes(size);
    const put = await store.putObject({ bucket: BUCKET, key, body: chunks(data, 256 * 1024), size, contentType: "application/x-test", metadata: { kind: name } });
    expect(put.size).toBe(size);
    const head = await store.headObject({ bucket: BUCKET, key });
    expect(head).toMatchObject({ size, contentType: "application/x-test", metadata: { kind: name } });
    const got = await store.getObject({ bucket: BUCKET, key });
    expect(sha256Hex(await buffer(got.body))).toBe(sha256Hex(data));
    const range = await store.getObject({ bucket: BUCKET, key, range: { offset: 10, length: 20 } });
    expect(Buffer.compare(await buffer(range.body), data.subarray(10, 30))).toBe(0);
  }
}

beforeAll(async () => {
  minio = await startMinioFixture({ tls: true, kmsKey: true });
  await minio.oob.makeBucket(BUCKET, minio.server.region);
  dir = await mkdtemp(join(tmpdir(), "stowage-aws-sse-"));
  customerKey = randomBytes(32);
  keyFile = join(dir, "sse-c.key");
  await writeFile(keyFile, customerKey);
}, 60_000);

afterAll(async () => {
  await minio.server.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("SSE-C (customerKeyEncryptionFile)", () => {
  it("puts, heads and gets with the key; the objects are unreadable without it", async () => {
    const store = await storeWith({ customerKeyEncryptionFile: keyFile });
    await roundTrip(store, "sse-c");
    store.close();
    for (const key of ["sse-c/small", "sse-c/multipart"]) {
      // Out of band, without the key: MinIO refuses both the HEAD and the GET.
      await expect(minio.oob.statObject(BUCKET, key)).rejects.toThrow();
      await expect(minio.oob.getObject(BUCKET, key)).rejects.toThrow();
      // With it, the bytes come back.
      const withKey = await minio.oob.getObject(BUCKET, key, {
        SSECustomerAlgorithm: "AES256",
        SSECustomerKey: customerKey.toString("base64"),
        SSECustomerKeyMD5: createHash("md5").update(customerKey).digest("base64"),
      });
      expect((await buffer(withKey)).length).toBe(key.endsWith("small") ? 100_000 : 11 * MiB + 5);
    }
    expect(await incompleteUploads(minio.oob, BUCKET)).toEqual([]);
  }, 60_000);

  it("cannot read SSE-C objects through a store without the key, nor with another key", async () => {
    const plain = await storeWith({});
    const noKey = await rejection(plain.getObject({ bucket: BUCKET, key: "sse-c/small" }));
    expect(noKey.code).toBe(Code.FailedPrecondition);
    expect(noKey.message).toContain("set customerKeyEncryptionFile to the key it was written with");
    plain.close();
    const otherFile = join(dir, "other.key");
    await writeFile(otherFile, randomBytes(32));
    const other = await storeWith({ customerKeyEncryptionFile: otherFile });
    const wrongKey = await rejection(other.getObject({ bucket: BUCKET, key: "sse-c/small" }));
    // S3 and MinIO answer a wrong customer key with 403.
    expect(wrongKey.reason).toBe(Reason.AccessDenied);
    other.close();
  });
});

describe("SSE-KMS (kmsKeyId)", () => {
  it("writes objects encrypted with the named key, readable without naming it", async () => {
    const kmsKeyId = minio.server.kmsKeyId ?? "";
    const store = await storeWith({ kmsKeyId });
    await roundTrip(store, "sse-kms");
    store.close();
    for (const key of ["sse-kms/small", "sse-kms/multipart"]) {
      const encryption = await oobEncryption(key);
      expect(encryption["x-amz-server-side-encryption"]).toBe("aws:kms");
      expect(String(encryption["x-amz-server-side-encryption-aws-kms-key-id"])).toContain(kmsKeyId);
      // SSE-KMS is transparent to readers with access: out of band, no key is needed.
      expect((await buffer(await minio.oob.getObject(BUCKET, key))).length).toBeGreaterThan(0);
    }
  }, 60_000);

  it("reports a key the KMS does not know when the put fails, leaving nothing", async () => {
    const store = await storeWith({ kmsKeyId: "no-such-key" });
    const error = await rejection(store.putObject({ bucket: BUCKET, key: "sse-kms/unknown-key", body: chunks(bytes(11 * MiB)) }));
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.message).toContain("sse-kms/unknown-key");
    expect(error.message).toContain("check kmsKeyId");
    expect(await exists(minio.oob, BUCKET, "sse-kms/unknown-key")).toBe(false);
    expect(await incompleteUploads(minio.oob, BUCKET)).toEqual([]);
    store.close();
  }, 60_000);
});

describe("SSE-S3 (serverSideEncryption)", () => {
  it("writes objects with AES256, shown by an out-of-band HEAD", async () => {
    const store = await storeWith({ serverSideEncryption: "AES256" });
    await roundTrip(store, "sse-s3");
    store.close();
    for (const key of ["sse-s3/small", "sse-s3/multipart"]) {
      expect((await oobEncryption(key))["x-amz-server-side-encryption"]).toBe("AES256");
    }
  }, 60_000);

  it("writes unencrypted objects when no encryption is configured", async () => {
    const store = await storeWith({});
    await store.putObject({ bucket: BUCKET, key: "plain/x", body: chunks(Buffer.from("x")) });
    expect(await oobEncryption("plain/x")).toEqual({});
    store.close();
  });
});

describe("invalid combinations", () => {
  it("are rejected at init with INVALID_CONFIG and a message that says what to change", async () => {
    const kmsKeyId = minio.server.kmsKeyId ?? "k";
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ kmsKeyId, customerKeyEncryptionFile: keyFile }, "kmsKeyId", /choose SSE-KMS or SSE-C/],
      [{ serverSideEncryption: "AES256", customerKeyEncryptionFile: keyFile }, "serverSideEncryption", /remove serverSideEncryption/],
      [{ serverSideEncryption: "AES256", kmsKeyId }, "serverSideEncryption", /use aws:kms or aws:kms:dsse/],
      [{ serverSideEncryption: "aes256" }, "serverSideEncryption", /is not one of \[AES256, /],
      [{ customerKeyEncryptionFile: join(dir, "missing.key") }, "customerKeyEncryptionFile", /cannot read customerKeyEncryptionFile/],
    ];
    const short = join(dir, "short.key");
    await writeFile(short, randomBytes(16));
    cases.push([{ customerKeyEncryptionFile: short }, "customerKeyEncryptionFile", /must hold a 32-byte key, it has 16 bytes/]);
    for (const [config, key, message] of cases) {
      const error = await rejection(new S3ObjectStore().init({ ...minio.config, ...config }));
      expect(error.reason).toBe(Reason.InvalidConfig);
      expect(error.message).toMatch(message);
      expect(JSON.stringify(error.metadata)).toContain(key);
    }
  });

  it("accepts kmsKeyId with serverSideEncryption aws:kms, as Velero configurations may set both", async () => {
    const store = await storeWith({ kmsKeyId: minio.server.kmsKeyId ?? "", serverSideEncryption: "aws:kms" });
    await store.putObject({ bucket: BUCKET, key: "sse-kms/both", body: chunks(Buffer.from("x")) });
    expect((await oobEncryption("sse-kms/both"))["x-amz-server-side-encryption"]).toBe("aws:kms");
    store.close();
  });
});

describe("what MinIO refuses (plain HTTP, no KMS)", () => {
  let plain: MinioFixture;
  beforeAll(async () => {
    plain = await startMinioFixture();
    await plain.oob.makeBucket(BUCKET, plain.server.region);
  }, 60_000);
  afterAll(async () => {
    await plain.server.stop();
  });

  it("SSE-C over plain HTTP: FAILED_PRECONDITION naming https", async () => {
    const store = new S3ObjectStore();
    await store.init({ ...plain.config, customerKeyEncryptionFile: keyFile });
    const error = await rejection(store.putObject({ bucket: BUCKET, key: "k", body: chunks(Buffer.from("x")) }));
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.reason).toBe(Reason.Unsupported);
    expect(error.message).toContain("needs an https:// s3Url");
    expect(await exists(plain.oob, BUCKET, "k")).toBe(false);
    store.close();
  });

  it("SSE-S3 and SSE-KMS without a KMS: FAILED_PRECONDITION, not a retryable failure", async () => {
    for (const config of [{ serverSideEncryption: "AES256" }, { kmsKeyId: "any" }]) {
      const store = new S3ObjectStore();
      await store.init({ ...plain.config, ...config });
      const error = await rejection(store.putObject({ bucket: BUCKET, key: "k", body: chunks(Buffer.from("x")) }));
      expect(error.code).toBe(Code.FailedPrecondition);
      expect(error.reason).toBe(Reason.Unsupported);
      expect(error.message).toContain("the store has no KMS");
      store.close();
    }
  });
});
