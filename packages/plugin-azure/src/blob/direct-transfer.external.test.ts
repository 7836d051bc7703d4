/**
 * Direct transfer (contract 5.8) of the Blob ObjectStore against Azurite: the store's
 * `directTransfer` is called in-process and its plans are executed with plain `fetch`, as a host
 * would (the request's headers, plus `range` for reads; the part's bytes as the body for writes).
 */
import { Code, Reason, type CompletedPart, type DirectTransfer, type GetPlan, type HttpRequestSpec, type PutObjectResult, type PutPlan, type TransferDeclined } from "@stowage/sdk";
import { rejection, sha256Hex } from "@stowage/sdk/testing";
import { createHash } from "node:crypto";
import { buffer } from "node:stream/consumers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blobExists, bytes, chunks, startAzuriteFixture, type AzuriteFixture } from "../../test/support/blob-fixture.js";
import { BlobObjectStore } from "./blob-object-store.js";
import { DECLINED_BY_CONFIG, DIRECT_TRANSFER_TTL_MS } from "./direct-transfer.js";
import { AccountSASPermissions, AccountSASResourceTypes, AccountSASServices, generateAccountSASQueryParameters, StorageSharedKeyCredential } from "@azure/storage-blob";

const MiB = 1024 * 1024;
const CONTAINER = "direct";
let azurite: AzuriteFixture;
let store: BlobObjectStore;
let transfer: DirectTransfer;

beforeAll(async () => {
  azurite = await startAzuriteFixture([CONTAINER]);
  store = new BlobObjectStore();
  await store.init({ ...azurite.config, blockSize: "1MiB" });
  transfer = store.directTransfer;
}, 60_000);

afterAll(async () => {
  store.close();
  await azurite.stop();
});

function md5(data: Uint8Array): Uint8Array {
  return createHash("md5").update(data).digest();
}

function sha256(data: Uint8Array): Uint8Array {
  return createHash("sha256").update(data).digest();
}

function getPlan(answer: GetPlan | TransferDeclined): GetPlan {
  if ("declined" in answer) throw new Error(`the read was declined: ${answer.declined}`);
  return answer;
}

function putPlan(answer: PutPlan | TransferDeclined): PutPlan {
  if ("declined" in answer) throw new Error(`the upload was declined: ${answer.declined}`);
  return answer;
}

/** Sends a signed request as a host does: exactly its headers (plus `extra`), and the body. */
async function send(request: HttpRequestSpec, extra: Record<string, string> = {}, body?: Uint8Array): Promise<{ status: number; etag: string; body: Buffer }> {
  const response = await fetch(request.url, { method: request.method, headers: { ...request.headers, ...extra }, ...(body === undefined ? {} : { body: Buffer.from(body) }) });
  return { status: response.status, etag: response.headers.get("etag") ?? "", body: Buffer.from(await response.arrayBuffer()) };
}

/** Reads a plan's bytes, in `pieces` ranged requests. */
async function readPlan(plan: GetPlan, pieces = 1): Promise<Buffer> {
  if (plan.contentLength === 0) return Buffer.alloc(0);
  const request = plan.request;
  if (request === undefined) throw new Error("the plan has no request");
  const step = Math.ceil(plan.contentLength / pieces);
  const out: Buffer[] = [];
  for (let first = plan.offset; first < plan.offset + plan.contentLength; first += step) {
    const last = Math.min(first + step, plan.offset + plan.contentLength) - 1;
    const answer = await send(request, { range: `bytes=${first}-${last}` });
    expect([200, 206]).toContain(answer.status);
    expect(answer.body.length).toBe(last - first + 1);
    out.push(answer.body);
  }
  return Buffer.concat(out);
}

interface DirectPutOptions {
  readonly contentType?: string;
  readonly metadata?: Record<string, string>;
  /** The SHA-256 given to beginPut; default the body's. */
  readonly announced?: Uint8Array | null;
  /** Bytes sent instead of the part's (same length), by part number. */
  readonly corrupt?: ReadonlySet<number>;
  /** Parts not sent, by part number. */
  readonly skip?: ReadonlySet<number>;
}

