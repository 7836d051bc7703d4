/**
 * Helpers the object-store cases share: tracked puts, whole reads, full listings.
 *
 * @packageDocumentation
 */
import { compareUtf8, type ListObjectsInput, type ListObjectsPage, type ObjectInfo, type PutObjectInput, type PutObjectResult } from "@stowage/sdk";
import { buffer } from "node:stream/consumers";
import { bodyOf } from "../harness/data.js";
import { check, expectOk, showKey } from "../harness/expect.js";
import type { CaseContext } from "../types.js";

/** A key of exactly `bytes` bytes in the case's prefix (`bytes` must exceed the prefix's length). */
export function keyOfBytes(ctx: CaseContext, bytes: number): string {
  return `${ctx.prefix}${"x".repeat(bytes - Buffer.byteLength(ctx.prefix))}`;
}

/** The tracker's label of an object. */
function objectLabel(bucket: string, key: string): string {
  return `object ${bucket}/${key}`;
}

/** Registers `key` for deletion after the case. */
export function trackKey(ctx: CaseContext, key: string, bucket = ctx.objectSettings.bucket): void {
  ctx.tracker.add(objectLabel(bucket, key), async (signal) => {
    await ctx.objectStore.deleteObject({ bucket, key }, { signal });
  });
}

/** Forgets `key`: the case deleted it itself. */
export function untrackKey(ctx: CaseContext, key: string, bucket = ctx.objectSettings.bucket): void {
  ctx.tracker.forget(objectLabel(bucket, key));
}

/**
 * PutObject with the key tracked for cleanup; resolves or rejects as the put does. When the plugin
 * refuses the put, the key is marked refused: the cleanup still tries to delete it, but does not
 * report it as a leak when it cannot (`ResourceTracker.refused`).
 */
export async function trackedPut(ctx: CaseContext, input: PutObjectInput): Promise<PutObjectResult> {
  trackKey(ctx, input.key, input.bucket);
  try {
    return await ctx.objectStore.putObject(input, { signal: ctx.signal });
  } catch (error) {
    ctx.tracker.refused(objectLabel(input.bucket, input.key));
    throw error;
  }
}

/** Puts `data` under `key` (tracked for cleanup) and expects success. */
export async function putBytes(
  ctx: CaseContext,
  key: string,
  data: Uint8Array | string,
  extra: Partial<Omit<PutObjectInput, "bucket" | "key" | "body">> = {},
): Promise<PutObjectResult> {
  return expectOk(`PutObject ${showKey(key)}`, () => trackedPut(ctx, { bucket: ctx.objectSettings.bucket, key, body: bodyOf(data), ...extra }));
}

/**
 * Reads a whole object. The announced sizes are returned but not checked here: cases verify what
 * they read by content, and only the size cases (`OS-HEAD-SIZE`, `OS-GET-SIZE`, `OS-LIST-SIZE`)
 * judge reported sizes, so a plugin that cannot report sizes (a Velero plugin behind the host's
 * adapter, contract 7.5) fails those cases and no others.
 */
export async function getBytes(ctx: CaseContext, key: string, bucket = ctx.objectSettings.bucket): Promise<{ info: ObjectInfo; data: Buffer; contentLength: number }> {
  const out = await expectOk(`GetObject ${showKey(key)}`, () => ctx.objectStore.getObject({ bucket, key }, { signal: ctx.signal }));
  const data = await expectOk(`reading the body of ${showKey(key)}`, () => buffer(out.body));
  return { info: out.object, data, contentLength: out.contentLength };
}

/** A size as reports show it: `-1` (and any negative value) reads "-1 (unknown)". */
export function showSize(size: number | undefined): string {
  if (size === undefined) return "nothing";
  return size < 0 ? `${String(size)} (unknown)` : String(size);
}

/** Every page of a listing, and the entries flattened. */
export interface Listing {
  /** The pages as received. */
  readonly pages: readonly ListObjectsPage[];
  /** Object keys in the order received. */
  readonly keys: readonly string[];
  /** Objects in the order received. */
  readonly objects: readonly ObjectInfo[];
  /** Common prefixes in the order received. */
  readonly prefixes: readonly string[];
}

