import { Code, Reason, StowageError } from "@stowage/sdk";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { OBJECT_STORE_CONFIG_KEYS } from "./config.js";
import { LocalObjectStore } from "./local-object-store.js";
import { parseRangeHeader } from "./signed-url-server.js";
import { freePort } from "../../test/support/filesystem.js";

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

describe("downloads", () => {
  it("are never run or rendered by a browser: nosniff, attachment, a sandbox, and no active type", async () => {
    await store.putObject({ bucket: BUCKET, key: "page.html", body: Readable.from([Buffer.from("<script>alert(1)</script>")]), contentType: "text/html; charset=utf-8" });
    await store.putObject({ bucket: BUCKET, key: "logo.svg", body: Readable.from([Buffer.from("<svg/>")]), contentType: "image/svg+xml" });
    for (const key of ["page.html", "logo.svg"]) {
      const response = await fetch(await signed("GET", key));
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("application/octet-stream");
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      expect(response.headers.get("content-disposition")).toBe(`attachment; filename*=UTF-8''${key}`);
      expect(response.headers.get("content-security-policy")).toBe("default-src 'none'; sandbox");
    }
    // A passive type is served as stored, with the same protections; so are refusals.
    const passive = await fetch(await signed("GET"));
    expect([passive.headers.get("content-type"), passive.headers.get("x-content-type-options")]).toEqual(["text/x-digits", "nosniff"]);
    expect(passive.headers.get("content-disposition")).toBe("attachment; filename*=UTF-8''obj%20%3F%23%26");
    const refused = await fetch(await signed("GET", "missing"));
    expect([refused.status, refused.headers.get("x-content-type-options")]).toEqual([404, "nosniff"]);
  });

  it("refuse an upload whose content type is not a media type", async () => {
    const url = await signed("PUT", "uploads/bad");
    // fetch refuses CR/LF in headers itself: send a raw request.
    const { hostname, port, pathname, search } = new URL(url);
    const response = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => {
        socket.end(`PUT ${pathname}${search} HTTP/1.1\r\nHost: x\r\nContent-Type: text/html, ; =\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx`);
      });
      let text = "";
      socket.on("data", (chunk: Buffer) => (text += chunk.toString()));
      socket.on("end", () => resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1]), body: text }));
      socket.on("error", reject);
    });
    expect(response.status).toBe(400);
    expect(response.body).toContain("content type");
    expect(await store.headObject({ bucket: BUCKET, key: "uploads/bad" })).toBeUndefined();
  });
});

describe("signing keys", () => {

  it("from a key file and a fixed address keep URLs working after a restart", async () => {
    const keyFile = join(root, "keys", "signing.key");
    await mkdir(join(root, "keys"));
    const config = { root, signingKeyFile: keyFile, signedUrlAddress: `127.0.0.1:${String(await freePort())}` };
    const first = new LocalObjectStore({ now: () => now });
    await first.init(config);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    expect((await readFile(keyFile, "utf8")).trim()).toMatch(/^[0-9a-f]{64}$/);
    const { url } = await first.createSignedUrl({ bucket: BUCKET, key: "dir/../obj ?#&", ttlSeconds: 600 });
    await first.close();
    await expect(fetch(url)).rejects.toThrow(); // nothing listens while no store runs
    const second = new LocalObjectStore({ now: () => now });
    try {
      await second.init(config); // serves at init: the old URL works without a new one being made
      const response = await fetch(url);
      expect([response.status, await response.text()]).toEqual([200, "0123456789"]);
    } finally {
      await second.close();
    }
  });

  it("without them, die with the store that signed them", async () => {
    const port = await freePort();
    const first = new LocalObjectStore({ now: () => now });
    await first.init({ root, signedUrlAddress: `127.0.0.1:${String(port)}` });
    const { url } = await first.createSignedUrl({ bucket: BUCKET, key: "dir/../obj ?#&", ttlSeconds: 600 });
    await first.close();
    const second = new LocalObjectStore({ now: () => now });
    try {
      await second.init({ root, signedUrlAddress: `127.0.0.1:${String(port)}` });
      expect((await fetch(url)).status).toBe(403);
    } finally {
      await second.close();
    }
  });

  it("may be given inline, as a secret, and must be long enough", async () => {
    const spec = OBJECT_STORE_CONFIG_KEYS.find((key) => key.name === "signingKey");
    expect(spec?.secret).toBe(true);
    const key = "k".repeat(32);
    const a = new LocalObjectStore({ now: () => now });
    const b = new LocalObjectStore({ now: () => now });
    try {
      await a.init({ root, signingKey: key });
      await b.init({ root, signingKey: key });
      const ref = { bucket: BUCKET, key: "dir/../obj ?#&", ttlSeconds: 60 };
      const fromA = new URL((await a.createSignedUrl(ref)).url);
      const fromB = new URL((await b.createSignedUrl(ref)).url);
      expect(fromA.searchParams.get("signature")).toBe(fromB.searchParams.get("signature"));
    } finally {
      await a.close();
      await b.close();
    }
    const short = await new LocalObjectStore().init({ root, signingKey: "short" }).catch((e: unknown) => e);
    expect(short).toMatchObject({ code: Code.InvalidArgument, reason: Reason.InvalidConfig, metadata: { key: "signingKey" } });
    expect((short as Error).message).not.toContain("short\"");
    const both = await new LocalObjectStore().init({ root, signingKey: key, signingKeyFile: join(root, "k") }).catch((e: unknown) => e);
    expect(both).toMatchObject({ code: Code.InvalidArgument, reason: Reason.InvalidConfig });
    await writeFile(join(root, "weak.key"), "too short");
    const weak = await new LocalObjectStore().init({ root, signingKeyFile: join(root, "weak.key") }).catch((e: unknown) => e);
    expect(weak).toMatchObject({ code: Code.InvalidArgument, reason: Reason.InvalidConfig, metadata: { key: "signingKeyFile" } });
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
