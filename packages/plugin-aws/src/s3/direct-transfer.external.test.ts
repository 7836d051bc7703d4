import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { Code, Reason, type GetPlan, type HttpRequestSpec, type PutPlan, type TransferDeclined } from "@stowage/sdk";
import { rejection } from "@stowage/sdk/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytes, exists, incompleteUploads, startMinioFixture, type MinioFixture } from "../../test/support/minio.js";
import { S3ObjectStore } from "./s3-object-store.js";

// The S3 plugin's direct transfer (contract 5.8) against MinIO, with the plans sent by fetch as a
// host would send them.

const MiB = 1024 * 1024;
const BUCKET = "direct";
let minio: MinioFixture;
let store: S3ObjectStore;

beforeAll(async () => {
  minio = await startMinioFixture();
  await minio.oob.makeBucket(BUCKET, minio.server.region);
  store = new S3ObjectStore();
  await store.init({ ...minio.config, partSize: "5MiB", uploadConcurrency: "3", checksumAlgorithm: "CRC32" });
}, 60_000);

afterAll(async () => {
  store.close();
  await minio.server.stop();
});

function send(request: HttpRequestSpec, body?: Uint8Array, extra: Record<string, string> = {}): Promise<Response> {
  return fetch(request.url, { method: request.method, headers: { ...request.headers, ...extra }, ...(body === undefined ? {} : { body }) });
}

function plan<T extends object>(answer: T | TransferDeclined): T {
  if ("declined" in answer) throw new Error(`declined: ${answer.declined}`);
  return answer;
}

function digest(algorithm: "md5" | "sha256", data: Uint8Array): Uint8Array {
  return createHash(algorithm).update(data).digest();
}

/** The checksum a host computes for a part (clause 5.8.9). */
function partChecksum(kind: PutPlan["partChecksum"], data: Uint8Array): Uint8Array {
  if (kind === "none") return new Uint8Array();
  if (kind === "crc32") {
    const value = Buffer.alloc(4);
    value.writeUInt32BE(crc32(data));
    return value;
  }
  return digest(kind, data);
}

/** Sends `body` as a host would: BeginPut, a signed request per part, CompletePut. */
async function directPut(key: string, body: Buffer, attributes: { contentType?: string; metadata?: Record<string, string> } = {}, on = store) {
  const direct = on.directTransfer;
  const upload: PutPlan = plan(await direct.beginPut({ bucket: BUCKET, key, size: body.length, ...attributes }));
  const count = Math.max(1, Math.ceil(body.length / upload.partSize));
  const parts = [];
  for (let n = 1; n <= count; n++) {
    const part = body.subarray((n - 1) * upload.partSize, Math.min(n * upload.partSize, body.length));
    const checksum = partChecksum(upload.partChecksum, part);
    const signed = await direct.signPart({ bucket: BUCKET, key, uploadId: upload.uploadId, partNumber: n, offset: (n - 1) * upload.partSize, size: part.length, checksum });
    const response = await send(signed.request, part);
    expect(response.status, await response.clone().text()).toBe(200);
    parts.push({ partNumber: n, size: part.length, etag: response.headers.get("etag") ?? "", checksum });
  }
  return direct.completePut({ bucket: BUCKET, key, uploadId: upload.uploadId, parts, size: body.length, sha256: digest("sha256", body) });
}

