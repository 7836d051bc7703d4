/**
 * The host's ObjectStore over a Velero ObjectStore plugin such as velero-plugin-for-aws
 * (docs/velero.md).
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import { Code, objectNotFound, Reason, StowageError } from "../../errors.js";
import { ObjectStore as VeleroObjectStoreService, PutObjectRequestSchema, type Bytes } from "../../gen/generated/ObjectStore_pb.js";
import type { ClientSettings, HostObjectStore, ProcessSource } from "../../host/protocol-adapter.js";
import type { ClientStreamCall } from "../../host/rpc-channel.js";
import { checkConfig, checkDeleteInput, checkGetInput, checkListInput, checkObjectRef, checkPutInput, checkSignedUrlInput } from "../../host/validate.js";
import { asksProtection } from "../../protection.js";
import { compareUtf8 } from "../../key-order.js";
import type {
  CallOptions,
  CreateSignedUrlInput,
  DeleteObjectInput,
  GetObjectInput,
  GetObjectOutput,
  ListObjectsInput,
  ListObjectsPage,
  ObjectInfo,
  ObjectRef,
  PluginConfig,
  PluginDescriptor,
  PutObjectInput,
  PutObjectResult,
  SignedUrl,
} from "../../types.js";
import { chunksOf, untilAborted } from "../../wire/chunks.js";
import { InitTracker, unsupported, veleroCall, withDefault } from "./client-support.js";
import { VELERO_CHUNK_BYTES, VELERO_PROTOCOL } from "./constants.js";
import { fromVeleroError } from "./errors.js";

/** An entry of a host-side listing. */
interface Entry {
  readonly name: string;
  readonly prefix: boolean;
}

/** A host-side page token: the listing it belongs to and the last entry returned. */
function makeToken(prefix: string, delimiter: string, last: string): string {
  return Buffer.from(JSON.stringify({ p: prefix, d: delimiter, k: last }), "utf8").toString("base64url");
}

function parseToken(token: string, prefix: string, delimiter: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    parsed = undefined;
  }
  const t = parsed as { p?: unknown; d?: unknown; k?: unknown } | undefined;
  if (t === undefined || t === null || typeof t.k !== "string" || t.p !== prefix || t.d !== delimiter) {
    throw new StowageError(Code.InvalidArgument, "the page token was not issued for this listing (same bucket, prefix and delimiter)", { reason: Reason.InvalidPageToken });
  }
  return t.k;
}

/**
 * An `ObjectStore` served by a Velero ObjectStore plugin (e.g. velero-plugin-for-aws).
 *
 * What Velero's protocol cannot carry is reported honestly: no ranged reads, no metadata, no signed
 * PUT URLs (those throw UNIMPLEMENTED/UNSUPPORTED); object sizes are unknown (`size: -1`,
 * `contentLength: -1`) and etags empty; listings are fetched whole and cut into pages on the host.
 */
export class VeleroObjectStore implements HostObjectStore {
  /** What the plugin announced. */
  readonly descriptor: PluginDescriptor;
  /** Velero's protocol. */
  readonly protocol = VELERO_PROTOCOL;
  readonly #tracker: InitTracker;
  readonly #timeoutMs: number;