/** An upload as a host runs it: begin, sign and send every part at once, complete. */
async function putDirect(key: string, data: Buffer, options: DirectPutOptions = {}): Promise<{ plan: PutPlan; statuses: number[]; complete: () => Promise<PutObjectResult> }> {
  const announced = options.announced === undefined ? sha256(data) : (options.announced ?? undefined);
  const plan = putPlan(
    await transfer.beginPut({ bucket: CONTAINER, key, size: data.length, contentType: options.contentType, metadata: options.metadata, sha256: announced }),
  );
  expect(plan.partChecksum).toBe("md5");
  const count = Math.max(1, Math.ceil(data.length / plan.partSize));
  const results = await Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const partNumber = index + 1;
      const offset = index * plan.partSize;
      const part = data.subarray(offset, Math.min(offset + plan.partSize, data.length));
      const checksum = md5(part);
      const signed = await transfer.signPart({ bucket: CONTAINER, key, uploadId: plan.uploadId, partNumber, offset, size: part.length, checksum });
      expect(signed.request.method).toBe("PUT");
      if (options.skip?.has(partNumber) === true) return { partNumber, size: part.length, etag: "", checksum, status: 0 };
      const body = options.corrupt?.has(partNumber) === true ? Buffer.from(part).fill(0x5a) : part;
      const answer = await send(signed.request, {}, body);
      return { partNumber, size: part.length, etag: answer.etag, checksum, status: answer.status };
    }),
  );
  const parts: CompletedPart[] = results.map(({ partNumber, size, etag, checksum }) => ({ partNumber, size, etag, checksum }));
  return {
    plan,
    statuses: results.map((r) => r.status),
    complete: () => transfer.completePut({ bucket: CONTAINER, key, uploadId: plan.uploadId, parts, size: data.length, sha256: sha256(data) }),
  };
}

function blobClient(key: string) {
  return azurite.oob.getContainerClient(CONTAINER).getBlockBlobClient(key);
}

