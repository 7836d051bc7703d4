/**
 * The host's side of direct transfer (contract 5.8): it executes the plans a plugin signs, moving
 * object bodies between the caller and the store over HTTP with undici, so that they never pass
 * through the plugin process.
 *
 * - GET: the range is cut into parts of `readPartSize` bytes, each a ranged GET whose body is
 *   streamed to the reader as it arrives; up to `concurrency - 1` later parts are opened ahead, their
 *   bodies held back by flow control, so memory stays bounded and a part that breaks off resumes
 *   from its last byte.
 * - PUT: the body is cut into the plan's parts, each checksummed and signed on demand, at most
 *   `min(concurrency, maxParallelParts, partMemory / partSize)` buffers at once (in flight or being
 *   filled, at least one); the first part goes
 *   alone, so that a store the host cannot reach is found before any part is accepted, and the
 *   put falls back to the plugin with no byte lost (clause 5.8.13).
 * - Failed parts are retried (network errors, 5xx, 429, a refused or expired signature) with
 *   backoff, re-signed each time; a put that fails or is cancelled aborts its upload.
 * - URLs and header values are credentials: errors name the method, the store's host and the
 *   status, never a query string or a header value.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { crc32 } from "node:zlib";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent, request, type Dispatcher } from "undici";
import { Code, Reason, StowageError } from "../errors.js";
import { parseRetryAfter } from "../plugin/http-status.js";
import type {
  CallOptions,
  CompletedPart,
  DirectTransfer,
  GetObjectInput,
  GetObjectOutput,
  GetPlan,
  HttpRequestSpec,
  ObjectInfo,
  PutObjectInput,
  PutObjectResult,
  PutPlan,
} from "../types.js";
import { chunksOf } from "../wire/chunks.js";
import { isDeclined, partCount } from "../wire/direct-transfer.js";

/** How the host executes direct transfers. */
export interface DirectTransferSettings {
  /** Ask plugins that announce `DIRECT_TRANSFER` for plans. */
  readonly enabled: boolean;
  /** Parts in flight per transfer (PUT), or ranges open at once (GET). */
  readonly concurrency: number;
  /** Bytes per ranged GET. */
  readonly readPartSize: number;
  /** Attempts per part before the transfer fails. */
  readonly attempts: number;
  /** Longest wait for the store's answer or its next body byte, in ms (0: none). */
  readonly idleTimeoutMs: number;
  /**
   * Bytes of part buffers a put may hold: parts in flight are cut to `partMemory / partSize`
   * (at least one), so a put holds at most `max(partSize, partMemory)` of its body.
   */
  readonly partMemory: number;
  /**
   * Puts of fewer bytes go through the plugin: for a small body the plan's round trips (BeginPut,
   * SignPart, CompletePut) cost more than carrying its bytes.
   */
  readonly minPutSize: number;
}

/** The defaults of {@link DirectTransferSettings}. */
export const DIRECT_TRANSFER_DEFAULTS: DirectTransferSettings = {
  enabled: true,
  concurrency: 4,
  readPartSize: 32 * 1024 * 1024,
  attempts: 4,
  idleTimeoutMs: 120_000,
  partMemory: 48 * 1024 * 1024,
  minPutSize: 4 * 1024 * 1024,
};

/**
 * Thrown when the store cannot be reached at the plan's URL before anything was committed: the
 * caller falls back to the plugin. `body` replays what was read of a PUT body, then the rest.
 */
export class StoreUnreachable extends Error {
  /** What a PUT must send instead of its original body. */
  readonly body: AsyncIterable<Uint8Array> | undefined;

  constructor(message: string, cause: unknown, body?: AsyncIterable<Uint8Array>) {
    super(message, { cause });
    this.name = "StoreUnreachable";
    this.body = body;
  }
}

/** Network errors that mean the store is not reachable from here at all. */
const UNREACHABLE = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

function errorCode(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") return code;
    current = (current as { cause?: unknown }).cause;
  }
  return "";
}

