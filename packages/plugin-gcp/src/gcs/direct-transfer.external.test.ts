/// <reference lib="dom" />
// mockttp's types (through @peculiar/x509) use WebCrypto DOM types.
/**
 * Direct transfer (contract 5.8) of the Cloud Storage ObjectStore against fake-gcs-server: the
 * store's `directTransfer` is called in process and its plans are executed with plain `fetch`, as a
 * host would (a range header on reads; each part's bytes as the body of its signed request).
 *
 * fake-gcs-server does not check signatures, `content-md5`, the offsets of resumable chunks or
 * session cancellation; the tests say where they rely on what Cloud Storage does instead.
 */
import { Code, Reason, StowageError, type CompletedPart, type DirectTransfer, type GetPlan, type Logger, type PutPlan } from "@stowage/sdk";
import { getLocal, type Mockttp } from "mockttp";
import { createHash, createVerify, type KeyObject } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIRECT_TRANSFER_OFF, DIRECT_TRANSFER_TTL_SECONDS } from "./direct-transfer.js";
import { GcsObjectStore } from "./gcs-object-store.js";
import { bytes, oobDownload, oobMetadata, oobUpload, startGcsFixture, type GcsFixture } from "../../test/support/gcs.js";

type GetPlanOrDecline = Awaited<ReturnType<DirectTransfer["planGet"]>>;
type PutPlanOrDecline = Awaited<ReturnType<DirectTransfer["beginPut"]>>;

const KiB = 1024;
const BUCKET = "direct";
const FIFTEEN_MINUTES = 15 * 60_000;

async function expectStowageError(promise: Promise<unknown>): Promise<StowageError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(StowageError);
    return error as StowageError;
  }
  throw new Error("expected a StowageError");
}

function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}

function md5(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("md5").update(data).digest());
}

function getPlan(answer: GetPlanOrDecline): GetPlan {
  if ("declined" in answer) throw new Error(`the plan was declined: ${answer.declined}`);
  return answer;
}

function putPlan(answer: PutPlanOrDecline): PutPlan {
  if ("declined" in answer) throw new Error(`the plan was declined: ${answer.declined}`);
  return answer;
}

/** Reads a plan's window as a host does: its request plus a range header. */
async function readPlan(plan: GetPlan): Promise<Buffer> {
  if (plan.contentLength === 0) return Buffer.alloc(0);
  if (plan.request === undefined) throw new Error("the plan has no request");
  const response = await fetch(plan.request.url, { headers: { ...plan.request.headers, range: `bytes=${String(plan.offset)}-${String(plan.offset + plan.contentLength - 1)}` } });
  const body = Buffer.from(await response.arrayBuffer());
  if (response.status !== 206 && response.status !== 200) throw new Error(`the plan's GET answered ${String(response.status)}`);
  return body;
}

/** The parts of a body under a plan (clause 5.8.8). */
function cut(data: Uint8Array, plan: PutPlan): { partNumber: number; offset: number; body: Uint8Array }[] {
  const count = Math.max(1, Math.ceil(data.length / plan.partSize));
  return Array.from({ length: count }, (_, i) => {
    const offset = i * plan.partSize;
    return { partNumber: i + 1, offset, body: data.subarray(offset, Math.min(data.length, offset + plan.partSize)) };
  });
}

function checksumOf(plan: PutPlan, body: Uint8Array): Uint8Array {
  return plan.partChecksum === "md5" ? md5(body) : plan.partChecksum === "sha256" ? sha256(body) : new Uint8Array(0);
}

interface SentPart {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly url: string;
  readonly part: CompletedPart;
}

/** Signs and sends one part as a host does: exactly the signed headers, the bytes as the body. */
async function sendPart(transfer: DirectTransfer, ref: { bucket: string; key: string }, plan: PutPlan, part: { partNumber: number; offset: number; body: Uint8Array }, sent?: Uint8Array): Promise<SentPart> {
  const signed = await transfer.signPart({ ...ref, uploadId: plan.uploadId, partNumber: part.partNumber, offset: part.offset, size: part.body.length, checksum: checksumOf(plan, part.body) });
  expect(signed.expiresAt.getTime()).toBeLessThanOrEqual(plan.expiresAt.getTime());
  const response = await fetch(signed.request.url, { method: signed.request.method, headers: signed.request.headers, body: new Uint8Array(sent ?? part.body), redirect: "manual" });
  await response.arrayBuffer();
  return { status: response.status, headers: signed.request.headers, url: signed.request.url, part: { partNumber: part.partNumber, size: part.body.length, etag: response.headers.get("etag") ?? "", checksum: checksumOf(plan, part.body) } };
}