describe("direct puts", () => {
  it("round-trips a multi-part body as blocks committed once, with its content type and metadata", async () => {
    const data = bytes(3 * MiB + 54_321);
    const metadata = { "backup-name": "b1", owner_id: "42", note: "größe ✓" };
    const put = await putDirect("multi/body.bin", data, { contentType: "application/x-direct", metadata });
    expect(put.plan.partSize).toBe(MiB);
    expect(put.plan.maxParallelParts).toBe(0);
    expect(put.statuses).toEqual([201, 201, 201, 201]);
    // Nothing is visible before CompletePut (clause 5.8.10).
    expect(await blobExists(azurite.oob, CONTAINER, "multi/body.bin")).toBe(false);
    const result = await put.complete();
    expect(result.size).toBe(data.length);
    expect(Buffer.from(result.sha256 ?? []).toString("hex")).toBe(sha256Hex(data));
    const list = await blobClient("multi/body.bin").getBlockList("all");
    expect((list.committedBlocks ?? []).map((b) => b.size)).toEqual([MiB, MiB, MiB, 54_321]);
    expect(new Set((list.committedBlocks ?? []).map((b) => b.name.length)).size).toBe(1);
    expect(list.uncommittedBlocks ?? []).toEqual([]);
    const head = await store.headObject({ bucket: CONTAINER, key: "multi/body.bin" });
    expect(head?.etag).toBe(result.etag);
    expect(head?.contentType).toBe("application/x-direct");
    expect(head?.metadata).toEqual(metadata);
    expect(sha256Hex(await readPlan(getPlan(await transfer.planGet({ bucket: CONTAINER, key: "multi/body.bin" })), 3))).toBe(sha256Hex(data));
  }, 60_000);

  it("stores a one-part body with its single Put Blob, with its content type and metadata", async () => {
    for (const [key, size] of [["single/small", 100_000], ["single/exact", MiB]] as const) {
      const data = bytes(size);
      const put = await putDirect(key, data, { contentType: "text/plain", metadata: { Kind: "single" } });
      expect(put.statuses).toEqual([201]);
      const result = await put.complete();
      expect(result.size).toBe(size);
      const client = blobClient(key);
      expect((await client.getBlockList("committed")).committedBlocks ?? []).toEqual([]);
      expect(sha256Hex(await client.downloadToBuffer())).toBe(sha256Hex(data));
      const head = await store.headObject({ bucket: CONTAINER, key });
      expect([head?.etag, head?.contentType, head?.metadata]).toEqual([result.etag, "text/plain", { Kind: "single" }]);
    }
  });

  it("stores an empty body as one part of 0 bytes, and plans its read without a request", async () => {
    const put = await putDirect("single/empty", Buffer.alloc(0));
    expect(put.statuses).toEqual([201]);
    expect((await put.complete()).size).toBe(0);
    const plan = getPlan(await transfer.planGet({ bucket: CONTAINER, key: "single/empty" }));
    expect([plan.object.size, plan.contentLength, plan.offset, plan.request]).toEqual([0, 0, 0, undefined]);
  });

  it("a repeated CompletePut (the first one's answer lost) gives the same result", async () => {
    for (const [key, size] of [["again/multi", 2 * MiB + 3], ["again/single", 3]] as const) {
      const put = await putDirect(key, bytes(size));
      const first = await put.complete();
      expect(await put.complete()).toEqual(first);
    }
  });

  it("keeps keys with dot segments and URL characters", async () => {
    for (const key of ["dots/a/./b", "dots/a/../b", "chars/sp ace?&#%2F+"]) {
      const data = Buffer.from(key);
      await (await putDirect(key, data)).complete();
      expect((await readPlan(getPlan(await transfer.planGet({ bucket: CONTAINER, key })))).toString()).toBe(key);
      // Through the store's own client: a plain one would normalise the dot segments away.
      expect((await buffer((await store.getObject({ bucket: CONTAINER, key })).body)).toString()).toBe(key);
    }
  });

  it("a part whose bytes do not match its MD5 is refused by the store, and nothing is stored", async () => {
    const multi = await putDirect("bad/md5-multi", bytes(2 * MiB + 1), { corrupt: new Set([2]) });
    expect(multi.statuses[0]).toBe(201);
    expect(multi.statuses[1]).toBe(400);
    expect((await rejection(multi.complete())).reason).toBe(Reason.IntegrityMismatch);
    expect(await blobExists(azurite.oob, CONTAINER, "bad/md5-multi")).toBe(false);
    const single = await putDirect("bad/md5-single", bytes(1000), { corrupt: new Set([1]) });
    expect(single.statuses).toEqual([400]);
    expect(await blobExists(azurite.oob, CONTAINER, "bad/md5-single")).toBe(false);
  });

  it("a part of another size than signed is refused by the store", async () => {
    const data = bytes(2 * MiB);
    const plan = putPlan(await transfer.beginPut({ bucket: CONTAINER, key: "bad/size", size: data.length }));
    const part = data.subarray(0, MiB);
    const signed = await transfer.signPart({ bucket: CONTAINER, key: "bad/size", uploadId: plan.uploadId, partNumber: 1, offset: 0, size: MiB, checksum: md5(part) });
    expect((await send(signed.request, {}, part.subarray(0, MiB - 1))).status).toBe(400);
  });

  it("completing with a missing block fails with DATA_LOSS and leaves nothing visible", async () => {
    const put = await putDirect("bad/missing", bytes(3 * MiB), { skip: new Set([2]) });
    const error = await rejection(put.complete());
    expect([error.code, error.reason]).toEqual([Code.DataLoss, Reason.IntegrityMismatch]);
    expect(error.message).toContain("part 2");
    expect(await blobExists(azurite.oob, CONTAINER, "bad/missing")).toBe(false);
    // A single part that was never sent.
    const single = await putDirect("bad/missing-single", bytes(10), { skip: new Set([1]) });
    expect((await rejection(single.complete())).reason).toBe(Reason.IntegrityMismatch);
    expect(await blobExists(azurite.oob, CONTAINER, "bad/missing-single")).toBe(false);
  });

  it("a body whose SHA-256 differs from BeginPut's fails with DATA_LOSS and leaves no body of the upload", async () => {
    const wrong = new Uint8Array(32).fill(7);
    const multi = await putDirect("bad/sha-multi", bytes(2 * MiB + 5), { announced: wrong });
    expect((await rejection(multi.complete())).reason).toBe(Reason.IntegrityMismatch);
    expect(await blobExists(azurite.oob, CONTAINER, "bad/sha-multi")).toBe(false);
    // A one-part body was stored by its Put Blob (a host would not have sent it); completion removes it.
    const single = await putDirect("bad/sha-single", bytes(10), { announced: wrong });
    expect((await rejection(single.complete())).reason).toBe(Reason.IntegrityMismatch);
    expect(await blobExists(azurite.oob, CONTAINER, "bad/sha-single")).toBe(false);
    // Without an announced SHA-256 any body goes.
    expect((await (await putDirect("ok/no-sha", bytes(10), { announced: null })).complete()).size).toBe(10);
  });

  it("a one-part upload whose blob was replaced before CompletePut fails with DATA_LOSS and leaves the newer blob", async () => {
    const put = await putDirect("race/single", bytes(100));
    await store.putObject({ bucket: CONTAINER, key: "race/single", body: chunks(Buffer.from("newer")) });
    expect((await rejection(put.complete())).reason).toBe(Reason.IntegrityMismatch);
    expect((await blobClient("race/single").downloadToBuffer()).toString()).toBe("newer");
  });

  it("aborting deletes nothing and always succeeds; the uncommitted blocks stay invisible", async () => {
    const put = await putDirect("aborted/multi", bytes(2 * MiB + 1), { skip: new Set([2]) });
    await transfer.abortPut({ bucket: CONTAINER, key: "aborted/multi", uploadId: put.plan.uploadId });
    await transfer.abortPut({ bucket: CONTAINER, key: "aborted/multi", uploadId: put.plan.uploadId });
    await transfer.abortPut({ bucket: CONTAINER, key: "aborted/multi", uploadId: "not-an-upload" });
    expect(await blobExists(azurite.oob, CONTAINER, "aborted/multi")).toBe(false);
    expect((await blobClient("aborted/multi").getBlockList("uncommitted")).uncommittedBlocks?.length).toBe(2);
    // Azure discards them a week after the last Put Block, or on the blob's next write (Azurite keeps them).
  });

  it("checks BeginPut as PutObject checks its header, and refuses upload IDs it did not issue", async () => {
    expect((await rejection(transfer.beginPut({ bucket: "no-such-container", key: "k", size: 1 }))).reason).toBe(Reason.BucketNotFound);
    expect((await rejection(transfer.beginPut({ bucket: CONTAINER, key: "x".repeat(1025), size: 1 }))).reason).toBe(Reason.InvalidName);
    expect((await rejection(transfer.beginPut({ bucket: CONTAINER, key: "k", size: -1 }))).code).toBe(Code.InvalidArgument);
    expect((await rejection(transfer.beginPut({ bucket: CONTAINER, key: "k", size: 1, sha256: new Uint8Array(31) }))).code).toBe(Code.InvalidArgument);
    const ref = { bucket: CONTAINER, key: "k", uploadId: "forged" };
    expect((await rejection(transfer.signPart({ ...ref, partNumber: 1, offset: 0, size: 1, checksum: new Uint8Array(16) }))).code).toBe(Code.FailedPrecondition);
    expect((await rejection(transfer.completePut({ ...ref, parts: [], size: 1, sha256: new Uint8Array(32) }))).code).toBe(Code.FailedPrecondition);
    const plan = putPlan(await transfer.beginPut({ bucket: CONTAINER, key: "k", size: 10 }));
    const wrongSize = await rejection(transfer.signPart({ bucket: CONTAINER, key: "k", uploadId: plan.uploadId, partNumber: 1, offset: 0, size: 9, checksum: new Uint8Array(16) }));
    expect(wrongSize.code).toBe(Code.InvalidArgument);
  });
});

