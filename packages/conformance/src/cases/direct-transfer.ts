/**
 * Direct-transfer cases (contract 5.8, contract 1.1): the kit acts as the host. It calls PlanGet,
 * BeginPut, SignPart, CompletePut and AbortPut on a plugin process of its own (the host uses them
 * only inside `putObject` and `getObject`), sends the plans' HTTP requests to the store itself with
 * `fetch`, and checks what the store then holds with the plugin's GetObject and HeadObject on the
 * same process.
 *
 * URLs and header values of plans are credentials (clause 5.8.4): no message of these cases quotes
 * them; a request is named by its method and host only.
 *
 * @packageDocumentation
 */
import { createHash, randomBytes } from "node:crypto";
import { crc32 } from "node:zlib";
import { Code, Reason, StowageError } from "@stowage/sdk";
import { CaseSkipped, defineCase } from "../define.js";
import { pseudoRandomBytes, sha256Bytes } from "../harness/data.js";
import { CaseFailure, check, describeFailure, expectError, expectOk, showKey } from "../harness/expect.js";
import {
  RawObjectStore,
  type RawCompletedPart,
  type RawDeclined,
  type RawGetPlan,
  type RawHttpRequest,
  type RawObjectInfo,
  type RawPutPlan,
  type RawRef,
} from "../harness/raw-object-store.js";
import type { CaseContext, ConformanceCase } from "../types.js";
import { keyOfBytes } from "./objects.js";
import { rawStore } from "./raw-store.js";

const OS = ["object-store"] as const;

/** The longest a plan may stay valid (clause 5.8.3), and a second for the two clocks. */
const MAX_VALIDITY_MS = 15 * 60_000 + 1000;

/** Why the direct-transfer cases launch a process of their own, in messages. */
const DIRECT_RPCS = "direct-transfer RPCs";

/** Bytes beyond one part in a multi-part body: the last part. */
const TAIL = 1000;

function isDeclined(answer: object): answer is RawDeclined {
  return typeof (answer as { declined?: unknown }).declined === "string";
}

/** The plan, or a skip: a plugin MAY decline any transfer (clause 5.8.1). */
function planOf<T extends object>(answer: T | RawDeclined, what: string): T {
  if (isDeclined(answer)) throw new CaseSkipped(`the plugin declined ${what} (${answer.declined}), as clause 5.8.1 allows; nothing to check`);
  return answer;
}

/** `GET to <host>`: how messages name a request, never with its query or headers (clause 5.8.4). */
function describeRequest(request: RawHttpRequest): string {
  let host = "the store";
  try {
    host = new URL(request.url).host;
  } catch {
    // Reported by checkRequest.
  }
  return `${request.method} to ${host}`;
}

/** Checks a signed request's form (clause 5.8.3); messages name header names only. */
function checkRequest(request: RawHttpRequest | undefined, method: "GET" | "PUT", what: string, clause: string): asserts request is RawHttpRequest {
  check(request !== undefined, `${what} carries no request (${clause})`);
  check(request.method === method, `${what} is a ${JSON.stringify(request.method)} request; expected ${method} (5.8.3)`);
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    throw new CaseFailure(`${what} has a URL that does not parse as an absolute URL (5.8.3)`);
  }
  check(url.protocol === "https:" || url.protocol === "http:", `${what} has a ${url.protocol} URL; only https: and http: are allowed (5.8.3)`);
  const bad = Object.keys(request.headers).filter((name) => name === "" || /[^!#$%&'*+\-.^_`|~0-9a-z]/.test(name));
  check(bad.length === 0, `${what} has header names that are not lower-case tokens: ${bad.map((n) => JSON.stringify(n)).join(", ")} (5.8.3)`);
}

/**
 * Checks an expiry against the call that returned it (clause 5.8.3): a signed request's is at most
 * 15 minutes away; an upload's (`PutPlan.expires_at`, `capped` false) is its window, without that cap.
 */
function checkExpiry(expiresAt: Date | undefined, calledAt: number, returnedAt: number, what: string, capped = true): void {
  check(expiresAt !== undefined, `${what} has no expires_at; it is REQUIRED (5.8.3)`);
  check(expiresAt.getTime() > returnedAt, `${what} expires at ${expiresAt.toISOString()}, before it even arrived (5.8.3)`);
  if (!capped) return;
  check(
    expiresAt.getTime() <= calledAt + MAX_VALIDITY_MS,
    `${what} expires at ${expiresAt.toISOString()}, ${String(Math.round((expiresAt.getTime() - calledAt) / 1000))} s after the call that returned it; at most 15 minutes are allowed (5.8.3)`,
  );
}

/** What the store answered to one request. */
interface HttpAnswer {
  readonly status: number;
  readonly data: Buffer;
  readonly etag: string;
}

function networkError(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") return code;
    current = (current as { cause?: unknown }).cause;
  }
  return error instanceof Error ? error.name : "an error";
}

/**
 * Sends a plan's request as a host does: its headers (the kit adds `range` when asked; `fetch` adds
 * `host` and `content-length`), its body for a part. Resolves with what the store answered.
 */
async function send(ctx: CaseContext, request: RawHttpRequest, what: string, options: { body?: Uint8Array; range?: readonly [number, number] } = {}): Promise<HttpAnswer> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) if (name !== "host" && name !== "content-length") headers[name] = value;
  if (options.range !== undefined) headers.range = `bytes=${String(options.range[0])}-${String(options.range[1])}`;
  let response: Response;
  try {
    response = await fetch(request.url, { method: request.method, headers, ...(options.body === undefined ? {} : { body: options.body }), redirect: "manual", signal: ctx.signal });
  } catch (error) {
    throw new CaseFailure(`${what}: the ${describeRequest(request)} failed (${networkError(error)})`);
  }
  const data = Buffer.from(await response.arrayBuffer());
  return { status: response.status, data, etag: response.headers.get("etag") ?? "" };
}

function ok(status: number): boolean {
  return (status >= 200 && status < 300) || status === 308;
}

/** A digest of `data` of the plan's kind, empty for none. */
function partChecksum(kind: RawPutPlan["partChecksum"], data: Uint8Array): Buffer {
  if (kind === "none") return Buffer.alloc(0);
  if (kind === "sha256" || kind === "md5") return createHash(kind).update(data).digest();
  if (kind === "crc32") {
    // CRC-32 as zlib computes it, 4 bytes big-endian.
    const value = Buffer.alloc(4);
    value.writeUInt32BE(crc32(data));
    return value;
  }
  throw new CaseFailure(`the plan names part checksum ${String(kind)}, which the contract does not define (5.8.9)`);
}

/** `max(1, ceil(size / partSize))` (clause 5.8.8). */
function partCount(size: number, partSize: number): number {
  return Math.max(1, Math.ceil(size / partSize));
}