describe("S3 direct transfer", () => {
  it("puts one-part, multipart and empty bodies with metadata, and reads them back by plan, whole and ranged", async () => {
    for (const size of [0, 1000, 12 * MiB + 17]) {
      const body = bytes(size);
      const key = `round/${String(size)}`;
      const result = await directPut(key, body, { contentType: "application/x-test", metadata: { owner: "ünïcode" } });
      expect(result.size).toBe(size);
      expect(Buffer.from(result.sha256 ?? []).toString("hex")).toBe(createHash("sha256").update(body).digest("hex"));
      const info = await store.headObject({ bucket: BUCKET, key });
      expect(info).toMatchObject({ size, contentType: "application/x-test", metadata: { owner: "ünïcode" } });
      const whole: GetPlan = plan(await store.directTransfer.planGet({ bucket: BUCKET, key }));
      expect(whole).toMatchObject({ offset: 0, contentLength: size });
      expect(whole.expiresAt.getTime() - Date.now()).toBeLessThanOrEqual(15 * 60_000);
      if (size === 0) {
        expect(whole.request).toBeUndefined();
        continue;
      }
      const all = await send(whole.request!);
      expect(Buffer.from(await all.arrayBuffer()).equals(body)).toBe(true);
      const ranged: GetPlan = plan(await store.directTransfer.planGet({ bucket: BUCKET, key, range: { offset: 10, length: 100 } }));
      expect(ranged).toMatchObject({ offset: 10, contentLength: 100, object: { size } });
      const part = await send(ranged.request!, undefined, { range: "bytes=10-109" });
      expect(part.status).toBe(206);
      expect(Buffer.from(await part.arrayBuffer()).equals(body.subarray(10, 110))).toBe(true);
    }
    expect(await incompleteUploads(minio.oob, BUCKET)).toEqual([]);
  });

  it("pins a read plan to the version it describes: a replaced object answers 412", async () => {
    await directPut("pin", bytes(100));
    const old: GetPlan = plan(await store.directTransfer.planGet({ bucket: BUCKET, key: "pin" }));
    await directPut("pin", bytes(100));
    expect((await send(old.request!)).status).toBe(412);
  });

  it("plans reads with getObject's errors", async () => {
    expect((await rejection(store.directTransfer.planGet({ bucket: BUCKET, key: "missing" }))).reason).toBe(Reason.ObjectNotFound);
    expect((await rejection(store.directTransfer.planGet({ bucket: "no-such-bucket", key: "k" }))).reason).toBe(Reason.BucketNotFound);
    await directPut("ten", bytes(10));
    expect((await rejection(store.directTransfer.planGet({ bucket: BUCKET, key: "ten", range: { offset: 11 } }))).reason).toBe(Reason.InvalidRange);
    expect(plan(await store.directTransfer.planGet({ bucket: BUCKET, key: "ten", range: { offset: 8, length: 5 } }))).toMatchObject({ offset: 8, contentLength: 2 });
    expect((await rejection(store.directTransfer.beginPut({ bucket: "no-such-bucket", key: "k", size: 1 }))).reason).toBe(Reason.BucketNotFound);
    expect((await rejection(store.directTransfer.beginPut({ bucket: "no-such-bucket", key: "k", size: 20 * MiB }))).reason).toBe(Reason.BucketNotFound);
  });

  it("signs parts the store accepts only with the bytes they were signed for, by the checksumAlgorithm configured", async () => {
    for (const [algorithm, kind] of [["CRC32", "crc32"], ["SHA256", "sha256"], ["SHA1", "md5"], ["", "none"]] as const) {
      const signer = new S3ObjectStore();
      await signer.init({ ...minio.config, partSize: "5MiB", checksumAlgorithm: algorithm });
      try {
        const key = `tamper/${kind}`;
        for (const size of [1000, 11 * MiB]) {
          const body = bytes(size);
          const upload: PutPlan = plan(await signer.directTransfer.beginPut({ bucket: BUCKET, key, size }));
          expect(upload.partChecksum).toBe(kind);
          const first = body.subarray(0, Math.min(size, upload.partSize));
          const signed = await signer.directTransfer.signPart({ bucket: BUCKET, key, uploadId: upload.uploadId, partNumber: 1, offset: 0, size: first.length, checksum: partChecksum(kind, first) });
          const other = Buffer.from(first);
          other[0] = (other[0] ?? 0) ^ 1;
          const answer = await send(signed.request, other);
          // Without a checksum only the signed length binds the part; with one, the store verifies the bytes.
          if (kind === "none") expect(answer.status).toBe(200);
          else expect(answer.status).toBeGreaterThanOrEqual(400);
          await signer.directTransfer.abortPut({ bucket: BUCKET, key, uploadId: upload.uploadId });
          if (kind !== "none") expect(await exists(minio.oob, BUCKET, key)).toBe(false);
          // A different length does not match the signed content-length.
          const shorter = await send(signed.request, first.subarray(1), { "content-length": String(first.length - 1) }).catch(() => undefined);
          expect(shorter === undefined || shorter.status >= 400).toBe(true);
        }
        // Round trip with this algorithm's part checksums.
        const body = bytes(11 * MiB);
        expect((await directPut(`${key}-ok`, body, {}, signer)).size).toBe(body.length);
        await signer.deleteObject({ bucket: BUCKET, key });
      } finally {
        signer.close();
      }
    }
    expect(await incompleteUploads(minio.oob, BUCKET)).toEqual([]);
  }, 60_000);

  it("refuses to complete a multipart upload with a part missing, and leaves nothing behind after the abort", async () => {
    const body = bytes(11 * MiB);
    const upload: PutPlan = plan(await store.directTransfer.beginPut({ bucket: BUCKET, key: "missing-part", size: body.length }));
    const first = body.subarray(0, upload.partSize);
    const signed = await store.directTransfer.signPart({ bucket: BUCKET, key: "missing-part", uploadId: upload.uploadId, partNumber: 1, offset: 0, size: first.length, checksum: partChecksum(upload.partChecksum, first) });
    const sent = await send(signed.request, first);
    const parts = [1, 2, 3].map((n) => ({
      partNumber: n,
      size: n < 3 ? upload.partSize : body.length - 2 * upload.partSize,
      etag: n === 1 ? (sent.headers.get("etag") ?? "") : '"00000000000000000000000000000000"',
      checksum: n === 1 ? partChecksum(upload.partChecksum, first) : new Uint8Array(4),
    }));
    const error = await rejection(store.directTransfer.completePut({ bucket: BUCKET, key: "missing-part", uploadId: upload.uploadId, parts, size: body.length, sha256: digest("sha256", body) }));
    expect(error.code).toBe(Code.DataLoss);
    expect(error.reason).toBe(Reason.IntegrityMismatch);
    await store.directTransfer.abortPut({ bucket: BUCKET, key: "missing-part", uploadId: upload.uploadId });
    // Aborting again, or an upload that never existed, is success.
    await store.directTransfer.abortPut({ bucket: BUCKET, key: "missing-part", uploadId: upload.uploadId });
    expect(await exists(minio.oob, BUCKET, "missing-part")).toBe(false);
    expect(await incompleteUploads(minio.oob, BUCKET)).toEqual([]);
  });

  it("declines when the configuration turns it off", async () => {
    const off = new S3ObjectStore();
    await off.init({ ...minio.config, directTransfer: "false" });
    expect(await off.directTransfer.planGet({ bucket: BUCKET, key: "ten" })).toEqual({ declined: "the configuration sets directTransfer: false" });
    expect(await off.directTransfer.beginPut({ bucket: BUCKET, key: "x", size: 1 })).toEqual({ declined: "the configuration sets directTransfer: false" });
    off.close();
  });
});