/** A whole put through a plan; `skip` names parts that are signed but never sent. */
async function putThrough(
  transfer: DirectTransfer,
  ref: { bucket: string; key: string },
  data: Uint8Array,
  attributes: { contentType?: string; metadata?: Record<string, string> } = {},
  skip: readonly number[] = [],
): Promise<{ plan: PutPlan; sent: SentPart[]; parts: CompletedPart[] }> {
  const plan = putPlan(await transfer.beginPut({ ...ref, size: data.length, sha256: sha256(data), ...attributes }));
  const sent: SentPart[] = [];
  const parts: CompletedPart[] = [];
  for (const part of cut(data, plan)) {
    if (skip.includes(part.partNumber)) {
      parts.push({ partNumber: part.partNumber, size: part.body.length, etag: "", checksum: checksumOf(plan, part.body) });
      continue;
    }
    const result = await sendPart(transfer, ref, plan, part);
    expect(result.status === 308 || (result.status >= 200 && result.status < 300), `part ${String(part.partNumber)}: HTTP ${String(result.status)}`).toBe(true);
    sent.push(result);
    parts.push(result.part);
  }
  return { plan, sent, parts };
}

/**
 * Verifies a V4 signed URL whose signed headers are the request's headers plus `host` (the
 * support helper's `verifyV4` knows `host` alone): the headers a plan returns are those signed.
 */
function verifyV4Headers(url: string, method: string, headers: Readonly<Record<string, string>>, publicKey: KeyObject): boolean {
  const parsed = new URL(url);
  const pairs = parsed.search.slice(1).split("&");
  const signature = pairs.find((p) => p.startsWith("X-Goog-Signature="))?.split("=")[1] ?? "";
  const canonicalQuery = pairs
    .filter((p) => !p.startsWith("X-Goog-Signature="))
    .sort()
    .join("&");
  const all: Record<string, string> = { ...headers, host: parsed.hostname };
  const names = Object.keys(all).sort();
  if (names.join(";") !== parsed.searchParams.get("X-Goog-SignedHeaders")) return false;
  const canonicalHeaders = names.map((n) => `${n}:${(all[n] ?? "").trim()}\n`).join("");
  const canonicalRequest = [method, parsed.pathname, canonicalQuery, canonicalHeaders, names.join(";"), "UNSIGNED-PAYLOAD"].join("\n");
  const date = parsed.searchParams.get("X-Goog-Date") ?? "";
  const scope = (parsed.searchParams.get("X-Goog-Credential") ?? "").split("/").slice(1).join("/");
  const toSign = ["GOOG4-RSA-SHA256", date, scope, createHash("sha256").update(canonicalRequest).digest("hex")].join("\n");
  return createVerify("RSA-SHA256").update(toSign).verify(publicKey, Buffer.from(signature, "hex"));
}

/** A logger that keeps every line, to show that no URL, signature or session URI is logged. */
function capturingLogger(lines: string[]): Logger {
  const log = (fields: unknown, message?: string): void => {
    lines.push(`${typeof fields === "string" ? fields : JSON.stringify(fields)} ${message ?? ""}`);
  };
  const logger: Logger = { trace: log, debug: log, info: log, warn: log, error: log, child: () => logger };
  return logger;
}