/** The bytes of part `n` (from 1). */
function partBytes(body: Buffer, partSize: number, n: number): Buffer {
  return body.subarray((n - 1) * partSize, Math.min(n * partSize, body.length));
}

function hex(data: Uint8Array): string {
  return `${Buffer.from(data).toString("hex").slice(0, 12)}…`;
}

/** Registers the deletion of `key` on the kit's process (the objects of a plugin that keeps them in its process are there). */
function trackRawKey(ctx: CaseContext, store: RawObjectStore, key: string): void {
  ctx.tracker.add(`object ${ctx.objectSettings.bucket}/${key}`, async (signal) => {
    await store.deleteObject({ bucket: ctx.objectSettings.bucket, key }, signal);
  });
}

/** PutObject on the kit's process, tracked, expecting success. */
async function rawPut(ctx: CaseContext, store: RawObjectStore, key: string, body: Buffer): Promise<void> {
  trackRawKey(ctx, store, key);
  await expectOk(`PutObject ${showKey(key)}`, () => store.putObject({ bucket: ctx.objectSettings.bucket, key, body }, ctx.signal));
}

/** HeadObject on the kit's process. */
function rawHead(ctx: CaseContext, store: RawObjectStore, key: string): Promise<RawObjectInfo | undefined> {
  return expectOk(`HeadObject ${showKey(key)}`, () => store.headObject({ bucket: ctx.objectSettings.bucket, key }, ctx.signal));
}

/** Expects nothing under `key`. */
async function expectAbsent(ctx: CaseContext, store: RawObjectStore, key: string, why: string, clause: string): Promise<void> {
  const info = await rawHead(ctx, store, key);
  check(info === undefined, `HeadObject finds ${showKey(key)} (${String(info?.size)} bytes) ${why} (${clause})`);
}

/** Upload attributes: content type and metadata when the plugin announces OBJECT_METADATA. */
function attributes(ctx: CaseContext): { contentType?: string; metadata?: Record<string, string> } {
  return ctx.descriptor.capabilities.includes("OBJECT_METADATA") ? { contentType: "application/x-stowage-conformance", metadata: { "backup-name": "b1", owner_id: "42" } } : {};
}

/** An upload in progress: its plan, and how to finish it. */
interface Upload {
  readonly ref: RawRef & { readonly uploadId: string };
  readonly plan: RawPutPlan;
  readonly size: number;
  /** The tracker's label of its abort. */
  readonly label: string;
}

/**
 * BeginPut, with the plan checked (clause 5.8.8, 5.8.3); skipped when the plugin declines. The
 * upload is aborted after the case unless {@link finished} says it ended.
 */
async function begin(
  ctx: CaseContext,
  store: RawObjectStore,
  key: string,
  size: number,
  extra: { contentType?: string; metadata?: Record<string, string>; sha256?: Uint8Array } = {},
): Promise<Upload> {
  const bucket = ctx.objectSettings.bucket;
  trackRawKey(ctx, store, key);
  const calledAt = Date.now();
  const answer = await expectOk(`BeginPut ${showKey(key)} of ${String(size)} bytes`, () => store.beginPut({ bucket, key, size, ...extra }, ctx.signal));
  const returnedAt = Date.now();
  const plan = planOf(answer, `BeginPut of ${String(size)} bytes`);
  const what = `the upload plan for ${String(size)} bytes`;
  check(plan.uploadId !== "", `${what} has no upload_id; it is REQUIRED (5.8.8)`);
  const ref = { bucket, key, uploadId: plan.uploadId };
  const label = `upload ${bucket}/${key} (AbortPut)`;
  ctx.tracker.add(label, async (signal) => {
    await store.abortPut(ref, signal);
  });
  check(Number.isSafeInteger(plan.partSize) && plan.partSize >= 1, `${what} has part_size ${String(plan.partSize)}; it must be at least 1 (5.8.8)`);
  check(typeof plan.partChecksum === "string", `${what} names part checksum ${String(plan.partChecksum)}, which the contract does not define (5.8.9)`);
  check(plan.maxParallelParts >= 0, `${what} has max_parallel_parts ${String(plan.maxParallelParts)}; it must not be negative`);
  checkExpiry(plan.expiresAt, calledAt, returnedAt, what, false);
  return { ref, plan, size, label };
}

/** The upload ended (completed or aborted): no AbortPut after the case. */
function finished(ctx: CaseContext, upload: Upload): void {
  ctx.tracker.forget(upload.label);
}

/** SignPart of part `n` of `body`, with the request checked (clause 5.8.9, 5.8.3). */
async function sign(ctx: CaseContext, store: RawObjectStore, upload: Upload, body: Buffer, n: number, checksum?: Uint8Array): Promise<RawHttpRequest> {
  const { plan } = upload;
  const part = partBytes(body, plan.partSize, n);
  const calledAt = Date.now();
  const signed = await expectOk(`SignPart ${String(n)} of ${showKey(upload.ref.key)}`, () =>
    store.signPart({ ...upload.ref, partNumber: n, offset: (n - 1) * plan.partSize, size: part.length, checksum: checksum ?? partChecksum(plan.partChecksum, part) }, ctx.signal),
  );
  const returnedAt = Date.now();
  const what = `the signed request of part ${String(n)} of ${showKey(upload.ref.key)}`;
  checkRequest(signed.request, "PUT", what, "5.8.9");
  checkExpiry(signed.expiresAt, calledAt, returnedAt, what);
  return signed.request;
}

/** Signs and sends part `n` of `body`; expects the store to accept it (clause 5.8.9). */
async function sendPart(ctx: CaseContext, store: RawObjectStore, upload: Upload, body: Buffer, n: number): Promise<RawCompletedPart> {
  const part = partBytes(body, upload.plan.partSize, n);
  const request = await sign(ctx, store, upload, body, n);
  const answer = await send(ctx, request, `part ${String(n)} of ${showKey(upload.ref.key)}`, { body: part });
  check(ok(answer.status), `the store answered HTTP ${String(answer.status)} to part ${String(n)} of ${showKey(upload.ref.key)} (${describeRequest(request)}), signed with its size and checksum; expected 2xx (5.8.9)`);
  return { partNumber: n, size: part.length, etag: answer.etag, checksum: partChecksum(upload.plan.partChecksum, part) };
}

/** Sends every part of `body` in order. */
async function sendAll(ctx: CaseContext, store: RawObjectStore, upload: Upload, body: Buffer): Promise<RawCompletedPart[]> {
  const parts: RawCompletedPart[] = [];
  for (let n = 1; n <= partCount(body.length, upload.plan.partSize); n++) parts.push(await sendPart(ctx, store, upload, body, n));
  return parts;
}

