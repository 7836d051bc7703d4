/// <reference lib="dom" />
// mockttp's types (through @peculiar/x509) use WebCrypto DOM types.
import { CRC32C } from "@google-cloud/storage";
import { Code, Reason, StowageError } from "@stowage/sdk";
import type { FakeGcsServer } from "@stowage/test-servers";
import { getLocal, type CompletedRequest, type Mockttp } from "mockttp";
import { createHash, createVerify } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GcsObjectStore } from "./gcs-object-store.js";
import { bytes, chunks, verifyV4, oobDownload, oobMetadata, oobUpload, startGcsFixture, type GcsFixture } from "../../test/support/gcs.js";
import { buffer } from "node:stream/consumers";
import { sha256Hex } from "@stowage/sdk/testing";

const KiB = 1024;
const MiB = 1024 * KiB;
const BUCKET = "unit";

async function expectStowageError(promise: Promise<unknown>): Promise<StowageError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(StowageError);
    return error as StowageError;
  }
  throw new Error("expected a StowageError");
}

function crc32cOf(data: Uint8Array): string {
  const crc = new CRC32C();
  crc.update(Buffer.from(data));
  return crc.toString();
}

describe("GcsObjectStore against fake-gcs-server", () => {
  let fx: GcsFixture;
  let store: GcsObjectStore;

  beforeAll(async () => {
    fx = await startGcsFixture();
    await fx.createBucket(BUCKET);
    store = new GcsObjectStore();
    await store.init({ ...fx.config, chunkSize: "256KiB" });
  }, 60_000);

  afterAll(async () => {
    await fx.stop();
  });

  describe("init", () => {
    it("refuses unknown keys and lists the valid ones", async () => {
      const error = await expectStowageError(new GcsObjectStore().init({ ...fx.config, regoin: "x" }));
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.reason).toBe(Reason.InvalidConfig);
      expect(error.metadata.invalid_keys).toBe("regoin");
      for (const key of ["bucket", "prefix", "kmsKeyName", "serviceAccount", "credentialsFile", "storeEndpoint", "universeDomain", "caCert"]) {
        expect(error.metadata.valid_keys?.split(",")).toContain(key);
      }
    });

    it("names credentialsFile when the file is not JSON, has no type, or an unknown type", async () => {
      const cases: [string, string][] = [
        ["{not json", "is not valid JSON"],
        [JSON.stringify({ client_email: "a@b" }), 'has no "type" field'],
        [JSON.stringify({ type: "api_key" }), 'credential type "api_key"'],
        [JSON.stringify({ type: "service_account", client_email: "a@b" }), "lacks private_key"],
      ];
      for (const [text, message] of cases) {
        const file = join(fx.dir, `bad-${String(text.length)}.json`);
        await writeFile(file, text);
        const error = await expectStowageError(new GcsObjectStore().init({ credentialsFile: file }));
        expect(error.reason).toBe(Reason.InvalidConfig);
        expect(error.metadata.key).toBe("credentialsFile");
        expect(error.message).toContain(message);
      }
      const missing = await expectStowageError(new GcsObjectStore().init({ credentialsFile: join(fx.dir, "absent.json") }));
      expect(missing.message).toContain("cannot read credentialsFile");
    });

    it("refuses malformed values, naming the key", async () => {
      const cases: [Record<string, string>, string][] = [
        [{ chunkSize: "100000" }, "chunkSize"],
        [{ chunkSize: "512MiB" }, "chunkSize"],
        [{ kmsKeyName: "my-key" }, "kmsKeyName"],
        [{ serviceAccount: "not-an-email" }, "serviceAccount"],
        [{ storeEndpoint: "ftp://x" }, "storeEndpoint"],
        [{ universeDomain: "not a domain" }, "universeDomain"],
      ];
      for (const [extra, key] of cases) {
        const error = await expectStowageError(new GcsObjectStore().init({ ...fx.config, ...extra }));
        expect(error.reason).toBe(Reason.InvalidConfig);
        expect(error.metadata.key).toBe(key);
      }
    });

    it("fails calls before init with NOT_INITIALIZED", async () => {
      const error = await expectStowageError(new GcsObjectStore().headObject({ bucket: BUCKET, key: "k" }));
      expect(error.reason).toBe(Reason.NotInitialized);
    });
  });

  describe("objects", () => {
    it("puts a small body in one request with content type and metadata, seen out of band", async () => {
      const data = bytes(1000, 7);
      const put = await store.putObject({ bucket: BUCKET, key: "small/a.json", body: chunks(data, 300), size: data.length, contentType: "application/json", metadata: { app: "x", note: "héllo" } });
      expect(put.size).toBe(1000);
      const oob = await oobMetadata(fx.server.endpoint, BUCKET, "small/a.json");
      expect(oob?.contentType).toBe("application/json");
      expect(oob?.metadata).toEqual({ app: "x", note: "héllo" });
      expect(oob?.crc32c).toBe(crc32cOf(data));
      expect(put.etag).toBe(oob?.etag);
      expect((await oobDownload(fx.server.endpoint, BUCKET, "small/a.json")).equals(data)).toBe(true);
      const head = await store.headObject({ bucket: BUCKET, key: "small/a.json" });
      expect(head).toMatchObject({ key: "small/a.json", size: 1000, contentType: "application/json", metadata: { app: "x", note: "héllo" } });
      expect(head?.lastModified).toBeInstanceOf(Date);
    });

    it("stores an empty body", async () => {
      const put = await store.putObject({ bucket: BUCKET, key: "empty", body: chunks(new Uint8Array(0)), size: 0 });
      expect(put.size).toBe(0);
      expect((await oobMetadata(fx.server.endpoint, BUCKET, "empty"))?.size).toBe("0");
      const got = await store.getObject({ bucket: BUCKET, key: "empty" });
      expect(got.contentLength).toBe(0);
      expect((await buffer(got.body)).length).toBe(0);
    });

    it("returns the SHA-256 when one is announced, and refuses a wrong one storing nothing", async () => {
      const data = bytes(5000, 3);
      const digest = createHash("sha256").update(data).digest();
      const put = await store.putObject({ bucket: BUCKET, key: "sha/ok", body: chunks(data), sha256: digest });
      expect(Buffer.from(put.sha256 ?? []).equals(digest)).toBe(true);
      const wrong = Buffer.alloc(32, 1);
      const error = await expectStowageError(store.putObject({ bucket: BUCKET, key: "sha/bad", body: chunks(data), sha256: wrong }));
      expect(error.code).toBe(Code.DataLoss);
      expect(error.reason).toBe(Reason.IntegrityMismatch);
      expect(await oobMetadata(fx.server.endpoint, BUCKET, "sha/bad")).toBeUndefined();
    });

    it("refuses bodies of another size than announced, small or resumable, storing nothing", async () => {
      for (const [key, actual, announced] of [
        ["size/short-small", 100, 200],
        ["size/long-small", 300, 200],
        ["size/short-resumable", MiB, MiB + 1],
        ["size/long-resumable", MiB + 1, MiB],
      ] as const) {
        const error = await expectStowageError(store.putObject({ bucket: BUCKET, key, body: chunks(bytes(actual)), size: announced }));
        expect(error.reason).toBe(Reason.IntegrityMismatch);
        expect(await oobMetadata(fx.server.endpoint, BUCKET, key)).toBeUndefined();
      }
    });

    it("reads whole objects and ranges (shortened at the end, empty at the end, OUT_OF_RANGE past it)", async () => {
      const data = bytes(10, 9);
      await oobUpload(fx.server.endpoint, BUCKET, "range/ten", data);
      const whole = await store.getObject({ bucket: BUCKET, key: "range/ten" });
      expect([whole.offset, whole.contentLength, whole.object.size]).toEqual([0, 10, 10]);
      expect((await buffer(whole.body)).equals(data)).toBe(true);
      const tail = await store.getObject({ bucket: BUCKET, key: "range/ten", range: { offset: 8, length: 5 } });
      expect([tail.offset, tail.contentLength, tail.object.size]).toEqual([8, 2, 10]);
      expect((await buffer(tail.body)).equals(data.subarray(8))).toBe(true);
      const rest = await store.getObject({ bucket: BUCKET, key: "range/ten", range: { offset: 4 } });
      expect((await buffer(rest.body)).equals(data.subarray(4))).toBe(true);
      const atEnd = await store.getObject({ bucket: BUCKET, key: "range/ten", range: { offset: 10 } });
      expect(atEnd.contentLength).toBe(0);
      expect((await buffer(atEnd.body)).length).toBe(0);
      const past = await expectStowageError(store.getObject({ bucket: BUCKET, key: "range/ten", range: { offset: 11 } }));
      expect([past.code, past.reason]).toEqual([Code.OutOfRange, Reason.InvalidRange]);
      const negative = await expectStowageError(store.getObject({ bucket: BUCKET, key: "range/ten", range: { offset: -1 } }));
      expect(negative.code).toBe(Code.InvalidArgument);
    });

    it("reports missing objects and missing buckets with their reasons; delete is idempotent", async () => {
      expect(await store.headObject({ bucket: BUCKET, key: "nope" })).toBeUndefined();
      const get = await expectStowageError(store.getObject({ bucket: BUCKET, key: "nope" }));
      expect([get.code, get.reason]).toEqual([Code.NotFound, Reason.ObjectNotFound]);
      await store.deleteObject({ bucket: BUCKET, key: "nope" });
      await oobUpload(fx.server.endpoint, BUCKET, "del/a", bytes(3));
      await oobUpload(fx.server.endpoint, BUCKET, "del/ab", bytes(3));
      await store.deleteObject({ bucket: BUCKET, key: "del/a" });
      await store.deleteObject({ bucket: BUCKET, key: "del/a" });
      expect(await oobMetadata(fx.server.endpoint, BUCKET, "del/a")).toBeUndefined();
      expect(await oobMetadata(fx.server.endpoint, BUCKET, "del/ab")).toBeDefined();

      const calls: (() => Promise<unknown>)[] = [
        () => store.headObject({ bucket: "no-such-bucket", key: "k" }),
        () => store.getObject({ bucket: "no-such-bucket", key: "k" }),
        () => store.deleteObject({ bucket: "no-such-bucket", key: "k" }),
        () => store.putObject({ bucket: "no-such-bucket", key: "k", body: chunks(bytes(10)) }),
        () => store.putObject({ bucket: "no-such-bucket", key: "k", body: chunks(bytes(MiB)) }),
        async () => {
          for await (const page of store.listObjects({ bucket: "no-such-bucket" })) expect(page).toBeDefined();
        },
      ];
      for (const call of calls) {
        const error = await expectStowageError(call());
        expect([error.code, error.reason]).toEqual([Code.NotFound, Reason.BucketNotFound]);
        expect(error.message).toContain('"bucket" setting');
      }
    });

    it("refuses empty, over-long and line-break keys with INVALID_NAME", async () => {
      for (const key of ["", "x".repeat(1025), "a\nb"]) {
        const error = await expectStowageError(store.headObject({ bucket: BUCKET, key }));
        expect(error.reason).toBe(Reason.InvalidName);
      }
    });

    it("replaces an object as a whole: metadata comes from the new put only", async () => {
      await store.putObject({ bucket: BUCKET, key: "over/k", body: chunks(bytes(10)), contentType: "text/a", metadata: { a: "1" } });
      await store.putObject({ bucket: BUCKET, key: "over/k", body: chunks(bytes(20)), metadata: { b: "2" } });
      const head = await store.headObject({ bucket: BUCKET, key: "over/k" });
      expect(head?.size).toBe(20);
      expect(head?.metadata).toEqual({ b: "2" });
    });

    it("cancels a read when its signal fires", async () => {
      const data = bytes(2 * MiB, 4);
      await oobUpload(fx.server.endpoint, BUCKET, "cancel/read", data);
      const controller = new AbortController();
      const got = await store.getObject({ bucket: BUCKET, key: "cancel/read" }, { signal: controller.signal });
      controller.abort();
      const error = await expectStowageError(buffer(got.body));
      expect(error.code).toBe(Code.Canceled);
    });
  });

  describe("resumable uploads (regression: fake-gcs-server's Location handling has broken Node clients before)", () => {
    it("streams a body larger than chunkSize as a resumable upload, byte-exact out of band", async () => {
      const data = bytes(MiB + 17, 5);
      const put = await store.putObject({ bucket: BUCKET, key: "resumable/one", body: chunks(data, 100 * KiB), size: data.length, metadata: { m: "1" } });
      expect(put.size).toBe(data.length);
      const oob = await oobMetadata(fx.server.endpoint, BUCKET, "resumable/one");
      expect(oob?.size).toBe(String(data.length));
      expect(oob?.crc32c).toBe(crc32cOf(data));
      expect(oob?.metadata).toEqual({ m: "1" });
      expect(sha256Hex(await oobDownload(fx.server.endpoint, BUCKET, "resumable/one"))).toBe(sha256Hex(data));
      const got = await store.getObject({ bucket: BUCKET, key: "resumable/one" });
      expect(sha256Hex(await buffer(got.body))).toBe(sha256Hex(data));
    });

    it("leaves no object when the upload is cancelled mid-way", async () => {
      const controller = new AbortController();
      async function* slowBody(): AsyncGenerator<Uint8Array> {
        for (let i = 0; i < 16; i++) {
          yield bytes(128 * KiB, i);
          if (i === 6) controller.abort();
        }
      }
      const error = await expectStowageError(store.putObject({ bucket: BUCKET, key: "resumable/cancelled", body: slowBody() }, { signal: controller.signal }));
      expect(error.code).toBe(Code.Canceled);
      expect(error.reason).toBe(Reason.Cancelled);
      expect(await oobMetadata(fx.server.endpoint, BUCKET, "resumable/cancelled")).toBeUndefined();
    });

    it("leaves no object when the body fails mid-way", async () => {
      async function* failing(): AsyncGenerator<Uint8Array> {
        yield bytes(600 * KiB);
        throw new StowageError(Code.Unavailable, "the sender went away");
      }
      const error = await expectStowageError(store.putObject({ bucket: BUCKET, key: "resumable/failed", body: failing() }));
      expect(error.message).toContain("the sender went away");
      expect(await oobMetadata(fx.server.endpoint, BUCKET, "resumable/failed")).toBeUndefined();
    });
  });

  describe("listing", () => {
    const keys = ["list/a/x", "list/a/b/1", "list/a/b/2", "list/a/é", "list/a/z", "list/c"];

    beforeAll(async () => {
      for (const key of keys) await oobUpload(fx.server.endpoint, BUCKET, key, bytes(2));
    });

    async function collect(input: Parameters<GcsObjectStore["listObjects"]>[0]): Promise<{ entries: string[]; pages: number; tokens: string[] }> {
      const entries: string[] = [];
      const tokens: string[] = [];
      let pages = 0;
      for await (const page of store.listObjects(input)) {
        pages += 1;
        expect(page.objects.length + page.commonPrefixes.length).toBeLessThanOrEqual(input.pageSize ?? 1000);
        entries.push(...[...page.objects.map((o) => o.key), ...page.commonPrefixes].sort());
        tokens.push(page.nextPageToken);
      }
      return { entries, pages, tokens };
    }

    it("rolls keys up at the delimiter, one entry per page, in UTF-8 byte order", async () => {
      const { entries, pages, tokens } = await collect({ bucket: BUCKET, prefix: "list/a/", delimiter: "/", pageSize: 1 });
      expect(entries).toEqual(["list/a/b/", "list/a/x", "list/a/z", "list/a/é"]);
      expect(pages).toBe(4);
      expect(tokens.at(-1)).toBe("");
      expect(tokens.slice(0, -1).every((t) => t !== "")).toBe(true);
    });

    it("lists every key without a delimiter, with sizes", async () => {
      const pages = [];
      for await (const page of store.listObjects({ bucket: BUCKET, prefix: "list/" })) pages.push(page);
      expect(pages).toHaveLength(1);
      expect(pages[0]?.objects.map((o) => o.key)).toEqual(["list/a/b/1", "list/a/b/2", "list/a/x", "list/a/z", "list/a/é", "list/c"]);
      expect(pages[0]?.objects.every((o) => o.size === 2 && o.etag !== "")).toBe(true);
    });

    it("resumes from a token across store instances and stops at maxPages", async () => {
      let first: string | undefined;
      for await (const page of store.listObjects({ bucket: BUCKET, prefix: "list/", pageSize: 2, maxPages: 1 })) {
        expect(page.objects.map((o) => o.key)).toEqual(["list/a/b/1", "list/a/b/2"]);
        first = page.nextPageToken;
      }
      const other = new GcsObjectStore();
      await other.init(fx.config);
      const rest: string[] = [];
      for await (const page of other.listObjects({ bucket: BUCKET, prefix: "list/", pageSize: 3, pageToken: first })) rest.push(...page.objects.map((o) => o.key));
      expect(rest).toEqual(["list/a/x", "list/a/z", "list/a/é", "list/c"]);
    });

    it("answers one empty page for a prefix that matches nothing", async () => {
      const { entries, pages, tokens } = await collect({ bucket: BUCKET, prefix: "nothing/" });
      expect([entries, pages, tokens]).toEqual([[], 1, [""]]);
    });

    it("refuses foreign tokens and bad page sizes", async () => {
      let token = "";
      for await (const page of store.listObjects({ bucket: BUCKET, prefix: "list/", pageSize: 1, maxPages: 1 })) token = page.nextPageToken;
      for (const input of [
        { bucket: BUCKET, prefix: "other/", pageToken: token },
        { bucket: BUCKET, prefix: "list/", pageToken: "garbage" },
      ]) {
        const error = await expectStowageError(collect(input));
        expect([error.code, error.reason]).toEqual([Code.InvalidArgument, Reason.InvalidPageToken]);
      }
      for (const pageSize of [1001, -1, 1.5]) {
        const error = await expectStowageError(collect({ bucket: BUCKET, pageSize }));
        expect(error.code).toBe(Code.InvalidArgument);
      }
    });
  });

  describe("signed URLs with a service-account key", () => {
    it("signs GET and PUT URLs that verify with the key's public half and work against the emulator", async () => {
      await oobUpload(fx.server.endpoint, BUCKET, "signed/a b", bytes(100, 2));
      const before = Date.now();
      const get = await store.createSignedUrl({ bucket: BUCKET, key: "signed/a b", ttlSeconds: 120 });
      expect(get.expiresAt.getTime()).toBeLessThanOrEqual(before + 120_000);
      expect(get.expiresAt.getTime()).toBeGreaterThan(before + 110_000);
      const url = new URL(get.url);
      expect(`${url.protocol}//${url.host}`).toBe(fx.server.endpoint);
      expect(url.searchParams.get("X-Goog-Algorithm")).toBe("GOOG4-RSA-SHA256");
      expect(url.searchParams.get("X-Goog-Credential")?.startsWith(`${fx.account.email}/`)).toBe(true);
      expect(url.searchParams.get("X-Goog-Expires")).toBe("120");
      expect(verifyV4(get.url, "GET", fx.account.publicKey)).toBe(true);
      expect(verifyV4(get.url.replace("signed/a", "signed/b"), "GET", fx.account.publicKey)).toBe(false);
      const response = await fetch(get.url);
      expect(response.status).toBe(200);
      expect(Buffer.from(await response.arrayBuffer()).equals(bytes(100, 2))).toBe(true);

      const put = await store.createSignedUrl({ bucket: BUCKET, key: "signed/put", method: "PUT", ttlSeconds: 60 });
      expect(verifyV4(put.url, "PUT", fx.account.publicKey)).toBe(true);
      const uploaded = await fetch(put.url, { method: "PUT", body: new Uint8Array(bytes(33)) });
      expect(uploaded.status).toBe(200);
      expect((await oobDownload(fx.server.endpoint, BUCKET, "signed/put")).equals(bytes(33))).toBe(true);
    });

    it("caps the validity at 7 days, refuses ttl below 1, and uses publicUrl as the host", async () => {
      const long = await store.createSignedUrl({ bucket: BUCKET, key: "k", ttlSeconds: 30 * 86_400 });
      expect(new URL(long.url).searchParams.get("X-Goog-Expires")).toBe("604800");
      expect(long.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 604_800_000);
      const error = await expectStowageError(store.createSignedUrl({ bucket: BUCKET, key: "k", ttlSeconds: 0 }));
      expect(error.code).toBe(Code.InvalidArgument);
      const pub = new GcsObjectStore();
      await pub.init({ ...fx.config, publicUrl: "https://backups.example.com" });
      const signed = await pub.createSignedUrl({ bucket: BUCKET, key: "k", ttlSeconds: 60 });
      expect(new URL(signed.url).host).toBe("backups.example.com");
      expect(verifyV4(signed.url, "GET", fx.account.publicKey)).toBe(true);
    });

    it("says why when the credentials cannot sign (no key, no service account)", async () => {
      const file = join(fx.dir, "user.json");
      await writeFile(file, JSON.stringify({ type: "authorized_user", client_id: "id", client_secret: "secret", refresh_token: "token" }));
      const user = new GcsObjectStore();
      await user.init({ storeEndpoint: fx.server.endpoint, credentialsFile: file });
      const error = await expectStowageError(user.createSignedUrl({ bucket: BUCKET, key: "k", ttlSeconds: 60 }));
      expect([error.code, error.reason]).toEqual([Code.Unimplemented, Reason.Unsupported]);
      expect(error.message).toContain("set serviceAccount");
    });
  });
});

