import { Code, Reason, StowageError, type ObjectStore } from "@stowage/sdk";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LocalObjectStore } from "./local-object-store.js";
import { rejection } from "@stowage/sdk/testing";

const BUCKET = "b";
let base: string; // a scratch directory holding root/ and a neighbour, to catch escapes
let root: string;
let store: LocalObjectStore;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), "stowage-local-os-"));
  root = join(base, "root");
  await mkdir(join(root, BUCKET), { recursive: true });
  store = new LocalObjectStore();
  await store.init({ root });
});

afterEach(async () => {
  await store.close();
  await rm(base, { recursive: true, force: true });
});


async function put(key: string, body: string | Buffer, extra: { contentType?: string; metadata?: Record<string, string> } = {}): Promise<void> {
  await store.putObject({ bucket: BUCKET, key, body: Readable.from([Buffer.from(body)]), ...extra });
}

async function read(key: string, range?: { offset: number; length?: number }): Promise<Buffer> {
  const output = await store.getObject({ bucket: BUCKET, key, range });
  return Buffer.concat(await output.body.toArray());
}

async function listKeys(s: ObjectStore = store, prefix?: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const page of s.listObjects({ bucket: BUCKET, prefix })) keys.push(...page.objects.map((o) => o.key));
  return keys;
}

