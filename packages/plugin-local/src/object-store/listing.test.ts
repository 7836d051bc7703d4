import { Code, Reason, type ListObjectsInput, type ListObjectsPage } from "@stowage/sdk";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { LocalObjectStore } from "./local-object-store.js";
import { rejection } from "@stowage/sdk/testing";

// Count directory reads (the spy delegates to the real readdir).
vi.mock("node:fs/promises", async (importOriginal) => {
  const original = await importOriginal<typeof import("node:fs/promises")>();
  return { ...original, readdir: vi.fn(original.readdir) };
});

const BUCKET = "b";
const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/**
 * 1,100 keys in many directories, chosen so that directory order and UTF-16 order both disagree
 * with byte order: `a!` sorts before `a/…`, U+E000 and U+FFFD before an emoji.
 */
const STEMS = ["a", "a!", "a/", "a/b/", "a/b!", "\u{1F600}", "\uFFFD", "\uE000x/", "\u00e9/", "e\u0301", "Z/", " ", "a-", "a/b/c/", "//"];
const KEYS = Array.from({ length: 1100 }, (_, i) => `${STEMS[i % STEMS.length] ?? ""}${i}`);
const SORTED = [...KEYS].sort(byBytes);

let root: string;
let store: LocalObjectStore;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "stowage-local-list-"));
  await mkdir(join(root, BUCKET));
  store = new LocalObjectStore();
  await store.init({ root, fsync: "false" });
  for (const key of KEYS) await store.putObject({ bucket: BUCKET, key, body: Readable.from([Buffer.from(key)]) });
}, 120_000); // a hang guard: 1,100 puts on a loaded machine

afterAll(async () => {
  await store.close();
  await rm(root, { recursive: true, force: true });
});

async function pages(input: Omit<ListObjectsInput, "bucket">): Promise<ListObjectsPage[]> {
  const result: ListObjectsPage[] = [];
  for await (const page of store.listObjects({ bucket: BUCKET, ...input })) result.push(page);
  return result;
}

/** A page's entries (objects and common prefixes) in order. */
function entries(page: ListObjectsPage): string[] {
  return [...page.objects.map((o) => o.key), ...page.commonPrefixes].sort(byBytes);
}

/** What S3 would list: keys under `prefix`, rolled up at the first `delimiter` after it. */
function reference(prefix: string, delimiter: string): string[] {
  const result = new Set<string>();
  for (const key of KEYS) {
    if (!key.startsWith(prefix)) continue;
    const at = delimiter === "" ? -1 : key.indexOf(delimiter, prefix.length);
    result.add(at < 0 ? key : key.slice(0, at + delimiter.length));
  }
  return [...result].sort(byBytes);
}


describe("listObjects", () => {
  it("lists 1,100 keys in UTF-8 byte order, 1,000 per page by default", async () => {
    const result = await pages({});
    expect(result.map((p) => p.objects.length)).toEqual([1000, 100]);
    expect(result[0]?.nextPageToken).not.toBe("");
    expect(result[1]?.nextPageToken).toBe("");
    expect(result.flatMap((p) => p.objects.map((o) => o.key))).toEqual(SORTED);
    const first = result[0]?.objects[0];
    expect(first).toMatchObject({ key: SORTED[0], size: Buffer.byteLength(SORTED[0] ?? "") });
    expect(first?.etag).toMatch(/^[0-9a-f]{64}$/);
  });

  it("resumes from page tokens across calls", async () => {
    const keys: string[] = [];
    let token = "";
    let calls = 0;
    do {
      const [page] = await pages({ pageSize: 37, pageToken: token, maxPages: 1 });
      if (page === undefined) throw new Error("no page");
      expect(page.objects.length).toBeLessThanOrEqual(37);
      keys.push(...page.objects.map((o) => o.key));
      token = page.nextPageToken;
      calls++;
    } while (token !== "");
    expect(calls).toBe(Math.ceil(KEYS.length / 37));
    expect(keys).toEqual(SORTED);
  });

  it.each([
    ["", "/"],
    ["a", "/"],
    ["a/", "/"],
    ["a/b", "/"],
    ["", "!"],
    ["a", "/b"],
    ["\u00e9", "/"],
    ["", "0"],
    ["/", "/"],
    ["a/b/", ""],
    ["nothing-here", "/"],
  ])("rolls up prefix %j at delimiter %j, each common prefix once", async (prefix, delimiter) => {
    const expected = reference(prefix, delimiter);
    for (const pageSize of [1000, 3]) {
      const result = await pages({ prefix, delimiter, pageSize });
      const listed = result.flatMap(entries);
      expect(listed).toEqual(expected);
      for (const page of result) expect(page.objects.length + page.commonPrefixes.length).toBeLessThanOrEqual(pageSize);
      expect(result.at(-1)?.nextPageToken).toBe("");
    }
  });

  it("always yields one page, empty when nothing matches", async () => {
    expect(await pages({ prefix: "zzz" })).toEqual([{ objects: [], commonPrefixes: [], nextPageToken: "" }]);
  });

  it("stops after maxPages, leaving a token to resume", async () => {
    const result = await pages({ pageSize: 10, maxPages: 2 });
    expect(result.length).toBe(2);
    expect(result[1]?.nextPageToken).not.toBe("");
    const rest = await pages({ pageToken: result[1]?.nextPageToken });
    expect([...result, ...rest].flatMap((p) => p.objects.map((o) => o.key))).toEqual(SORTED);
  });

  it("clamps large page sizes to 1,000 and refuses negative ones", async () => {
    expect((await pages({ pageSize: 5000, maxPages: 1 }))[0]?.objects.length).toBe(1000);
    for (const pageSize of [-1, 1.5]) expect((await rejection(pages({ pageSize }))).code).toBe(Code.InvalidArgument);
  });

  it("refuses page tokens it did not make", async () => {
    const forged = Buffer.from(JSON.stringify({ after: "x" })).toString("base64url");
    for (const pageToken of ["!!!", "bm90IGpzb24", forged]) {
      const error = await rejection(pages({ pageToken }));
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.reason).toBe(Reason.InvalidPageToken);
    }
  });

  it("reads only the directories on the way to a narrow prefix", async () => {
    const counted = vi.mocked(readdir);
    counted.mockClear();
    const result = await pages({ prefix: "a/b/c/", delimiter: "/" });
    expect(result.flatMap(entries)).toEqual(reference("a/b/c/", "/"));
    // The bucket, a, a/b and a/b/c: not the other directories of the bucket.
    expect(counted.mock.calls.length).toBeLessThanOrEqual(4);

    counted.mockClear();
    await pages({ prefix: "", delimiter: "/" });
    // A top-level roll-up checks each directory holds an object, without walking it whole.
    expect(counted.mock.calls.length).toBeLessThan(12);
  });

  it("stops when the signal fires", async () => {
    const controller = new AbortController();
    const listing = store.listObjects({ bucket: BUCKET, pageSize: 10 }, { signal: controller.signal })[Symbol.asyncIterator]();
    await listing.next();
    controller.abort();
    expect((await rejection(listing.next())).code).toBe(Code.Canceled);
  });
});
