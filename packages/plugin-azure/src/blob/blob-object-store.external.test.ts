import { AccountSASPermissions, AccountSASResourceTypes, AccountSASServices, generateAccountSASQueryParameters, StorageSharedKeyCredential } from "@azure/storage-blob";
import { Code, Reason, type Logger } from "@stowage/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blobExists, bytes, chunks, startAzuriteFixture, type AzuriteFixture } from "../../test/support/blob-fixture.js";
import { BlobObjectStore, decodeMetadata, encodeMetadata } from "./blob-object-store.js";
import { BLOB_CONFIG_KEYS, DEFAULT_BLOCK_SIZE, MAX_CONFIG_BLOCK_SIZE, parseBlockSize } from "./config.js";
import { rejection, sha256Hex } from "@stowage/sdk/testing";
import { buffer } from "node:stream/consumers";

const MiB = 1024 * 1024;
const CONTAINER = "stowage";
let azurite: AzuriteFixture;
let store: BlobObjectStore;

beforeAll(async () => {
  azurite = await startAzuriteFixture([CONTAINER]);
  store = new BlobObjectStore();
  await store.init({ ...azurite.config, blockSizeInBytes: String(MiB), uploadConcurrency: "2" });
}, 60_000);

afterAll(async () => {
  await azurite.stop();
});

describe("init", () => {
  it("rejects unknown keys, listing the valid ones", async () => {
    const error = await rejection(new BlobObjectStore().init({ ...azurite.config, storageaccount: "x" }));
    expect(error.reason).toBe(Reason.InvalidConfig);
    for (const key of BLOB_CONFIG_KEYS) expect(error.metadata.valid_keys).toContain(key.name);
  });

  it("rejects malformed values with the key named", async () => {
    for (const [bad, key] of [
      [{ storageAccountURI: "ftp://x" }, "storageAccountURI"],
      [{ useAAD: "yes" }, "useAAD"],
      [{ uploadConcurrency: "0" }, "uploadConcurrency"],
      [{ storageAccount: "Bad_Name" }, "storageAccount"],
      [{ caCert: "/nonexistent/ca.pem" }, "caCert"],
    ] as const) {
      const error = await rejection(new BlobObjectStore().init({ ...azurite.config, ...bad }));
      expect(error.reason).toBe(Reason.InvalidConfig);
      expect(error.metadata.key).toBe(key);
    }
  });

  it("names the missing credentials-file entry of storageAccountKeyEnvVar", async () => {
    const error = await rejection(new BlobObjectStore().init({ ...azurite.config, storageAccountKeyEnvVar: "NO_SUCH_ENTRY" }));
    expect(error.reason).toBe(Reason.InvalidConfig);
    expect(error.message).toContain("NO_SUCH_ENTRY");
  });

  it("without key, SAS or useAAD needs the subscription for the ListKeys exchange, naming the key and the credentials-file entry", async () => {
    const rest = Object.fromEntries(Object.entries(azurite.config).filter(([key]) => key !== "storageAccountKeyEnvVar"));
    const error = await rejection(new BlobObjectStore({ configure: { env: {} } }).init(rest));
    expect(error.reason).toBe(Reason.InvalidConfig);
    expect(error.metadata.key).toBe("subscriptionId");
    expect(error.message).toContain("AZURE_SUBSCRIPTION_ID");
    expect(error.message).toContain("ListKeys");
    expect(error.message).toContain("useAAD=true");
    const withSubscription = await rejection(new BlobObjectStore({ configure: { env: {} } }).init({ ...rest, subscriptionId: "00000000-0000-4000-8000-000000000009" }));
    expect(withSubscription.metadata.key).toBe("resourceGroup");
    expect(withSubscription.message).toContain("AZURE_RESOURCE_GROUP");
  });

  it("reads blockSizeInBytes leniently, as Velero does", () => {
    const warnings: string[] = [];
    const logger = { warn: (_fields: unknown, message: string) => warnings.push(message) } as unknown as Logger;
    expect(parseBlockSize(undefined, logger)).toBe(DEFAULT_BLOCK_SIZE);
    expect(parseBlockSize("1048576", logger)).toBe(MiB);
    expect(parseBlockSize("4MiB", logger)).toBe(4 * MiB);
    expect(warnings).toEqual([]);
    expect(parseBlockSize("abc", logger)).toBe(DEFAULT_BLOCK_SIZE);
    expect(parseBlockSize("0", logger)).toBe(DEFAULT_BLOCK_SIZE);
    expect(parseBlockSize(String(500 * MiB), logger)).toBe(MAX_CONFIG_BLOCK_SIZE);
    expect(warnings).toHaveLength(3);
  });

  it("fails calls before init with NOT_INITIALIZED", async () => {
    const error = await rejection(new BlobObjectStore().headObject({ bucket: CONTAINER, key: "k" }));
    expect(error.reason).toBe(Reason.NotInitialized);
  });
});