describe("direct reads", () => {
  const data = bytes(2 * MiB + 17);

  beforeAll(async () => {
    await store.putObject({ bucket: CONTAINER, key: "read/me", body: chunks(data), contentType: "application/x-read", metadata: { who: "reader" } });
  });

  it("plans the whole object or a range, with the object's attributes, as getObject would", async () => {
    const whole = getPlan(await transfer.planGet({ bucket: CONTAINER, key: "read/me" }));
    const head = await store.headObject({ bucket: CONTAINER, key: "read/me" });
    expect(whole.object).toEqual(head);
    expect([whole.offset, whole.contentLength]).toEqual([0, data.length]);
    expect(sha256Hex(await readPlan(whole))).toBe(sha256Hex(data));
    // A plain GET without a range gets the whole object too.
    const plain = await send(whole.request!);
    expect(plain.status).toBe(200);
    expect(sha256Hex(plain.body)).toBe(sha256Hex(data));
    const ranged = getPlan(await transfer.planGet({ bucket: CONTAINER, key: "read/me", range: { offset: 1000, length: MiB } }));
    expect([ranged.object.size, ranged.offset, ranged.contentLength]).toEqual([data.length, 1000, MiB]);
    expect((await readPlan(ranged, 4)).equals(data.subarray(1000, 1000 + MiB))).toBe(true);
    const tail = getPlan(await transfer.planGet({ bucket: CONTAINER, key: "read/me", range: { offset: data.length - 5, length: 100 } }));
    expect(tail.contentLength).toBe(5);
    expect((await readPlan(tail)).equals(data.subarray(data.length - 5))).toBe(true);
    const end = getPlan(await transfer.planGet({ bucket: CONTAINER, key: "read/me", range: { offset: data.length } }));
    expect([end.contentLength, end.request]).toEqual([0, undefined]);
  });

  it("fails as getObject fails", async () => {
    expect((await rejection(transfer.planGet({ bucket: CONTAINER, key: "read/missing" }))).reason).toBe(Reason.ObjectNotFound);
    expect((await rejection(transfer.planGet({ bucket: "no-such-container", key: "k" }))).reason).toBe(Reason.BucketNotFound);
    expect((await rejection(transfer.planGet({ bucket: CONTAINER, key: "" }))).reason).toBe(Reason.InvalidName);
    const past = await rejection(transfer.planGet({ bucket: CONTAINER, key: "read/me", range: { offset: data.length + 1 } }));
    expect([past.code, past.reason]).toEqual([Code.OutOfRange, Reason.InvalidRange]);
    expect((await rejection(transfer.planGet({ bucket: CONTAINER, key: "read/me", range: { offset: -1 } }))).code).toBe(Code.InvalidArgument);
  });

  it("pins the version with if-match: once the blob is replaced, the plan's GET gets 412", async () => {
    await store.putObject({ bucket: CONTAINER, key: "read/pinned", body: chunks(Buffer.from("first version")) });
    const plan = getPlan(await transfer.planGet({ bucket: CONTAINER, key: "read/pinned" }));
    expect(plan.request?.headers["if-match"]).toBe(plan.object.etag);
    expect((await readPlan(plan)).toString()).toBe("first version");
    await store.putObject({ bucket: CONTAINER, key: "read/pinned", body: chunks(Buffer.from("second version")) });
    expect((await send(plan.request!, { range: "bytes=0-4" })).status).toBe(412);
    await store.deleteObject({ bucket: CONTAINER, key: "read/pinned" });
    expect([404, 412]).toContain((await send(plan.request!, { range: "bytes=0-4" })).status);
  });
});

