/**
 * Object-store cases (contract section 5 and the object-store parts of sections 1 and 2).
 *
 * @packageDocumentation
 */
import { buffer } from "node:stream/consumers";
import { Code, compareUtf8, Reason, StowageError, type ObjectStore } from "@stowage/sdk";
import { sha256Hex } from "@stowage/sdk/testing";
import { CaseSkipped, ConfigProblem, defineCase } from "../define.js";
import { MIB, bodyOf, digestStream, pseudoRandomBytes, pseudoRandomStream, sha256Bytes } from "../harness/data.js";
import { CaseFailure, check, describeFailure, expectError, expectOk, showKey } from "../harness/expect.js";
import { sleep, within } from "../harness/wait.js";
import type { CaseContext, ConformanceCase } from "../types.js";
import { UNINITIALISED_INSTANCE } from "./protocol.js";
import { directTransferCases } from "./direct-transfer.js";
import { objectLockCases } from "./object-lock.js";
import { checkSameKeys, drain, getBytes, keyOfBytes, listAll, putBytes, showSize, trackedPut, trackKey, untrackKey } from "./objects.js";

const OS = ["object-store"] as const;

/** Puts each key with a distinct small body, then checks put, head, list, get and delete round-trip byte-exactly. */
async function roundTripKeys(ctx: CaseContext, names: readonly string[]): Promise<void> {
  const keys = names.map((n) => `${ctx.prefix}${n}`);
  for (const [i, key] of keys.entries()) await putBytes(ctx, key, `body ${String(i)} of ${key}`);
  const listing = await listAll(ctx, { prefix: ctx.prefix });
  checkSameKeys("ListObjects of the keys just stored (1.3.2, 1.3.3)", listing.keys, keys);
  for (const [i, key] of keys.entries()) {
    const info = await expectOk(`HeadObject ${showKey(key)}`, () => ctx.objectStore.headObject({ bucket: ctx.objectSettings.bucket, key }, { signal: ctx.signal }));
    check(info !== undefined, `HeadObject ${showKey(key)} says it does not exist right after it was stored (1.3.3, 5.0.4)`);
    check(info.key === key, `HeadObject ${showKey(key)} reports the key as ${showKey(info.key)} (1.3.3)`);
    const { data } = await getBytes(ctx, key);
    check(data.toString("utf8") === `body ${String(i)} of ${key}`, `GetObject ${showKey(key)} returned the body of another key: ${JSON.stringify(data.toString("utf8").slice(0, 80))} (1.3.2)`);
  }
  for (const key of keys) {
    await expectOk(`DeleteObject ${showKey(key)}`, () => ctx.objectStore.deleteObject({ bucket: ctx.objectSettings.bucket, key }, { signal: ctx.signal }));
    untrackKey(ctx, key);
  }
  const after = await listAll(ctx, { prefix: ctx.prefix });
  checkSameKeys("ListObjects after deleting every key", after.keys, []);
}

/** A body that yields `bytes` pseudo-random bytes, then waits until `release` fires (or `maxWaitMs` passes) and fails. */
async function* stallingBody(bytes: number, pulled: { count: number }, release: AbortSignal, maxWaitMs: number): AsyncGenerator<Uint8Array> {
  for await (const chunk of pseudoRandomStream("stall", bytes, 256 * 1024)) {
    pulled.count += chunk.byteLength;
    yield chunk;
  }
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, maxWaitMs);
    release.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
  throw new Error("the conformance kit stopped sending this body on purpose");
}

async function waitUntil(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > end) throw new CaseFailure(`${what} did not happen within ${String(timeoutMs)} ms`);
    await sleep(10);
  }
}

/** Expects `key` to hold exactly `expected` (or nothing when undefined) — never a partial body. */
async function expectContent(ctx: CaseContext, key: string, expected: Buffer | undefined, clause: string): Promise<void> {
  const info = await expectOk(`HeadObject ${showKey(key)}`, () => ctx.objectStore.headObject({ bucket: ctx.objectSettings.bucket, key }, { signal: ctx.signal }));
  if (expected === undefined) {
    check(info === undefined, `${showKey(key)} exists although its only upload failed; a failed or cancelled PutObject must leave nothing (${clause})`);
    return;
  }
  check(info !== undefined, `${showKey(key)} disappeared after a failed upload over it; it must keep its previous content (${clause})`);
  const { data } = await getBytes(ctx, key);
  check(
    data.equals(expected),
    `${showKey(key)} holds ${String(data.length)} bytes (sha256 ${sha256Hex(data).slice(0, 12)}…) instead of its previous ${String(expected.length)} bytes after a failed upload: partial or mixed content is visible (${clause})`,
  );
}

/** Puts and reads back a new body within the cancel grace: the plugin released what the failed call held. */
async function expectWritable(ctx: CaseContext, key: string, clause: string): Promise<void> {
  const fresh = pseudoRandomBytes(`${key}-after`, 64 * 1024);
  await within(ctx.objectSettings.cancelGraceMs, `overwriting ${showKey(key)} after the failed call (${clause})`, async () => {
    await putBytes(ctx, key, fresh);
    const { data } = await getBytes(ctx, key);
    check(data.equals(fresh), `${showKey(key)} does not hold the body just written (${clause})`);
  });
}

const init = defineCase({
  id: "OS-INIT",
  title: "Init accepts the configuration and the configured bucket is usable",
  clause: "5.1",
  kinds: OS,
  requires: [],
  async run(ctx) {
    try {
      await ctx.objectStore.init(ctx.pluginConfig, { signal: ctx.signal });
    } catch (error) {
      const e = StowageError.from(error);
      if (e.reason === Reason.InvalidConfig) throw new ConfigProblem(`Init refused the configuration in objectStore.config: ${e.rawMessage}`);
      throw new CaseFailure(`Init with the configuration in objectStore.config failed: ${describeFailure(e)}`);
    }
    const marker = `${ctx.prefix}.stowage-conformance-run`;
    try {
      await ctx.objectStore.putObject({ bucket: ctx.objectSettings.bucket, key: marker, body: bodyOf(`stowage conformance run ${ctx.runId}\n`) }, { signal: ctx.signal });
    } catch (error) {
      const e = StowageError.from(error);
      if (e.reason === Reason.BucketNotFound) {
        throw new ConfigProblem(`the bucket ${JSON.stringify(ctx.objectSettings.bucket)} does not exist: create it, fix objectStore.bucket, or configure the plugin to create buckets (${e.rawMessage})`);
      }
      throw new CaseFailure(`storing a small object in the bucket ${JSON.stringify(ctx.objectSettings.bucket)} failed: ${describeFailure(e)}`);
    }
    ctx.runTracker.add(`object ${ctx.objectSettings.bucket}/${marker}`, async (signal) => {
      await ctx.objectStore.deleteObject({ bucket: ctx.objectSettings.bucket, key: marker }, { signal });
    });
  },
});

/** The objects the size cases store: name and size; `overwritten` is first stored with 100,000 bytes. */
const SIZED = [
  ["empty", 0],
  ["twelve", 12],
  ["chunk-plus-one", MIB + 1],
  ["overwritten", 1000],
] as const;

/** Stores the {@link SIZED} objects (the last one over a larger previous body) and returns their keys and sizes. */
async function storeSized(ctx: CaseContext): Promise<{ key: string; size: number }[]> {
  const stored: { key: string; size: number }[] = [];
  for (const [name, size] of SIZED) {
    const key = `${ctx.prefix}${name}`;
    if (name === "overwritten") await putBytes(ctx, key, pseudoRandomBytes(`${key}-before`, 100_000));
    await putBytes(ctx, key, pseudoRandomBytes(key, size));
    stored.push({ key, size });
  }
  return stored;
}