/** Every file under `dir`, relative to `base`. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(base, join(e.parentPath, e.name)));
}

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

const AWKWARD_KEYS = [
  "plain",
  "with space",
  "plus+percent%hash#question?amp&",
  "ünïcödé/日本語/🎉",
  "\u00e9", // NFC é
  "e\u0301", // NFD é: a different key
  "UPPER",
  "upper",
  "a//b",
  "/leading",
  "trailing/",
  "/",
  "//",
  ".",
  "..",
  "a/./b",
  "a/../b",
  "./x",
  "~tmp",
  "~tmp/x",
  "a~o",
  "%41",
  "nul\0byte",
  "new\nline",
  "back\\slash",
  `long/${"s".repeat(300)}/tail`,
  "\u{1F600}".repeat(256), // exactly 1024 bytes
];

describe("keys", () => {
  it("round-trips awkward keys exactly, lists them in byte order and deletes them", async () => {
    // Metadata values must be header-safe: the key travels percent-encoded there.
    for (const key of AWKWARD_KEYS) await put(key, `body of ${key}`, { metadata: { key: encodeURIComponent(key) } });
    for (const key of AWKWARD_KEYS) {
      expect((await read(key)).toString(), JSON.stringify(key)).toBe(`body of ${key}`);
      const info = await store.headObject({ bucket: BUCKET, key });
      expect(info?.key).toBe(key);
      expect(info?.metadata).toEqual({ key: encodeURIComponent(key) });
    }
    expect(await listKeys()).toEqual([...new Set(AWKWARD_KEYS)].sort(byBytes));
    for (const key of AWKWARD_KEYS) await store.deleteObject({ bucket: BUCKET, key });
    expect(await listKeys()).toEqual([]);
    // Every directory the layout created is gone again; only the upload area may remain.
    expect((await readdir(join(root, BUCKET))).filter((name) => name !== "~tmp")).toEqual([]);
  });

  it("lets a and a/b (and a/b/c) exist at the same time", async () => {
    await put("a", "A");
    await put("a/b", "AB");
    await put("a/b/c", "ABC");
    expect((await read("a")).toString()).toBe("A");
    expect((await read("a/b")).toString()).toBe("AB");
    expect((await read("a/b/c")).toString()).toBe("ABC");
    await store.deleteObject({ bucket: BUCKET, key: "a/b" });
    expect(await listKeys()).toEqual(["a", "a/b/c"]);
  });

  it("refuses empty, over-long and ill-formed keys with INVALID_NAME", async () => {
    for (const key of ["", "x".repeat(1025), "\uD800"]) {
      const error = await rejection(store.headObject({ bucket: BUCKET, key }));
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.reason).toBe(Reason.InvalidName);
    }
  });

  it("keeps traversal attempts inside the bucket", async () => {
    await mkdir(join(base, "outside"));
    const attempts = ["../x", "/etc/passwd", "a/../../x", "../../../../../../../../tmp/evil", "../outside/y", "..\\..\\z"];
    for (const key of attempts) await put(key, "harmless");
    for (const key of attempts) expect((await read(key)).toString()).toBe("harmless");
    const files = await filesUnder(base);
    expect(files.length).toBe(attempts.length);
    for (const file of files) expect(file.startsWith(join("root", BUCKET) + "/")).toBe(true);
    expect(await readdir(join(base, "outside"))).toEqual([]);
    for (const key of attempts) await store.deleteObject({ bucket: BUCKET, key });
    expect(await filesUnder(base)).toEqual([]);
  });

  it("refuses bucket names that are not plain directory names", async () => {
    for (const bucket of ["", ".", "..", "../b", "b/c"]) {
      const error = await rejection(store.putObject({ bucket, key: "k", body: Readable.from([]) }));
      expect(error.reason, bucket).toBe(Reason.InvalidName);
    }
  });

  it("ignores stray files in the bucket", async () => {
    await put("real", "1");
    await writeFile(join(root, BUCKET, "README"), "not an object");
    await writeFile(join(root, BUCKET, "Stray~o"), "not canonical");
    await mkdir(join(root, BUCKET, "dir~o"));
    expect(await listKeys()).toEqual(["real"]);
  });
});

describe("put and get", () => {
  it("stores content type and metadata with the body and reports a SHA-256 etag", async () => {
    const body = Buffer.from("hello, world");
    const sha256 = createHash("sha256").update(body).digest();
    const result = await store.putObject({
      bucket: BUCKET,
      key: "k",
      body: Readable.from([body]),
      size: body.length,
      sha256,
      contentType: "text/plain",
      metadata: JSON.parse('{"owner":"ops","__proto__":"x"}') as Record<string, string>,
    });
    expect(result.size).toBe(body.length);
    expect(result.etag).toBe(sha256.toString("hex"));
    expect(Buffer.from(result.sha256 ?? [])).toEqual(sha256);
    const info = await store.headObject({ bucket: BUCKET, key: "k" });
    expect(info).toMatchObject({ key: "k", size: body.length, etag: result.etag, contentType: "text/plain" });
    expect(info?.metadata).toEqual(JSON.parse('{"owner":"ops","__proto__":"x"}'));
    expect(info?.lastModified).toBeInstanceOf(Date);
    const output = await store.getObject({ bucket: BUCKET, key: "k" });
    expect(output.contentLength).toBe(body.length);
    expect(output.offset).toBe(0);
    expect(output.object).toEqual(info);
    expect(Buffer.concat(await output.body.toArray())).toEqual(body);
  });

  it("returns sha256 only when one was given", async () => {
    const result = await store.putObject({ bucket: BUCKET, key: "k", body: Readable.from([Buffer.from("x")]) });
    expect(result.sha256).toBeUndefined();
  });

  it("replaces an object with its new attributes", async () => {
    await put("k", "one", { contentType: "a/b", metadata: { v: "1" } });
    await put("k", "two!", { metadata: { w: "2" } });
    expect((await read("k")).toString()).toBe("two!");
    expect(await store.headObject({ bucket: BUCKET, key: "k" })).toMatchObject({ size: 4, contentType: "", metadata: { w: "2" } });
  });

  it("streams a large body from many small chunks", async () => {
    const hash = createHash("sha256");
    let size = 0;
    async function* body(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 3000; i++) {
        const chunk = Buffer.alloc(7001, i % 251);
        hash.update(chunk);
        size += chunk.length;
        yield chunk;
      }
    }
    const result = await store.putObject({ bucket: BUCKET, key: "big", body: body() });
    expect(result.size).toBe(size);
    expect(result.etag).toMatch(/^[0-9a-f]{64}$/);
    const copy = createHash("sha256");
    for await (const chunk of (await store.getObject({ bucket: BUCKET, key: "big" })).body) copy.update(chunk as Buffer);
    expect(copy.digest("hex")).toBe(hash.copy().digest("hex"));
    // Without an announced checksum the etag is a version tag: a rewrite of the same bytes changes it.
    const again = await store.putObject({ bucket: BUCKET, key: "big", body: body() });
    expect(again.etag).not.toBe(result.etag);
  });

  it("stores an empty object", async () => {
    await put("empty", "");
    expect(await read("empty")).toEqual(Buffer.alloc(0));
    expect(await read("empty", { offset: 0 })).toEqual(Buffer.alloc(0));
    expect((await store.headObject({ bucket: BUCKET, key: "empty" }))?.size).toBe(0);
  });

  it("serves ranges and shortens those running past the end", async () => {
    await put("digits", "0123456789");
    expect((await read("digits", { offset: 2, length: 3 })).toString()).toBe("234");
    expect((await read("digits", { offset: 7, length: 100 })).toString()).toBe("789");
    expect((await read("digits", { offset: 9 })).toString()).toBe("9");
    expect((await read("digits", { offset: 4, length: 0 })).toString()).toBe("");
    const output = await store.getObject({ bucket: BUCKET, key: "digits", range: { offset: 7, length: 100 } });
    expect([output.offset, output.contentLength, output.object.size]).toEqual([7, 3, 10]);
    output.body.destroy();
    // Contract clause 5.3: an offset equal to the size gives an empty body.
    expect((await read("digits", { offset: 10 })).toString()).toBe("");
    for (const offset of [11, 100]) {
      const error = await rejection(store.getObject({ bucket: BUCKET, key: "digits", range: { offset } }));
      expect(error.code).toBe(Code.OutOfRange);
      expect(error.reason).toBe(Reason.InvalidRange);
    }
    await put("empty", "");
    expect((await rejection(store.getObject({ bucket: BUCKET, key: "empty", range: { offset: 1 } }))).code).toBe(Code.OutOfRange);
  });

  it("fails with OBJECT_NOT_FOUND, undefined or success for a missing key", async () => {
    expect((await rejection(store.getObject({ bucket: BUCKET, key: "nope" }))).reason).toBe(Reason.ObjectNotFound);
    expect(await store.headObject({ bucket: BUCKET, key: "nope" })).toBeUndefined();
    await store.deleteObject({ bucket: BUCKET, key: "nope" });
    await store.deleteObject({ bucket: BUCKET, key: "deep/er/nope" });
  });

  it("removes the directories a delete leaves empty, and only those", async () => {
    await put("x/y/z", "1");
    await put("x/w", "2");
    await store.deleteObject({ bucket: BUCKET, key: "x/y/z" });
    expect(await readdir(join(root, BUCKET, "x"))).toEqual(["w~o"]);
    await store.deleteObject({ bucket: BUCKET, key: "x/w" });
    expect((await readdir(join(root, BUCKET))).filter((n) => n !== "~tmp")).toEqual([]);
  });
});

describe("failed puts leave nothing", () => {
  async function leftovers(): Promise<string[]> {
    return (await filesUnder(join(root, BUCKET))).filter((file) => !file.endsWith("old~o"));
  }

  beforeEach(async () => {
    await put("old", "previous");
  });

  it.each([
    ["a short body", { size: 10 }],
    ["a long body", { size: 3 }],
    ["a wrong checksum", { sha256: createHash("sha256").update("other").digest() }],
  ])("refuses %s with INTEGRITY_MISMATCH", async (_, check) => {
    for (const key of ["old", "new"]) {
      const error = await rejection(store.putObject({ bucket: BUCKET, key, body: Readable.from([Buffer.from("12345")]), ...check }));
      expect(error.code).toBe(Code.DataLoss);
      expect(error.reason).toBe(Reason.IntegrityMismatch);
    }
    expect((await read("old")).toString()).toBe("previous");
    expect(await store.headObject({ bucket: BUCKET, key: "new" })).toBeUndefined();
    expect(await leftovers()).toEqual([]);
  });

  it("stops a put whose signal fires while the body is stalled", async () => {
    const controller = new AbortController();
    const source = new PassThrough();
    source.write(Buffer.alloc(100_000, 1));
    const putting = store.putObject({ bucket: BUCKET, key: "old", body: source }, { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort();
    const error = await rejection(putting);
    expect(error.code).toBe(Code.Canceled);
    expect(source.destroyed).toBe(true);
    expect((await read("old")).toString()).toBe("previous");
    expect(await leftovers()).toEqual([]);
  });

  it("turns a timeout into DEADLINE_EXCEEDED", async () => {
    const stalled = new PassThrough();
    const error = await rejection(store.putObject({ bucket: BUCKET, key: "new", body: stalled }, { signal: AbortSignal.timeout(30) }));
    expect(error.code).toBe(Code.DeadlineExceeded);
    expect(await leftovers()).toEqual([]);
  });

  it("fails when the body breaks", async () => {
    async function* broken(): AsyncGenerator<Uint8Array> {
      yield Buffer.from("partial");
      throw new Error("connection reset");
    }
    const error = await rejection(store.putObject({ bucket: BUCKET, key: "old", body: broken() }));
    expect(error.message).toContain("connection reset");
    expect((await read("old")).toString()).toBe("previous");
    expect(await leftovers()).toEqual([]);
  });
});

describe("reads", () => {
  it("destroys the body when the signal fires mid-read", async () => {
    await put("big", Buffer.alloc(4 * 1024 * 1024, 7));
    const controller = new AbortController();
    const output = await store.getObject({ bucket: BUCKET, key: "big" }, { signal: controller.signal });
    const chunks = output.body[Symbol.asyncIterator]();
    expect((await chunks.next()).done).toBe(false);
    controller.abort();
    const error = await chunks.next().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StowageError);
    expect((error as StowageError).code).toBe(Code.Canceled);
    expect(output.body.destroyed).toBe(true);
  });

  it("refuses to open a call whose signal already fired", async () => {
    await put("k", "v");
    const error = await rejection(store.getObject({ bucket: BUCKET, key: "k" }, { signal: AbortSignal.abort() }));
    expect(error.code).toBe(Code.Canceled);
  });
});

describe("buckets", () => {
  it("fails with BUCKET_NOT_FOUND for a missing bucket", async () => {
    const ref = { bucket: "missing", key: "k" };
    const calls: (() => Promise<unknown>)[] = [
      () => store.putObject({ ...ref, body: Readable.from([]) }),
      () => store.getObject(ref),
      () => store.headObject(ref),
      () => store.deleteObject(ref),
      () => store.createSignedUrl({ ...ref, ttlSeconds: 60 }),
      () => store.listObjects({ bucket: "missing" })[Symbol.asyncIterator]().next(),
    ];
    for (const call of calls) expect((await rejection(call())).reason).toBe(Reason.BucketNotFound);
  });

  it("creates a bucket on first put when createBuckets is set", async () => {
    await store.init({ root, createBuckets: "true" });
    await store.putObject({ bucket: "fresh", key: "k", body: Readable.from([Buffer.from("v")]) });
    expect(await readFile(join(root, "fresh", "k~o"))).toBeDefined();
    expect((await store.headObject({ bucket: "fresh", key: "k" }))?.size).toBe(1);
  });
});

describe("configuration", () => {
  it("refuses every call before init with NOT_INITIALIZED", async () => {
    const fresh = new LocalObjectStore();
    const ref = { bucket: BUCKET, key: "k" };
    const calls: (() => Promise<unknown>)[] = [
      () => fresh.putObject({ ...ref, body: Readable.from([]) }),
      () => fresh.getObject(ref),
      () => fresh.headObject(ref),
      () => fresh.deleteObject(ref),
      () => fresh.createSignedUrl({ ...ref, ttlSeconds: 60 }),
      () => fresh.listObjects({ bucket: BUCKET })[Symbol.asyncIterator]().next(),
    ];
    for (const call of calls) {
      const error = await rejection(call());
      expect(error.code).toBe(Code.FailedPrecondition);
      expect(error.reason).toBe(Reason.NotInitialized);
      expect(error.message).toContain("call init first");
    }
  });

  it("refuses unknown keys and lists the valid ones", async () => {
    const error = await rejection(new LocalObjectStore().init({ root, rot: "x" }));
    expect(error.reason).toBe(Reason.InvalidConfig);
    expect(error.message).toContain("rot");
    for (const key of ["root", "bucket", "prefix", "caCert", "credentialsFile", "createBuckets", "fsync", "signedUrlAddress", "signedUrlBase", "maxSignedUrlTtlSeconds"]) {
      expect(error.message).toContain(key);
      expect(error.metadata.valid_keys?.split(",")).toContain(key);
    }
  });

  it("accepts the keys Velero injects", async () => {
    await new LocalObjectStore().init({ root, bucket: "b", prefix: "p", caCert: "PEM", credentialsFile: "/creds" });
  });

  it.each([
    [{}, "root"],
    [{ root: "/definitely/not/here" }, "does not exist"],
    [{ root: "ROOT/b/file" }, "not a directory"],
    [{ root: "ROOT", fsync: "maybe" }, "fsync"],
    [{ root: "ROOT", signedUrlAddress: "nohost" }, "signedUrlAddress"],
    [{ root: "ROOT", signedUrlBase: "ftp://x" }, "signedUrlBase"],
    [{ root: "ROOT", maxSignedUrlTtlSeconds: "0" }, "maxSignedUrlTtlSeconds"],
  ])("refuses %j with INVALID_CONFIG", async (config, words) => {
    await writeFile(join(root, BUCKET, "file"), "");
    const resolved = Object.fromEntries(Object.entries(config).map(([k, v]) => [k, v.replace("ROOT", root)]));
    const error = await rejection(new LocalObjectStore().init(resolved));
    expect(error.reason).toBe(Reason.InvalidConfig);
    expect(error.message).toContain(words);
  });

  it("keeps the last successful configuration when init fails", async () => {
    await put("k", "v");
    await rejection(store.init({ root: join(base, "missing") }));
    expect((await read("k")).toString()).toBe("v");
  });
});
