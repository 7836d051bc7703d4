import { Code, Reason, type DirectTransfer } from "@stowage/sdk";
import { DIRECT_TRANSFER_DEFAULTS, DirectTransferExecutor, PluginHost, StoreUnreachable, nodePluginCommand, type TransferEvent } from "@stowage/sdk/host";
import { rejection, sha256Hex } from "@stowage/sdk/testing";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buffer } from "node:stream/consumers";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytes, chunks, exists, incompleteUploads, startMinioFixture, type MinioFixture } from "../test/support/minio.js";
import { S3ObjectStore } from "./s3/s3-object-store.js";

// Direct transfer end to end (contract 5.8): the host moves the bodies to and from MinIO with the
// requests stowage-plugin-aws signs, and falls back to the plugin where the contract says so.
// The process-level tests run the built executable: `pnpm run build` first.
const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const MiB = 1024 * 1024;
const BUCKET = "direct-host";

let minio: MinioFixture;
let host: PluginHost;
let dir: string;
let config: Record<string, string>;
const events: TransferEvent[] = [];

beforeAll(async () => {
  minio = await startMinioFixture();
  await minio.oob.makeBucket(BUCKET, minio.server.region);
  dir = await mkdtemp(join(tmpdir(), "stowage-aws-direct-"));
  const file = join(dir, "cloud");
  await writeFile(file, `[default]\naws_access_key_id=${minio.server.accessKey}\naws_secret_access_key=${minio.server.secretKey}\n`);
  config = { ...minio.config, credentialsFile: file, partSize: "5MiB" };
  host = new PluginHost({ plugins: [nodePluginCommand(MAIN)], onTransfer: (event) => events.push(event), directTransfer: { readPartSize: 3 * MiB, minPutSize: 0 } });
  await host.start();
}, 60_000);

afterAll(async () => {
  await host.close();
  await minio.server.stop();
  await rm(dir, { recursive: true, force: true });
});

function lastEvents(count: number): TransferEvent[] {
  return events.slice(-count);
}