describe("put", () => {
  it("stages a multi-block body with fixed-width block IDs and commits it once", async () => {
    const data = bytes(5 * MiB + 12_345);
    // Odd chunk sizes, so blocks straddle chunks.
    const put = await store.putObject({ bucket: CONTAINER, key: "blocks/five.bin", body: chunks(data, 300_001), size: data.length, contentType: "application/x-test" });
    expect(put.size).toBe(data.length);
    expect(put.etag).not.toBe("");
    const client = azurite.oob.getContainerClient(CONTAINER).getBlockBlobClient("blocks/five.bin");
    const list = await client.getBlockList("all");
    expect(list.uncommittedBlocks ?? []).toEqual([]);
    const committed = list.committedBlocks ?? [];
    expect(committed.map((b) => b.size)).toEqual([MiB, MiB, MiB, MiB, MiB, 12_345]);
    expect(new Set(committed.map((b) => b.name.length)).size).toBe(1);
    expect(sha256Hex(await client.downloadToBuffer())).toBe(sha256Hex(data));
    expect((await client.getProperties()).contentType).toBe("application/x-test");
  }, 60_000);

  it("puts a body of at most one block with a single Put Blob, and an empty body", async () => {
    await store.putObject({ bucket: CONTAINER, key: "small", body: chunks(Buffer.from("hello")) });
    const client = azurite.oob.getContainerClient(CONTAINER).getBlockBlobClient("small");
    expect((await client.downloadToBuffer()).toString()).toBe("hello");
    expect((await client.getBlockList("all")).committedBlocks ?? []).toEqual([]);
    const exact = bytes(MiB);
    await store.putObject({ bucket: CONTAINER, key: "exact", body: chunks(exact, 4096), size: MiB });
    expect(sha256Hex(await azurite.oob.getContainerClient(CONTAINER).getBlobClient("exact").downloadToBuffer())).toBe(sha256Hex(exact));
    const empty = await store.putObject({ bucket: CONTAINER, key: "empty", body: chunks(Buffer.alloc(0)), size: 0 });
    expect(empty.size).toBe(0);
    expect((await store.headObject({ bucket: CONTAINER, key: "empty" }))?.size).toBe(0);
  });

  it("stores nothing when the size or SHA-256 does not match", async () => {
    const data = bytes(3 * MiB);
    for (const extra of [{ size: data.length + 1 }, { size: data.length - 1 }, { sha256: new Uint8Array(32) }]) {
      const error = await rejection(store.putObject({ bucket: CONTAINER, key: "bad/integrity", body: chunks(data, 65_536), ...extra }));
      expect(error.reason).toBe(Reason.IntegrityMismatch);
      expect(await blobExists(azurite.oob, CONTAINER, "bad/integrity")).toBe(false);
    }
    const good = await store.putObject({ bucket: CONTAINER, key: "good/integrity", body: chunks(data), sha256: Buffer.from(sha256Hex(data), "hex") });
    expect(Buffer.from(good.sha256 ?? []).toString("hex")).toBe(sha256Hex(data));
  });

  it("commits nothing when the caller cancels mid-body", async () => {
    const controller = new AbortController();
    async function* body(): AsyncGenerator<Uint8Array> {
      yield bytes(MiB);
      yield bytes(MiB);
      yield bytes(MiB);
      controller.abort();
      // A body that would never end on its own.
      await new Promise(() => undefined);
    }
    const error = await rejection(store.putObject({ bucket: CONTAINER, key: "cancelled", body: body() }, { signal: controller.signal }));
    expect(error.code).toBe(Code.Canceled);
    expect(await blobExists(azurite.oob, CONTAINER, "cancelled")).toBe(false);
  });

  it("fails with BUCKET_NOT_FOUND in a missing container", async () => {
    const error = await rejection(store.putObject({ bucket: "no-such-container", key: "k", body: chunks(bytes(3 * MiB)) }));
    expect(error.reason).toBe(Reason.BucketNotFound);
  });

  it("keeps metadata names Azure refuses, and non-ASCII values", async () => {
    const metadata = { "backup-name": "b1", owner_id: "42", Upper: "x", "h_trap": "y", note: "größe ✓" };
    await store.putObject({ bucket: CONTAINER, key: "meta", body: chunks(Buffer.from("{}")), metadata, contentType: "application/json" });
    const head = await store.headObject({ bucket: CONTAINER, key: "meta" });
    expect(head?.metadata).toEqual(metadata);
    expect(head?.contentType).toBe("application/json");
    const raw = (await azurite.oob.getContainerClient(CONTAINER).getBlobClient("meta").getProperties()).metadata ?? {};
    expect(Object.keys(raw)).toContain("owner_id");
    expect(decodeMetadata(encodeMetadata(metadata))).toEqual(metadata);
  });

  it("keeps dot segments and double slashes in keys distinct", async () => {
    const keys = ["d/a//b", "d/a/b", "d/a/./b", "d/a/../b", "d/a/"];
    for (const key of keys) await store.putObject({ bucket: CONTAINER, key, body: chunks(Buffer.from(key)) });
    for (const key of keys) expect((await buffer((await store.getObject({ bucket: CONTAINER, key })).body)).toString()).toBe(key);
    const listed: string[] = [];
    for await (const page of store.listObjects({ bucket: CONTAINER, prefix: "d/" })) listed.push(...page.objects.map((o) => o.key));
    expect(listed.sort()).toEqual([...keys].sort());
  });
});