const UNKNOWN_HINT = "Stowage plugins MUST report exact sizes; a negative size means the plugin cannot (a Velero plugin behind the host's adapter, contract 7.5)";

/**
 * The size cases: every reported size in one place, so a plugin whose protocol cannot report
 * sizes fails exactly these (contract 7.5.7) while the other cases check data by content.
 */
const sizeCases: ConformanceCase[] = [
  defineCase({
    id: "OS-HEAD-SIZE",
    title: "HeadObject reports each object's exact size: 0 B, 12 B, 1 MiB + 1, and the new size after an overwrite",
    clause: "5.4.2, 5.2.9",
    kinds: OS,
    timeoutMs: 60_000,
    async run(ctx) {
      const wrong: string[] = [];
      for (const { key, size } of await storeSized(ctx)) {
        const info = await expectOk(`HeadObject ${showKey(key)}`, () => ctx.objectStore.headObject({ bucket: ctx.objectSettings.bucket, key }, { signal: ctx.signal }));
        check(info !== undefined, `HeadObject says ${showKey(key)} does not exist right after it was stored (5.0.4)`);
        if (info.size !== size) wrong.push(`${showKey(key.slice(ctx.prefix.length))}: ${showSize(info.size)} instead of ${String(size)}`);
      }
      check(wrong.length === 0, `HeadObject reports wrong sizes: ${wrong.join("; ")} (5.4.2, 5.2.9)${wrong.some((w) => w.includes("unknown")) ? `; ${UNKNOWN_HINT}` : ""}`);
    },
  }),
  defineCase({
    id: "OS-GET-SIZE",
    title: "GetObject announces object.size and content_length equal to the stored size, and exactly that many bytes arrive",
    clause: "5.3.3, 5.3.4",
    kinds: OS,
    timeoutMs: 60_000,
    async run(ctx) {
      const wrong: string[] = [];
      for (const { key, size } of await storeSized(ctx)) {
        const { data, info, contentLength } = await getBytes(ctx, key);
        check(data.length === size, `GetObject ${showKey(key)} delivered ${String(data.length)} bytes of a ${String(size)}-byte object (5.3.4)`);
        if (contentLength !== size || info.size !== size) {
          wrong.push(`${showKey(key.slice(ctx.prefix.length))}: content_length ${showSize(contentLength)}, object.size ${showSize(info.size)} instead of ${String(size)}`);
        }
      }
      check(wrong.length === 0, `GetObject announces wrong sizes: ${wrong.join("; ")} (5.3.3, 5.3.4)${wrong.some((w) => w.includes("unknown")) ? `; ${UNKNOWN_HINT}` : ""}`);
    },
  }),
  defineCase({
    id: "OS-LIST-SIZE",
    title: "ListObjects reports each object's exact size, including 0 and the new size after an overwrite",
    clause: "5.5.12, 5.2.9",
    kinds: OS,
    timeoutMs: 60_000,
    async run(ctx) {
      const stored = await storeSized(ctx);
      const listing = await listAll(ctx, { prefix: ctx.prefix });
      checkSameKeys("ListObjects of the objects just stored", listing.keys, stored.map((s) => s.key));
      const wrong = stored.flatMap(({ key, size }) => {
        const listed = listing.objects.find((o) => o.key === key)?.size;
        return listed === size ? [] : [`${showKey(key.slice(ctx.prefix.length))}: ${showSize(listed)} instead of ${String(size)}`];
      });
      check(wrong.length === 0, `ListObjects reports wrong sizes: ${wrong.join("; ")} (5.5.12, 5.2.9)${wrong.some((w) => w.includes("unknown")) ? `; ${UNKNOWN_HINT}` : ""}`);
    },
  }),
];