/** A request's description for messages and logs: method and host, never the query or headers. */
function describe(request: HttpRequestSpec): string {
  let host = "the store";
  try {
    host = new URL(request.url).host;
  } catch {
    // Checked when the plan arrived; kept safe anyway.
  }
  return `${request.method} to ${host}`;
}

/** A failed attempt: whether another may succeed, and what to report if none does. */
class AttemptFailed extends Error {
  constructor(
    readonly error: StowageError,
    readonly retry: boolean,
    readonly unreachable: boolean,
    readonly resign: boolean,
    /** The store's `Retry-After` (a 429 or 503), in ms: the next attempt waits at least this long. */
    readonly retryAfterMs?: number,
  ) {
    super(error.message, { cause: error });
  }
}

/** The error of an HTTP status the store answered (after retries). */
function statusError(status: number, what: string, object: { readonly bucket: string; readonly key: string }, reading = true): StowageError {
  const metadata = { bucket: object.bucket, key: object.key, http_status: String(status) };
  const message = `the store answered ${String(status)} to the ${what}`;
  if (status === 404 && reading) return new StowageError(Code.NotFound, `${message}: the object or its bucket is gone`, { reason: Reason.ObjectNotFound, metadata });
  if (status === 404) return new StowageError(Code.NotFound, `${message}: the bucket or the upload is gone`, { metadata });
  if (status === 412) {
    return new StowageError(Code.Aborted, `${message}: the object changed since the transfer began; retry the whole read (contract 5.3.8)`, { metadata });
  }
  if (status === 401 || status === 403) {
    return new StowageError(Code.PermissionDenied, `${message}: the store refused the plugin's signature, also after signing again`, { reason: Reason.AccessDenied, metadata });
  }
  if (status >= 500 || status === 429 || status === 408) {
    return new StowageError(Code.Unavailable, `${message}, also after retries; retry later`, { reason: Reason.BackendUnavailable, metadata });
  }
  return new StowageError(Code.Internal, `${message}, a request the plugin signed`, { metadata });
}

/** Classifies what one attempt threw or answered. */
function classify(error: unknown, what: string, object: { readonly bucket: string; readonly key: string }, signal: AbortSignal): AttemptFailed {
  if (error instanceof AttemptFailed) return error;
  if (signal.aborted) return new AttemptFailed(StowageError.from(signal.reason), false, false, false);
  if (error instanceof StowageError) return new AttemptFailed(error, false, false, false);
  const code = errorCode(error);
  const detail = `${what} failed (${code === "" ? (error as Error).message : code})`;
  const failure = new StowageError(Code.Unavailable, `${detail}; retry later`, { reason: Reason.BackendUnavailable, cause: error, metadata: { bucket: object.bucket, key: object.key } });
  return new AttemptFailed(failure, true, UNREACHABLE.has(code), false);
}

/** The checksum of a part, of the kind a plan names (clause 5.8.9). */
function partChecksum(kind: PutPlan["partChecksum"], part: Uint8Array): Uint8Array {
  if (kind === "none") return new Uint8Array();
  if (kind === "crc32") {
    const value = Buffer.alloc(4);
    value.writeUInt32BE(crc32(part));
    return value;
  }
  return createHash(kind).update(part).digest();
}

/** Longest `Retry-After` a transfer waits out before an attempt; a longer one fails the part. */
const MAX_RETRY_AFTER_MS = 30_000;

/**
 * Backoff before attempt `n` (2, 3, ...): 100 ms, 400 ms, 1.6 s, ... with jitter, and at least the
 * store's `Retry-After`.
 */
function backoff(attempt: number, retryAfterMs?: number): number {
  return Math.max(Math.round(100 * 4 ** (attempt - 2) * (0.5 + Math.random())), retryAfterMs ?? 0);
}

/** The `Retry-After` of an answer, in ms (undefined when it sent none or an unreadable one). */
function retryAfterOf(headers: Record<string, string | string[] | undefined>): number | undefined {
  const value = headers["retry-after"];
  return parseRetryAfter(Array.isArray(value) ? value[0] : value);
}