describe("get, head, delete", () => {
  it("reads ranges, shortens ranges at the end and refuses offsets past it", async () => {
    await store.putObject({ bucket: CONTAINER, key: "ten", body: chunks(Buffer.from("0123456789")) });
    const read = async (offset: number, length?: number): Promise<string> => {
      const out = await store.getObject({ bucket: CONTAINER, key: "ten", range: { offset, ...(length === undefined ? {} : { length }) } });
      expect(out.object.size).toBe(10);
      expect(out.offset).toBe(offset);
      return (await buffer(out.body)).toString();
    };
    expect(await read(2, 3)).toBe("234");
    expect(await read(8, 5)).toBe("89");
    expect(await read(4)).toBe("456789");
    expect(await read(10)).toBe("");
    expect(await read(3, 0)).toBe("");
    expect((await rejection(read(11))).reason).toBe(Reason.InvalidRange);
  });

  it("reports missing blobs and containers", async () => {
    expect(await store.headObject({ bucket: CONTAINER, key: "missing" })).toBeUndefined();
    expect((await rejection(store.getObject({ bucket: CONTAINER, key: "missing" }))).reason).toBe(Reason.ObjectNotFound);
    expect((await rejection(store.headObject({ bucket: "no-such-container", key: "k" }))).reason).toBe(Reason.BucketNotFound);
    expect((await rejection(store.getObject({ bucket: "no-such-container", key: "k" }))).reason).toBe(Reason.BucketNotFound);
  });

  it("deletes, and deleting a missing blob succeeds", async () => {
    await store.putObject({ bucket: CONTAINER, key: "doomed", body: chunks(Buffer.from("x")) });
    await store.deleteObject({ bucket: CONTAINER, key: "doomed" });
    expect(await blobExists(azurite.oob, CONTAINER, "doomed")).toBe(false);
    await store.deleteObject({ bucket: CONTAINER, key: "doomed" });
    expect((await rejection(store.deleteObject({ bucket: "no-such-container", key: "k" }))).reason).toBe(Reason.BucketNotFound);
  });

  it("refuses keys over 1024 bytes and empty names", async () => {
    expect((await rejection(store.headObject({ bucket: CONTAINER, key: "x".repeat(1025) }))).reason).toBe(Reason.InvalidName);
    expect((await rejection(store.headObject({ bucket: CONTAINER, key: "" }))).reason).toBe(Reason.InvalidName);
  });
});