describe("GcsObjectStore direct transfer against fake-gcs-server", () => {
  let fx: GcsFixture;
  let store: GcsObjectStore;
  let transfer: DirectTransfer;
  const logLines: string[] = [];

  beforeAll(async () => {
    fx = await startGcsFixture();
    await fx.createBucket(BUCKET);
    store = new GcsObjectStore({ logger: capturingLogger(logLines) });
    await store.init({ ...fx.config, chunkSize: "256KiB" });
    transfer = store.directTransfer;
  }, 60_000);

  afterAll(async () => {
    await fx.stop();
  });

  describe("planGet", () => {
    it("plans a whole read: a GET signed for at most 15 minutes and pinned to the object's generation", async () => {
      const data = bytes(1000, 3);
      await oobUpload(fx.server.endpoint, BUCKET, "get/whole", data, "text/plain");
      const stored = await oobMetadata(fx.server.endpoint, BUCKET, "get/whole");
      const before = Date.now();
      const plan = getPlan(await transfer.planGet({ bucket: BUCKET, key: "get/whole" }));
      const after = Date.now();
      expect(plan).toMatchObject({ contentLength: 1000, offset: 0, object: { key: "get/whole", size: 1000, contentType: "text/plain", etag: stored?.etag } });
      // No later than 15 minutes after the call (contract 5.8.3), and not much earlier.
      expect(plan.expiresAt.getTime()).toBeLessThanOrEqual(after + FIFTEEN_MINUTES);
      expect(plan.expiresAt.getTime()).toBeGreaterThan(before + FIFTEEN_MINUTES - 2000);
      const url = new URL(plan.request?.url ?? "");
      expect(plan.request?.method).toBe("GET");
      expect(plan.request?.headers).toEqual({});
      expect(url.searchParams.get("generation")).toBe(String(stored?.generation));
      expect(Number(url.searchParams.get("X-Goog-Expires"))).toBeLessThanOrEqual(DIRECT_TRANSFER_TTL_SECONDS);
      expect(verifyV4Headers(plan.request?.url ?? "", "GET", {}, fx.account.publicKey)).toBe(true);
      expect((await readPlan(plan)).equals(data)).toBe(true);
    });

    it("plans ranges as getObject reads them: shortened at the end, empty at the end, without a request when empty", async () => {
      const data = bytes(1000, 4);
      await oobUpload(fx.server.endpoint, BUCKET, "get/ranged", data);
      const middle = getPlan(await transfer.planGet({ bucket: BUCKET, key: "get/ranged", range: { offset: 100, length: 50 } }));
      expect([middle.offset, middle.contentLength, middle.object.size]).toEqual([100, 50, 1000]);
      expect((await readPlan(middle)).equals(data.subarray(100, 150))).toBe(true);
      const tail = getPlan(await transfer.planGet({ bucket: BUCKET, key: "get/ranged", range: { offset: 990, length: 100 } }));
      expect([tail.offset, tail.contentLength]).toEqual([990, 10]);
      expect((await readPlan(tail)).equals(data.subarray(990))).toBe(true);
      const open = getPlan(await transfer.planGet({ bucket: BUCKET, key: "get/ranged", range: { offset: 400 } }));
      expect((await readPlan(open)).equals(data.subarray(400))).toBe(true);
      const atEnd = getPlan(await transfer.planGet({ bucket: BUCKET, key: "get/ranged", range: { offset: 1000 } }));
      expect([atEnd.contentLength, atEnd.request]).toEqual([0, undefined]);
    });

    it("fails as getObject does: OBJECT_NOT_FOUND, BUCKET_NOT_FOUND, INVALID_RANGE, INVALID_NAME, negative ranges", async () => {
      await oobUpload(fx.server.endpoint, BUCKET, "get/small", bytes(10));
      const cases: [() => Promise<unknown>, Code, Reason | undefined][] = [
        [() => transfer.planGet({ bucket: BUCKET, key: "get/missing" }), Code.NotFound, Reason.ObjectNotFound],
        [() => transfer.planGet({ bucket: "no-such-bucket", key: "k" }), Code.NotFound, Reason.BucketNotFound],
        [() => transfer.planGet({ bucket: BUCKET, key: "get/small", range: { offset: 11 } }), Code.OutOfRange, Reason.InvalidRange],
        [() => transfer.planGet({ bucket: BUCKET, key: "" }), Code.InvalidArgument, Reason.InvalidName],
        [() => transfer.planGet({ bucket: BUCKET, key: "get/small", range: { offset: -1 } }), Code.InvalidArgument, undefined],
      ];
      for (const [call, code, reason] of cases) {
        const error = await expectStowageError(call());
        expect([error.code, error.reason]).toEqual([code, reason]);
      }
    });

    it("pins the generation: once the object is replaced, the plan's GET fails (404) instead of reading the new bytes", async () => {
      await oobUpload(fx.server.endpoint, BUCKET, "get/replaced", bytes(500, 5));
      const plan = getPlan(await transfer.planGet({ bucket: BUCKET, key: "get/replaced" }));
      await oobUpload(fx.server.endpoint, BUCKET, "get/replaced", bytes(500, 6));
      const response = await fetch(plan.request?.url ?? "", { headers: { range: "bytes=0-499" } });
      await response.arrayBuffer();
      expect([404, 412]).toContain(response.status);
    });
  });

  describe("puts", () => {
    it("stores a one-part body with one signed PUT: MD5, content type and metadata signed, and completePut confirms it", async () => {
      const ref = { bucket: BUCKET, key: "put/one.json" };
      const data = bytes(1000, 7);
      const { plan, sent, parts } = await putThrough(transfer, ref, data, { contentType: "application/json", metadata: { app: "x", note: "hello world" } });
      expect([plan.partChecksum, plan.maxParallelParts, plan.partSize]).toEqual(["md5", 1, 256 * KiB]);
      expect(plan.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + FIFTEEN_MINUTES);
      const [only] = sent;
      expect(only?.headers).toEqual({
        "content-md5": Buffer.from(md5(data)).toString("base64"),
        "content-type": "application/json",
        "x-goog-meta-app": "x",
        "x-goog-meta-note": "hello world",
      });
      expect(verifyV4Headers(only?.url ?? "", "PUT", only?.headers ?? {}, fx.account.publicKey)).toBe(true);
      expect(Number(new URL(only?.url ?? "").searchParams.get("X-Goog-Expires"))).toBeLessThanOrEqual(DIRECT_TRANSFER_TTL_SECONDS);
      const result = await transfer.completePut({ ...ref, uploadId: plan.uploadId, parts, size: data.length, sha256: sha256(data) });
      const stored = await oobMetadata(fx.server.endpoint, BUCKET, ref.key);
      expect(result).toEqual({ size: 1000, etag: stored?.etag, sha256: sha256(data) });
      expect(stored).toMatchObject({ contentType: "application/json", metadata: { app: "x", note: "hello world" }, size: "1000" });
      expect((await oobDownload(fx.server.endpoint, BUCKET, ref.key)).equals(data)).toBe(true);
      expect(await store.headObject(ref)).toMatchObject({ size: 1000, contentType: "application/json", metadata: { app: "x", note: "hello world" } });
    });

    it("stores an empty body: one part of 0 bytes", async () => {
      const ref = { bucket: BUCKET, key: "put/empty" };
      const { plan, sent, parts } = await putThrough(transfer, ref, new Uint8Array(0));
      expect(parts).toEqual([{ partNumber: 1, size: 0, etag: expect.any(String) as string, checksum: md5(new Uint8Array(0)) }]);
      expect(sent[0]?.headers["content-md5"]).toBe("1B2M2Y8AsgTpgAmY7PhCfg==");
      const result = await transfer.completePut({ ...ref, uploadId: plan.uploadId, parts, size: 0, sha256: sha256(new Uint8Array(0)) });
      expect(result.size).toBe(0);
      expect((await oobMetadata(fx.server.endpoint, BUCKET, ref.key))?.size).toBe("0");
    });

    it("stores a body of several parts through a resumable session: parts in order with content-range, nothing visible before the last", async () => {
      const ref = { bucket: BUCKET, key: "put/multi.tar" };
      const data = bytes(600 * KiB + 5, 8);
      const plan = putPlan(await transfer.beginPut({ ...ref, size: data.length, sha256: sha256(data), contentType: "application/x-tar", metadata: { App: "X", note: "héllo" } }));
      expect([plan.partChecksum, plan.maxParallelParts, plan.partSize]).toEqual(["none", 1, 256 * KiB]);
      const all = cut(data, plan);
      expect(all).toHaveLength(3);
      const statuses: number[] = [];
      const parts: CompletedPart[] = [];
      for (const part of all) {
        const sent = await sendPart(transfer, ref, plan, part);
        expect(sent.headers).toEqual({ "content-range": `bytes ${String(part.offset)}-${String(part.offset + part.body.length - 1)}/${String(data.length)}` });
        statuses.push(sent.status);
        parts.push(sent.part);
        if (part.partNumber < all.length) expect(await oobMetadata(fx.server.endpoint, BUCKET, ref.key)).toBeUndefined();
      }
      expect(statuses).toEqual([308, 308, 200]);
      const result = await transfer.completePut({ ...ref, uploadId: plan.uploadId, parts, size: data.length, sha256: sha256(data) });
      expect(result.size).toBe(data.length);
      expect((await oobDownload(fx.server.endpoint, BUCKET, ref.key)).equals(data)).toBe(true);
      expect(await oobMetadata(fx.server.endpoint, BUCKET, ref.key)).toMatchObject({ contentType: "application/x-tar", metadata: { App: "X", note: "héllo" } });
    });

    it("sends a one-part body whose metadata cannot be a signed header (upper case, non-ASCII) through a session, keeping it exactly", async () => {
      const ref = { bucket: BUCKET, key: "put/one-utf8" };
      const data = bytes(100, 9);
      const { plan, sent, parts } = await putThrough(transfer, ref, data, { metadata: { Owner: "Zoë" } });
      expect(plan.partChecksum).toBe("none");
      expect(sent[0]?.headers).toEqual({ "content-range": "bytes 0-99/100" });
      await transfer.completePut({ ...ref, uploadId: plan.uploadId, parts, size: data.length, sha256: sha256(data) });
      expect((await store.headObject(ref))?.metadata).toEqual({ Owner: "Zoë" });
    });

    it("sends keys with . or .. segments (which URL paths lose) through a session, and declines to plan their reads", async () => {
      for (const key of ["dots/a/./b", "dots/a/../b", "dots/."]) {
        const ref = { bucket: BUCKET, key };
        const data = bytes(50, 17);
        const { plan, sent, parts } = await putThrough(transfer, ref, data);
        expect(plan.partChecksum, key).toBe("none");
        expect(sent[0]?.status, key).toBe(200);
        await transfer.completePut({ ...ref, uploadId: plan.uploadId, parts, size: data.length, sha256: sha256(data) });
        expect((await oobDownload(fx.server.endpoint, BUCKET, key)).equals(data), key).toBe(true);
        const read = await transfer.planGet(ref);
        expect("declined" in read && read.declined, key).toContain("segment");
      }
      expect(await oobMetadata(fx.server.endpoint, BUCKET, "dots/a/b")).toBeUndefined();
      // An empty body through a session: its one part of 0 bytes is the final `bytes */0`.
      const empty = await putThrough(transfer, { bucket: BUCKET, key: "dots/./empty" }, new Uint8Array(0));
      expect(empty.sent[0]?.headers).toEqual({ "content-range": "bytes */0" });
      expect((await transfer.completePut({ bucket: BUCKET, key: "dots/./empty", uploadId: empty.plan.uploadId, parts: empty.parts, size: 0, sha256: sha256(new Uint8Array(0)) })).size).toBe(0);
    });

    it("refuses a one-part body whose bytes do not match the signed content-md5", async () => {
      const ref = { bucket: BUCKET, key: "put/bad-md5" };
      const data = bytes(2000, 10);
      const plan = putPlan(await transfer.beginPut({ ...ref, size: data.length, sha256: sha256(data) }));
      const [part] = cut(data, plan);
      if (part === undefined) throw new Error("no part");
      const other = bytes(2000, 11);
      const sent = await sendPart(transfer, ref, plan, part, other);
      // Cloud Storage refuses the PUT (400 BadDigest) and stores nothing. fake-gcs-server ignores
      // content-md5 and stores the bytes; completePut then finds an MD5 it did not sign.
      expect([200, 400]).toContain(sent.status);
      const error = await expectStowageError(transfer.completePut({ ...ref, uploadId: plan.uploadId, parts: [sent.part], size: data.length, sha256: sha256(data) }));
      expect([error.code, error.reason]).toEqual([Code.DataLoss, Reason.IntegrityMismatch]);
      expect(error.message).toContain("MD5");
    });

    it("fails completePut with DATA_LOSS when a part never reached the store, and nothing is visible", async () => {
      const multi = { bucket: BUCKET, key: "put/missing-last" };
      const data = bytes(600 * KiB, 12);
      const unfinished = await putThrough(transfer, multi, data, {}, [3]);
      expect(unfinished.sent.map((s) => s.status)).toEqual([308, 308]);
      const error = await expectStowageError(transfer.completePut({ ...multi, uploadId: unfinished.plan.uploadId, parts: unfinished.parts, size: data.length, sha256: sha256(data) }));
      expect([error.code, error.reason]).toEqual([Code.DataLoss, Reason.IntegrityMismatch]);
      expect(await oobMetadata(fx.server.endpoint, BUCKET, multi.key)).toBeUndefined();
      await transfer.abortPut({ ...multi, uploadId: unfinished.plan.uploadId });

      const single = { bucket: BUCKET, key: "put/missing-one" };
      const never = await putThrough(transfer, single, bytes(10), {}, [1]);
      const notSent = await expectStowageError(transfer.completePut({ ...single, uploadId: never.plan.uploadId, parts: never.parts, size: 10, sha256: sha256(bytes(10)) }));
      expect([notSent.code, notSent.reason]).toEqual([Code.DataLoss, Reason.IntegrityMismatch]);
      expect(await oobMetadata(fx.server.endpoint, BUCKET, single.key)).toBeUndefined();
    });

    it("does not take an older object under the key for this upload's", async () => {
      const ref = { bucket: BUCKET, key: "put/older" };
      const data = bytes(300, 13);
      await oobUpload(fx.server.endpoint, BUCKET, ref.key, data);
      // The same bytes (so the same MD5), signed but never sent: the object under the key is the
      // generation from before the upload began.
      const plan = putPlan(await transfer.beginPut({ ...ref, size: data.length }));
      await transfer.signPart({ ...ref, uploadId: plan.uploadId, partNumber: 1, offset: 0, size: data.length, checksum: md5(data) });
      const error = await expectStowageError(transfer.completePut({ ...ref, uploadId: plan.uploadId, parts: [{ partNumber: 1, size: data.length, etag: "", checksum: md5(data) }], size: data.length, sha256: sha256(data) }));
      expect([error.code, error.reason]).toEqual([Code.DataLoss, Reason.IntegrityMismatch]);
      expect(error.message).toContain("never reached Cloud Storage");
    });

    it("stores nothing when the body's SHA-256 differs from beginPut's: this upload's object is deleted", async () => {
      for (const [key, size] of [["put/sha-one", 100], ["put/sha-multi", 300 * KiB]] as const) {
        const ref = { bucket: BUCKET, key };
        const data = bytes(size, 14);
        const { plan, parts } = await putThrough(transfer, ref, data);
        expect(await oobMetadata(fx.server.endpoint, BUCKET, key)).toBeDefined();
        const error = await expectStowageError(transfer.completePut({ ...ref, uploadId: plan.uploadId, parts, size, sha256: sha256(bytes(size, 15)) }));
        expect([error.code, error.reason], key).toEqual([Code.DataLoss, Reason.IntegrityMismatch]);
        expect(await oobMetadata(fx.server.endpoint, BUCKET, key), key).toBeUndefined();
      }
    });

    it("checks beginPut as putObject's header: INVALID_NAME, BUCKET_NOT_FOUND, sha256 of 32 bytes, size at least 0", async () => {
      const cases: [() => Promise<unknown>, Code, Reason | undefined][] = [
        [() => transfer.beginPut({ bucket: BUCKET, key: "", size: 1 }), Code.InvalidArgument, Reason.InvalidName],
        [() => transfer.beginPut({ bucket: BUCKET, key: "a\nb", size: 1 }), Code.InvalidArgument, Reason.InvalidName],
        [() => transfer.beginPut({ bucket: "no-such-bucket", key: "k", size: 1 }), Code.NotFound, Reason.BucketNotFound],
        [() => transfer.beginPut({ bucket: "no-such-bucket", key: "k", size: 600 * KiB }), Code.NotFound, Reason.BucketNotFound],
        [() => transfer.beginPut({ bucket: BUCKET, key: "k", size: 1, sha256: new Uint8Array(31) }), Code.InvalidArgument, undefined],
        [() => transfer.beginPut({ bucket: BUCKET, key: "k", size: -1 }), Code.InvalidArgument, undefined],
      ];
      for (const [call, code, reason] of cases) {
        const error = await expectStowageError(call());
        expect([error.code, error.reason]).toEqual([code, reason]);
      }
    });

    it("refuses upload IDs it did not issue, or issued for another key, with FAILED_PRECONDITION", async () => {
      const plan = putPlan(await transfer.beginPut({ bucket: BUCKET, key: "put/bound", size: 10 }));
      for (const [key, uploadId] of [["put/other", plan.uploadId], ["put/bound", "bm90LWFuLXVwbG9hZC1pZC1vZi1vdXJzLWF0LWFsbA"]] as const) {
        const error = await expectStowageError(transfer.signPart({ bucket: BUCKET, key, uploadId, partNumber: 1, offset: 0, size: 10, checksum: md5(bytes(10)) }));
        expect(error.code).toBe(Code.FailedPrecondition);
        const completion = await expectStowageError(transfer.completePut({ bucket: BUCKET, key, uploadId, parts: [], size: 10, sha256: sha256(bytes(10)) }));
        expect(completion.code).toBe(Code.FailedPrecondition);
      }
      // Aborting an unknown upload succeeds.
      await transfer.abortPut({ bucket: BUCKET, key: "put/other", uploadId: plan.uploadId });
      await transfer.abortPut({ bucket: BUCKET, key: "put/bound", uploadId: plan.uploadId });
    });

    it("never logs a URL, a signature or a session URI", () => {
      // The lines of the transfers (init's line names the configured endpoint, which is no secret).
      const text = logLines.filter((line) => !line.endsWith(" initialised")).join("\n");
      expect(text).toContain("began a direct put");
      for (const secret of ["X-Goog-Signature", "X-Goog-Credential", "upload_id", "uploadType", "http://", "https://"]) expect(text).not.toContain(secret);
    });
  });

  describe("configuration", () => {
    it("declines every plan with directTransfer: false, and refuses a value that is not a boolean", async () => {
      const off = new GcsObjectStore();
      await off.init({ ...fx.config, directTransfer: "false" });
      await oobUpload(fx.server.endpoint, BUCKET, "cfg/off", bytes(10));
      expect(await off.directTransfer.planGet({ bucket: BUCKET, key: "cfg/off" })).toEqual({ declined: DIRECT_TRANSFER_OFF });
      expect(await off.directTransfer.beginPut({ bucket: BUCKET, key: "cfg/new", size: 600 * KiB })).toEqual({ declined: "the configuration sets directTransfer: false" });
      expect(await oobMetadata(fx.server.endpoint, BUCKET, "cfg/new")).toBeUndefined();
      const error = await expectStowageError(new GcsObjectStore().init({ ...fx.config, directTransfer: "maybe" }));
      expect([error.reason, error.metadata.key]).toEqual([Reason.InvalidConfig, "directTransfer"]);
    });

    it("declines when the credentials cannot sign URLs, saying what to set", async () => {
      const file = join(fx.dir, "user.json");
      await writeFile(file, JSON.stringify({ type: "authorized_user", client_id: "id", client_secret: "secret", refresh_token: "token" }));
      const user = new GcsObjectStore();
      await user.init({ storeEndpoint: fx.server.endpoint, credentialsFile: file });
      for (const answer of [await user.directTransfer.planGet({ bucket: BUCKET, key: "cfg/off" }), await user.directTransfer.beginPut({ bucket: BUCKET, key: "cfg/user", size: 10 })]) {
        expect("declined" in answer && answer.declined).toContain("set serviceAccount");
      }
    });

    it("puts publicUrl's scheme and host in every planned request, and signs the CMEK key name", async () => {
      const pub = new GcsObjectStore();
      await pub.init({ ...fx.config, chunkSize: "256KiB", publicUrl: "https://backups.example.com", kmsKeyName: "projects/p/locations/global/keyRings/r/cryptoKeys/k" });
      await oobUpload(fx.server.endpoint, BUCKET, "cfg/public", bytes(10));
      const get = getPlan(await pub.directTransfer.planGet({ bucket: BUCKET, key: "cfg/public" }));
      expect(new URL(get.request?.url ?? "").host).toBe("backups.example.com");
      const one = putPlan(await pub.directTransfer.beginPut({ bucket: BUCKET, key: "cfg/public-one", size: 10 }));
      const signed = await pub.directTransfer.signPart({ bucket: BUCKET, key: "cfg/public-one", uploadId: one.uploadId, partNumber: 1, offset: 0, size: 10, checksum: md5(bytes(10)) });
      expect(new URL(signed.request.url).host).toBe("backups.example.com");
      expect(signed.request.headers["x-goog-encryption-kms-key-name"]).toBe("projects/p/locations/global/keyRings/r/cryptoKeys/k");
      expect(verifyV4Headers(signed.request.url, "PUT", signed.request.headers, fx.account.publicKey)).toBe(true);
      const multi = putPlan(await pub.directTransfer.beginPut({ bucket: BUCKET, key: "cfg/public-multi", size: 600 * KiB }));
      const part = await pub.directTransfer.signPart({ bucket: BUCKET, key: "cfg/public-multi", uploadId: multi.uploadId, partNumber: 1, offset: 0, size: 256 * KiB, checksum: new Uint8Array(0) });
      expect(new URL(part.request.url).origin).toBe("https://backups.example.com");
      expect(new URL(part.request.url).searchParams.get("upload_id")).not.toBeNull();
      await pub.directTransfer.abortPut({ bucket: BUCKET, key: "cfg/public-multi", uploadId: multi.uploadId });
    });
  });
});

