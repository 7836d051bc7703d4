import { Code, StowageError } from "@stowage/sdk";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LocalObjectStore } from "./local-object-store.js";
import { parseRangeHeader } from "./signed-url-server.js";

const BUCKET = "b";
let root: string;
let store: LocalObjectStore;
let now: number;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "stowage-local-url-"));
  await mkdir(join(root, BUCKET));
  now = Date.parse("2030-01-01T00:00:00Z");
  store = new LocalObjectStore({ now: () => now });
  await store.init({ root });
  await store.putObject({ bucket: BUCKET, key: "dir/../obj ?#&", body: Readable.from([Buffer.from("0123456789")]), contentType: "text/x-digits" });
});

afterEach(async () => {
  await store.close();
  await rm(root, { recursive: true, force: true });
});

async function signed(method: "GET" | "PUT", key = "dir/../obj ?#&", ttlSeconds = 60): Promise<string> {
  return (await store.createSignedUrl({ bucket: BUCKET, key, method, ttlSeconds })).url;
}

describe("signed URLs", () => {
  it("serve GET with length, type and etag", async () => {
    const url = await signed("GET");
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/object\?/);
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("0123456789");
    expect(response.headers.get("content-length")).toBe("10");
    expect(response.headers.get("content-type")).toBe("text/x-digits");
    const info = await store.headObject({ bucket: BUCKET, key: "dir/../obj ?#&" });
    expect(response.headers.get("etag")).toBe(`"${info?.etag}"`);
  });

  it("serve byte ranges", async () => {
    const url = await signed("GET");
    const cases: [string, number, string, string | null][] = [
      ["bytes=2-4", 206, "234", "bytes 2-4/10"],
      ["bytes=7-", 206, "789", "bytes 7-9/10"],
      ["bytes=8-100", 206, "89", "bytes 8-9/10"],
      ["bytes=-3", 206, "789", "bytes 7-9/10"],
      ["bytes=0-0,2-3", 200, "0123456789", null],
    ];
    for (const [range, status, body, contentRange] of cases) {
      const response = await fetch(url, { headers: { Range: range } });
      expect([range, response.status, await response.text(), response.headers.get("content-range")]).toEqual([range, status, body, contentRange]);
    }
    expect((await fetch(url, { headers: { Range: "bytes=10-" } })).status).toBe(416);
  });

  it("store PUT bodies atomically through the put path", async () => {
    const url = await signed("PUT", "uploads/new");
    const response = await fetch(url, { method: "PUT", body: "uploaded bytes", headers: { "Content-Type": "text/plain" } });
    expect(response.status).toBe(200);
    const output = await store.getObject({ bucket: BUCKET, key: "uploads/new" });
    expect(Buffer.concat(await output.body.toArray()).toString()).toBe("uploaded bytes");
    expect(output.object.contentType).toBe("text/plain");
    expect(response.headers.get("etag")).toBe(`"${output.object.etag}"`);
    expect(await readdir(join(root, BUCKET, "~tmp"))).toEqual([]);
  });

  it("refuse expired URLs", async () => {
    const url = await signed("GET", "dir/../obj ?#&", 1);
    now += 1000;
    expect((await fetch(url)).status).toBe(200);
    now += 1;
    const response = await fetch(url);
    expect(response.status).toBe(403);
    expect(await response.text()).toContain("expired");
  });

  it("refuse tampered URLs", async () => {
    const url = new URL(await signed("GET"));
    const tamper = (name: string, value: string): string => {
      const copy = new URL(url);
      copy.searchParams.set(name, value);
      return copy.href;
    };
    const signature = url.searchParams.get("signature") ?? "";
    const forged = [
      tamper("key", "other"),
      tamper("bucket", "c"),
      tamper("expires", String(now + 10 ** 9)),
      tamper("signature", signature.replace(/^./, (c) => (c === "A" ? "B" : "A"))),
      tamper("signature", ""),
    ];
    for (const href of forged) expect((await fetch(href)).status).toBe(403);
    // Turning a GET URL into a PUT URL breaks the signature too.
    expect((await fetch(tamper("method", "PUT"), { method: "PUT", body: "overwritten" })).status).toBe(403);
    expect((await store.headObject({ bucket: BUCKET, key: "dir/../obj ?#&" }))?.size).toBe(10);
  });

  it("refuse methods the URL was not signed for", async () => {
    expect((await fetch(await signed("GET"), { method: "PUT", body: "x" })).status).toBe(403);
    expect((await fetch(await signed("PUT"), { method: "GET" })).status).toBe(403);
    expect((await fetch(await signed("GET"), { method: "DELETE" })).status).toBe(403);
    expect((await store.headObject({ bucket: BUCKET, key: "dir/../obj ?#&" }))?.size).toBe(10);
  });

  it("answer 404 for a missing object", async () => {
    expect((await fetch(await signed("GET", "missing"))).status).toBe(404);
  });

  it("clamp the validity to maxSignedUrlTtlSeconds and report the real expiry", async () => {
    await store.init({ root, maxSignedUrlTtlSeconds: "10" });
    const result = await store.createSignedUrl({ bucket: BUCKET, key: "k", ttlSeconds: 3600 });
    expect(result.expiresAt.getTime()).toBe(now + 10_000);
    const short = await store.createSignedUrl({ bucket: BUCKET, key: "k", ttlSeconds: 5 });
    expect(short.expiresAt.getTime()).toBe(now + 5_000);
  });

  it("refuse a validity under one second", async () => {
    for (const ttlSeconds of [0, 0.5, -1, Number.NaN]) {
      const error = await store.createSignedUrl({ bucket: BUCKET, key: "k", ttlSeconds }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StowageError);
      expect((error as StowageError).code).toBe(Code.InvalidArgument);
    }
  });

  it("use signedUrlBase in place of the bound address", async () => {
    await store.init({ root, signedUrlBase: "https://backups.example.com/store/" });
    const { url } = await store.createSignedUrl({ bucket: BUCKET, key: "k", ttlSeconds: 60 });
    expect(url.startsWith("https://backups.example.com/store/object?")).toBe(true);
  });

  it("restart the server on another address after init changes it", async () => {
    const before = new URL(await signed("GET"));
    await store.init({ root, signedUrlAddress: "[::1]:0" });
    const after = new URL(await signed("GET"));
    expect(after.hostname).toBe("[::1]");
    expect((await fetch(after)).status).toBe(200);
    await expect(fetch(before)).rejects.toThrow();
  });
});

describe("parseRangeHeader", () => {
  it("reads the single-range forms and ignores the rest", () => {
    expect(parseRangeHeader("bytes=0-9")).toEqual({ first: 0, last: 9 });
    expect(parseRangeHeader("bytes=5-")).toEqual({ first: 5 });
    expect(parseRangeHeader("bytes=-5")).toEqual({ suffix: 5 });
    for (const other of ["bytes=5-1", "bytes=-", "items=0-1", "bytes=0-1,3-4"]) expect(parseRangeHeader(other)).toBeUndefined();
  });
});
