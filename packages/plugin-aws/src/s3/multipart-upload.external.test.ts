import { S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytes, chunks, exists, incompleteUploads, startMinioFixture, type MinioFixture } from "../../test/support/minio.js";
import { PartBufferPool, uploadObject, type UploadObjectInput } from "./multipart-upload.js";
import { buffer } from "node:stream/consumers";
import { sha256Hex } from "@stowage/sdk/testing";

const MiB = 1024 * 1024;
const BUCKET = "uploads";
let minio: MinioFixture;

/** A client whose UploadPart requests are observed: how many are in flight at most, and an optional failure. */
function observedClient(options: { failPart?: number } = {}): { client: S3Client; stats: { inFlight: number; maxInFlight: number; parts: number[]; commands: string[] } } {
  const client = new S3Client({
    endpoint: minio.server.endpoint,
    region: minio.server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: minio.server.accessKey, secretAccessKey: minio.server.secretKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  const stats = { inFlight: 0, maxInFlight: 0, parts: [] as number[], commands: [] as string[] };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      stats.commands.push(context.commandName ?? "");
      if (context.commandName !== "UploadPartCommand") return next(args);
      const part = (args.input as { PartNumber: number }).PartNumber;
      if (part === options.failPart) throw Object.assign(new Error(`injected failure of part ${part}`), { name: "InjectedFailure" });
      stats.parts.push(part);
      stats.inFlight += 1;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      try {
        return await next(args);
      } finally {
        stats.inFlight -= 1;
      }
    },
    { step: "initialize", name: "observeUploadParts" },
  );
  return { client, stats };
}

function input(client: S3Client, key: string, body: AsyncIterable<Uint8Array>, extra: Partial<UploadObjectInput> = {}): UploadObjectInput {
  return { client, bucket: BUCKET, key, body, partSize: 5 * MiB, concurrency: 2, object: {}, ...extra };
}

async function stored(key: string): Promise<Buffer> {
  return buffer(await minio.oob.getObject(BUCKET, key));
}

beforeAll(async () => {
  minio = await startMinioFixture();
  await minio.oob.makeBucket(BUCKET, minio.server.region);
}, 60_000);

afterAll(async () => {
  await minio.server.stop();
});

describe("PartBufferPool", () => {
  it("allocates at most its capacity and makes the next acquire wait for a release", async () => {
    const pool = new PartBufferPool(1024, 2, 10);
    const signal = new AbortController().signal;
    const a = await pool.acquire(signal);
    const b = await pool.acquire(signal);
    expect([a.length, b.length]).toEqual([10, 1024]);
    let third: Buffer | undefined;
    const waiting = pool.acquire(signal).then((buffer) => (third = buffer));
    await Promise.resolve();
    expect(third).toBeUndefined();
    expect(pool.allocated).toBe(2);
    pool.release(b);
    expect(await waiting).toBe(b);
    expect(pool.allocated).toBe(2);
  });

  it("serves several waiting acquires in turn", async () => {
    const pool = new PartBufferPool(8, 2);
    const signal = new AbortController().signal;
    const [a, b] = [await pool.acquire(signal), await pool.acquire(signal)];
    const first = pool.acquire(signal);
    const second = pool.acquire(signal);
    pool.release(a);
    pool.release(b);
    expect(new Set([await first, await second])).toEqual(new Set([a, b]));
    expect(pool.allocated).toBe(2);
  });

  it("rejects a waiting acquire when its signal fires", async () => {
    const pool = new PartBufferPool(16, 1);
    const controller = new AbortController();
    await pool.acquire(controller.signal);
    const waiting = pool.acquire(controller.signal);
    controller.abort(new Error("stop"));
    await expect(waiting).rejects.toThrow("stop");
  });

  it("frees every buffer on dispose except the retained ones", async () => {
    const pool = new PartBufferPool(64, 3);
    const signal = new AbortController().signal;
    const [a, b, c] = [await pool.acquire(signal), await pool.acquire(signal), await pool.acquire(signal)];
    pool.release(a);
    pool.dispose(new Set([c]));
    expect(a.buffer.detached).toBe(true);
    expect(b.buffer.detached).toBe(true);
    expect(c.buffer.detached).toBe(false);
    expect(c.length).toBe(64);
  });

  it("rejects a non-positive size or capacity", () => {
    expect(() => new PartBufferPool(0, 1)).toThrow(RangeError);
    expect(() => new PartBufferPool(1, 0)).toThrow(RangeError);
  });
});