describe("GcsObjectStore direct transfer on the wire (a proxy in front of fake-gcs-server)", () => {
  let fx: GcsFixture;
  let proxy: Mockttp;

  beforeAll(async () => {
    fx = await startGcsFixture();
    await fx.createBucket(BUCKET);
    proxy = getLocal();
    await proxy.start();
  }, 60_000);

  afterAll(async () => {
    await proxy.stop();
    await fx.stop();
  });

  it("starts the session with the size, attributes and CMEK key, and abortPut cancels it (DELETE on the session URI), idempotently", async () => {
    proxy.reset();
    // Forwarded with the proxy's Host, so fake-gcs-server's session URIs point at the proxy.
    const forward = { beforeRequest: (request: { url: string; headers: Record<string, string | string[] | undefined> }) => {
      const url = new URL(request.url);
      return { url: `${fx.server.endpoint}${url.pathname}${url.search}`, headers: { ...request.headers, host: url.host } };
    } };
    const starts = await proxy.forPost(/\/upload\/storage\/v1\/b\/direct\/o/).thenPassThrough(forward);
    const deletes = await proxy.forDelete(/\/upload\/storage\/v1\/b\/direct\/o/).thenPassThrough(forward);
    await proxy.forUnmatchedRequest().thenPassThrough(forward);
    const store = new GcsObjectStore();
    await store.init({ ...fx.config, storeEndpoint: proxy.url, chunkSize: "256KiB", kmsKeyName: "projects/p/locations/global/keyRings/r/cryptoKeys/k" });
    const ref = { bucket: BUCKET, key: "wire/aborted" };
    const data = bytes(600 * KiB, 16);
    const { plan, sent } = await putThrough(store.directTransfer, ref, data, { contentType: "application/x-tar" }, [2, 3]);
    expect(sent.map((s) => s.status)).toEqual([308]);

    const [start] = await starts.getSeenRequests();
    const startUrl = new URL(start?.url ?? "");
    expect(startUrl.searchParams.get("uploadType")).toBe("resumable");
    expect(startUrl.searchParams.get("name")).toBe(ref.key);
    expect(startUrl.searchParams.get("kmsKeyName")).toBe("projects/p/locations/global/keyRings/r/cryptoKeys/k");
    expect(start?.headers["x-upload-content-length"]).toBe(String(data.length));
    expect(start?.headers.authorization).toMatch(/^Bearer /);
    expect(await start?.body.getJson()).toEqual({ name: ref.key, contentType: "application/x-tar" });

    await store.directTransfer.abortPut({ ...ref, uploadId: plan.uploadId });
    const [cancel] = await deletes.getSeenRequests();
    expect(new URL(cancel?.url ?? "").searchParams.get("upload_id")).toBe(new URL(sent[0]?.url ?? "").searchParams.get("upload_id"));
    expect(cancel?.headers.authorization).toBeUndefined();
    expect(await oobMetadata(fx.server.endpoint, BUCKET, ref.key)).toBeUndefined();
    // Again, and for a one-request upload: success, nothing to release.
    await store.directTransfer.abortPut({ ...ref, uploadId: plan.uploadId });
    const one = putPlan(await store.directTransfer.beginPut({ ...ref, size: 10 }));
    await store.directTransfer.abortPut({ ...ref, uploadId: one.uploadId });
    expect(await deletes.getSeenRequests()).toHaveLength(2);
  });
});