/** A signal that fires with the caller's, when `timeoutMs` passes (DEADLINE_EXCEEDED), or on `abort`. */
function callSignal(options: CallOptions | undefined): { signal: AbortSignal; done: () => void; abort: (reason: unknown) => void } {
  const controller = new AbortController();
  const onAbort = (): void => {
    controller.abort(options?.signal?.reason);
  };
  if (options?.signal?.aborted === true) onAbort();
  options?.signal?.addEventListener("abort", onAbort, { once: true });
  const timer =
    options?.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          controller.abort(new StowageError(Code.DeadlineExceeded, `the call passed its deadline of ${String(options.timeoutMs)} ms`, { reason: Reason.DeadlineExceeded }));
        }, options.timeoutMs);
  return {
    signal: controller.signal,
    abort: (reason) => {
      controller.abort(reason);
    },
    done: () => {
      clearTimeout(timer);
      options?.signal?.removeEventListener("abort", onAbort);
    },
  };
}

/** One range of a read: where it starts in the object and how many bytes it has. */
interface ByteSpan {
  readonly first: number;
  readonly length: number;
}

/**
 * The body of a direct GET: each range's answer is passed to the reader chunk by chunk as it
 * arrives (its socket paused while the reader is behind), in order; up to `concurrency - 1` later
 * ranges are opened ahead, their bodies held back by flow control until their turn. A range whose
 * body breaks off is opened again from its next byte, `attempts` times at most.
 */
class RangedBody extends Readable {
  readonly #ranges: readonly ByteSpan[];
  readonly #open: (range: ByteSpan, probe: boolean) => Promise<Dispatcher.ResponseData>;
  readonly #ahead: number;
  readonly #attempts: number;
  readonly #call: { signal: AbortSignal; done: () => void; abort: (reason: unknown) => void };
  /** Answers of the ranges after the current one, opened ahead. */
  readonly #opened: Promise<Dispatcher.ResponseData>[] = [];
  #next = 0;
  #index = 0;
  #got = 0;
  #attempt = 1;
  #source: Dispatcher.ResponseData["body"] | undefined;

  constructor(
    ranges: readonly ByteSpan[],
    head: Dispatcher.ResponseData | undefined,
    open: (range: ByteSpan, probe: boolean) => Promise<Dispatcher.ResponseData>,
    concurrency: number,
    attempts: number,
    call: { signal: AbortSignal; done: () => void; abort: (reason: unknown) => void },
  ) {
    // A short queue: chunks that wait in it long enough to survive two scavenges are promoted and
    // freed only by a full collection, which is what makes a fast read's resident memory grow.
    super({ highWaterMark: 256 * 1024 });
    this.#ranges = ranges;
    this.#open = open;
    this.#ahead = Math.max(0, concurrency - 1);
    this.#attempts = attempts;
    this.#call = call;
    this.#next = 1;
    if (head === undefined) {
      this.push(null);
      call.done();
      return;
    }
    this.#launch();
    this.#attach(head);
  }