const cases: ConformanceCase[] = [
  init,
  defineCase({
    id: "OS-INIT-REPEAT",
    title: "Init is repeatable: a second Init with the same configuration succeeds and calls keep working",
    clause: "5.1.4",
    kinds: OS,
    async run(ctx) {
      await expectOk("a second Init with the same configuration", () => ctx.objectStore.init(ctx.pluginConfig, { signal: ctx.signal }));
      await putBytes(ctx, `${ctx.prefix}after-reinit`, "x");
      await getBytes(ctx, `${ctx.prefix}after-reinit`);
    },
  }),
  defineCase({
    id: "OS-PUT-EMPTY",
    title: "An empty body is stored (PutObject reports 0 bytes), exists, reads back empty and is listed",
    clause: "5.2.3, 5.2.11",
    kinds: OS,
    timeoutMs: 5_000,
    async run(ctx) {
      const key = `${ctx.prefix}empty`;
      const result = await putBytes(ctx, key, new Uint8Array());
      check(result.size === 0, `PutObject of an empty body reports size ${String(result.size)} (5.2.11)`);
      const info = await ctx.objectStore.headObject({ bucket: ctx.objectSettings.bucket, key }, { signal: ctx.signal });
      check(info !== undefined, "HeadObject says the empty object does not exist (5.2.3)");
      const { data } = await getBytes(ctx, key);
      check(data.length === 0, `GetObject of the empty object returned ${String(data.length)} bytes (5.2.3)`);
      const listing = await listAll(ctx, { prefix: ctx.prefix });
      checkSameKeys("ListObjects after storing the empty object", listing.keys, [key]);
    },
  }),
  defineCase({
    id: "OS-PUT-SIZES",
    title: "Bodies at chunk boundaries (1 B, 16 KiB ± 1, 1 MiB ± 1, 4 MiB + 1) round-trip with equal SHA-256; PutObject reports their size",
    clause: "5.2.3, 5.2.11, 5.3.4, 2.7",
    kinds: OS,
    timeoutMs: 60_000,
    async run(ctx) {
      const sizes = [1, 16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1, MIB - 1, MIB, MIB + 1, 4 * MIB + 1];
      for (const size of sizes) {
        const key = `${ctx.prefix}size-${String(size)}`;
        const data = pseudoRandomBytes(key, size);
        const result = await putBytes(ctx, key, data, { size, sha256: sha256Bytes(data) });
        check(result.size === size, `PutObject of ${String(size)} bytes reports size ${String(result.size)} (5.2.11)`);
        if (result.sha256 !== undefined) {
          check(Buffer.from(result.sha256).toString("hex") === sha256Hex(data), `PutObject of ${String(size)} bytes reports a SHA-256 that is not the body's (5.2.11)`);
        } else {
          throw new CaseFailure(`PutObject of ${String(size)} bytes with header.sha256 set returned no sha256 (5.2.11 requires it)`);
        }
        const out = await expectOk(`GetObject of ${String(size)} bytes`, () => ctx.objectStore.getObject({ bucket: ctx.objectSettings.bucket, key }, { signal: ctx.signal }));
        const digest = await expectOk(`reading the ${String(size)}-byte body`, () => digestStream(out.body));
        check(digest.size === size && digest.sha256 === sha256Hex(data), `the ${String(size)}-byte body read back differs from the one stored (got ${String(digest.size)} bytes, sha256 ${digest.sha256.slice(0, 12)}…) (5.3.4)`);
      }
    },
  }),
  defineCase({
    id: "OS-PUT-LARGE",
    title: "A large body (objectStore.largeObjectSize, default 64 MiB) streams in and out with its SHA-256 checked",
    clause: "5.2.13, 5.3.4",
    kinds: OS,
    timeoutMs: 600_000,
    async run(ctx) {
      const size = ctx.objectSettings.largeObjectBytes;
      if (size === 0) throw new CaseSkipped("objectStore.largeObjectSize is 0");
      const key = `${ctx.prefix}large`;
      const expected = await digestStream(pseudoRandomStream(key, size));
      trackKey(ctx, key);
      const started = Date.now();
      const result = await expectOk(`PutObject of ${String(size)} bytes (streamed)`, () =>
        ctx.objectStore.putObject(
          { bucket: ctx.objectSettings.bucket, key, body: pseudoRandomStream(key, size), sha256: Buffer.from(expected.sha256, "hex") },
          { signal: ctx.signal },
        ),
      );
      const putMs = Date.now() - started;
      check(result.size === size, `PutObject reports size ${String(result.size)} for a ${String(size)}-byte body (5.2.11)`);
      const out = await expectOk("GetObject of the large object", () => ctx.objectStore.getObject({ bucket: ctx.objectSettings.bucket, key }, { signal: ctx.signal }));
      const getStarted = Date.now();
      const got = await expectOk("reading the large body", () => digestStream(out.body));
      const getMs = Date.now() - getStarted;
      check(got.size === size && got.sha256 === expected.sha256, `the large body read back differs: ${String(got.size)} bytes, sha256 ${got.sha256.slice(0, 12)}… instead of ${expected.sha256.slice(0, 12)}… (5.3.4)`);
      const mib = size / MIB;
      ctx.note(`${mib.toFixed(0)} MiB: put ${(mib / Math.max(putMs / 1000, 0.001)).toFixed(0)} MiB/s, get ${(mib / Math.max(getMs / 1000, 0.001)).toFixed(0)} MiB/s`);
    },
  }),
  defineCase({
    id: "OS-PUT-SIZE-MISMATCH",
    title: "A body shorter than header.size fails with DATA_LOSS/INTEGRITY_MISMATCH and stores nothing",
    clause: "5.2.5",
    kinds: OS,
    async run(ctx) {
      const key = `${ctx.prefix}short`;
      trackKey(ctx, key);
      await expectError("PutObject announcing 20 bytes and sending 10", { code: Code.DataLoss, reason: Reason.IntegrityMismatch }, () =>
        ctx.objectStore.putObject({ bucket: ctx.objectSettings.bucket, key, body: bodyOf("0123456789"), size: 20 }, { signal: ctx.signal }),
      );
      await expectContent(ctx, key, undefined, "5.2.5");
    },
  }),
  defineCase({
    id: "OS-PUT-SHA256-MISMATCH",
    title: "A body whose SHA-256 differs from header.sha256 fails with DATA_LOSS/INTEGRITY_MISMATCH; the previous object stays",
    clause: "5.2.7, 5.2.8",
    kinds: OS,
    async run(ctx) {
      const key = `${ctx.prefix}checked`;
      const previous = pseudoRandomBytes(key, 4096);
      await putBytes(ctx, key, previous);
      await expectError("PutObject with a wrong SHA-256", { code: Code.DataLoss, reason: Reason.IntegrityMismatch }, () =>
        ctx.objectStore.putObject({ bucket: ctx.objectSettings.bucket, key, body: bodyOf("not the announced body"), sha256: sha256Bytes("something else") }, { signal: ctx.signal }),
      );
      await expectContent(ctx, key, previous, "5.2.7, 5.2.8");
    },
  }),
  defineCase({
    id: "OS-GET-MISSING-KEY",
    title: "GetObject of a missing key fails with NOT_FOUND/OBJECT_NOT_FOUND before any header",
    clause: "5.3.1, 4.7.2",
    kinds: OS,
    async run(ctx) {
      await expectError("GetObject of a key that was never stored", { code: Code.NotFound, reason: Reason.ObjectNotFound }, () =>
        ctx.objectStore.getObject({ bucket: ctx.objectSettings.bucket, key: `${ctx.prefix}never-stored` }, { signal: ctx.signal }),
      );
    },
  }),
  defineCase({
    id: "OS-MISSING-BUCKET",
    title: "HeadObject, GetObject, ListObjects and DeleteObject on a missing bucket fail with NOT_FOUND/BUCKET_NOT_FOUND",
    clause: "5.0.2, 5.4.4",
    kinds: OS,
    async run(ctx) {
      const bucket = ctx.objectSettings.missingBucket;
      const expected = { code: Code.NotFound, reason: Reason.BucketNotFound };
      const key = `${ctx.prefix}k`;
      await expectError(`HeadObject in the missing bucket ${JSON.stringify(bucket)}`, expected, () => ctx.objectStore.headObject({ bucket, key }, { signal: ctx.signal }));
      await expectError(`GetObject in the missing bucket ${JSON.stringify(bucket)}`, expected, () => ctx.objectStore.getObject({ bucket, key }, { signal: ctx.signal }));
      await expectError(`DeleteObject in the missing bucket ${JSON.stringify(bucket)}`, expected, () => ctx.objectStore.deleteObject({ bucket, key }, { signal: ctx.signal }));
      await expectError(`ListObjects in the missing bucket ${JSON.stringify(bucket)}`, expected, async () => {
        await drain(ctx.objectStore.listObjects({ bucket, prefix: ctx.prefix }, { signal: ctx.signal }));
      });
    },
  }),
  defineCase({
    id: "OS-HEAD",
    title: "HeadObject reports a missing key as exists=false (OK) and an existing one with its key",
    clause: "5.4.1, 5.4.2",
    kinds: OS,
    async run(ctx) {
      const missing = await expectOk("HeadObject of a missing key", () => ctx.objectStore.headObject({ bucket: ctx.objectSettings.bucket, key: `${ctx.prefix}missing` }, { signal: ctx.signal }));
      check(missing === undefined, "HeadObject of a missing key reports an object (5.4.1)");
      const key = `${ctx.prefix}present`;
      await putBytes(ctx, key, "twelve bytes");
      const info = await expectOk("HeadObject of a stored key", () => ctx.objectStore.headObject({ bucket: ctx.objectSettings.bucket, key }, { signal: ctx.signal }));
      check(info !== undefined, "HeadObject of a key just stored reports exists=false (5.4.2, 5.0.4)");
      check(info.key === key, `HeadObject reports key ${showKey(info.key)}; expected ${showKey(key)} (5.4.2)`);
    },
  }),
  ...sizeCases,
  defineCase({
    id: "OS-METADATA",
    title: "Content type and metadata are stored, returned by HeadObject and GetObject, and replaced (not merged) on overwrite",
    clause: "5.2.12, 5.3.6, 5.4.3, 5.2.9",
    kinds: OS,
    capabilities: ["OBJECT_METADATA"],
    async run(ctx) {
      const key = `${ctx.prefix}with-metadata`;
      const metadata = { "backup-name": "b1", owner_id: "42" };
      await putBytes(ctx, key, "{}", { contentType: "application/json", metadata });
      const head = await ctx.objectStore.headObject({ bucket: ctx.objectSettings.bucket, key }, { signal: ctx.signal });
      check(head?.contentType === "application/json", `HeadObject reports content type ${JSON.stringify(head?.contentType)} (5.4.3)`);
      check(JSON.stringify(head.metadata) === JSON.stringify(metadata) || sameMap(head.metadata, metadata), `HeadObject reports metadata ${JSON.stringify(head.metadata)}, stored ${JSON.stringify(metadata)} (5.4.3)`);
      const { info } = await getBytes(ctx, key);
      check(info.contentType === "application/json" && sameMap(info.metadata, metadata), `GetObject reports ${JSON.stringify({ contentType: info.contentType, metadata: info.metadata })} (5.3.6)`);
      await putBytes(ctx, key, "plain", { metadata: { other: "x" } });
      const after = await ctx.objectStore.headObject({ bucket: ctx.objectSettings.bucket, key }, { signal: ctx.signal });
      check(after !== undefined && sameMap(after.metadata, { other: "x" }), `after an overwrite with other metadata, HeadObject reports ${JSON.stringify(after?.metadata)}; metadata must come from the new call only (5.2.9)`);
    },
  }),
  defineCase({
    id: "OS-RANGED-READ",
    title: "Ranged reads return the requested bytes, shorten ranges at the end and refuse offsets past it with OUT_OF_RANGE/INVALID_RANGE",
    clause: "5.3.9–5.3.13",
    kinds: OS,
    capabilities: ["RANGED_READS"],
    async run(ctx) {
      const key = `${ctx.prefix}ten-bytes`;
      await putBytes(ctx, key, "0123456789");
      const table: [{ offset: number; length?: number }, number, string][] = [
        [{ offset: 8, length: 5 }, 8, "89"],
        [{ offset: 4 }, 4, "456789"],
        [{ offset: 10 }, 10, ""],
        [{ offset: 0, length: 0 }, 0, ""],
        [{ offset: 2, length: 3 }, 2, "234"],
      ];
      for (const [range, offset, text] of table) {
        const out = await expectOk(`GetObject with range ${JSON.stringify(range)}`, () => ctx.objectStore.getObject({ bucket: ctx.objectSettings.bucket, key, range }, { signal: ctx.signal }));
        const data = await buffer(out.body);
        check(
          out.offset === offset && out.contentLength === text.length && data.toString() === text && out.object.size === 10,
          `range ${JSON.stringify(range)} of a 10-byte object gave offset ${String(out.offset)}, content_length ${String(out.contentLength)}, size ${String(out.object.size)}, body ${JSON.stringify(data.toString())}; expected offset ${String(offset)}, body ${JSON.stringify(text)} (5.3.12, 5.3.13)`,
        );
      }
      await expectError("GetObject with range offset 11 of a 10-byte object", { code: Code.OutOfRange, reason: Reason.InvalidRange }, () =>
        ctx.objectStore.getObject({ bucket: ctx.objectSettings.bucket, key, range: { offset: 11 } }, { signal: ctx.signal }),
      );
    },
  }),
  defineCase({
    id: "OS-RANGE-UNSUPPORTED",
    title: "Without RANGED_READS, a ranged GetObject fails with UNIMPLEMENTED/UNSUPPORTED instead of returning the whole object",
    clause: "5.3.9, 3.4.1",
    kinds: OS,
    withoutCapabilities: ["RANGED_READS"],
    async run(ctx) {
      const key = `${ctx.prefix}ten-bytes`;
      await putBytes(ctx, key, "0123456789");
      await expectError("GetObject with a range from a plugin without RANGED_READS", { code: Code.Unimplemented, reason: Reason.Unsupported }, async () => {
        const out = await ctx.objectStore.getObject({ bucket: ctx.objectSettings.bucket, key, range: { offset: 2, length: 3 } }, { signal: ctx.signal });
        return (await buffer(out.body)).toString();
      });
    },
  }),
  defineCase({
    id: "OS-LIST-PREFIX",
    title: "ListObjects with a prefix returns exactly the keys that start with it",
    clause: "5.5.1, 1.3.6",
    kinds: OS,
    async run(ctx) {
      const names = ["a", "ab", "a/b", "b", "ba", "abc/d"];
      for (const n of names) await putBytes(ctx, `${ctx.prefix}${n}`, n);
      const listing = await listAll(ctx, { prefix: `${ctx.prefix}a` });
      checkSameKeys(`ListObjects with prefix ${showKey(`${ctx.prefix}a`)}`, listing.keys, ["a", "a/b", "ab", "abc/d"].map((n) => `${ctx.prefix}${n}`));
      check(listing.prefixes.length === 0, `ListObjects without a delimiter returned common prefixes ${JSON.stringify(listing.prefixes)} (5.5.1)`);
    },
  }),
  defineCase({
    id: "OS-LIST-DELIMITER",
    title: "ListObjects with delimiter / rolls keys up into common prefixes, each once, also across pages",
    clause: "5.5.2–5.5.5",
    kinds: OS,
    async run(ctx) {
      const p = ctx.prefix;
      for (const n of ["foo/bar", "foo/bar/xyzzy", "quux/thud", "asdf", "ex/a/x", "ex/a/b/1", "ex/a/b/2", "ex/c"]) await putBytes(ctx, `${p}${n}`, n);
      const top = await listAll(ctx, { prefix: p, delimiter: "/" });
      checkSameKeys(`objects of ListObjects(prefix ${showKey(p)}, delimiter "/")`, top.keys, [`${p}asdf`]);
      checkSameKeys(`common prefixes of ListObjects(prefix ${showKey(p)}, delimiter "/")`, top.prefixes, [`${p}ex/`, `${p}foo/`, `${p}quux/`]);
      const worked = await listAll(ctx, { prefix: `${p}ex/a/`, delimiter: "/" });
      checkSameKeys("objects of the contract's worked example (5.5.2)", worked.keys, [`${p}ex/a/x`]);
      checkSameKeys("common prefixes of the contract's worked example (5.5.2)", worked.prefixes, [`${p}ex/a/b/`]);
      const paged = await listAll(ctx, { prefix: `${p}ex/a/`, delimiter: "/", pageSize: 1 });
      check(
        paged.pages.length === 2 && paged.pages[0]?.commonPrefixes[0] === `${p}ex/a/b/` && paged.pages[1]?.objects[0]?.key === `${p}ex/a/x`,
        `with page_size 1 the worked example must take two pages, the common prefix first, then the object (5.5.5); got ${JSON.stringify(paged.pages.map((pg) => ({ objects: pg.objects.map((o) => o.key), prefixes: pg.commonPrefixes })))}`,
      );
      const flat = await listAll(ctx, { prefix: `${p}ex/a/` });
      checkSameKeys("the worked example without a delimiter (5.5.1)", flat.keys, [`${p}ex/a/b/1`, `${p}ex/a/b/2`, `${p}ex/a/x`]);
    },
  }),
  defineCase({
    id: "OS-LIST-EMPTY",
    title: "A listing that matches nothing is one empty page with an empty token, and OK",
    clause: "5.5.8",
    kinds: OS,
    async run(ctx) {
      const listing = await listAll(ctx, { prefix: `${ctx.prefix}nothing-here/` });
      check(listing.pages.length === 1 && listing.keys.length === 0 && listing.prefixes.length === 0, `expected one empty page, got ${String(listing.pages.length)} pages with ${String(listing.keys.length)} objects (5.5.8)`);
    },
  }),
  defineCase({
    id: "OS-LIST-ORDER",
    title: "Listings are in UTF-8 byte order, not UTF-16 or locale order",
    clause: "5.5.5",
    kinds: OS,
    async run(ctx) {
      const names = ["B", "a", "a b", "a-", "a/", "a0", "~", "é", "ｚ", "😀", "Z"];
      for (const n of names) await putBytes(ctx, `${ctx.prefix}${n}`, n);
      const listing = await listAll(ctx, { prefix: ctx.prefix, pageSize: 4 });
      const expected = names.map((n) => `${ctx.prefix}${n}`).sort(compareUtf8);
      check(
        JSON.stringify(listing.keys) === JSON.stringify(expected),
        `listing order ${listing.keys.map((k) => showKey(k.slice(ctx.prefix.length))).join(" ")} differs from UTF-8 byte order ${expected.map((k) => showKey(k.slice(ctx.prefix.length))).join(" ")} (5.5.5)`,
      );
    },
  }),
  defineCase({
    id: "OS-LIST-PAGINATION-1001",
    title: "More than 1,000 keys list completely, once each and in order, with page sizes 1000, 0 (default) and 7",
    clause: "5.5.3, 5.5.5–5.5.8",
    kinds: OS,
    timeoutMs: 300_000,
    async run(ctx) {
      const count = ctx.objectSettings.paginationKeys;
      const keys = Array.from({ length: count }, (_, i) => `${ctx.prefix}k${String(i).padStart(6, "0")}`);
      let next = 0;
      const failures: string[] = [];
      const worker = async (): Promise<void> => {
        for (let i = next++; i < keys.length; i = next++) {
          const key = keys[i] ?? "";
          trackKey(ctx, key);
          try {
            await ctx.objectStore.putObject({ bucket: ctx.objectSettings.bucket, key, body: bodyOf(String(i)) }, { signal: ctx.signal });
          } catch (error) {
            failures.push(`${showKey(key)}: ${describeFailure(error)}`);
            if (failures.length > 5) throw new CaseFailure(`storing ${String(count)} keys failed: ${failures.join("; ")}`);
          }
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
      check(failures.length === 0, `storing ${String(count)} keys failed: ${failures.join("; ")}`);
      for (const pageSize of [1000, undefined, 7]) {
        const listing = await listAll(ctx, { prefix: ctx.prefix, ...(pageSize === undefined ? {} : { pageSize }) });
        checkSameKeys(`ListObjects of ${String(count)} keys with page_size ${pageSize === undefined ? "0 (default)" : String(pageSize)}`, listing.keys, keys);
        if (pageSize !== undefined) {
          check(listing.pages.length >= Math.ceil(count / pageSize), `${String(count)} keys in ${String(listing.pages.length)} pages of at most ${String(pageSize)} (5.5.6)`);
        }
      }
    },
  }),
  defineCase({
    id: "OS-LIST-PAGE-SIZE-INVALID",
    title: "page_size above 1000 fails with INVALID_ARGUMENT",
    clause: "5.5.6",
    kinds: OS,
    async run(ctx) {
      await expectError("ListObjects with page_size 1001", { code: Code.InvalidArgument }, async () => {
        await drain(ctx.objectStore.listObjects({ bucket: ctx.objectSettings.bucket, prefix: ctx.prefix, pageSize: 1001 }, { signal: ctx.signal }));
      });
    },
  }),
  defineCase({
    id: "OS-LIST-RESUME",
    title: "max_pages stops a listing with the next page's token, and the token resumes it where it stopped",
    clause: "5.5.9, 5.5.10",
    kinds: OS,
    async run(ctx) {
      const keys = ["a", "b", "c", "d", "e"].map((n) => `${ctx.prefix}${n}`);
      for (const key of keys) await putBytes(ctx, key, key);
      const pages = [];
      for await (const page of ctx.objectStore.listObjects({ bucket: ctx.objectSettings.bucket, prefix: ctx.prefix, pageSize: 2, maxPages: 1 }, { signal: ctx.signal })) pages.push(page);
      check(pages.length === 1, `ListObjects with max_pages 1 sent ${String(pages.length)} pages (5.5.9)`);
      const page = pages[0];
      check(page !== undefined && page.objects.length > 0 && page.nextPageToken !== "", "the page sent because of max_pages must carry the token of the next page (5.5.9)");
      const rest = await listAll(ctx, { prefix: ctx.prefix, pageSize: 2, pageToken: page.nextPageToken });
      checkSameKeys("the first page followed by the resumed listing (5.5.10)", [...page.objects.map((o) => o.key), ...rest.keys], keys);
    },
  }),
  defineCase({
    id: "OS-LIST-INVALID-TOKEN",
    title: "A page token from another listing, or a made-up one, fails with INVALID_ARGUMENT/INVALID_PAGE_TOKEN",
    clause: "5.5.11",
    kinds: OS,
    async run(ctx) {
      for (const n of ["a/1", "a/2", "a/3", "b/1"]) await putBytes(ctx, `${ctx.prefix}${n}`, n);
      let token = "";
      for await (const page of ctx.objectStore.listObjects({ bucket: ctx.objectSettings.bucket, prefix: `${ctx.prefix}a/`, pageSize: 1, maxPages: 1 }, { signal: ctx.signal })) token = page.nextPageToken;
      check(token !== "", "ListObjects of three keys with page_size 1 and max_pages 1 returned no next_page_token (5.5.9)");
      const expected = { code: Code.InvalidArgument, reason: Reason.InvalidPageToken };
      await expectError("ListObjects with prefix b/ and a token issued for prefix a/", expected, async () => {
        await drain(ctx.objectStore.listObjects({ bucket: ctx.objectSettings.bucket, prefix: `${ctx.prefix}b/`, pageToken: token }, { signal: ctx.signal }));
      });
      await expectError("ListObjects with a made-up token", expected, async () => {
        await drain(ctx.objectStore.listObjects({ bucket: ctx.objectSettings.bucket, prefix: `${ctx.prefix}a/`, pageToken: "stowage-conformance: not a token" }, { signal: ctx.signal }));
      });
    },
  }),
  defineCase({
    id: "OS-DELETE",
    title: "DeleteObject removes exactly the key: HeadObject, GetObject and ListObjects see it gone, keys sharing the prefix stay",
    clause: "5.6.1, 5.6.3",
    kinds: OS,
    async run(ctx) {
      const key = `${ctx.prefix}k`;
      const siblings = [`${ctx.prefix}k2`, `${ctx.prefix}k/x`];
      await putBytes(ctx, key, "k");
      for (const s of siblings) await putBytes(ctx, s, s);
      await expectOk("DeleteObject of an existing key", () => ctx.objectStore.deleteObject({ bucket: ctx.objectSettings.bucket, key }, { signal: ctx.signal }));
      const head = await ctx.objectStore.headObject({ bucket: ctx.objectSettings.bucket, key }, { signal: ctx.signal });
      check(head === undefined, "HeadObject still finds the deleted key (5.6.1)");
      await expectError("GetObject of the deleted key", { code: Code.NotFound, reason: Reason.ObjectNotFound }, () => ctx.objectStore.getObject({ bucket: ctx.objectSettings.bucket, key }, { signal: ctx.signal }));
      const listing = await listAll(ctx, { prefix: ctx.prefix });
      checkSameKeys("ListObjects after deleting one of three keys sharing a prefix (5.6.1, 5.6.3)", listing.keys, siblings);
    },
  }),
  defineCase({
    id: "OS-DELETE-IDEMPOTENT",
    title: "Deleting a missing key succeeds, and deleting the same key twice succeeds both times",
    clause: "5.6.2",
    kinds: OS,
    async run(ctx) {
      await expectOk("DeleteObject of a key that never existed", () => ctx.objectStore.deleteObject({ bucket: ctx.objectSettings.bucket, key: `${ctx.prefix}never-stored` }, { signal: ctx.signal }));
      const key = `${ctx.prefix}twice`;
      await putBytes(ctx, key, "x");
      await expectOk("the first DeleteObject", () => ctx.objectStore.deleteObject({ bucket: ctx.objectSettings.bucket, key }, { signal: ctx.signal }));
      await expectOk("the second DeleteObject of the same key", () => ctx.objectStore.deleteObject({ bucket: ctx.objectSettings.bucket, key }, { signal: ctx.signal }));
    },
  }),
  defineCase({
    id: "OS-OVERWRITE",
    title: "Overwriting replaces the whole object: the new body, listed once",
    clause: "5.2.9",
    kinds: OS,
    async run(ctx) {
      const key = `${ctx.prefix}k`;
      await putBytes(ctx, key, pseudoRandomBytes("v1", 100_000));
      const v2 = pseudoRandomBytes("v2", 1000);
      await putBytes(ctx, key, v2);
      const { data } = await getBytes(ctx, key);
      check(data.equals(v2), `after an overwrite GetObject returned ${String(data.length)} bytes (sha256 ${sha256Hex(data).slice(0, 12)}…), not the new ${String(v2.length)}-byte body (5.2.9)`);
      const listing = await listAll(ctx, { prefix: ctx.prefix });
      checkSameKeys("ListObjects after an overwrite", listing.keys, [key]);
    },
  }),
  defineCase({
    id: "OS-CONCURRENT-PUTS",
    title: "Parallel puts to distinct keys all succeed; parallel puts to one key leave exactly one of the bodies",
    clause: "2.5.1, 2.5.4",
    kinds: OS,
    timeoutMs: 120_000,
    async run(ctx) {
      const n = ctx.objectSettings.concurrency;
      const bodies = Array.from({ length: n }, (_, i) => pseudoRandomBytes(`body-${String(i)}`, 256 * 1024 + i));
      const keys = bodies.map((_, i) => `${ctx.prefix}distinct-${String(i)}`);
      await Promise.all(keys.map((key, i) => putBytes(ctx, key, bodies[i] ?? "")));
      for (const [i, key] of keys.entries()) {
        const { data } = await getBytes(ctx, key);
        check(data.equals(bodies[i] ?? Buffer.alloc(0)), `after ${String(n)} parallel puts, ${showKey(key)} does not hold its own body (2.5.1)`);
      }
      const listing = await listAll(ctx, { prefix: `${ctx.prefix}distinct-` });
      checkSameKeys(`ListObjects after ${String(n)} parallel puts`, listing.keys, keys);
      const shared = `${ctx.prefix}shared`;
      await Promise.all(bodies.map((body) => putBytes(ctx, shared, body)));
      const { data } = await getBytes(ctx, shared);
      const hashes = bodies.map((b) => sha256Hex(b));
      check(hashes.includes(sha256Hex(data)), `after ${String(n)} parallel puts to one key it holds ${String(data.length)} bytes that match none of the bodies: a mixture (2.5.4)`);
    },
  }),
  defineCase({
    id: "OS-SLOW-READER",
    title: "A GetObject whose reader does not read holds back only its own stream: other calls complete",
    clause: "2.5.3",
    kinds: OS,
    async run(ctx) {
      const key = `${ctx.prefix}slow`;
      await putBytes(ctx, key, pseudoRandomBytes(key, 8 * MIB));
      const controller = new AbortController();
      const stop = (): void => {
        controller.abort();
      };
      ctx.signal.addEventListener("abort", stop, { once: true });
      try {
        const out = await ctx.objectStore.getObject({ bucket: ctx.objectSettings.bucket, key }, { signal: controller.signal });
        out.body.pause();
        await within(ctx.objectSettings.cancelGraceMs, "a put and a get of another key while a reader stalls (2.5.3)", async () => {
          await putBytes(ctx, `${ctx.prefix}other`, "other");
          await getBytes(ctx, `${ctx.prefix}other`);
        });
        const digest = await expectOk("reading the stalled body afterwards", () => digestStream(out.body));
        check(digest.size === 8 * MIB, `the stalled body delivered ${String(digest.size)} of ${String(8 * MIB)} bytes once read (2.5.3)`);
      } finally {
        controller.abort();
        ctx.signal.removeEventListener("abort", stop);
      }
    },
  }),
  defineCase({
    id: "OS-KEYS-SPECIAL-CHARS",
    title: "Keys with spaces and + % # ? & = ' \" < > round-trip byte-exactly",
    clause: "1.3.3",
    kinds: OS,
    async run(ctx) {
      await roundTripKeys(ctx, ["with space", "trailing space ", "plus+sign", "percent%20encoded", "100%", "hash#tag", "question?mark", "amp&ersand", "a=b&c=d", "quote'single", 'quote"double', "<angle>", " leading-space"]);
    },
  }),
  defineCase({
    id: "OS-KEYS-NON-ASCII",
    title: "Non-ASCII keys (Latin, Cyrillic, CJK, emoji outside the BMP) round-trip byte-exactly",
    clause: "1.3.3",
    kinds: OS,
    async run(ctx) {
      await roundTripKeys(ctx, ["café", "Ünïcödé/Straße", "Привет", "日本語/キー", "😀/🎉", "mixed-Ωmega-𝄞"]);
    },
  }),
  defineCase({
    id: "OS-KEYS-NFC-NFD",
    title: "The NFC and NFD forms of the same text are two distinct keys",
    clause: "1.3.2",
    kinds: OS,
    async run(ctx) {
      const nfc = "caf\u00e9";
      const nfd = "cafe\u0301";
      await roundTripKeys(ctx, [nfc, nfd, `dir-${nfc}/x`, `dir-${nfd}/x`]);
    },
  }),
  defineCase({
    id: "OS-KEYS-PATH-SEGMENTS",
    title: "a//b, a/b, a/./b, a/../b and a trailing / are distinct keys: no slash collapsing or dot resolution",
    clause: "1.3.2, 1.3.5",
    kinds: OS,
    async run(ctx) {
      await roundTripKeys(ctx, ["a//b", "a/b", "a/./b", "a/../b", "a/", "a"]);
    },
  }),
  defineCase({
    id: "OS-KEY-TOO-LONG",
    title: "A key longer than 1024 bytes fails with INVALID_ARGUMENT/INVALID_NAME; 1024 bytes is accepted",
    clause: "1.3.1",
    kinds: OS,
    async run(ctx) {
      const longest = keyOfBytes(ctx, 1024);
      await putBytes(ctx, longest, "1024-byte key");
      const { data } = await getBytes(ctx, longest);
      check(data.toString() === "1024-byte key", "the object under a 1024-byte key does not read back (1.3.1)");
      // Refused, the key is no leak, whatever the error says; accepted, the cleanup deletes it.
      await expectError("PutObject under a 1025-byte key", { code: Code.InvalidArgument, reason: Reason.InvalidName }, () =>
        trackedPut(ctx, { bucket: ctx.objectSettings.bucket, key: keyOfBytes(ctx, 1025), body: bodyOf("x") }),
      );
    },
  }),
  defineCase({
    id: "OS-ERROR-PRECEDENCE",
    title: "When several errors apply, the earlier step of the contract's order wins: NOT_INITIALIZED, then INVALID_NAME or UNSUPPORTED, then BUCKET_NOT_FOUND, then OBJECT_NOT_FOUND",
    clause: "4.8.1",
    kinds: OS,
    async run(ctx) {
      const bucket = ctx.objectSettings.missingBucket;
      const key = keyOfBytes(ctx, 1025);
      const head = (store: ObjectStore): Promise<unknown> => store.headObject({ bucket, key }, { signal: ctx.signal });
      // The fresh process of PROTO-NOT-INITIALIZED (started here when that case did not run).
      await expectError("HeadObject of a 1025-byte key in a missing bucket, before Init", { code: Code.FailedPrecondition, reason: Reason.NotInitialized }, () =>
        head(ctx.plugin.freshObjectStore(UNINITIALISED_INSTANCE)),
      );
      await expectError("HeadObject of a 1025-byte key in a missing bucket", { code: Code.InvalidArgument, reason: Reason.InvalidName }, () => head(ctx.objectStore));
      const missingKey = `${ctx.prefix}missing`;
      await expectError("GetObject of a missing key in a missing bucket", { code: Code.NotFound, reason: Reason.BucketNotFound }, () =>
        ctx.objectStore.getObject({ bucket, key: missingKey }, { signal: ctx.signal }),
      );
      const ranged = ctx.descriptor.capabilities.includes("RANGED_READS");
      await expectError(
        `GetObject with a range past any end, of a missing key${ranged ? "" : ", without RANGED_READS"}`,
        ranged ? { code: Code.NotFound, reason: Reason.ObjectNotFound } : { code: Code.Unimplemented, reason: Reason.Unsupported },
        () => ctx.objectStore.getObject({ bucket: ctx.objectSettings.bucket, key: missingKey, range: { offset: 2 ** 40 } }, { signal: ctx.signal }),
      );
    },
  }),
  defineCase({
    id: "OS-SIGNED-GET",
    title: "A signed GET URL works with a plain HTTP client, returns the exact bytes, and expires_at respects the TTL",
    clause: "5.7.1, 5.7.3, 5.7.4",
    kinds: OS,
    capabilities: ["SIGNED_GET_URLS"],
    async run(ctx) {
      const key = `${ctx.prefix}signed/get me?&#`;
      const data = pseudoRandomBytes(key, 100_000);
      await putBytes(ctx, key, data);
      const before = Date.now();
      const signed = await expectOk("CreateSignedURL (GET, 60 s)", () => ctx.objectStore.createSignedUrl({ bucket: ctx.objectSettings.bucket, key, method: "GET", ttlSeconds: 60 }, { signal: ctx.signal }));
      const after = Date.now();
      check(signed.expiresAt.getTime() <= after + 60_000 + 1000, `expires_at ${signed.expiresAt.toISOString()} is later than the call time plus the 60 s TTL (5.7.3)`);
      check(signed.expiresAt.getTime() > before, `expires_at ${signed.expiresAt.toISOString()} is already past (5.7.3)`);
      const response = await expectOk("fetching the signed GET URL", () => fetch(signed.url, { signal: ctx.signal }));
      const body = Buffer.from(await response.arrayBuffer());
      check(response.status === 200, `the signed GET URL answered HTTP ${String(response.status)}; expected 200 (5.7.4)`);
      check(body.equals(data), `the signed GET URL returned ${String(body.length)} bytes that differ from the object (5.7.4)`);
    },
  }),
  defineCase({
    id: "OS-SIGNED-PUT",
    title: "A signed PUT URL accepts a body from a plain HTTP client and the object is then stored",
    clause: "5.7.1, 5.7.4",
    kinds: OS,
    capabilities: ["SIGNED_PUT_URLS"],
    async run(ctx) {
      const key = `${ctx.prefix}signed/put me`;
      trackKey(ctx, key);
      const data = pseudoRandomBytes(key, 50_000);
      const signed = await expectOk("CreateSignedURL (PUT, 60 s)", () => ctx.objectStore.createSignedUrl({ bucket: ctx.objectSettings.bucket, key, method: "PUT", ttlSeconds: 60 }, { signal: ctx.signal }));
      const response = await expectOk("uploading to the signed PUT URL", () => fetch(signed.url, { method: "PUT", body: data, signal: ctx.signal }));
      await response.arrayBuffer();
      check(response.status >= 200 && response.status < 300, `the signed PUT URL answered HTTP ${String(response.status)}; expected 2xx (5.7.4)`);
      const { data: stored } = await getBytes(ctx, key);
      check(stored.equals(data), `after the signed PUT the object holds ${String(stored.length)} bytes that differ from the upload (5.7.4)`);
    },
  }),
  defineCase({
    id: "OS-SIGNED-GET-EXPIRY",
    title: "A signed GET URL is refused with a 4xx status once expires_at has passed",
    clause: "5.7.5",
    kinds: OS,
    capabilities: ["SIGNED_GET_URLS"],
    async run(ctx) {
      const key = `${ctx.prefix}expiring`;
      await putBytes(ctx, key, "soon gone");
      const signed = await expectOk("CreateSignedURL (GET, 1 s)", () => ctx.objectStore.createSignedUrl({ bucket: ctx.objectSettings.bucket, key, method: "GET", ttlSeconds: 1 }, { signal: ctx.signal }));
      await sleep(Math.max(0, signed.expiresAt.getTime() - Date.now()) + ctx.objectSettings.signedUrlExpiryGraceMs, ctx.signal);
      const response = await expectOk("fetching the expired signed GET URL", () => fetch(signed.url, { signal: ctx.signal }));
      await response.arrayBuffer();
      check(
        response.status >= 400 && response.status < 500,
        `the signed GET URL still answers HTTP ${String(response.status)} ${String(ctx.objectSettings.signedUrlExpiryGraceMs)} ms after its expires_at; it must be refused with a 4xx (5.7.5)`,
      );
    },
  }),
  defineCase({
    id: "OS-SIGNED-PUT-EXPIRY",
    title: "A signed PUT URL is refused with a 4xx status once expires_at has passed, and stores nothing",
    clause: "5.7.5",
    kinds: OS,
    capabilities: ["SIGNED_PUT_URLS"],
    async run(ctx) {
      const key = `${ctx.prefix}expiring-put`;
      trackKey(ctx, key);
      const signed = await expectOk("CreateSignedURL (PUT, 1 s)", () => ctx.objectStore.createSignedUrl({ bucket: ctx.objectSettings.bucket, key, method: "PUT", ttlSeconds: 1 }, { signal: ctx.signal }));
      await sleep(Math.max(0, signed.expiresAt.getTime() - Date.now()) + ctx.objectSettings.signedUrlExpiryGraceMs, ctx.signal);
      const response = await expectOk("uploading to the expired signed PUT URL", () => fetch(signed.url, { method: "PUT", body: "too late", signal: ctx.signal }));
      await response.arrayBuffer();
      check(response.status >= 400 && response.status < 500, `the expired signed PUT URL answered HTTP ${String(response.status)}; it must be refused with a 4xx (5.7.5)`);
      const head = await ctx.objectStore.headObject({ bucket: ctx.objectSettings.bucket, key }, { signal: ctx.signal });
      check(head === undefined, "an upload through an expired signed PUT URL stored an object (5.7.5)");
    },
  }),
  defineCase({
    id: "OS-SIGNED-TTL-INVALID",
    title: "CreateSignedURL with ttl_seconds 0 fails with INVALID_ARGUMENT",
    clause: "5.7.2",
    kinds: OS,
    capabilities: ["SIGNED_GET_URLS"],
    async run(ctx) {
      await expectError("CreateSignedURL with ttl_seconds 0", { code: Code.InvalidArgument }, () =>
        ctx.objectStore.createSignedUrl({ bucket: ctx.objectSettings.bucket, key: `${ctx.prefix}k`, method: "GET", ttlSeconds: 0 }, { signal: ctx.signal }),
      );
    },
  }),
  defineCase({
    id: "OS-SIGNED-GET-MISSING-KEY",
    title: "A signed GET URL for a missing key answers 404",
    clause: "5.7.6",
    level: "SHOULD",
    kinds: OS,
    capabilities: ["SIGNED_GET_URLS"],
    async run(ctx) {
      let url: string;
      try {
        url = (await ctx.objectStore.createSignedUrl({ bucket: ctx.objectSettings.bucket, key: `${ctx.prefix}never-stored`, method: "GET", ttlSeconds: 60 }, { signal: ctx.signal })).url;
      } catch (error) {
        const e = StowageError.from(error);
        check(e.code === Code.NotFound, `CreateSignedURL for a missing key failed with ${describeFailure(e)}; it may succeed, or fail with NOT_FOUND (5.7.6)`);
        return;
      }
      const response = await fetch(url, { signal: ctx.signal });
      await response.arrayBuffer();
      check(response.status === 404, `the signed GET URL of a missing key answered HTTP ${String(response.status)}; expected 404 (5.7.6)`);
    },
  }),
  defineCase({
    id: "OS-SIGNED-UNSUPPORTED",
    title: "Without SIGNED_GET_URLS, CreateSignedURL (GET) fails with UNIMPLEMENTED/UNSUPPORTED",
    clause: "5.7.1, 3.4.1",
    kinds: OS,
    withoutCapabilities: ["SIGNED_GET_URLS"],
    async run(ctx) {
      await expectError("CreateSignedURL (GET) from a plugin without SIGNED_GET_URLS", { code: Code.Unimplemented, reason: Reason.Unsupported }, () =>
        ctx.objectStore.createSignedUrl({ bucket: ctx.objectSettings.bucket, key: `${ctx.prefix}k`, method: "GET", ttlSeconds: 60 }, { signal: ctx.signal }),
      );
    },
  }),
];

function sameMap(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ak = Object.keys(a).sort();
  const bk = Object.keys(b).sort();
  return ak.length === bk.length && ak.every((k, i) => k === bk[i] && a[k] === b[k]);
}

/** Cases about cancellation, deadlines and crashes that need object bodies. */
const streamingCases: ConformanceCase[] = [
  defineCase({
    id: "PROTO-CANCEL-GET",
    title: "After the caller cancels a GetObject mid-body, the plugin releases the call: the key can be overwritten and read within 5 s",
    clause: "2.4.1, 2.4.2, 2.4.7",
    kinds: OS,
    async run(ctx) {
      const key = `${ctx.prefix}object`;
      await putBytes(ctx, key, pseudoRandomBytes(key, 8 * MIB));
      const controller = new AbortController();
      const out = await expectOk("GetObject", () => ctx.objectStore.getObject({ bucket: ctx.objectSettings.bucket, key }, { signal: controller.signal }));
      const iterator = out.body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      const first = await iterator.next();
      check(first.done !== true, "the 8 MiB body ended before its first chunk");
      controller.abort();
      out.body.destroy();
      await expectWritable(ctx, key, "2.4.2, 2.4.7");
    },
  }),
  defineCase({
    id: "PROTO-CANCEL-PUT",
    title: "A PutObject cancelled mid-body leaves no partial object: nothing, or the previous complete body",
    clause: "2.4.4, 5.2.4",
    kinds: OS,
    async run(ctx) {
      for (const previous of [undefined, pseudoRandomBytes("previous", 300_000)]) {
        const key = `${ctx.prefix}${previous === undefined ? "new" : "existing"}`;
        if (previous !== undefined) await putBytes(ctx, key, previous);
        else trackKey(ctx, key);
        const controller = new AbortController();
        const pulled = { count: 0 };
        const put = ctx.objectStore.putObject({ bucket: ctx.objectSettings.bucket, key, body: stallingBody(2 * MIB, pulled, controller.signal, 60_000) }, { signal: controller.signal });
        put.catch(() => undefined);
        await waitUntil(() => pulled.count >= 2 * MIB, 10_000, "sending the first 2 MiB of the body");
        await sleep(200);
        controller.abort();
        const outcome = await within(ctx.objectSettings.cancelGraceMs, "the cancelled PutObject", () => put.then(() => "stored", (error: unknown) => error));
        check(outcome !== "stored", `PutObject of ${showKey(key)} succeeded although the caller cancelled it mid-body (2.4.4)`);
        await expectContent(ctx, key, previous, "2.4.4");
        await expectWritable(ctx, key, "2.4.2");
      }
    },
  }),
  defineCase({
    id: "PROTO-DEADLINE",
    title: "A PutObject whose body stalls past its deadline fails with DEADLINE_EXCEEDED and stores nothing",
    clause: "2.4.1, 2.4.3, 2.4.4",
    kinds: OS,
    async run(ctx) {
      const key = `${ctx.prefix}stalled`;
      trackKey(ctx, key);
      const pulled = { count: 0 };
      const giveUp = new AbortController();
      const started = Date.now();
      const error = await expectError("PutObject with a 0.5 s deadline whose body stalls", { code: Code.DeadlineExceeded }, () =>
        ctx.objectStore.putObject({ bucket: ctx.objectSettings.bucket, key, body: stallingBody(MIB, pulled, giveUp.signal, 5000) }, { signal: ctx.signal, timeoutMs: 500 }),
      );
      giveUp.abort();
      ctx.note(`failed after ${String(Date.now() - started)} ms: ${error.rawMessage}`);
      await expectContent(ctx, key, undefined, "2.4.4");
      await expectWritable(ctx, key, "2.4.2");
    },
  }),
  defineCase({
    id: "PROTO-CRASH-DURING-CALL",
    title: "When the plugin process dies during a GetObject, the call fails with UNAVAILABLE/PLUGIN_CRASHED promptly and the next call relaunches it",
    clause: "protocol.md §12, 4.5",
    kinds: OS,
    async run(ctx) {
      const key = `${ctx.prefix}object`;
      await putBytes(ctx, key, pseudoRandomBytes(key, 8 * MIB));
      const out = await expectOk("GetObject", () => ctx.objectStore.getObject({ bucket: ctx.objectSettings.bucket, key }, { signal: ctx.signal }));
      const iterator = out.body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      await iterator.next();
      const pid = ctx.plugin.pid();
      if (pid === undefined) throw new CaseSkipped("the plugin's process ID is not known");
      process.kill(pid, "SIGKILL");
      const outcome = await within(5000, "the body of the GetObject whose plugin died", async () => {
        try {
          for (;;) {
            const next = await iterator.next();
            if (next.done === true) return "ended";
          }
        } catch (error) {
          return StowageError.from(error);
        }
      });
      check(outcome !== "ended", "the body of a GetObject ended normally although the plugin process was killed mid-body");
      check(outcome.code === Code.Unavailable, `the GetObject whose plugin died failed with ${describeFailure(outcome)}; expected UNAVAILABLE/PLUGIN_CRASHED (protocol.md §12)`);
      const { data } = await within(30_000, "the first call after the crash", () => getBytes(ctx, key).catch((e: unknown) => {
        // A plugin that keeps objects in memory loses them in a crash; a missing key still proves the relaunch.
        if (e instanceof CaseFailure && e.message.includes("NOT_FOUND")) return { data: undefined };
        throw e;
      }));
      if (data === undefined) ctx.note("the object was gone after the crash (the plugin keeps objects in its process)");
    },
  }),
];

/** Every object-store case, in catalogue order. */
export const objectStoreCases: readonly ConformanceCase[] = [...cases, ...directTransferCases, ...objectLockCases, ...streamingCases];