describe("direct transfer through the PluginHost", () => {
  it("puts and gets one-part, multipart and empty bodies directly, whole and ranged, with metadata", async () => {
    const store = host.objectStore("stowage.io/aws");
    await store.init(config);
    for (const size of [0, 3000, 17 * MiB + 5]) {
      const data = bytes(size);
      const key = `direct/${String(size)}`;
      const sha256 = createHash("sha256").update(data).digest();
      const put = await store.putObject({ bucket: BUCKET, key, body: chunks(data, 256 * 1024 + 3), size, sha256, contentType: "application/x-tar", metadata: { via: "direct" } });
      expect(put.size).toBe(size);
      expect(Buffer.from(put.sha256 ?? []).equals(sha256)).toBe(true);
      const got = await store.getObject({ bucket: BUCKET, key });
      expect(got).toMatchObject({ contentLength: size, offset: 0, object: { size, contentType: "application/x-tar", metadata: { via: "direct" } } });
      expect(sha256Hex(await buffer(got.body))).toBe(sha256Hex(data));
      expect(lastEvents(2)).toEqual([
        { operation: "put", plugin: "stowage.io/aws", path: "direct" },
        { operation: "get", plugin: "stowage.io/aws", path: "direct" },
      ]);
      if (size > 10) {
        const ranged = await store.getObject({ bucket: BUCKET, key, range: { offset: 7, length: Math.min(size, 7 * MiB) } });
        const expected = data.subarray(7, 7 + Math.min(size, 7 * MiB));
        expect(ranged.contentLength).toBe(expected.length);
        expect(sha256Hex(await buffer(ranged.body))).toBe(sha256Hex(expected));
      }
    }
    expect(await incompleteUploads(minio.oob, BUCKET)).toEqual([]);
  }, 60_000);

  it("fails as PutObject and GetObject would: missing objects, ranges, wrong sizes and SHA-256s store nothing and leave no upload", async () => {
    const store = host.objectStore("stowage.io/aws");
    await store.init(config);
    expect((await rejection(store.getObject({ bucket: BUCKET, key: "missing" }))).reason).toBe(Reason.ObjectNotFound);
    const data = bytes(12 * MiB);
    const wrongSha = await rejection(store.putObject({ bucket: BUCKET, key: "bad/sha", body: chunks(data), size: data.length, sha256: new Uint8Array(32) }));
    expect(wrongSha.code).toBe(Code.DataLoss);
    expect(wrongSha.reason).toBe(Reason.IntegrityMismatch);
    const short = await rejection(store.putObject({ bucket: BUCKET, key: "bad/short", body: chunks(data), size: data.length + 1 }));
    expect(short.reason).toBe(Reason.IntegrityMismatch);
    const long = await rejection(store.putObject({ bucket: BUCKET, key: "bad/long", body: chunks(data), size: data.length - 1 }));
    expect(long.reason).toBe(Reason.IntegrityMismatch);
    const smallWrongSha = await rejection(store.putObject({ bucket: BUCKET, key: "bad/small", body: chunks(data.subarray(0, 10)), size: 10, sha256: new Uint8Array(32) }));
    expect(smallWrongSha.reason).toBe(Reason.IntegrityMismatch);
    for (const key of ["bad/sha", "bad/short", "bad/long", "bad/small"]) expect(await exists(minio.oob, BUCKET, key)).toBe(false);
    expect(await incompleteUploads(minio.oob, BUCKET)).toEqual([]);
    await store.putObject({ bucket: BUCKET, key: "ten", body: chunks(data.subarray(0, 10)), size: 10 });
    expect((await rejection(store.getObject({ bucket: BUCKET, key: "ten", range: { offset: 11 } }))).reason).toBe(Reason.InvalidRange);
  }, 60_000);

  it("aborts the upload when the caller cancels mid-put", async () => {
    const store = host.objectStore("stowage.io/aws");
    await store.init(config);
    const controller = new AbortController();
    async function* slow(): AsyncGenerator<Uint8Array> {
      yield bytes(11 * MiB);
      controller.abort();
      yield bytes(MiB);
    }
    const error = await rejection(store.putObject({ bucket: BUCKET, key: "cancelled", body: slow(), size: 12 * MiB }, { signal: controller.signal }));
    expect(error.code).toBe(Code.Canceled);
    expect(await exists(minio.oob, BUCKET, "cancelled")).toBe(false);
    expect(await incompleteUploads(minio.oob, BUCKET)).toEqual([]);
  }, 60_000);

  it("sends the body through the plugin when the plugin declines, or the size is unknown", async () => {
    const store = host.objectStore("stowage.io/aws", { instance: "declining" });
    await store.init({ ...config, directTransfer: "false" });
    const data = bytes(2 * MiB);
    await store.putObject({ bucket: BUCKET, key: "declined", body: chunks(data), size: data.length });
    expect(sha256Hex(await buffer((await store.getObject({ bucket: BUCKET, key: "declined" })).body))).toBe(sha256Hex(data));
    expect(lastEvents(2).map((e) => [e.path, e.fallback])).toEqual([
      ["data-channel", "the plugin declined"],
      ["data-channel", "the plugin declined"],
    ]);
    const direct = host.objectStore("stowage.io/aws");
    await direct.putObject({ bucket: BUCKET, key: "unsized", body: chunks(data) });
    expect(lastEvents(1)[0]).toEqual({ operation: "put", plugin: "stowage.io/aws", path: "data-channel" });
    // Below minPutSize (4 MiB by default) a plan's round trips cost more than the bytes: through the plugin.
    const defaults = new PluginHost({ plugins: [nodePluginCommand(MAIN)], onTransfer: (event) => events.push(event) });
    try {
      await defaults.start();
      const store = defaults.objectStore("stowage.io/aws");
      await store.init(config);
      await store.putObject({ bucket: BUCKET, key: "small", body: chunks(data), size: data.length });
      expect(lastEvents(1)[0]).toEqual({ operation: "put", plugin: "stowage.io/aws", path: "data-channel" });
      const large = bytes(5 * MiB);
      await store.putObject({ bucket: BUCKET, key: "large", body: chunks(large), size: large.length });
      expect(lastEvents(1)[0]).toEqual({ operation: "put", plugin: "stowage.io/aws", path: "direct" });
    } finally {
      await defaults.close();
    }
  }, 60_000);
});