describe("GcsObjectStore on the wire (through a proxy in front of fake-gcs-server)", () => {
  let server: FakeGcsServer;
  let proxy: Mockttp;
  let fx: GcsFixture;

  beforeAll(async () => {
    fx = await startGcsFixture();
    server = fx.server;
    await fx.createBucket(BUCKET);
    proxy = getLocal();
    await proxy.start();
  }, 60_000);

  afterAll(async () => {
    await proxy.stop();
    await fx.stop();
  });

  /**
   * Forwards a proxied request to fake-gcs-server keeping its Host header, so that resumable-upload
   * session URLs (built from Host) come back through the proxy; optionally with another body.
   */
  function forward(request: CompletedRequest, body?: Buffer): { url: string; headers: Record<string, string | string[] | undefined>; body?: Buffer } {
    const url = new URL(request.url);
    return { url: `${server.endpoint}${url.pathname}${url.search}`, headers: { ...request.headers, host: url.host }, ...(body === undefined ? {} : { body }) };
  }

  async function forwardTheRest(): Promise<void> {
    await proxy.forUnmatchedRequest().thenPassThrough({ beforeRequest: (request) => forward(request) });
  }

  it("authenticates with a self-signed JWT of the key (no token endpoint), and uploads in chunkSize chunks", async () => {
    proxy.reset();
    const init = await proxy.forPost(/\/upload\/storage\/v1\/b\/unit\/o/).thenPassThrough({ beforeRequest: (request) => forward(request) });
    const chunkPuts = await proxy.forPut(/\/upload\/storage\/v1\/b\/unit\/o/).thenPassThrough({ beforeRequest: (request) => forward(request) });
    const metadataGets = await proxy.forGet(/\/storage\/v1\/b\/unit\/o\/wire/).thenPassThrough({ beforeRequest: (request) => forward(request) });
    await forwardTheRest();
    const store = new GcsObjectStore();
    await store.init({ ...fx.config, storeEndpoint: proxy.url, chunkSize: "256KiB", kmsKeyName: "projects/p/locations/global/keyRings/r/cryptoKeys/k" });
    const data = bytes(600 * KiB, 11);
    await store.putObject({ bucket: BUCKET, key: "wire/resumable", body: chunks(data), contentType: "application/x-tar" });
    expect((await store.headObject({ bucket: BUCKET, key: "wire/resumable" }))?.size).toBe(data.length);

    const [start] = await init.getSeenRequests();
    expect(start?.url).toContain("uploadType=resumable");
    expect(start?.url).toContain("kmsKeyName=projects%2Fp%2Flocations%2Fglobal%2FkeyRings%2Fr%2FcryptoKeys%2Fk");
    expect(start?.headers["x-upload-content-type"]).toBe("application/x-tar");

    const [get] = await metadataGets.getSeenRequests();
    const auth = String(get?.headers.authorization ?? "");
    expect(auth.startsWith("Bearer ")).toBe(true);
    const [header, payload, signature] = auth.slice(7).split(".");
    const claims = JSON.parse(Buffer.from(payload ?? "", "base64url").toString()) as { iss?: string; scope?: string };
    expect(claims.iss).toBe(fx.account.email);
    expect(claims.scope).toContain("https://www.googleapis.com/auth/cloud-platform");
    expect(createVerify("RSA-SHA256").update(`${header ?? ""}.${payload ?? ""}`).verify(fx.account.publicKey, Buffer.from(signature ?? "", "base64url"))).toBe(true);

    const puts = await chunkPuts.getSeenRequests();
    expect(puts.map((p) => p.headers["content-range"])).toEqual(["bytes 0-262143/*", "bytes 262144-524287/*", `bytes 524288-${String(data.length - 1)}/${String(data.length)}`]);
    expect((await oobDownload(server.endpoint, BUCKET, "wire/resumable")).equals(data)).toBe(true);
  });

  it("detects a byte corrupted in transit in a resumable upload: DATA_LOSS, and no object remains", async () => {
    proxy.reset();
    let corrupted = false;
    await proxy.forPut(/\/upload\/storage\/v1\/b\/unit\/o/).thenPassThrough({
      beforeRequest: async (request) => {
        const body = await request.body.getDecodedBuffer();
        if (corrupted || body === undefined || body.length < 200) return forward(request);
        corrupted = true;
        const changed = Buffer.from(body);
        changed[100] = (changed[100] ?? 0) ^ 0xff;
        return forward(request, changed);
      },
    });
    await forwardTheRest();
    const store = new GcsObjectStore();
    await store.init({ ...fx.config, storeEndpoint: proxy.url, chunkSize: "256KiB" });
    const error = await expectStowageError(store.putObject({ bucket: BUCKET, key: "wire/corrupt-resumable", body: chunks(bytes(600 * KiB, 12)) }));
    expect(corrupted).toBe(true);
    expect([error.code, error.reason]).toEqual([Code.DataLoss, Reason.IntegrityMismatch]);
    expect(await oobMetadata(server.endpoint, BUCKET, "wire/corrupt-resumable")).toBeUndefined();
  });

  it("declares the CRC32C of a single-request upload, so the server refuses a corrupted body before storing it", async () => {
    proxy.reset();
    let declared: unknown;
    await proxy.forPost(/\/upload\/storage\/v1\/b\/unit\/o/).thenPassThrough({
      beforeRequest: async (request) => {
        const body = await request.body.getDecodedBuffer();
        if (body === undefined) return forward(request);
        const text = body.toString("latin1");
        declared = /"crc32c":"([^"]+)"/.exec(text)?.[1];
        // Flip one byte of the media part (after the JSON part's closing brace).
        const at = text.lastIndexOf("}") + 80;
        const changed = Buffer.from(body);
        changed[at] = (changed[at] ?? 0) ^ 0xff;
        return forward(request, changed);
      },
    });
    await forwardTheRest();
    const store = new GcsObjectStore();
    await store.init({ ...fx.config, storeEndpoint: proxy.url });
    const data = bytes(4 * KiB, 13);
    const error = await expectStowageError(store.putObject({ bucket: BUCKET, key: "wire/corrupt-small", body: chunks(data) }));
    expect(declared).toBe(crc32cOf(data));
    expect([error.code, error.reason]).toEqual([Code.DataLoss, Reason.IntegrityMismatch]);
    expect(await oobMetadata(server.endpoint, BUCKET, "wire/corrupt-small")).toBeUndefined();
  });

  it("fails a read with ABORTED when the object is replaced after its metadata was read", async () => {
    proxy.reset();
    await oobUpload(server.endpoint, BUCKET, "wire/replaced", bytes(1000, 1));
    let replaced = false;
    await proxy.forGet(/wire%2Freplaced/).thenPassThrough({
      beforeRequest: async (request) => {
        // The metadata read passes; the media download (pinned to the generation read) comes after.
        if (!request.url.includes("alt=media")) return forward(request);
        expect(request.url).toContain("generation=");
        // Another writer replaces the object between the metadata read and the download.
        await oobUpload(server.endpoint, BUCKET, "wire/replaced", bytes(2000, 2));
        replaced = true;
        return forward(request);
      },
    });
    await forwardTheRest();
    const store = new GcsObjectStore();
    await store.init({ ...fx.config, storeEndpoint: proxy.url });
    const got = await store.getObject({ bucket: BUCKET, key: "wire/replaced" });
    expect(got.object.size).toBe(1000);
    const error = await expectStowageError(buffer(got.body));
    expect(replaced).toBe(true);
    expect(error.code).toBe(Code.Aborted);
  });

  it("retries a throttled call, and maps forbidden to PERMISSION_DENIED", async () => {
    proxy.reset();
    await oobUpload(server.endpoint, BUCKET, "throttled", bytes(5));
    const throttled = await proxy
      .forGet(/\/storage\/v1\/b\/unit\/o\/throttled/)
      .once()
      .thenJson(429, { error: { code: 429, message: "slow down", errors: [{ reason: "rateLimitExceeded", message: "slow down" }] } });
    await proxy.forGet(/\/storage\/v1\/b\/unit\/o\/forbidden/).thenJson(403, { error: { code: 403, message: "no", errors: [{ reason: "forbidden", message: "no" }] } });
    await forwardTheRest();
    const store = new GcsObjectStore();
    await store.init({ ...fx.config, storeEndpoint: proxy.url });
    expect((await store.headObject({ bucket: BUCKET, key: "throttled" }))?.size).toBe(5);
    expect(await throttled.getSeenRequests()).toHaveLength(1);
    const forbidden = await expectStowageError(store.headObject({ bucket: BUCKET, key: "forbidden" }));
    expect([forbidden.code, forbidden.reason]).toEqual([Code.PermissionDenied, Reason.AccessDenied]);
    expect(forbidden.metadata.google_reason).toBe("forbidden");
  });
});