describe("list", () => {
  beforeAll(async () => {
    for (const key of ["l/a", "l/b/1", "l/b/2", "l/c", "l/d"]) await store.putObject({ bucket: CONTAINER, key, body: chunks(Buffer.from(key)) });
  });

  it("pages with tokens and resumes from a token", async () => {
    const pages: string[][] = [];
    for await (const page of store.listObjects({ bucket: CONTAINER, prefix: "l/", pageSize: 2 })) pages.push(page.objects.map((o) => o.key));
    expect(pages).toEqual([["l/a", "l/b/1"], ["l/b/2", "l/c"], ["l/d"]]);
    const first = await store.listObjects({ bucket: CONTAINER, prefix: "l/", pageSize: 2, maxPages: 1 })[Symbol.asyncIterator]().next();
    const token = first.done === true ? "" : first.value.nextPageToken;
    const rest: string[] = [];
    for await (const page of store.listObjects({ bucket: CONTAINER, prefix: "l/", pageSize: 2, pageToken: token })) rest.push(...page.objects.map((o) => o.key));
    expect(rest).toEqual(["l/b/2", "l/c", "l/d"]);
    const wrong = await rejection(store.listObjects({ bucket: CONTAINER, prefix: "other/", pageToken: token })[Symbol.asyncIterator]().next());
    expect(wrong.reason).toBe(Reason.InvalidPageToken);
  });

  it("rolls keys up at a delimiter", async () => {
    const objects: string[] = [];
    const prefixes: string[] = [];
    for await (const page of store.listObjects({ bucket: CONTAINER, prefix: "l/", delimiter: "/" })) {
      objects.push(...page.objects.map((o) => o.key));
      prefixes.push(...page.commonPrefixes);
    }
    expect(objects).toEqual(["l/a", "l/c", "l/d"]);
    expect(prefixes).toEqual(["l/b/"]);
  });

  it("fails with BUCKET_NOT_FOUND for a missing container", async () => {
    const error = await rejection(store.listObjects({ bucket: "no-such-container" })[Symbol.asyncIterator]().next());
    expect(error.reason).toBe(Reason.BucketNotFound);
  });
});

describe("signed URLs and SAS auth", () => {
  it("makes a read-only service SAS that a plain HTTP client can use", async () => {
    const data = bytes(100_000);
    await store.putObject({ bucket: CONTAINER, key: "signed/get me?&#", body: chunks(data) });
    const before = Date.now();
    const signed = await store.createSignedUrl({ bucket: CONTAINER, key: "signed/get me?&#", ttlSeconds: 60 });
    expect(signed.expiresAt.getTime()).toBeLessThanOrEqual(before + 60_000 + 1000);
    expect(new URL(signed.url).searchParams.get("sp")).toBe("r");
    const response = await fetch(signed.url);
    expect(response.status).toBe(200);
    expect(sha256Hex(Buffer.from(await response.arrayBuffer()))).toBe(sha256Hex(data));
    const put = await fetch(signed.url, { method: "PUT", body: "x", headers: { "x-ms-blob-type": "BlockBlob" } });
    await put.arrayBuffer();
    expect(put.status).toBe(403);
  });

  it("refuses PUT URLs and ttl 0", async () => {
    expect((await rejection(store.createSignedUrl({ bucket: CONTAINER, key: "k", method: "PUT", ttlSeconds: 60 }))).code).toBe(Code.Unimplemented);
    expect((await rejection(store.createSignedUrl({ bucket: CONTAINER, key: "k", ttlSeconds: 0 }))).code).toBe(Code.InvalidArgument);
  });

  it("authenticates with a SAS token from the credentials file, which cannot sign URLs", async () => {
    const sas = generateAccountSASQueryParameters(
      {
        expiresOn: new Date(Date.now() + 3600_000),
        permissions: AccountSASPermissions.parse("rwdlac"),
        resourceTypes: AccountSASResourceTypes.parse("sco").toString(),
        services: AccountSASServices.parse("b").toString(),
      },
      new StorageSharedKeyCredential(azurite.server.accountName, azurite.server.accountKey),
    ).toString();
    const file = await azurite.credentialsFile({ AZURE_STORAGE_SAS_TOKEN: sas });
    const sasStore = new BlobObjectStore();
    await sasStore.init({ storageAccount: azurite.server.accountName, storageAccountURI: azurite.server.blobEndpoint, credentialsFile: file });
    const data = bytes(2 * MiB + 1);
    await sasStore.putObject({ bucket: CONTAINER, key: "via-sas", body: chunks(data), size: data.length });
    expect(sha256Hex(await buffer((await sasStore.getObject({ bucket: CONTAINER, key: "via-sas" })).body))).toBe(sha256Hex(data));
    const error = await rejection(sasStore.createSignedUrl({ bucket: CONTAINER, key: "via-sas", ttlSeconds: 60 }));
    expect(error.code).toBe(Code.FailedPrecondition);
  });

  it("a wrong account key is UNAUTHENTICATED or PERMISSION_DENIED, not a crash", async () => {
    const file = await azurite.credentialsFile({ AZURE_STORAGE_ACCOUNT_ACCESS_KEY: Buffer.alloc(64, 1).toString("base64") });
    const bad = new BlobObjectStore();
    await bad.init({ ...azurite.config, credentialsFile: file });
    const error = await rejection(bad.headObject({ bucket: CONTAINER, key: "small" }));
    expect([Code.Unauthenticated, Code.PermissionDenied]).toContain(error.code);
    expect(error.reason).toBe(Reason.AccessDenied);
  });
});