describe("signing", () => {
  it("signs short-lived, narrow SAS requests: read-only GETs, write-only parts, expiring within 15 minutes", async () => {
    await store.putObject({ bucket: CONTAINER, key: "sign/x", body: chunks(bytes(10)) });
    const before = Date.now();
    const plan = getPlan(await transfer.planGet({ bucket: CONTAINER, key: "sign/x" }));
    const upload = putPlan(await transfer.beginPut({ bucket: CONTAINER, key: "sign/y", size: 2 * MiB }));
    const part = await transfer.signPart({ bucket: CONTAINER, key: "sign/y", uploadId: upload.uploadId, partNumber: 2, offset: MiB, size: MiB, checksum: new Uint8Array(16) });
    const after = Date.now();
    for (const expiresAt of [plan.expiresAt, upload.expiresAt, part.expiresAt]) {
      expect(expiresAt.getTime()).toBeLessThanOrEqual(before + DIRECT_TRANSFER_TTL_MS + (after - before));
      expect(expiresAt.getTime()).toBeGreaterThan(after + DIRECT_TRANSFER_TTL_MS - 2000);
    }
    const get = new URL(plan.request!.url);
    expect([get.searchParams.get("sp"), get.searchParams.get("sr"), new Date(get.searchParams.get("se")!).getTime()]).toEqual(["r", "b", plan.expiresAt.getTime()]);
    const put = new URL(part.request.url);
    expect([put.searchParams.get("sp"), put.searchParams.get("sr"), put.searchParams.get("comp"), new Date(put.searchParams.get("se")!).getTime()]).toEqual([
      "w",
      "b",
      "block",
      part.expiresAt.getTime(),
    ]);
    for (const request of [plan.request!, part.request]) {
      expect(request.url).not.toContain(azurite.server.accountKey);
      expect(Object.keys(request.headers).every((name) => name === name.toLowerCase())).toBe(true);
    }
    // The read-only SAS cannot write, and a part's SAS is for its blob only.
    expect((await send({ ...plan.request!, method: "PUT", headers: { "x-ms-blob-type": "BlockBlob" } }, {}, Buffer.from("x"))).status).toBe(403);
    const other = part.request.url.replace("/sign/y?", "/sign/z?");
    expect((await send({ ...part.request, url: other }, {}, Buffer.alloc(MiB))).status).toBe(403);
  });

  it("declines every plan when the configuration sets directTransfer: false, and under SAS-token auth", async () => {
    const off = new BlobObjectStore();
    await off.init({ ...azurite.config, directTransfer: "false" });
    expect(await off.directTransfer.planGet({ bucket: CONTAINER, key: "read/me" })).toEqual({ declined: DECLINED_BY_CONFIG });
    expect(await off.directTransfer.beginPut({ bucket: CONTAINER, key: "k", size: 1 })).toEqual({ declined: "the configuration sets directTransfer: false" });
    off.close();
    const sas = generateAccountSASQueryParameters(
      {
        expiresOn: new Date(Date.now() + 3600_000),
        permissions: AccountSASPermissions.parse("rwdlac"),
        resourceTypes: AccountSASResourceTypes.parse("sco").toString(),
        services: AccountSASServices.parse("b").toString(),
      },
      new StorageSharedKeyCredential(azurite.server.accountName, azurite.server.accountKey),
    ).toString();
    const sasStore = new BlobObjectStore();
    await sasStore.init({ storageAccount: azurite.server.accountName, storageAccountURI: azurite.server.blobEndpoint, credentialsFile: await azurite.credentialsFile({ AZURE_STORAGE_SAS_TOKEN: sas }) });
    const declined = await sasStore.directTransfer.beginPut({ bucket: CONTAINER, key: "k", size: 1 });
    expect("declined" in declined && declined.declined).toContain("SAS-token auth");
    expect("declined" in (await sasStore.directTransfer.planGet({ bucket: CONTAINER, key: "read/me" }))).toBe(true);
    sasStore.close();
    expect((await rejection(new BlobObjectStore().directTransfer.planGet({ bucket: CONTAINER, key: "k" }))).reason).toBe(Reason.NotInitialized);
  });
});