describe("uploadObject", () => {
  it("sends a body of at most one part as a single PutObject, including an empty one and an exact part", async () => {
    const { client, stats } = observedClient();
    for (const [key, size] of [
      ["single/empty", 0],
      ["single/small", 1234],
      ["single/exact", 5 * MiB],
    ] as const) {
      const data = bytes(size);
      const out = await uploadObject(input(client, key, chunks(data, 300_000)));
      expect(out).toMatchObject({ size, parts: 0 });
      expect(out.etag).not.toMatch(/-\d+"?$/);
      expect(sha256Hex(await stored(key))).toBe(sha256Hex(data));
    }
    expect(stats.commands.filter((c) => c !== "PutObjectCommand")).toEqual([]);
    client.destroy();
  });

  it("splits a larger body into parts with at most `concurrency` in flight, whatever the chunk sizes", async () => {
    const { client, stats } = observedClient();
    const data = bytes(23 * MiB + 17);
    // Chunks that straddle part boundaries, and one larger than a part.
    async function* uneven(): AsyncGenerator<Uint8Array> {
      yield data.subarray(0, 7 * MiB);
      for (let at = 7 * MiB; at < data.length; at += 777_777) yield data.subarray(at, Math.min(at + 777_777, data.length));
    }
    const out = await uploadObject(input(client, "multi/uneven", uneven(), { concurrency: 2 }));
    expect(out).toMatchObject({ size: data.length, parts: 5 });
    expect(out.etag).toMatch(/-5"?$/);
    expect(stats.parts.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
    expect(stats.maxInFlight).toBeLessThanOrEqual(2);
    expect(sha256Hex(await stored("multi/uneven"))).toBe(sha256Hex(data));
    client.destroy();
  }, 60_000);

  it("uploads a body of exactly two parts without an empty third", async () => {
    const { client, stats } = observedClient();
    const data = bytes(10 * MiB);
    const out = await uploadObject(input(client, "multi/two", chunks(data)));
    expect(out.parts).toBe(2);
    expect(stats.parts.sort()).toEqual([1, 2]);
    expect(sha256Hex(await stored("multi/two"))).toBe(sha256Hex(data));
    client.destroy();
  }, 60_000);

  it("aborts the multipart upload when a part fails, and reports that failure", async () => {
    const { client } = observedClient({ failPart: 3 });
    await expect(uploadObject(input(client, "fail/part", chunks(bytes(26 * MiB))))).rejects.toThrow(/^injected failure of part 3$/);
    expect(await incompleteUploads(minio.oob, BUCKET)).toEqual([]);
    expect(await exists(minio.oob, BUCKET, "fail/part")).toBe(false);
    client.destroy();
  }, 60_000);

  it("aborts the multipart upload when the body fails", async () => {
    const { client } = observedClient();
    async function* broken(): AsyncGenerator<Uint8Array> {
      yield* chunks(bytes(12 * MiB));
      throw new Error("the source broke");
    }
    await expect(uploadObject(input(client, "fail/body", broken()))).rejects.toThrow("the source broke");
    expect(await incompleteUploads(minio.oob, BUCKET)).toEqual([]);
    expect(await exists(minio.oob, BUCKET, "fail/body")).toBe(false);
    client.destroy();
  }, 60_000);

  it("returns on cancellation while the body is stalled, and aborts the upload", async () => {
    const { client } = observedClient();
    const controller = new AbortController();
    let stalled!: () => void;
    const stall = new Promise<void>((resolve) => (stalled = resolve));
    async function* stalling(): AsyncGenerator<Uint8Array> {
      yield* chunks(bytes(11 * MiB));
      stalled();
      // A read that never ends, like a sender that stopped sending.
      await new Promise(() => undefined);
    }
    const upload = uploadObject(input(client, "cancel/stalled", stalling(), { signal: controller.signal }));
    await stall;
    controller.abort(new Error("cancelled by the caller"));
    await expect(upload).rejects.toThrow("cancelled by the caller");
    expect(await incompleteUploads(minio.oob, BUCKET)).toEqual([]);
    expect(await exists(minio.oob, BUCKET, "cancel/stalled")).toBe(false);
    client.destroy();
  }, 60_000);

  it("rejects at once when the signal has already fired", async () => {
    const { client, stats } = observedClient();
    const controller = new AbortController();
    controller.abort(new Error("too late"));
    await expect(uploadObject(input(client, "cancel/early", chunks(bytes(10)), { signal: controller.signal }))).rejects.toThrow("too late");
    expect(stats.commands).toEqual([]);
    client.destroy();
  });

  it("refuses a body that needs more than 10,000 parts", async () => {
    // Not run against the server's limit: checked with a stub client that accepts every part.
    const sent: string[] = [];
    const stub = {
      send: (command: { constructor: { name: string } }) => {
        sent.push(command.constructor.name);
        return Promise.resolve(command.constructor.name === "CreateMultipartUploadCommand" ? { UploadId: "u" } : { ETag: '"e"' });
      },
    } as unknown as S3Client;
    async function* tiny(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 10_002; i++) yield new Uint8Array(1);
    }
    await expect(uploadObject({ client: stub, bucket: "b", key: "k", body: tiny(), partSize: 1, concurrency: 4, object: {} })).rejects.toThrow(/more than 10000 parts/);
    expect(sent.filter((name) => name === "UploadPartCommand")).toHaveLength(10_000);
    expect(sent.at(-1)).toBe("AbortMultipartUploadCommand");
  });
});