  constructor(supervisor: ProcessSource, descriptor: PluginDescriptor, options: ClientSettings) {
    this.descriptor = descriptor;
    this.#timeoutMs = options.defaultTimeoutMs;
    this.#tracker = new InitTracker(supervisor, async (proc, config, opts) => {
      await veleroCall(() => proc.channel.unary(VeleroObjectStoreService.method.init, { plugin: descriptor.name, config: { ...config } }, opts));
    });
  }

  async init(config: PluginConfig, options?: CallOptions): Promise<void> {
    checkConfig(config);
    await this.#tracker.init(config, withDefault(options, this.#timeoutMs));
  }

  async #exists(input: ObjectRef, options?: CallOptions): Promise<boolean> {
    checkObjectRef(input);
    const opts = withDefault(options, this.#timeoutMs);
    const channel = await this.#tracker.channel(opts);
    const res = await veleroCall(() => channel.unary(VeleroObjectStoreService.method.objectExists, { plugin: this.descriptor.name, bucket: input.bucket, key: input.key }, opts));
    return res.exists;
  }

  /** ObjectExists; Velero reports nothing else about an object, so size is -1 (unknown). */
  async headObject(input: ObjectRef, options?: CallOptions): Promise<ObjectInfo | undefined> {
    if (!(await this.#exists(input, options))) return undefined;
    return { key: input.key, size: -1, etag: "", contentType: "", metadata: {} };
  }

  async deleteObject(input: DeleteObjectInput, options?: CallOptions): Promise<void> {
    checkDeleteInput(input);
    if (input.bypassGovernance === true) throw unsupported("bypassing a governance retention");
    const opts = withDefault(options, this.#timeoutMs);
    const channel = await this.#tracker.channel(opts);
    await veleroCall(() => channel.unary(VeleroObjectStoreService.method.deleteObject, { plugin: this.descriptor.name, bucket: input.bucket, key: input.key }, opts));
  }

  /** GET URLs only; the TTL goes over the wire in nanoseconds. `expiresAt` is computed here (Velero does not report it). */
  async createSignedUrl(input: CreateSignedUrlInput, options?: CallOptions): Promise<SignedUrl> {
    checkSignedUrlInput(input);
    if ((input.method ?? "GET") !== "GET") throw unsupported("a signed PUT URL");
    if (!Number.isFinite(input.ttlSeconds) || input.ttlSeconds < 1) throw new StowageError(Code.InvalidArgument, `ttlSeconds must be at least 1, not ${String(input.ttlSeconds)}`);
    const ttlSeconds = Math.floor(input.ttlSeconds);
    const opts = withDefault(options, this.#timeoutMs);
    const channel = await this.#tracker.channel(opts);
    const started = Date.now();
    const res = await veleroCall(() =>
      channel.unary(VeleroObjectStoreService.method.createSignedURL, { plugin: this.descriptor.name, bucket: input.bucket, key: input.key, ttl: BigInt(ttlSeconds) * 1_000_000_000n }, opts),
    );
    return { url: res.url, expiresAt: new Date(started + ttlSeconds * 1000) };
  }

  async #entries(input: ListObjectsInput, options?: CallOptions): Promise<Entry[]> {
    const opts = withDefault(options, this.#timeoutMs);
    const channel = await this.#tracker.channel(opts);
    const prefix = input.prefix ?? "";
    const plugin = this.descriptor.name;
    const keysRes = await veleroCall(() => channel.unary(VeleroObjectStoreService.method.listObjects, { plugin, bucket: input.bucket, prefix }, opts));
    const delimiter = input.delimiter ?? "";
    if (delimiter === "") return keysRes.keys.map((name) => ({ name, prefix: false }));
    const prefixRes = await veleroCall(() => channel.unary(VeleroObjectStoreService.method.listCommonPrefixes, { plugin, bucket: input.bucket, prefix, delimiter }, opts));
    // Keep only the objects at this level: the others are rolled up into the common prefixes.
    const objects = keysRes.keys.filter((key) => key.startsWith(prefix) && !key.slice(prefix.length).includes(delimiter));
    return [...objects.map((name) => ({ name, prefix: false })), ...[...new Set(prefixRes.prefixes)].map((name) => ({ name, prefix: true }))];
  }

  /**
   * ListObjects (and, with a delimiter, ListCommonPrefixes), fetched whole, sorted, and cut into pages
   * here. The page token is the last entry of the previous page.
   */
  async *listObjects(input: ListObjectsInput, options?: CallOptions): AsyncGenerator<ListObjectsPage> {
    checkListInput(input);
    const pageSize = input.pageSize ?? 1000;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) throw new StowageError(Code.InvalidArgument, `pageSize must be 1 to 1000, not ${String(pageSize)}`);
    const prefix = input.prefix ?? "";
    const delimiter = input.delimiter ?? "";
    let after: string | undefined;
    if (input.pageToken !== undefined && input.pageToken !== "") after = parseToken(input.pageToken, prefix, delimiter);
    const entries = (await this.#entries(input, options)).sort((a, b) => compareUtf8(a.name, b.name));
    let start = after === undefined ? 0 : entries.findIndex((e) => compareUtf8(e.name, after) > 0);
    if (start < 0) start = entries.length;
    let pages = 0;
    do {
      const slice = entries.slice(start, start + pageSize);
      start += slice.length;
      pages++;
      const last = slice.at(-1);
      const more = start < entries.length;
      yield {
        objects: slice.filter((e) => !e.prefix).map((e) => ({ key: e.name, size: -1, etag: "", contentType: "", metadata: {} })),
        commonPrefixes: slice.filter((e) => e.prefix).map((e) => e.name),
        nextPageToken: more && last !== undefined ? makeToken(prefix, delimiter, last.name) : "",
      };
      if (!more) return;
    } while (input.maxPages === undefined || input.maxPages <= 0 || pages < input.maxPages);
  }

  /**
   * PutObject as a client stream: plugin, bucket and key in every message, bodies of at most 1 MiB,
   * at least one message (an empty body sends one empty message). `size`/`sha256` are checked here.
   * A body that must not be stored (a mismatch, a cancellation or deadline, a failing body) is
   * abandoned with a message Go's decoder refuses and only then cancelled: velero-plugin-for-aws
   * was seen storing the bytes it had received when the stream was only cancelled. The deadline is
   * kept here for the same reason (no gRPC deadline is sent). Metadata cannot be carried;
   * `contentType` is dropped.
   */
  async putObject(input: PutObjectInput, options?: CallOptions): Promise<PutObjectResult> {
    checkPutInput(input);
    if (input.metadata !== undefined && Object.keys(input.metadata).length > 0) throw unsupported("object metadata");
    if (asksProtection(input.protection) || input.bypassGovernance === true) throw unsupported("object protection (a bucket-level default retention still applies)");
    const channel = await this.#tracker.channel(withDefault(options, this.#timeoutMs));
    options?.signal?.throwIfAborted();
    // The caller's signal and deadline are handled here, not by the channel (no gRPC deadline is
    // sent), so that a cancelled or late upload is abandoned before the stream ends.
    // Messages are encoded here (full-size ones into buffers reused once grpc-js has taken them),
    // and at most PUT_PENDING_BYTES of them wait for the transport: the body is read no faster
    // than the plugin takes it.
    const messages = new PutObjectEncoder({ plugin: this.descriptor.name, bucket: input.bucket, key: input.key });
    const call = channel.encodedClientStream(VeleroObjectStoreService.method.putObject, { plugin: this.descriptor.name }, {
      maxPendingBytes: PUT_PENDING_BYTES,
      taken: (message) => {
        messages.release(message);
      },
    });
    let abandoned: Promise<void> | undefined;
    const abandon = (): Promise<void> => (abandoned ??= abandonUpload(call));
    // Fires when the caller cancels or the deadline passes, so a stalled body cannot hold the call.
    const stop = new AbortController();
    const onAbort = (): void => {
      stop.abort(options?.signal?.reason);
      void abandon();
    };
    options?.signal?.addEventListener("abort", onAbort, { once: true });
    const timeoutMs = options?.timeoutMs;
    let timedOut: StowageError | undefined;
    const timer =
      timeoutMs === undefined || timeoutMs <= 0
        ? undefined
        : setTimeout(() => {
            timedOut = new StowageError(Code.DeadlineExceeded, `the upload did not finish within ${String(timeoutMs)} ms; nothing was stored`);
            stop.abort(timedOut);
            void abandon();
          }, timeoutMs);
    // A body left unfinished is closed (a Readable is destroyed), without waiting for a stalled one.
    const chunks = untilAborted(chunksOf(input.body), stop.signal);
    const hash = input.sha256 !== undefined && input.sha256.length > 0 ? createHash("sha256") : undefined;
    let size = 0;
    let sent = 0;
    let digest: Buffer | undefined;
    try {
      for await (const chunk of chunks) {
        for (let offset = 0; offset < chunk.byteLength; offset += VELERO_CHUNK_BYTES) {
          const body = chunk.subarray(offset, Math.min(chunk.byteLength, offset + VELERO_CHUNK_BYTES));
          hash?.update(body);
          size += body.byteLength;
          await call.write(messages.encode(body));
          sent++;
        }
        if (input.size !== undefined && size > input.size) break;
      }
      if (sent === 0) await call.write(messages.encode(new Uint8Array()));
      if (input.size !== undefined && size !== input.size) {
        throw new StowageError(Code.DataLoss, `the body had ${String(size)} bytes, ${String(input.size)} were announced; nothing was stored`, { reason: Reason.IntegrityMismatch });
      }
      digest = hash?.digest();
      if (digest !== undefined && input.sha256 !== undefined && !digest.equals(Buffer.from(input.sha256))) {
        throw new StowageError(Code.DataLoss, "the body's SHA-256 does not match the announced one; nothing was stored", { reason: Reason.IntegrityMismatch });
      }
      if (options?.signal?.aborted === true) throw options.signal.reason;
      if (timedOut !== undefined) throw timedOut;
      await veleroCall(() => call.finish());
    } catch (error) {
      const ours = error instanceof StowageError && error.reason === Reason.IntegrityMismatch;
      // When the call itself already failed (plugin error, crash), its status is the answer.
      const status = ours || abandoned !== undefined ? undefined : await Promise.race([call.response.then(() => undefined, (e: unknown) => e), sleep(100).then(() => undefined)]);
      await abandon();
      if (!ours && options?.signal?.aborted === true) throw fromVeleroError(options.signal.reason);
      if (!ours && timedOut !== undefined) throw timedOut;
      throw fromVeleroError(status ?? error);
    } finally {
      clearTimeout(timer);
      options?.signal?.removeEventListener("abort", onAbort);
    }
    return { size, etag: "", ...(digest === undefined ? {} : { sha256: new Uint8Array(digest) }) };
  }

  /**
   * GetObject: the first message (or the error) is awaited before returning, so a failure surfaces
   * here. Velero sends no length: `contentLength` and `object.size` are -1. A failure on a key that
   * ObjectExists denies becomes NOT_FOUND / OBJECT_NOT_FOUND.
   */
  async getObject(input: GetObjectInput, options?: CallOptions): Promise<GetObjectOutput> {
    checkGetInput(input);
    if (input.range !== undefined) throw unsupported("a ranged read");
    const channel = await this.#tracker.channel(withDefault(options, this.#timeoutMs));
    const call = channel.serverStream(
      VeleroObjectStoreService.method.getObject,
      { plugin: this.descriptor.name, bucket: input.bucket, key: input.key },
      { signal: options?.signal, timeoutMs: options?.timeoutMs },
    );
    let first: IteratorResult<Bytes>;
    try {
      first = await call.messages.next();
    } catch (error) {
      const converted = fromVeleroError(error);
      if (converted.code === Code.Unknown && !(await this.#exists(input, options).catch(() => true))) {
        throw new StowageError(Code.NotFound, objectNotFound(input.bucket, input.key).rawMessage, {
          reason: Reason.ObjectNotFound,
          metadata: { ...converted.metadata, bucket: input.bucket, key: input.key },
          cause: converted,
        });
      }
      throw converted;
    }
    async function* chunks(): AsyncGenerator<Uint8Array> {
      let complete = false;
      try {
        if (first.done === true) {
          complete = true;
          return;
        }
        if (first.value.data.byteLength > 0) yield first.value.data;
        for (;;) {
          let next: IteratorResult<Bytes>;
          try {
            next = await call.messages.next();
          } catch (error) {
            throw fromVeleroError(error);
          }
          if (next.done === true) break;
          if (next.value.data.byteLength > 0) yield next.value.data;
        }
        complete = true;
      } finally {
        if (!complete) call.cancel();
      }
    }
    const body = Readable.from(chunks(), { objectMode: false, highWaterMark: VELERO_CHUNK_BYTES });
    return { object: { key: input.key, size: -1, etag: "", contentType: "", metadata: {} }, contentLength: -1, offset: 0, body };
  }
}

/** Most bytes of PutObject messages waiting for the transport (see `RpcChannel.encodedClientStream`). */
const PUT_PENDING_BYTES = 2 * VELERO_CHUNK_BYTES;

/** The PutObject field `bytes body = 4`'s tag: field 4, length-delimited. */
const BODY_TAG = (4 << 3) | WireType.LengthDelimited;
/** Free full-size message buffers a {@link PutObjectEncoder} keeps (about what is pending at once). */
const MAX_FREE_MESSAGES = 4;

/**
 * Encodes the PutObject messages of one upload: plugin, bucket and key (encoded once) followed by
 * the body field, each message in one buffer of its exact size. protobuf-es's `toBinary` would grow
 * a buffer by doubling (2 MiB for a 1 MiB body) and copy the result out of it. The buffers of
 * full-size messages (a {@link VELERO_CHUNK_BYTES} body, what a large upload consists of) are
 * reused once grpc-js has taken them ({@link release}), so that an upload allocates a few of them
 * instead of one per MiB; other messages get a buffer of their own.
 */
class PutObjectEncoder {
  readonly #head: Uint8Array;
  /** The size of a full-size message. */
  readonly #full: number;
  readonly #free: Buffer[] = [];

  constructor(header: { plugin: string; bucket: string; key: string }) {
    this.#head = toBinary(PutObjectRequestSchema, create(PutObjectRequestSchema, header));
    this.#full = this.#head.byteLength + 1 + varintSize(VELERO_CHUNK_BYTES) + VELERO_CHUNK_BYTES;
  }

  /** The message carrying `body` (at most {@link VELERO_CHUNK_BYTES}); an empty body is left out, as proto3 does. */
  encode(body: Uint8Array): Buffer {
    const head = this.#head;
    if (body.byteLength === 0) return Buffer.from(head);
    const size = head.byteLength + 1 + varintSize(body.byteLength) + body.byteLength;
    const out = (size === this.#full ? this.#free.pop() : undefined) ?? Buffer.allocUnsafe(size);
    out.set(head, 0);
    let at = head.byteLength;
    out[at++] = BODY_TAG;
    let n = body.byteLength;
    while (n > 0x7f) {
      out[at++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    out[at++] = n;
    out.set(body, at);
    return out;
  }

  /** Takes back a message of {@link encode} that grpc-js has taken (copied), for reuse. */
  release(message: Uint8Array): void {
    if (message.byteLength === this.#full && this.#free.length < MAX_FREE_MESSAGES && Buffer.isBuffer(message)) this.#free.push(message);
  }
}

/** The bytes of `n` as a protobuf varint. */
function varintSize(n: number): number {
  let bytes = 1;
  for (let v = n; v > 0x7f; v >>>= 7) bytes++;
  return bytes;
}

/**
 * A PutObject message whose field 3 (`key`, a string) holds invalid UTF-8. Go's protobuf decoder
 * refuses it, so the Go server's `Recv` fails with an error instead of an end of stream, and the
 * plugin's reader fails the upload.
 */
const POISON: Uint8Array = toBinary(PutObjectRequestSchema, { ...create(PutObjectRequestSchema), $unknown: [{ no: 3, wireType: WireType.LengthDelimited, data: Uint8Array.of(1, 0xff) }] });

/**
 * Abandons a PutObject stream so that the Go plugin stores nothing. Cancelling alone is not
 * enough: velero-plugin-for-aws v1.14.2 was seen storing the bytes received before a cancellation
 * as the whole object (bodies under its multipart threshold). So the host first sends a message
 * the Go decoder refuses, which fails the plugin's body reader with an error, waits briefly for
 * the plugin's error status, and then cancels.
 */
async function abandonUpload(call: ClientStreamCall<Uint8Array, unknown>): Promise<void> {
  const ended = call.response.then(
    () => undefined,
    () => undefined,
  );
  await Promise.race([call.write(POISON).catch(() => undefined), ended, sleep(ABANDON_WAIT_MS)]);
  await Promise.race([ended, sleep(ABANDON_WAIT_MS)]);
  call.cancel();
}

/** How long {@link abandonUpload} waits for each step. */
const ABANDON_WAIT_MS = 1000;