/** CompletePut with the body's size and SHA-256, expecting success. */
async function complete(ctx: CaseContext, store: RawObjectStore, upload: Upload, parts: readonly RawCompletedPart[], body: Buffer): Promise<{ size: number; sha256: Buffer }> {
  const result = await expectOk(`CompletePut ${showKey(upload.ref.key)}`, () => store.completePut({ ...upload.ref, parts, size: body.length, sha256: sha256Bytes(body) }, ctx.signal));
  finished(ctx, upload);
  return result;
}

/**
 * The size of a body of two parts, the second of {@link TAIL} bytes, or a skip when the plan's
 * part size would make it larger than `objectStore.largeObjectSize` (the kit keeps the bytes it
 * moves small).
 */
function multiPartSize(ctx: CaseContext, partSize: number): number | undefined {
  const size = partSize + TAIL;
  return size <= ctx.objectSettings.largeObjectBytes ? size : undefined;
}

function multiPartSkipReason(ctx: CaseContext, partSize: number): string {
  return `the plugin plans parts of ${String(partSize)} bytes; a body of two parts would exceed objectStore.largeObjectSize (${String(ctx.objectSettings.largeObjectBytes)} bytes), so the multi-part variant is not run`;
}

/** Learns the part size from a plan for a one-part body, then begins a two-part upload of `key` (or skips). */
async function beginMultiPart(
  ctx: CaseContext,
  store: RawObjectStore,
  key: string,
  extra: (body: Buffer) => { contentType?: string; metadata?: Record<string, string>; sha256?: Uint8Array } = () => ({}),
): Promise<{ upload: Upload; body: Buffer }> {
  const probe = await begin(ctx, store, `${key}.probe`, TAIL);
  await expectOk("AbortPut of the probe upload", () => store.abortPut(probe.ref, ctx.signal));
  finished(ctx, probe);
  const size = multiPartSize(ctx, probe.plan.partSize);
  if (size === undefined) throw new CaseSkipped(multiPartSkipReason(ctx, probe.plan.partSize));
  const body = pseudoRandomBytes(key, size);
  const upload = await begin(ctx, store, key, size, extra(body));
  if (partCount(size, upload.plan.partSize) < 2) {
    throw new CaseSkipped(`the plugin plans ${String(upload.plan.partSize)}-byte parts for a ${String(size)}-byte body (one part), though it planned ${String(probe.plan.partSize)}-byte parts for ${String(TAIL)} bytes`);
  }
  return { upload, body };
}

/** Whether `a` and `b` are the same map. */
function sameMap(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ak = Object.keys(a).sort();
  const bk = Object.keys(b).sort();
  return ak.length === bk.length && ak.every((k, i) => k === bk[i] && a[k] === b[k]);
}

/** Reads `[first, last]` with a plan's request and expects exactly those bytes of `data` (clause 5.8.6). */
async function expectRange(ctx: CaseContext, request: RawHttpRequest, data: Buffer, first: number, last: number, objectSize: number, what: string): Promise<void> {
  const answer = await send(ctx, request, what, { range: [first, last] });
  const whole = first === 0 && last === objectSize - 1;
  const expected = data.subarray(first, last + 1);
  check(
    answer.status === 206 || (answer.status === 200 && whole),
    `${what}: the store answered HTTP ${String(answer.status)} to the ${describeRequest(request)} with range bytes=${String(first)}-${String(last)}; expected 206${whole ? " (or 200 with the whole object)" : ""} (5.8.6)`,
  );
  check(
    answer.data.equals(expected),
    `${what}: the ${describeRequest(request)} with range bytes=${String(first)}-${String(last)} returned ${String(answer.data.length)} bytes (sha256 ${hex(sha256Bytes(answer.data))}) instead of the ${String(expected.length)} asked for (5.8.6)`,
  );
}

/** Checks that a read plan describes what GetObject's header says for the same request (clause 5.8.5). */
function checkLikeGet(plan: RawGetPlan, got: { object: RawObjectInfo | undefined; contentLength: number; offset: number }, what: string): void {
  check(plan.object !== undefined, `${what} describes no object; object is REQUIRED (5.8.5)`);
  const o = plan.object;
  const g = got.object;
  const differences: string[] = [];
  if (g === undefined) differences.push("GetObject sent no object");
  else {
    if (o.key !== g.key) differences.push(`key ${showKey(o.key)} instead of ${showKey(g.key)}`);
    if (o.size !== g.size) differences.push(`size ${String(o.size)} instead of ${String(g.size)}`);
    if (o.etag !== g.etag) differences.push(`etag ${JSON.stringify(o.etag)} instead of ${JSON.stringify(g.etag)}`);
    if (o.contentType !== g.contentType) differences.push(`content type ${JSON.stringify(o.contentType)} instead of ${JSON.stringify(g.contentType)}`);
    if (!sameMap(o.metadata, g.metadata)) differences.push(`metadata ${JSON.stringify(o.metadata)} instead of ${JSON.stringify(g.metadata)}`);
  }
  if (plan.contentLength !== got.contentLength) differences.push(`content_length ${String(plan.contentLength)} instead of ${String(got.contentLength)}`);
  if (plan.offset !== got.offset) differences.push(`offset ${String(plan.offset)} instead of ${String(got.offset)}`);
  check(differences.length === 0, `${what} differs from GetObject's header for the same request: ${differences.join("; ")} (5.8.5)`);
}

/** A copy of an answer fit for a message: every request is named by method and host, its URL and headers left out (5.8.4). */
function withoutSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSecrets);
  if (value instanceof Uint8Array) return `<${String(value.byteLength)} bytes${value.byteLength > 0 ? ` ${hex(value)}` : ""}>`;
  if (value instanceof Date || typeof value !== "object" || value === null) return value;
  const record = value as Record<string, unknown>;
  if (typeof record.url === "string" && typeof record.method === "string") return `<${describeRequest(record as unknown as RawHttpRequest)}>`;
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, withoutSecrets(v)]));
}

/** {@link expectError} for the direct-transfer calls: what a call that should have failed returned is shown without its requests' URLs and headers. */
function expectRefused(what: string, expected: { code: Code; reason?: string | undefined }, operation: () => Promise<unknown>): Promise<StowageError> {
  return expectError(what, expected, async () => withoutSecrets(await operation()));
}

/** A made-up upload ID no plugin issued. */
function forgedUploadId(): string {
  return `stowage-conformance-forged-${randomBytes(12).toString("hex")}`;
}