/** Lists everything the input selects (every page, in one call) and checks the paging rules. */
export async function listAll(ctx: CaseContext, input: Omit<ListObjectsInput, "bucket">): Promise<Listing> {
  const pages: ListObjectsPage[] = [];
  await expectOk(`ListObjects ${JSON.stringify({ ...input })}`, async () => {
    for await (const page of ctx.objectStore.listObjects({ bucket: ctx.objectSettings.bucket, ...input }, { signal: ctx.signal })) pages.push(page);
  });
  checkPages(pages, input.pageSize);
  return {
    pages,
    keys: pages.flatMap((p) => p.objects.map((o) => o.key)),
    objects: pages.flatMap((p) => p.objects),
    prefixes: pages.flatMap((p) => p.commonPrefixes),
  };
}

/** Checks clauses 5.5.5 to 5.5.8 on the pages of one listing. */
export function checkPages(pages: readonly ListObjectsPage[], pageSize: number | undefined): void {
  check(pages.length > 0, "ListObjects sent no page at all; an empty listing is one empty page (5.5.8)");
  const limit = pageSize ?? 1000;
  let previous: string | undefined;
  for (const [i, page] of pages.entries()) {
    const entries = page.objects.length + page.commonPrefixes.length;
    check(entries <= limit, `page ${String(i + 1)} holds ${String(entries)} entries, more than the page size ${String(limit)} (5.5.6)`);
    const last = i === pages.length - 1;
    if (last) check(page.nextPageToken === "", `the last page carries the token ${JSON.stringify(page.nextPageToken)}; it must be empty (5.5.8)`);
    else check(page.nextPageToken !== "", `page ${String(i + 1)} of ${String(pages.length)} has an empty next_page_token; only the last page may (5.5.8)`);
    for (const list of [page.objects.map((o) => o.key), page.commonPrefixes]) {
      for (let j = 1; j < list.length; j++) {
        const a = list[j - 1] ?? "";
        const b = list[j] ?? "";
        check(compareUtf8(a, b) < 0, `page ${String(i + 1)} lists ${showKey(a)} before ${showKey(b)}: entries must be in ascending UTF-8 byte order, without repeats (5.5.5)`);
      }
    }
    const sorted = [...page.objects.map((o) => o.key), ...page.commonPrefixes].sort(compareUtf8);
    const first = sorted[0];
    if (previous !== undefined && first !== undefined) {
      check(compareUtf8(previous, first) < 0, `page ${String(i + 1)} starts with ${showKey(first)}, which does not sort after ${showKey(previous)} from the page before (5.5.5)`);
    }
    previous = sorted.at(-1) ?? previous;
  }
}

/** Checks that `actual` equals `expected` as lists of keys, with a readable difference. */
export function checkSameKeys(what: string, actual: readonly string[], expected: readonly string[]): void {
  const missing = expected.filter((k) => !actual.includes(k));
  const extra = actual.filter((k) => !expected.includes(k));
  const seen = new Set<string>();
  const repeated = actual.filter((k) => (seen.has(k) ? true : (seen.add(k), false)));
  const problems: string[] = [];
  if (missing.length > 0) problems.push(`missing ${String(missing.length)} [${missing.slice(0, 5).map(showKey).join(", ")}${missing.length > 5 ? ", …" : ""}]`);
  if (extra.length > 0) problems.push(`unexpected ${String(extra.length)} [${extra.slice(0, 5).map(showKey).join(", ")}${extra.length > 5 ? ", …" : ""}]`);
  if (repeated.length > 0) problems.push(`repeated [${repeated.slice(0, 5).map(showKey).join(", ")}]`);
  check(problems.length === 0, `${what}: ${problems.join("; ")}`);
}

/** Reads an async iterable to its end, discarding what it yields (to surface a listing's error). */
export async function drain(source: AsyncIterable<unknown>): Promise<number> {
  let count = 0;
  for await (const item of source) if (item !== undefined) count++;
  return count;
}