describe("direct transfer when the store stalls", () => {
  let patient: PluginHost;

  beforeAll(async () => {
    // The host's own idle timeout governs direct transfers (the plugin's timeouts govern only its calls).
    patient = new PluginHost({
      plugins: [nodePluginCommand(MAIN)],
      streamIdleTimeoutMs: 1500,
      directTransfer: { attempts: 2, concurrency: 2, readPartSize: MiB, minPutSize: 0 },
      onTransfer: (event) => events.push(event),
    });
    await patient.start();
  });

  afterAll(async () => {
    minio.server.resume();
    await patient.close();
  });

  it("a direct read from a store frozen mid-body fails with UNAVAILABLE/BACKEND_UNAVAILABLE", async () => {
    const store = patient.objectStore("stowage.io/aws");
    await store.init({ ...config, connectTimeout: "2s", requestTimeout: "4s", idleTimeout: "2s" });
    const data = bytes(24 * MiB);
    await store.putObject({ bucket: BUCKET, key: "frozen/get", body: chunks(data), size: data.length });
    const out = await store.getObject({ bucket: BUCKET, key: "frozen/get" }, { timeoutMs: 90_000 });
    expect(lastEvents(1)[0]?.path).toBe("direct");
    let read = 0;
    const error = await rejection(
      (async () => {
        for await (const chunk of out.body as AsyncIterable<Uint8Array>) {
          read += chunk.byteLength;
          if (read >= 9 * MiB && read - chunk.byteLength < 9 * MiB) minio.server.pause();
        }
      })(),
    );
    minio.server.resume();
    expect(error.code).toBe(Code.Unavailable);
    expect(error.reason).toBe(Reason.BackendUnavailable);
    expect(read).toBeLessThan(data.length);
  }, 120_000);

  it("a direct put to a store frozen mid-body fails with UNAVAILABLE and leaves no object and, once the store is back, no upload", async () => {
    const store = patient.objectStore("stowage.io/aws");
    await store.init({ ...config, connectTimeout: "2s", requestTimeout: "4s", idleTimeout: "2s" });
    async function* freezing(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 24; i++) {
        if (i === 12) minio.server.pause();
        yield bytes(MiB);
      }
    }
    const error = await rejection(store.putObject({ bucket: BUCKET, key: "frozen/put", body: freezing(), size: 24 * MiB }, { timeoutMs: 90_000 }));
    minio.server.resume();
    expect(error.code).toBe(Code.Unavailable);
    // The plugin aborts the upload when the store answers again (in the background when it could not at once).
    for (let i = 0; i < 600 && (await incompleteUploads(minio.oob, BUCKET, "frozen/put")).length > 0; i++) await sleep(100);
    expect(await incompleteUploads(minio.oob, BUCKET, "frozen/put")).toEqual([]);
    expect(await exists(minio.oob, BUCKET, "frozen/put")).toBe(false);
  }, 120_000);
});

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The plugin's direct transfer with every signed URL pointing at `port` (a store the host cannot reach). */
function unreachable(transfer: DirectTransfer, port: number): DirectTransfer {
  const move = <T extends { url: string }>(request: T): T => {
    const url = new URL(request.url);
    url.port = String(port);
    return { ...request, url: url.toString() };
  };
  return {
    planGet: async (input, options) => {
      const plan = await transfer.planGet(input, options);
      return "declined" in plan || plan.request === undefined ? plan : { ...plan, request: move(plan.request) };
    },
    beginPut: (input, options) => transfer.beginPut(input, options),
    signPart: async (input, options) => {
      const signed = await transfer.signPart(input, options);
      return { ...signed, request: move(signed.request) };
    },
    completePut: (input, options) => transfer.completePut(input, options),
    abortPut: (input, options) => transfer.abortPut(input, options),
  };
}

describe("the executor on an in-process plugin", () => {
  it("reports an unreachable store before anything is committed, handing back the whole body and aborting the upload", async () => {
    const store = new S3ObjectStore();
    await store.init({ ...minio.config, partSize: "5MiB" });
    const executor = new DirectTransferExecutor({ ...DIRECT_TRANSFER_DEFAULTS, readPartSize: MiB });
    try {
      const transfer = unreachable(store.directTransfer, await closedPort());
      const data = bytes(12 * MiB);
      const error = await executor.put(transfer, { bucket: BUCKET, key: "unreachable", body: chunks(data, 3 * MiB + 1), size: data.length }, undefined).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreUnreachable);
      const replay = (error as StoreUnreachable).body;
      if (replay === undefined) throw new Error("no body to replay");
      // What the fallback sends is the whole body, in order.
      const pieces: Uint8Array[] = [];
      for await (const piece of replay) pieces.push(piece);
      const replayed = Buffer.concat(pieces);
      expect(sha256Hex(replayed)).toBe(sha256Hex(data));
      expect(await incompleteUploads(minio.oob, BUCKET)).toEqual([]);
      expect(await exists(minio.oob, BUCKET, "unreachable")).toBe(false);
      await store.putObject({ bucket: BUCKET, key: "reachable", body: chunks(data), size: data.length });
      await expect(executor.get(transfer, { bucket: BUCKET, key: "reachable" }, undefined)).rejects.toBeInstanceOf(StoreUnreachable);
      // The real plan reads in 1 MiB ranges, reassembled in order.
      const read = await executor.get(store.directTransfer, { bucket: BUCKET, key: "reachable" }, undefined);
      if (read === undefined) throw new Error("the plan was declined");
      expect(sha256Hex(await buffer(read.body))).toBe(sha256Hex(data));
    } finally {
      await executor.close();
      store.close();
    }
  }, 60_000);
});
