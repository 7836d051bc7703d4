import { Code, Reason } from "@stowage/sdk";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytes, chunks, exists, incompleteUploads, startMinioFixture, type MinioFixture } from "../../test/support/minio.js";
import { S3_CONFIG_KEYS, discoverBucketRegion, createS3Clients, parseS3CommonConfig } from "./config.js";
import { S3ObjectStore } from "./s3-object-store.js";
import { rejection, sha256Hex } from "@stowage/sdk/testing";
import { buffer } from "node:stream/consumers";

const MiB = 1024 * 1024;
const BUCKET = "stowage";
let minio: MinioFixture;
let store: S3ObjectStore;

beforeAll(async () => {
  minio = await startMinioFixture();
  await minio.oob.makeBucket(BUCKET, minio.server.region);
  store = new S3ObjectStore();
  await store.init({ ...minio.config, partSize: "5MiB", uploadConcurrency: "2" });
}, 60_000);

afterAll(async () => {
  store.close();
  await minio.server.stop();
});

describe("init", () => {
  it("rejects unknown keys, listing the valid ones", async () => {
    const error = await rejection(new S3ObjectStore().init({ ...minio.config, s3url: "x" }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.reason).toBe(Reason.InvalidConfig);
    expect(error.message).toContain("[s3url]");
    for (const key of S3_CONFIG_KEYS) expect(error.metadata.valid_keys).toContain(key.name);
  });

  it("rejects malformed values", async () => {
    for (const bad of [{ s3Url: "ftp://x" }, { s3ForcePathStyle: "yes" }, { partSize: "1MiB" }, { checksumAlgorithm: "MD4" }, { tagging: "a=1&a=2" }]) {
      const error = await rejection(new S3ObjectStore().init({ ...minio.config, ...bad }));
      expect(error.reason).toBe(Reason.InvalidConfig);
    }
  });

  it("accepts a Velero MinIO config unchanged", async () => {
    const velero = new S3ObjectStore();
    await velero.init({ region: "minio", s3ForcePathStyle: "true", s3Url: minio.server.endpoint, bucket: BUCKET, prefix: "velero", checksumAlgorithm: "" });
    velero.close();
  });

  it("loads credentials from credentialsFile and profile, and fails early on a wrong profile", async () => {
    const dir = await mkdtemp(join(tmpdir(), "stowage-aws-"));
    const file = join(dir, "cloud");
    await writeFile(file, `[backup]\naws_access_key_id=${minio.server.accessKey}\naws_secret_access_key=${minio.server.secretKey}\n`);
    const withFile = new S3ObjectStore();
    await withFile.init({ ...minio.config, credentialsFile: file, profile: "backup" });
    await withFile.putObject({ bucket: BUCKET, key: "creds/file", body: chunks(Buffer.from("x")) });
    withFile.close();
    const error = await rejection(new S3ObjectStore().init({ ...minio.config, credentialsFile: file, profile: "nope" }));
    expect(error.reason).toBe(Reason.InvalidConfig);
    await rm(dir, { recursive: true });
  });
});

describe("objects", () => {
  it("puts and gets bytes, content type and metadata (checked out of band)", async () => {
    const data = bytes(100_000);
    const put = await store.putObject({
      bucket: BUCKET,
      key: "small/a.bin",
      body: chunks(data, 7_000),
      size: data.length,
      contentType: "application/x-test",
      metadata: { owner: "stowage", "backup-name": "nightly" },
    });
    expect(put.size).toBe(data.length);
    const stat = await minio.oob.statObject(BUCKET, "small/a.bin");
    expect(stat.size).toBe(data.length);
    expect(stat.metaData["content-type"]).toBe("application/x-test");
    expect(stat.metaData.owner).toBe("stowage");
    expect(stat.metaData["backup-name"]).toBe("nightly");
    expect(sha256Hex(await buffer(await minio.oob.getObject(BUCKET, "small/a.bin")))).toBe(sha256Hex(data));

    const got = await store.getObject({ bucket: BUCKET, key: "small/a.bin" });
    expect(got.object.contentType).toBe("application/x-test");
    expect(got.object.metadata).toEqual({ owner: "stowage", "backup-name": "nightly" });
    expect(got.contentLength).toBe(data.length);
    expect(sha256Hex(await buffer(got.body))).toBe(sha256Hex(data));

    const head = await store.headObject({ bucket: BUCKET, key: "small/a.bin" });
    expect(head?.size).toBe(data.length);
    expect(head?.etag).toBe(put.etag);
  });

  it("round-trips non-ASCII metadata values", async () => {
    await store.putObject({ bucket: BUCKET, key: "meta/utf8", body: chunks(Buffer.from("x")), metadata: { note: "ünïcødé 日本", plain: "ok" } });
    expect((await store.headObject({ bucket: BUCKET, key: "meta/utf8" }))?.metadata).toEqual({ note: "ünïcødé 日本", plain: "ok" });
  });

  it("round-trips a 20 MiB multipart upload with 5 MiB parts", async () => {
    const data = bytes(20 * MiB + 123);
    const put = await store.putObject({ bucket: BUCKET, key: "big/multipart.bin", body: chunks(data, 256 * 1024), size: data.length });
    expect(put.etag).toMatch(/-5"?$/);
    expect(sha256Hex(await buffer(await minio.oob.getObject(BUCKET, "big/multipart.bin")))).toBe(sha256Hex(data));
    const got = await store.getObject({ bucket: BUCKET, key: "big/multipart.bin" });
    expect(sha256Hex(await buffer(got.body))).toBe(sha256Hex(data));
    expect(await incompleteUploads(minio.oob, BUCKET)).toEqual([]);
  }, 60_000);

  it("round-trips a multipart upload of unknown size with checksumAlgorithm=CRC32", async () => {
    const crc = new S3ObjectStore();
    await crc.init({ ...minio.config, checksumAlgorithm: "CRC32", partSize: "5MiB" });
    const data = bytes(11 * MiB);
    await crc.putObject({ bucket: BUCKET, key: "big/crc32.bin", body: chunks(data) });
    expect(sha256Hex(await buffer(await minio.oob.getObject(BUCKET, "big/crc32.bin")))).toBe(sha256Hex(data));
    crc.close();
  }, 60_000);

  it("aborts the multipart upload when the put is cancelled mid-way", async () => {
    const controller = new AbortController();
    async function* slow(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 40; i++) {
        if (i === 12) controller.abort();
        yield bytes(MiB);
        await sleep(5);
      }
    }
    const error = await rejection(store.putObject({ bucket: BUCKET, key: "cancel/me.bin", body: slow() }, { signal: controller.signal }));
    expect(error.code).toBe(Code.Canceled);
    expect(await incompleteUploads(minio.oob, BUCKET)).toEqual([]);
    expect(await exists(minio.oob, BUCKET, "cancel/me.bin")).toBe(false);
  }, 60_000);

  it("fails a body shorter than announced with INTEGRITY_MISMATCH and leaves nothing", async () => {
    const data = bytes(11 * MiB);
    const error = await rejection(store.putObject({ bucket: BUCKET, key: "short/body.bin", body: chunks(data), size: 12 * MiB }));
    expect(error.reason).toBe(Reason.IntegrityMismatch);
    expect(await incompleteUploads(minio.oob, BUCKET)).toEqual([]);
    expect(await exists(minio.oob, BUCKET, "short/body.bin")).toBe(false);
  }, 60_000);

  it("fails a body whose SHA-256 differs and stores nothing", async () => {
    const data = bytes(1000);
    const error = await rejection(store.putObject({ bucket: BUCKET, key: "sha/bad", body: chunks(data), sha256: new Uint8Array(32) }));
    expect(error.reason).toBe(Reason.IntegrityMismatch);
    expect(await exists(minio.oob, BUCKET, "sha/bad")).toBe(false);
    const ok = await store.putObject({ bucket: BUCKET, key: "sha/good", body: chunks(data), sha256: Buffer.from(sha256Hex(data), "hex") });
    expect(Buffer.from(ok.sha256 ?? []).toString("hex")).toBe(sha256Hex(data));
  });

  it("reads ranges", async () => {
    const data = Buffer.from("0123456789");
    await store.putObject({ bucket: BUCKET, key: "range/digits", body: chunks(data) });
    const mid = await store.getObject({ bucket: BUCKET, key: "range/digits", range: { offset: 3, length: 4 } });
    expect(mid.offset).toBe(3);
    expect(mid.contentLength).toBe(4);
    expect(mid.object.size).toBe(10);
    expect((await buffer(mid.body)).toString()).toBe("3456");
    const tail = await store.getObject({ bucket: BUCKET, key: "range/digits", range: { offset: 8, length: 100 } });
    expect((await buffer(tail.body)).toString()).toBe("89");
    const open = await store.getObject({ bucket: BUCKET, key: "range/digits", range: { offset: 5 } });
    expect((await buffer(open.body)).toString()).toBe("56789");
    const end = await store.getObject({ bucket: BUCKET, key: "range/digits", range: { offset: 10 } });
    expect(end.contentLength).toBe(0);
    expect((await buffer(end.body)).length).toBe(0);
    const past = await rejection(store.getObject({ bucket: BUCKET, key: "range/digits", range: { offset: 11 } }));
    expect(past.reason).toBe(Reason.InvalidRange);
  });

  it("reports missing objects and buckets with their reasons", async () => {
    expect(await store.headObject({ bucket: BUCKET, key: "missing" })).toBeUndefined();
    await store.deleteObject({ bucket: BUCKET, key: "missing" });
    const missing = await rejection(store.getObject({ bucket: BUCKET, key: "missing" }));
    expect(missing.code).toBe(Code.NotFound);
    expect(missing.reason).toBe(Reason.ObjectNotFound);
    const noBucket = await rejection(store.putObject({ bucket: "no-such-bucket", key: "k", body: chunks(Buffer.from("x")) }));
    expect(noBucket.reason).toBe(Reason.BucketNotFound);
    const listing = store.listObjects({ bucket: "no-such-bucket" });
    const listError = await rejection(
      (async () => {
        for await (const page of listing) expect(page).toBeUndefined();
      })(),
    );
    expect(listError.reason).toBe(Reason.BucketNotFound);
  });

  it("maps bad credentials to an authentication error", async () => {
    const dir = await mkdtemp(join(tmpdir(), "stowage-aws-"));
    const file = join(dir, "cloud");
    await writeFile(file, "[default]\naws_access_key_id=wrong\naws_secret_access_key=wrongwrong\n");
    const wrong = new S3ObjectStore();
    await wrong.init({ ...minio.config, credentialsFile: file });
    const error = await rejection(wrong.putObject({ bucket: BUCKET, key: "k", body: chunks(Buffer.from("x")) }));
    expect([Code.Unauthenticated, Code.PermissionDenied]).toContain(error.code);
    expect(error.reason).toBe(Reason.AccessDenied);
    wrong.close();
    await rm(dir, { recursive: true });
  });

  it("deletes objects", async () => {
    await store.putObject({ bucket: BUCKET, key: "del/x", body: chunks(Buffer.from("x")) });
    await store.deleteObject({ bucket: BUCKET, key: "del/x" });
    expect(await exists(minio.oob, BUCKET, "del/x")).toBe(false);
  });

  it("stores awkward keys exactly", async () => {
    const keys = ["awk/space key", "awk/ünïcødé/日本", "awk/100%+plus?q=1#frag", "awk/~tilde&amp;", "awk/semi;colon,comma=eq", "awk/*star'quote\"dq"];
    for (const key of keys) {
      await store.putObject({ bucket: BUCKET, key, body: chunks(Buffer.from(key)) });
      expect(await exists(minio.oob, BUCKET, key)).toBe(true);
      expect((await buffer((await store.getObject({ bucket: BUCKET, key })).body)).toString()).toBe(key);
    }
    const listed: string[] = [];
    for await (const page of store.listObjects({ bucket: BUCKET, prefix: "awk/" })) listed.push(...page.objects.map((o) => o.key));
    expect(listed).toEqual([...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
  });

  it("maps a key the store refuses (MinIO: a//b) to INVALID_NAME", async () => {
    const error = await rejection(store.putObject({ bucket: BUCKET, key: "awk/a//b", body: chunks(Buffer.from("x")) }));
    expect(error.reason).toBe(Reason.InvalidName);
  });

  it("applies a single tag", async () => {
    const tagged = new S3ObjectStore();
    await tagged.init({ ...minio.config, tagging: "backup=nightly" });
    await tagged.putObject({ bucket: BUCKET, key: "tag/one", body: chunks(Buffer.from("x")) });
    const tags = await minio.oob.getObjectTagging(BUCKET, "tag/one");
    expect(tags).toEqual([{ Key: "backup", Value: "nightly" }]);
    tagged.close();
  });
});

describe("listing", () => {
  beforeAll(async () => {
    const keys = Array.from({ length: 1001 }, (_, i) => `many/${String(i).padStart(4, "0")}`);
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(keys.slice(i, i + 50).map((k) => minio.oob.putObject(BUCKET, k, Buffer.from(k))));
    }
    await Promise.all(["tree/a", "tree/b/1", "tree/b/2", "tree/c/1"].map((k) => minio.oob.putObject(BUCKET, k, Buffer.from(k))));
  }, 60_000);

  it("pages over 1,001 keys in order", async () => {
    const pages: number[] = [];
    const keys: string[] = [];
    for await (const page of store.listObjects({ bucket: BUCKET, prefix: "many/" })) {
      pages.push(page.objects.length);
      keys.push(...page.objects.map((o) => o.key));
    }
    expect(pages).toEqual([1000, 1]);
    expect(keys).toHaveLength(1001);
    expect(keys).toEqual([...keys].sort());
  });

  it("resumes from page tokens", async () => {
    const first = [];
    for await (const page of store.listObjects({ bucket: BUCKET, prefix: "many/", pageSize: 300, maxPages: 1 })) first.push(page);
    expect(first).toHaveLength(1);
    expect(first[0]?.objects).toHaveLength(300);
    const token = first[0]?.nextPageToken ?? "";
    expect(token).not.toBe("");
    const rest: string[] = [];
    for await (const page of store.listObjects({ bucket: BUCKET, prefix: "many/", pageSize: 300, pageToken: token })) rest.push(...page.objects.map((o) => o.key));
    expect(rest).toHaveLength(701);
    expect(rest[0]).toBe("many/0300");
  });

  it("rolls keys up at a delimiter", async () => {
    const pages = [];
    for await (const page of store.listObjects({ bucket: BUCKET, prefix: "tree/", delimiter: "/" })) pages.push(page);
    expect(pages.flatMap((p) => p.objects.map((o) => o.key))).toEqual(["tree/a"]);
    expect(pages.flatMap((p) => p.commonPrefixes)).toEqual(["tree/b/", "tree/c/"]);
  });
});

describe("signed URLs", () => {
  it("signs GET and PUT URLs that work with plain fetch", async () => {
    const put = await store.createSignedUrl({ bucket: BUCKET, key: "signed/up load", method: "PUT", ttlSeconds: 60 });
    const response = await fetch(put.url, { method: "PUT", body: "via signed url" });
    expect(response.status).toBe(200);
    expect((await buffer(await minio.oob.getObject(BUCKET, "signed/up load"))).toString()).toBe("via signed url");
    const get = await store.createSignedUrl({ bucket: BUCKET, key: "signed/up load", ttlSeconds: 60 });
    expect(await (await fetch(get.url)).text()).toBe("via signed url");
    expect(get.expiresAt.getTime()).toBeGreaterThan(Date.now());
  });

  it("caps validity at 7 days", async () => {
    const url = await store.createSignedUrl({ bucket: BUCKET, key: "signed/up load", ttlSeconds: 30 * 24 * 3600 });
    expect(new URL(url.url).searchParams.get("X-Amz-Expires")).toBe("604800");
    expect(url.expiresAt.getTime() - Date.now()).toBeLessThanOrEqual(604_800_000);
  });

  it("honours publicUrl", async () => {
    const publicUrl = minio.server.endpoint.replace("127.0.0.1", "localhost");
    const pub = new S3ObjectStore();
    await pub.init({ ...minio.config, publicUrl });
    const get = await pub.createSignedUrl({ bucket: BUCKET, key: "signed/up load", ttlSeconds: 60 });
    expect(get.url.startsWith(`${publicUrl}/${BUCKET}/`)).toBe(true);
    expect(await (await fetch(get.url)).text()).toBe("via signed url");
    pub.close();
  });
});

describe("region discovery", () => {
  it("finds the bucket's region from HeadBucket", async () => {
    const common = await parseS3CommonConfig({ s3ForcePathStyle: "true" });
    const { client } = createS3Clients({ endpoint: minio.server.endpoint, region: "us-west-2", credentials: undefined, common });
    expect(await discoverBucketRegion(client, BUCKET)).toBe(minio.server.region);
    client.destroy();
  });
});