  #launch(): void {
    while (this.#opened.length < this.#ahead && this.#next < this.#ranges.length) {
      const range = this.#ranges[this.#next];
      this.#next += 1;
      if (range === undefined) break;
      const response = this.#open(range, false);
      response.catch(() => undefined);
      this.#opened.push(response);
    }
  }

  #attach(response: Dispatcher.ResponseData): void {
    const source = response.body;
    this.#source = source;
    const range = this.#ranges[this.#index];
    if (range === undefined) return;
    source.on("data", (chunk: Buffer) => {
      this.#got += chunk.length;
      if (this.#got > range.length) {
        this.#fail(new StowageError(Code.DataLoss, `the store sent more than the ${String(range.length)} bytes of a range`, { reason: Reason.IntegrityMismatch }));
        return;
      }
      if (!this.push(chunk)) source.pause();
    });
    source.once("end", () => {
      if (this.#source !== source) return;
      if (this.#got !== range.length) {
        this.#retry(new StowageError(Code.DataLoss, `the store ended a range of ${String(range.length)} bytes after ${String(this.#got)}`, { reason: Reason.IntegrityMismatch }));
        return;
      }
      this.#advance();
    });
    source.once("error", (error: Error) => {
      if (this.#source === source) this.#retry(error);
    });
  }

  /** The current range is complete: the next one, or the end. */
  #advance(): void {
    this.#source = undefined;
    this.#index += 1;
    this.#got = 0;
    this.#attempt = 1;
    if (this.#index >= this.#ranges.length) {
      this.push(null);
      this.#call.done();
      return;
    }
    let next = this.#opened.shift();
    if (next === undefined) {
      // Nothing opened ahead (concurrency 1): this range is opened now.
      const range = this.#ranges[this.#index];
      if (range !== undefined) next = this.#open(range, false);
      this.#next = Math.max(this.#next, this.#index + 1);
    }
    this.#launch();
    (next ?? Promise.reject(new StowageError(Code.Internal, "a range of the read was never opened"))).then(
      (response) => {
        if (this.destroyed) void response.body.dump().catch(() => undefined);
        else this.#attach(response);
      },
      (error: unknown) => {
        this.#fail(error);
      },
    );
  }

  /** The current range broke off: opened again from its next byte, or the read fails. */
  #retry(error: unknown): void {
    this.#source = undefined;
    const range = this.#ranges[this.#index];
    if (range === undefined || this.#call.signal.aborted || this.#attempt >= this.#attempts) {
      this.#fail(error);
      return;
    }
    this.#attempt += 1;
    this.#open({ first: range.first + this.#got, length: range.length - this.#got }, false).then(
      (response) => {
        if (this.destroyed) void response.body.dump().catch(() => undefined);
        else this.#attach(response);
      },
      (failure: unknown) => {
        this.#fail(failure);
      },
    );
  }

  #fail(error: unknown): void {
    this.destroy(this.#call.signal.aborted ? StowageError.from(this.#call.signal.reason) : StowageError.from(error));
  }

  override _read(): void {
    if (this.#source?.isPaused() === true) this.#source.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // A reader that gives up stops the ranges in flight.
    if (!this.readableEnded) this.#call.abort(error ?? new StowageError(Code.Canceled, "the reader destroyed the body", { reason: Reason.Cancelled }));
    this.#source?.destroy();
    for (const pending of this.#opened) void pending.then((r) => r.body.dump()).catch(() => undefined);
    this.#call.done();
    callback(error);
  }
}

/** Executes direct-transfer plans over one pool of keep-alive connections. */
export class DirectTransferExecutor {
  readonly #settings: DirectTransferSettings;
  #pool: Dispatcher | undefined;

  /** @param settings - Concurrency, part size, attempts and idle timeout. */
  constructor(settings: DirectTransferSettings) {
    this.#settings = settings;
  }

  /** The settings. */
  get settings(): DirectTransferSettings {
    return this.#settings;
  }

  /** The connection pool, made on first use (most hosts never transfer directly). */
  get #agent(): Dispatcher {
    const idle = this.#settings.idleTimeoutMs > 0 ? this.#settings.idleTimeoutMs : 0;
    this.#pool ??= new Agent({ keepAliveTimeout: 4_000, headersTimeout: idle, bodyTimeout: idle, connect: { timeout: 10_000 } });
    return this.#pool;
  }

  /** Closes the connections; a later transfer opens new ones. */
  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.close();
  }

  /**
   * Reads an object by plan, or returns undefined when the plugin declines. Throws
   * {@link StoreUnreachable} when the first request cannot reach the store (nothing was delivered).
   */
  async get(transfer: DirectTransfer, input: GetObjectInput, options: CallOptions | undefined): Promise<GetObjectOutput | undefined> {
    const call = callSignal(options);
    let plan: GetPlan;
    try {
      const answer = await transfer.planGet(input, { signal: call.signal });
      if (isDeclined(answer)) {
        call.done();
        return undefined;
      }
      plan = answer;
    } catch (error) {
      call.done();
      throw call.signal.aborted ? StowageError.from(call.signal.reason) : error;
    }
    const ranges: { first: number; length: number }[] = [];
    for (let first = plan.offset; first < plan.offset + plan.contentLength; first += this.#settings.readPartSize) {
      ranges.push({ first, length: Math.min(this.#settings.readPartSize, plan.offset + plan.contentLength - first) });
    }
    let current = plan;
    let replanned = false;
    /** Plans the same read again, once; the object must not have changed (clause 5.3.8). */
    const replan = async (reason: StowageError): Promise<void> => {
      if (replanned) throw reason;
      replanned = true;
      const again = await transfer.planGet(input, { signal: call.signal });
      if (isDeclined(again)) throw reason;
      if (again.object.etag !== plan.object.etag || again.object.size !== plan.object.size) {
        throw new StowageError(Code.Aborted, "the object changed since the read began; retry the whole read (contract 5.3.8)");
      }
      current = again;
    };
    /**
     * Opens one range (its answer's head), with retries; a refused or expiring plan is planned
     * again once (clause 5.8.7). `probe`: an unreachable store on the first attempt is reported
     * as such, for the fallback.
     */
    const open = async (range: { first: number; length: number }, probe: boolean): Promise<Dispatcher.ResponseData> => {
      for (let attempt = 1; ; attempt++) {
        if (current.expiresAt.getTime() - Date.now() < 5_000) await replan(new StowageError(Code.PermissionDenied, "the plugin's read plan expired", { reason: Reason.AccessDenied }));
        const signed = current.request;
        if (signed === undefined) throw new StowageError(Code.Internal, "the plugin's read plan has no request");
        try {
          return await this.#openRange(signed, range, plan.object, input, call.signal);
        } catch (thrown) {
          const failure = classify(thrown, `ranged ${describe(signed)}`, input, call.signal);
          if (probe && attempt === 1 && failure.unreachable) throw new StoreUnreachable(failure.error.message, thrown);
          if (failure.resign && !replanned) {
            await replan(failure.error);
            continue;
          }
          if (!failure.retry || attempt >= this.#settings.attempts || (failure.retryAfterMs ?? 0) > MAX_RETRY_AFTER_MS) throw failure.error;
          await sleep(backoff(attempt + 1, failure.retryAfterMs), undefined, { signal: call.signal });
        }
      }
    };
    let head: Dispatcher.ResponseData | undefined;
    try {
      const first = ranges[0];
      if (first !== undefined) head = await open(first, true);
    } catch (error) {
      call.done();
      if (error instanceof StoreUnreachable) throw error;
      throw call.signal.aborted ? StowageError.from(call.signal.reason) : error;
    }
    const body = new RangedBody(ranges, head, open, this.#settings.concurrency, this.#settings.attempts, call);
    return { object: plan.object, contentLength: plan.contentLength, offset: plan.offset, body };
  }

  /** Opens one ranged GET: its answer, once its status says the bytes follow. */
  async #openRange(signed: HttpRequestSpec, range: { first: number; length: number }, object: ObjectInfo, ref: { bucket: string; key: string }, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    const whole = range.first === 0 && range.length === object.size;
    const headers = whole ? { ...signed.headers } : { ...signed.headers, range: `bytes=${String(range.first)}-${String(range.first + range.length - 1)}` };
    const response = await request(signed.url, { method: "GET", headers, dispatcher: this.#agent, signal });
    if (response.statusCode !== 206 && !(response.statusCode === 200 && whole)) {
      await response.body.dump().catch(() => undefined);
      throw this.#refused(response.statusCode, `ranged ${describe(signed)}`, ref, retryAfterOf(response.headers));
    }
    return response;
  }

  /**
   * A failed attempt of a read for an HTTP status. A refused signature, and a 404 (the object may
   * have been replaced, and its version with it, clause 5.8.5), are planned again once.
   */
  #refused(status: number, what: string, ref: { bucket: string; key: string }, retryAfterMs?: number): AttemptFailed {
    const error = statusError(status, what, ref);
    const retry = status >= 500 || status === 429 || status === 408;
    return new AttemptFailed(error, retry, false, status === 401 || status === 403 || status === 404, retryAfterMs);
  }

  /**
   * Writes an object by plan, or returns undefined when the plugin declines (nothing of the body
   * was read). Throws {@link StoreUnreachable}, carrying the body to send instead, when the first
   * part cannot reach the store; the upload was aborted.
   */
  async put(transfer: DirectTransfer, input: PutObjectInput & { readonly size: number }, options: CallOptions | undefined): Promise<PutObjectResult | undefined> {
    const call = callSignal(options);
    const ref = { bucket: input.bucket, key: input.key };
    let plan: PutPlan;
    try {
      const answer = await transfer.beginPut(
        { bucket: input.bucket, key: input.key, size: input.size, contentType: input.contentType, metadata: input.metadata, sha256: input.sha256 },
        { signal: call.signal },
      );
      if (isDeclined(answer)) {
        call.done();
        return undefined;
      }
      plan = answer;
    } catch (error) {
      call.done();
      throw call.signal.aborted ? StowageError.from(call.signal.reason) : error;
    }
    const upload = { ...ref, uploadId: plan.uploadId };
    const abort = async (): Promise<void> => {
      // The caller's signal may have fired already: the abort has a deadline of its own.
      await transfer.abortPut(upload, { timeoutMs: 30_000 }).catch(() => undefined);
    };
    try {
      const result = await this.#sendParts(transfer, input, plan, call.signal);
      return result;
    } catch (error) {
      await abort();
      if (error instanceof StoreUnreachable) throw error;
      throw call.signal.aborted ? StowageError.from(call.signal.reason) : StowageError.from(error);
    } finally {
      call.done();
    }
  }

  async #sendParts(transfer: DirectTransfer, input: PutObjectInput & { readonly size: number }, plan: PutPlan, signal: AbortSignal): Promise<PutObjectResult> {
    const ref = { bucket: input.bucket, key: input.key };
    const count = partCount(input.size, plan.partSize);
    const parallel = Math.max(
      1,
      Math.min(this.#settings.concurrency, plan.maxParallelParts === 0 ? Infinity : plan.maxParallelParts, Math.floor(this.#settings.partMemory / plan.partSize)),
    );
    // The body's SHA-256 is computed when there is one to check (as the plugin does on PutObject).
    const whole = input.sha256 === undefined ? undefined : createHash("sha256");
    const source = chunksOf(input.body)[Symbol.asyncIterator]();
    let carry: Uint8Array | undefined;
    const integrity = (why: string): StowageError =>
      new StowageError(Code.DataLoss, `the body ${why}; nothing was stored`, { reason: Reason.IntegrityMismatch, metadata: ref });
    /** Buffers of finished parts, reused for the next ones. */
    const spare: Buffer[] = [];
    /** The whole buffer each part was read into. */
    const owners = new WeakMap<Uint8Array, Buffer>();
    const release = (part: Uint8Array): void => {
      const buffer = owners.get(part);
      if (buffer?.length === plan.partSize) spare.push(buffer);
    };
    /** Fills the next part of `size` bytes from the body. */
    const readPart = async (size: number): Promise<Buffer> => {
      // A body of one part gets a buffer of its own size, not of the plan's part size.
      const buffer = spare.pop() ?? Buffer.allocUnsafe(count === 1 ? size : plan.partSize);
      let filled = 0;
      while (filled < size) {
        let chunk = carry;
        carry = undefined;
        if (chunk === undefined) {
          const next = await source.next();
          if (next.done === true) throw integrity(`ended before the ${String(input.size)} bytes its size said`);
          chunk = next.value;
        }
        const take = Math.min(chunk.byteLength, size - filled);
        buffer.set(take === chunk.byteLength ? chunk : chunk.subarray(0, take), filled);
        filled += take;
        if (take < chunk.byteLength) carry = chunk.subarray(take);
      }
      const part = buffer.subarray(0, size);
      owners.set(part, buffer);
      whole?.update(part);
      return part;
    };
    const partSize = (n: number): number => (n < count ? plan.partSize : input.size - (count - 1) * plan.partSize);
    const completed: CompletedPart[] = [];
    /** Sends one part with retries; resolves with its record. */
    const sendPart = async (n: number, part: Buffer, probe: boolean): Promise<CompletedPart> => {
      const checksum = partChecksum(plan.partChecksum, part);
      for (let attempt = 1; ; attempt++) {
        const signed = await transfer.signPart(
          { ...ref, uploadId: plan.uploadId, partNumber: n, offset: (n - 1) * plan.partSize, size: part.length, checksum },
          { signal, timeoutMs: 30_000 },
        );
        try {
          const response = await request(signed.request.url, {
            method: signed.request.method,
            headers: { ...signed.request.headers, "content-length": String(part.length) },
            body: part,
            dispatcher: this.#agent,
            signal,
          });
          await response.body.dump().catch(() => undefined);
          if ((response.statusCode >= 200 && response.statusCode < 300) || response.statusCode === 308) {
            const etag = response.headers.etag;
            return { partNumber: n, size: part.length, etag: typeof etag === "string" ? etag : "", checksum };
          }
          // A signature the store refused (expired, skewed) or a part it found corrupt: signed and sent again.
          const status = response.statusCode;
          throw new AttemptFailed(statusError(status, `upload of part ${String(n)} (${describe(signed.request)})`, ref, false), status !== 404, false, true, retryAfterOf(response.headers));
        } catch (thrown) {
          const failure = classify(thrown, `upload of part ${String(n)} (${describe(signed.request)})`, ref, signal);
          if (probe && attempt === 1 && failure.unreachable) throw new StoreUnreachable(failure.error.message, thrown);
          if (!failure.retry || attempt >= this.#settings.attempts || (failure.retryAfterMs ?? 0) > MAX_RETRY_AFTER_MS) throw failure.error;
          await sleep(backoff(attempt + 1, failure.retryAfterMs), undefined, { signal });
        }
      }
    };
    const checkEnd = async (): Promise<void> => {
      if (carry !== undefined && carry.byteLength > 0) throw integrity(`is longer than the ${String(input.size)} bytes its size said`);
      for (;;) {
        const next = await source.next();
        if (next.done === true) return;
        if (next.value.byteLength > 0) throw integrity(`is longer than the ${String(input.size)} bytes its size said`);
      }
    };
    const checkSha = (): Buffer | undefined => {
      const digest = whole?.digest();
      if (digest !== undefined && input.sha256 !== undefined && !digest.equals(input.sha256)) throw integrity("does not match the SHA-256 given for it");
      return digest;
    };

    // Part 1 alone: a one-part body is read and checked whole before it is sent (clause 5.8.10),
    // and a store that cannot be reached is found before the store accepted anything.
    const first = await readPart(partSize(1));
    let digest: Buffer | undefined;
    let ended = false;
    if (count === 1) {
      await checkEnd();
      digest = checkSha();
      ended = true;
    }
    try {
      completed.push(await sendPart(1, first, true));
    } catch (error) {
      if (!(error instanceof StoreUnreachable)) throw error;
      const rest = source;
      const held = carry;
      async function* replay(): AsyncGenerator<Uint8Array> {
        yield first;
        if (held !== undefined) yield held;
        for (;;) {
          const next = await rest.next();
          if (next.done === true) return;
          yield next.value;
        }
      }
      throw new StoreUnreachable(error.message, error.cause, replay());
    }
    release(first);

    const inflight = new Map<number, Promise<void>>();
    let failure: unknown;
    for (let n = 2; n <= count && failure === undefined; n++) {
      while (inflight.size >= parallel && failure === undefined) await Promise.race(inflight.values());
      if (failure !== undefined) break;
      const part = await readPart(partSize(n));
      if (n === count) {
        // Checked before the last part goes: with some stores (a resumable session) it makes the object.
        await checkEnd();
        digest = checkSha();
        ended = true;
      }
      const sent = sendPart(n, part, false).then(
        (record) => {
          completed.push(record);
          release(part);
        },
        (error: unknown) => {
          failure ??= error;
        },
      );
      inflight.set(n, sent.finally(() => inflight.delete(n)));
    }
    await Promise.all(inflight.values());
    if (failure !== undefined) throw StowageError.from(failure);
    if (!ended) {
      await checkEnd();
      digest = checkSha();
    }
    completed.sort((a, b) => a.partNumber - b.partNumber);
    return transfer.completePut({ ...ref, uploadId: plan.uploadId, parts: completed, size: input.size, sha256: digest }, { signal, timeoutMs: 120_000 });
  }
}