/** The direct-transfer cases, in catalogue order. */
export const directTransferCases: readonly ConformanceCase[] = [
  defineCase({
    id: "OS-DIRECT-RPCS",
    title: "A plugin announcing DIRECT_TRANSFER reports contract 1.1 or later and serves PlanGet, BeginPut, SignPart, CompletePut and AbortPut (none UNIMPLEMENTED)",
    clause: "5.8.1, 8.4",
    kinds: OS,
    capabilities: ["DIRECT_TRANSFER"],
    requires: ["init", "command"],
    async run(ctx) {
      const store = await rawStore(ctx, DIRECT_RPCS);
      const version = /^(\d+)\.(\d+)$/.exec(store.contractVersion);
      check(
        version !== null && Number(version[1]) === 1 && Number(version[2]) >= 1,
        `the plugin announces CAPABILITY_DIRECT_TRANSFER but GetPluginInfo reports contract_version ${JSON.stringify(store.contractVersion)}; direct transfer is contract 1.1, and a host does not call it under 1.0 (5.8.1, 8.4)`,
      );
      check(store.capabilities.includes("DIRECT_TRANSFER"), `the plugin announced DIRECT_TRANSFER to the host but not to the kit's own process of the same executable (capabilities ${store.capabilities.join(", ")})`);
      const bucket = ctx.objectSettings.bucket;
      const key = `${ctx.prefix}probe`;
      const forged = { bucket, key, uploadId: forgedUploadId() };
      const unimplemented: string[] = [];
      const probe = async <T>(method: string, fn: () => Promise<T>): Promise<T | undefined> => {
        try {
          return await fn();
        } catch (error) {
          if (StowageError.from(error).code === Code.Unimplemented) unimplemented.push(`${method} (${describeFailure(error)})`);
          return undefined;
        }
      };
      await probe("PlanGet", () => store.planGet({ bucket, key: `${ctx.prefix}never-stored` }, ctx.signal));
      trackRawKey(ctx, store, key);
      const begun = await probe("BeginPut", () => store.beginPut({ bucket, key, size: 0 }, ctx.signal));
      const checksum = begun !== undefined && !isDeclined(begun) && typeof begun.partChecksum === "string" ? partChecksum(begun.partChecksum, Buffer.alloc(0)) : Buffer.alloc(0);
      await probe("SignPart", () => store.signPart({ ...forged, partNumber: 1, offset: 0, size: 0, checksum }, ctx.signal));
      await probe("CompletePut", () => store.completePut({ ...forged, parts: [{ partNumber: 1, size: 0, etag: "", checksum }], size: 0, sha256: sha256Bytes("") }, ctx.signal));
      const real = begun !== undefined && !isDeclined(begun) && begun.uploadId !== "" ? { bucket, key, uploadId: begun.uploadId } : forged;
      await probe("AbortPut", () => store.abortPut(real, ctx.signal));
      check(unimplemented.length === 0, `a plugin that announces DIRECT_TRANSFER must serve all five RPCs; these answered UNIMPLEMENTED: ${unimplemented.join("; ")} (5.8.1)`);
    },
  }),
  defineCase({
    id: "OS-DIRECT-GET",
    title: "PlanGet describes what GetObject would (object, offset, content_length), expires within 15 minutes, and its request returns exactly the bytes asked for, whole and by ranges",
    clause: "5.8.3, 5.8.5, 5.8.6",
    kinds: OS,
    capabilities: ["DIRECT_TRANSFER"],
    requires: ["init", "command"],
    timeoutMs: 60_000,
    async run(ctx) {
      const store = await rawStore(ctx, DIRECT_RPCS);
      const bucket = ctx.objectSettings.bucket;
      const key = `${ctx.prefix}object`;
      const data = pseudoRandomBytes(key, 100_000);
      await rawPut(ctx, store, key, data);
      const calledAt = Date.now();
      const plan = planOf(await expectOk("PlanGet of the whole object", () => store.planGet({ bucket, key }, ctx.signal)), "PlanGet of a 100,000-byte object");
      const returnedAt = Date.now();
      checkExpiry(plan.expiresAt, calledAt, returnedAt, "the read plan");
      checkRequest(plan.request, "GET", "the read plan of a 100,000-byte object", "5.8.5");
      const got = await expectOk("GetObject of the same object", () => store.getObject({ bucket, key }, ctx.signal));
      check(got.data.equals(data), "GetObject returns other bytes than PutObject stored");
      checkLikeGet(plan, got, "the read plan of the whole object");
      const request = plan.request;
      await expectRange(ctx, request, data, 0, data.length - 1, data.length, "reading the whole object by plan");
      await expectRange(ctx, request, data, 10, 109, data.length, "reading bytes 10 to 109 by plan");
      await expectRange(ctx, request, data, 65_536, data.length - 1, data.length, "reading from byte 65,536 to the end by plan");
      await expectRange(ctx, request, data, data.length - 1, data.length - 1, data.length, "reading the last byte by plan");

      const emptyKey = `${ctx.prefix}empty`;
      await rawPut(ctx, store, emptyKey, Buffer.alloc(0));
      const empty = planOf(await expectOk("PlanGet of an empty object", () => store.planGet({ bucket, key: emptyKey }, ctx.signal)), "PlanGet of an empty object");
      checkLikeGet(empty, await expectOk("GetObject of the empty object", () => store.getObject({ bucket, key: emptyKey }, ctx.signal)), "the read plan of an empty object");

      if (!ctx.descriptor.capabilities.includes("RANGED_READS")) {
        ctx.note("ranged plans not checked: the plugin does not announce RANGED_READS");
        return;
      }
      const tenKey = `${ctx.prefix}ten-bytes`;
      const ten = Buffer.from("0123456789");
      await rawPut(ctx, store, tenKey, ten);
      for (const range of [{ offset: 8, length: 5 }, { offset: 2, length: 3 }, { offset: 4 }, { offset: 10 }, { offset: 0, length: 0 }]) {
        const what = `the read plan of range ${JSON.stringify(range)} of a 10-byte object`;
        const ranged = planOf(await expectOk(`PlanGet with range ${JSON.stringify(range)}`, () => store.planGet({ bucket, key: tenKey, range }, ctx.signal)), `PlanGet with range ${JSON.stringify(range)}`);
        checkLikeGet(ranged, await expectOk(`GetObject with range ${JSON.stringify(range)}`, () => store.getObject({ bucket, key: tenKey, range }, ctx.signal)), what);
        if (ranged.contentLength === 0) continue;
        checkRequest(ranged.request, "GET", what, "5.8.5");
        await expectRange(ctx, ranged.request, ten, ranged.offset, ranged.offset + ranged.contentLength - 1, ten.length, `reading ${what}`);
      }
    },
  }),
  defineCase({
    id: "OS-DIRECT-GET-ERRORS",
    title: "PlanGet fails as GetObject does: OBJECT_NOT_FOUND, BUCKET_NOT_FOUND, INVALID_NAME, and OUT_OF_RANGE/INVALID_RANGE past the end (UNSUPPORTED for any range without RANGED_READS)",
    clause: "5.8.2, 5.3.1, 5.3.12, 5.0.2",
    kinds: OS,
    capabilities: ["DIRECT_TRANSFER"],
    requires: ["init", "command"],
    async run(ctx) {
      const store = await rawStore(ctx, DIRECT_RPCS);
      const bucket = ctx.objectSettings.bucket;
      await expectRefused("PlanGet of a key that was never stored", { code: Code.NotFound, reason: Reason.ObjectNotFound }, () => store.planGet({ bucket, key: `${ctx.prefix}never-stored` }, ctx.signal));
      await expectRefused(`PlanGet in the missing bucket ${JSON.stringify(ctx.objectSettings.missingBucket)}`, { code: Code.NotFound, reason: Reason.BucketNotFound }, () =>
        store.planGet({ bucket: ctx.objectSettings.missingBucket, key: `${ctx.prefix}k` }, ctx.signal),
      );
      await expectRefused("PlanGet of a 1025-byte key", { code: Code.InvalidArgument, reason: Reason.InvalidName }, () => store.planGet({ bucket, key: keyOfBytes(ctx, 1025) }, ctx.signal));
      const key = `${ctx.prefix}ten-bytes`;
      await rawPut(ctx, store, key, Buffer.from("0123456789"));
      if (ctx.descriptor.capabilities.includes("RANGED_READS")) {
        await expectRefused("PlanGet with range offset 11 of a 10-byte object", { code: Code.OutOfRange, reason: Reason.InvalidRange }, () => store.planGet({ bucket, key, range: { offset: 11 } }, ctx.signal));
      } else {
        await expectRefused("PlanGet with a range from a plugin without RANGED_READS", { code: Code.Unimplemented, reason: Reason.Unsupported }, () =>
          store.planGet({ bucket, key, range: { offset: 2, length: 3 } }, ctx.signal),
        );
      }
    },
  }),
  defineCase({
    id: "OS-DIRECT-GET-PINNED",
    title: "A read plan is pinned to the version it describes: once the key is overwritten, its request fails with 412 or 404",
    clause: "5.8.5",
    kinds: OS,
    capabilities: ["DIRECT_TRANSFER"],
    requires: ["init", "command"],
    async run(ctx) {
      const store = await rawStore(ctx, DIRECT_RPCS);
      const bucket = ctx.objectSettings.bucket;
      const key = `${ctx.prefix}object`;
      const v1 = pseudoRandomBytes(`${key}-v1`, 10_000);
      const v2 = pseudoRandomBytes(`${key}-v2`, 10_000);
      await rawPut(ctx, store, key, v1);
      const old = planOf(await expectOk("PlanGet of the first version", () => store.planGet({ bucket, key }, ctx.signal)), "PlanGet of a 10,000-byte object");
      checkRequest(old.request, "GET", "the read plan of the first version", "5.8.5");
      await expectRange(ctx, old.request, v1, 0, v1.length - 1, v1.length, "reading the first version by plan");
      await rawPut(ctx, store, key, v2);
      for (const [first, last] of [
        [0, v1.length - 1],
        [100, 199],
      ] as const) {
        const answer = await send(ctx, old.request, "reading by the first version's plan after an overwrite", { range: [first, last] });
        check(
          answer.status === 412 || answer.status === 404,
          `after the key was overwritten with another body of the same size, the first version's plan (${describeRequest(old.request)}, range bytes=${String(first)}-${String(last)}) answered HTTP ${String(answer.status)}${ok(answer.status) ? `, ${answer.data.equals(v2.subarray(first, last + 1)) ? "with the new version's bytes" : "with bytes"}` : ""}; a plan must pin its version with a precondition the store enforces (412 or 404) (5.8.5)`,
        );
      }
      const fresh = planOf(await expectOk("PlanGet of the second version", () => store.planGet({ bucket, key }, ctx.signal)), "PlanGet of the overwritten object");
      checkRequest(fresh.request, "GET", "the read plan of the second version", "5.8.5");
      await expectRange(ctx, fresh.request, v2, 0, v2.length - 1, v2.length, "reading the second version by a new plan");
    },
  }),
  defineCase({
    id: "OS-DIRECT-PUT",
    title: "BeginPut, SignPart per part, CompletePut store one-part, multi-part and empty bodies exactly (size, bytes, content type, metadata), and nothing is visible before the last part",
    clause: "5.8.8–5.8.11",
    kinds: OS,
    capabilities: ["DIRECT_TRANSFER"],
    requires: ["init", "command"],
    timeoutMs: 180_000,
    async run(ctx) {
      const store = await rawStore(ctx, DIRECT_RPCS);
      const bucket = ctx.objectSettings.bucket;
      const attrs = attributes(ctx);
      const roundTrip = async (name: string, body: Buffer, withSha: boolean): Promise<void> => {
        const key = `${ctx.prefix}${name}`;
        const begun = await begin(ctx, store, key, body.length, { ...attrs, ...(withSha ? { sha256: sha256Bytes(body) } : {}) });
        const count = partCount(body.length, begun.plan.partSize);
        // Every part but the last: the last one may make the object (a resumable session, 5.8.10).
        const parts: RawCompletedPart[] = [];
        for (let n = 1; n < count; n++) parts.push(await sendPart(ctx, store, begun, body, n));
        if (count > 1) await expectAbsent(ctx, store, key, `after ${String(count - 1)} of its ${String(count)} parts were sent; nothing may be visible before the last part (5.8.10)`, "5.8.10");
        parts.push(await sendPart(ctx, store, begun, body, count));
        const result = await complete(ctx, store, begun, parts, body);
        check(result.size === body.length, `CompletePut of the ${name} body (${String(body.length)} bytes, ${String(count)} parts) reports size ${String(result.size)} (5.8.11, 5.2.11)`);
        check(result.sha256.equals(sha256Bytes(body)), `CompletePut of the ${name} body reports sha256 ${result.sha256.length === 0 ? "(none)" : hex(result.sha256)} instead of the body's ${hex(sha256Bytes(body))} (5.8.11)`);
        const got = await expectOk(`GetObject ${showKey(key)}`, () => store.getObject({ bucket, key }, ctx.signal));
        check(got.data.equals(body), `after the direct upload of the ${name} body (${String(count)} parts) GetObject returns ${String(got.data.length)} bytes (sha256 ${hex(sha256Bytes(got.data))}) instead of the ${String(body.length)} sent (5.8.11)`);
        const head = await rawHead(ctx, store, key);
        check(head?.size === body.length, `after the direct upload of the ${name} body HeadObject reports size ${String(head?.size)} instead of ${String(body.length)} (5.8.11)`);
        if (attrs.contentType !== undefined) {
          const seen = { contentType: head.contentType, metadata: head.metadata };
          check(
            seen.contentType === attrs.contentType && sameMap(seen.metadata, attrs.metadata ?? {}),
            `after the direct upload of the ${name} body with content type and metadata, HeadObject reports ${JSON.stringify(seen)}; expected ${JSON.stringify(attrs)} (5.8.2, 5.2.12)`,
          );
        }
      };
      const one = pseudoRandomBytes("one-part", TAIL);
      await roundTrip("one-part", one, false);
      await roundTrip("empty", Buffer.alloc(0), true);
      const probe = await begin(ctx, store, `${ctx.prefix}multi-part.probe`, TAIL);
      await expectOk("AbortPut of the probe upload", () => store.abortPut(probe.ref, ctx.signal));
      finished(ctx, probe);
      const size = multiPartSize(ctx, probe.plan.partSize);
      if (size === undefined) {
        ctx.note(multiPartSkipReason(ctx, probe.plan.partSize));
        return;
      }
      await roundTrip("multi-part", pseudoRandomBytes("multi-part", size), true);
    },
  }),
  defineCase({
    id: "OS-DIRECT-PART-CHECKSUM",
    title: "The store refuses a part whose bytes differ from the checksum or size it was signed for, and nothing becomes visible; the right bytes are accepted",
    clause: "5.8.9, 5.8.10",
    kinds: OS,
    capabilities: ["DIRECT_TRANSFER"],
    requires: ["init", "command"],
    timeoutMs: 60_000,
    async run(ctx) {
      const store = await rawStore(ctx, DIRECT_RPCS);
      const key = `${ctx.prefix}object`;
      const body = pseudoRandomBytes(key, TAIL);
      const upload = await begin(ctx, store, key, body.length);
      const count = partCount(body.length, upload.plan.partSize);
      const part = partBytes(body, upload.plan.partSize, 1);
      const request = await sign(ctx, store, upload, body, 1);
      if (upload.plan.partChecksum === "none") {
        ctx.note("the plan names no part checksum: only the size is checked");
      } else {
        const altered = Buffer.from(part);
        altered[0] = (altered[0] ?? 0) ^ 0xff;
        const answer = await send(ctx, request, "a part with one byte changed", { body: altered });
        check(!ok(answer.status), `the store accepted (HTTP ${String(answer.status)}) a part whose bytes differ from the ${upload.plan.partChecksum} checksum it was signed with (${describeRequest(request)}); SignPart must sign a request the store accepts only with bytes of that checksum (5.8.9)`);
        await expectAbsent(ctx, store, key, "after the store was sent a part with changed bytes", "5.8.9, 5.8.10");
      }
      const shorter = await send(ctx, request, "a part one byte short", { body: part.subarray(1) });
      check(!ok(shorter.status), `the store accepted (HTTP ${String(shorter.status)}) a part one byte shorter than the size it was signed for (${describeRequest(request)}); SignPart must sign a request the store accepts only with exactly that size (5.8.9)`);
      await expectAbsent(ctx, store, key, "after the store was sent a part one byte short", "5.8.9, 5.8.10");
      // The same signed request with the right bytes: the refusals were about the bytes.
      const parts = [];
      const answer = await send(ctx, request, "the part with its own bytes", { body: part });
      check(ok(answer.status), `the store refused (HTTP ${String(answer.status)}) part 1 with the bytes it was signed for (${describeRequest(request)}) after refusing wrong ones; expected 2xx (5.8.9)`);
      parts.push({ partNumber: 1, size: part.length, etag: answer.etag, checksum: partChecksum(upload.plan.partChecksum, part) });
      for (let n = 2; n <= count; n++) parts.push(await sendPart(ctx, store, upload, body, n));
      await complete(ctx, store, upload, parts, body);
      const got = await expectOk(`GetObject ${showKey(key)}`, () => store.getObject({ bucket: ctx.objectSettings.bucket, key }, ctx.signal));
      check(got.data.equals(body), `after refusing wrong bytes and accepting the right ones, the object holds ${String(got.data.length)} bytes (sha256 ${hex(sha256Bytes(got.data))}) instead of the body sent (5.8.9, 5.8.11)`);
    },
  }),
  defineCase({
    id: "OS-DIRECT-PUT-MISSING-PART",
    title: "CompletePut of a multi-part upload with a part the store never received fails with DATA_LOSS/INTEGRITY_MISMATCH and stores nothing",
    clause: "5.8.11, 5.8.10",
    kinds: OS,
    capabilities: ["DIRECT_TRANSFER"],
    requires: ["init", "command"],
    timeoutMs: 180_000,
    async run(ctx) {
      const store = await rawStore(ctx, DIRECT_RPCS);
      const key = `${ctx.prefix}object`;
      for (const variant of ["left out of the list", "listed but never sent"] as const) {
        const { upload, body } = await beginMultiPart(ctx, store, key);
        const count = partCount(body.length, upload.plan.partSize);
        const first = await sendPart(ctx, store, upload, body, 1);
        const parts: RawCompletedPart[] = [first];
        if (variant === "listed but never sent") {
          for (let n = 2; n <= count; n++) {
            const part = partBytes(body, upload.plan.partSize, n);
            // What the store would have answered: S3's ETag of a part is its MD5.
            parts.push({ partNumber: n, size: part.length, etag: `"${createHash("md5").update(part).digest("hex")}"`, checksum: partChecksum(upload.plan.partChecksum, part) });
          }
        }
        await expectRefused(`CompletePut with parts 2 to ${String(count)} ${variant}`, { code: Code.DataLoss, reason: Reason.IntegrityMismatch }, () =>
          store.completePut({ ...upload.ref, parts, size: body.length, sha256: sha256Bytes(body) }, ctx.signal),
        );
        await expectAbsent(ctx, store, key, `after a CompletePut with parts ${variant} failed`, "5.8.11");
        await expectOk("AbortPut of the refused upload", () => store.abortPut(upload.ref, ctx.signal));
        finished(ctx, upload);
      }
    },
  }),
  defineCase({
    id: "OS-DIRECT-PUT-MISMATCH",
    title: "CompletePut whose SHA-256 differs from BeginPut's (or is missing), or whose size differs, fails with DATA_LOSS/INTEGRITY_MISMATCH and stores nothing",
    clause: "5.8.11",
    kinds: OS,
    capabilities: ["DIRECT_TRANSFER"],
    requires: ["init", "command"],
    timeoutMs: 180_000,
    async run(ctx) {
      const store = await rawStore(ctx, DIRECT_RPCS);
      const key = `${ctx.prefix}object`;
      const variants = {
        sha256: "CompletePut with a SHA-256 other than BeginPut's",
        "no sha256": "CompletePut without the SHA-256 of a body BeginPut gave one for",
        size: "CompletePut reporting one byte more than BeginPut",
      } as const;
      for (const [variant, what] of Object.entries(variants)) {
        const { upload, body } = await beginMultiPart(ctx, store, key, (b) => ({ sha256: sha256Bytes(b) }));
        const parts = await sendAll(ctx, store, upload, body);
        const sha256 = variant === "sha256" ? sha256Bytes("not the body") : variant === "no sha256" ? undefined : sha256Bytes(body);
        const size = variant === "size" ? body.length + 1 : body.length;
        await expectRefused(what, { code: Code.DataLoss, reason: Reason.IntegrityMismatch }, () => store.completePut({ ...upload.ref, parts, size, sha256 }, ctx.signal));
        await expectAbsent(ctx, store, key, `after a ${what} failed; it must store nothing`, "5.8.11");
        await expectOk("AbortPut of the refused upload", () => store.abortPut(upload.ref, ctx.signal));
        finished(ctx, upload);
      }
    },
  }),
  defineCase({
    id: "OS-DIRECT-UPLOAD-ID",
    title: "SignPart and CompletePut refuse a made-up upload_id, and one issued for another key, with FAILED_PRECONDITION",
    clause: "5.8.8",
    kinds: OS,
    capabilities: ["DIRECT_TRANSFER"],
    requires: ["init", "command"],
    timeoutMs: 60_000,
    async run(ctx) {
      const store = await rawStore(ctx, DIRECT_RPCS);
      const bucket = ctx.objectSettings.bucket;
      const keyA = `${ctx.prefix}a`;
      const keyB = `${ctx.prefix}b`;
      const body = pseudoRandomBytes(keyA, TAIL);
      const upload = await begin(ctx, store, keyA, body.length);
      const count = partCount(body.length, upload.plan.partSize);
      const part = partBytes(body, upload.plan.partSize, 1);
      const checksum = partChecksum(upload.plan.partChecksum, part);
      const partArgs = { partNumber: 1, offset: 0, size: part.length, checksum };
      const completed = Array.from({ length: count }, (_, i) => {
        const bytes = partBytes(body, upload.plan.partSize, i + 1);
        return { partNumber: i + 1, size: bytes.length, etag: "", checksum: partChecksum(upload.plan.partChecksum, bytes) };
      });
      const expected = { code: Code.FailedPrecondition };
      const forged = { bucket, key: keyA, uploadId: forgedUploadId() };
      await expectRefused("SignPart with a made-up upload_id", expected, () => store.signPart({ ...forged, ...partArgs }, ctx.signal));
      await expectRefused("CompletePut with a made-up upload_id", expected, () => store.completePut({ ...forged, parts: completed, size: body.length, sha256: sha256Bytes(body) }, ctx.signal));
      trackRawKey(ctx, store, keyB);
      const foreign = { bucket, key: keyB, uploadId: upload.ref.uploadId };
      await expectRefused("SignPart for another key with the upload_id BeginPut issued for the first", expected, () => store.signPart({ ...foreign, ...partArgs }, ctx.signal));
      await expectRefused("CompletePut for another key with the upload_id BeginPut issued for the first", expected, () =>
        store.completePut({ ...foreign, parts: completed, size: body.length, sha256: sha256Bytes(body) }, ctx.signal),
      );
      await expectAbsent(ctx, store, keyB, "after calls with an upload_id issued for another key", "5.8.8");
      await expectOk("AbortPut of the upload", () => store.abortPut(upload.ref, ctx.signal));
      finished(ctx, upload);
      await expectAbsent(ctx, store, keyA, "after its upload was aborted without a part sent", "5.8.12");
    },
  }),
  defineCase({
    id: "OS-DIRECT-UPLOAD-FINISHED",
    title: "After AbortPut or CompletePut, SignPart and CompletePut fail with FAILED_PRECONDITION; AbortPut succeeds again, on an unknown upload and after completion, and never removes the stored object",
    clause: "5.8.8, 5.8.12",
    kinds: OS,
    capabilities: ["DIRECT_TRANSFER"],
    requires: ["init", "command"],
    timeoutMs: 120_000,
    async run(ctx) {
      const store = await rawStore(ctx, DIRECT_RPCS);
      const bucket = ctx.objectSettings.bucket;
      const expected = { code: Code.FailedPrecondition };

      // Aborted: with a part in the store when a body of two parts fits the size limit.
      const abortedKey = `${ctx.prefix}aborted`;
      let aborted: Upload;
      let body: Buffer;
      let sent: RawCompletedPart[] = [];
      try {
        ({ upload: aborted, body } = await beginMultiPart(ctx, store, abortedKey));
        sent = [await sendPart(ctx, store, aborted, body, 1)];
      } catch (error) {
        if (!(error instanceof CaseSkipped)) throw error;
        ctx.note(`${error.message}; the aborted upload has no part in the store`);
        body = pseudoRandomBytes(abortedKey, TAIL);
        aborted = await begin(ctx, store, abortedKey, body.length);
      }
      await expectOk("AbortPut", () => store.abortPut(aborted.ref, ctx.signal));
      finished(ctx, aborted);
      await expectOk("AbortPut again, of the aborted upload", () => store.abortPut(aborted.ref, ctx.signal));
      const first = partBytes(body, aborted.plan.partSize, 1);
      const checksum = partChecksum(aborted.plan.partChecksum, first);
      await expectRefused("SignPart of an aborted upload", expected, () => store.signPart({ ...aborted.ref, partNumber: 1, offset: 0, size: first.length, checksum }, ctx.signal));
      const all = Array.from({ length: partCount(body.length, aborted.plan.partSize) }, (_, i) => {
        const bytes = partBytes(body, aborted.plan.partSize, i + 1);
        return sent[i] ?? { partNumber: i + 1, size: bytes.length, etag: "", checksum: partChecksum(aborted.plan.partChecksum, bytes) };
      });
      await expectRefused("CompletePut of an aborted upload", expected, () => store.completePut({ ...aborted.ref, parts: all, size: body.length, sha256: sha256Bytes(body) }, ctx.signal));
      await expectAbsent(ctx, store, abortedKey, "after its upload was aborted", "5.8.10, 5.8.12");
      await expectOk("AbortPut of an upload_id no plugin issued", () => store.abortPut({ bucket, key: abortedKey, uploadId: forgedUploadId() }, ctx.signal));

      // Completed.
      const doneKey = `${ctx.prefix}completed`;
      const done = pseudoRandomBytes(doneKey, TAIL);
      const upload = await begin(ctx, store, doneKey, done.length);
      const parts = await sendAll(ctx, store, upload, done);
      await complete(ctx, store, upload, parts, done);
      const part = partBytes(done, upload.plan.partSize, 1);
      await expectRefused("SignPart of a completed upload", expected, () =>
        store.signPart({ ...upload.ref, partNumber: 1, offset: 0, size: part.length, checksum: partChecksum(upload.plan.partChecksum, part) }, ctx.signal),
      );
      await expectRefused("CompletePut of a completed upload, again", expected, () => store.completePut({ ...upload.ref, parts, size: done.length, sha256: sha256Bytes(done) }, ctx.signal));
      await expectOk("AbortPut of a completed upload", () => store.abortPut(upload.ref, ctx.signal));
      const got = await expectOk(`GetObject ${showKey(doneKey)}`, () => store.getObject({ bucket, key: doneKey }, ctx.signal));
      check(got.data.equals(done), `after AbortPut of its completed upload, ${showKey(doneKey)} holds ${String(got.data.length)} bytes instead of the ${String(done.length)} stored; AbortPut never removes what a completed upload stored (5.8.12)`);
    },
  }),
  defineCase({
    id: "OS-DIRECT-PUT-INVALID",
    title: "BeginPut validates as PutObject's header does (negative size, 1025-byte key, 31-byte sha256, missing bucket), and SignPart refuses a part that does not match the plan with INVALID_ARGUMENT",
    clause: "5.8.2, 5.8.9, 5.0.2",
    kinds: OS,
    capabilities: ["DIRECT_TRANSFER"],
    requires: ["init", "command"],
    async run(ctx) {
      const store = await rawStore(ctx, DIRECT_RPCS);
      const bucket = ctx.objectSettings.bucket;
      const key = `${ctx.prefix}object`;
      trackRawKey(ctx, store, key);
      const invalid = { code: Code.InvalidArgument };
      const refused = async (what: string, expected: { code: Code; reason?: string }, input: Parameters<RawObjectStore["beginPut"]>[0]): Promise<void> => {
        // Nothing is stored by BeginPut; a plan for a request that had to fail is aborted after the case.
        await expectRefused(what, expected, async () => {
          const answer = await store.beginPut(input, ctx.signal);
          if (!isDeclined(answer) && answer.uploadId !== "") {
            ctx.tracker.add(`upload ${input.bucket}/${input.key} (AbortPut)`, async (signal) => {
              await store.abortPut({ bucket: input.bucket, key: input.key, uploadId: answer.uploadId }, signal);
            });
          }
          return answer;
        });
      };
      await refused("BeginPut with size -1", invalid, { bucket, key, size: -1 });
      await refused("BeginPut of a 1025-byte key", { code: Code.InvalidArgument, reason: Reason.InvalidName }, { bucket, key: keyOfBytes(ctx, 1025), size: 10 });
      await refused("BeginPut with a 31-byte sha256", invalid, { bucket, key, size: 10, sha256: Buffer.alloc(31) });
      for (const size of [TAIL, 2 ** 30]) {
        await refused(`BeginPut of ${String(size)} bytes in the missing bucket ${JSON.stringify(ctx.objectSettings.missingBucket)}`, { code: Code.NotFound, reason: Reason.BucketNotFound }, {
          bucket: ctx.objectSettings.missingBucket,
          key,
          size,
        });
      }
      const body = pseudoRandomBytes(key, TAIL);
      const upload = await begin(ctx, store, key, body.length);
      const count = partCount(body.length, upload.plan.partSize);
      const first = partBytes(body, upload.plan.partSize, 1);
      const checksum = partChecksum(upload.plan.partChecksum, first);
      const good = { partNumber: 1, offset: 0, size: first.length, checksum };
      const wrongChecksum = upload.plan.partChecksum === "none" ? Buffer.alloc(32) : checksum.subarray(0, checksum.length - 1);
      for (const [what, args] of [
        ["part number 0", { ...good, partNumber: 0 }],
        [`part number ${String(count + 1)} of ${String(count)}`, { ...good, partNumber: count + 1 }],
        ["part 1 at offset 1", { ...good, offset: 1 }],
        [`part 1 of ${String(first.length + 1)} bytes (the plan makes it ${String(first.length)})`, { ...good, size: first.length + 1 }],
        [`part 1 with a ${String(wrongChecksum.length)}-byte checksum (the plan names ${upload.plan.partChecksum})`, { ...good, checksum: wrongChecksum }],
      ] as const) {
        await expectRefused(`SignPart of ${what}`, invalid, () => store.signPart({ ...upload.ref, ...args }, ctx.signal));
      }
      await expectOk("AbortPut", () => store.abortPut(upload.ref, ctx.signal));
      finished(ctx, upload);
    },
  }),
  defineCase({
    id: "OS-DIRECT-UNSUPPORTED",
    title: "Without DIRECT_TRANSFER, PlanGet, BeginPut, SignPart, CompletePut and AbortPut fail with UNIMPLEMENTED/UNSUPPORTED",
    clause: "5.8.1, 3.4.1",
    kinds: OS,
    withoutCapabilities: ["DIRECT_TRANSFER"],
    requires: ["init", "command"],
    async run(ctx) {
      const store = await rawStore(ctx, DIRECT_RPCS);
      const bucket = ctx.objectSettings.bucket;
      const key = `${ctx.prefix}object`;
      const upload = { bucket, key, uploadId: forgedUploadId() };
      // A plugin of contract 1.0 does not know the methods: gRPC's UNIMPLEMENTED without a reason is its answer.
      const version = /^1\.(\d+)$/.exec(store.contractVersion);
      const knowsThem = version !== null && Number(version[1]) >= 1;
      const expected = knowsThem ? { code: Code.Unimplemented, reason: Reason.Unsupported } : { code: Code.Unimplemented };
      if (!knowsThem) ctx.note(`contract ${store.contractVersion}: UNIMPLEMENTED without a reason is accepted`);
      trackRawKey(ctx, store, key);
      await expectRefused("PlanGet", expected, () => store.planGet({ bucket, key }, ctx.signal));
      await expectRefused("BeginPut", expected, () => store.beginPut({ bucket, key, size: 1 }, ctx.signal));
      await expectRefused("SignPart", expected, () => store.signPart({ ...upload, partNumber: 1, offset: 0, size: 1, checksum: Buffer.alloc(0) }, ctx.signal));
      await expectRefused("CompletePut", expected, () => store.completePut({ ...upload, parts: [{ partNumber: 1, size: 1, etag: "", checksum: Buffer.alloc(0) }], size: 1, sha256: sha256Bytes("x") }, ctx.signal));
      await expectRefused("AbortPut", expected, () => store.abortPut(upload, ctx.signal));
    },
  }),
];
