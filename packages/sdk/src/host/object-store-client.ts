/**
 * {@link ObjectStore} over a plugin process speaking Stowage's own protocol (stowage.v1 and the
 * data channel): the remote twin of an in-process implementation. Internal: the host hands it out
 * as a {@link HostObjectStore}.
 */
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { Readable } from "node:stream";
import { create } from "@bufbuild/protobuf";
import { Code, Reason, StowageError } from "../errors.js";
import { ObjectStoreService, PutObjectRequestSchema, type GetObjectResponse } from "../gen/stowage/v1/object_store_pb.js";
import { DATA_CHANNEL_TOKEN_BYTES, MAX_CHUNK_BYTES } from "../protocol/constants.js";
import type {
  CallOptions,
  CreateSignedUrlInput,
  DeleteObjectInput,
  GetObjectInput,
  GetObjectOutput,
  ListObjectsInput,
  ListObjectsPage,
  ObjectInfo,
  ObjectLock,
  ObjectRef,
  PluginConfig,
  PluginDescriptor,
  PutObjectInput,
  PutObjectResult,
  SignedUrl,
} from "../types.js";
import { objectInfoFromWire, protectionToWire, signedUrlMethodToWire, toNumber } from "../wire/convert.js";
import { asksProtection } from "../protection.js";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { rechunk } from "../plugin/body.js";
import { chunksOf, ConnectionBrokenError, pump, untilAborted } from "../wire/chunks.js";
import { IdleWatch } from "./idle-watch.js";
import type { ClientSettings, HostObjectStore, LaunchedProcess, ProcessSource, TransferEvent } from "./protocol-adapter.js";
import { StoreUnreachable } from "./direct-transfer.js";
import { definesDirectTransfer, RemoteDirectTransfer } from "./remote-direct-transfer.js";
import { RemoteObjectLock } from "./remote-object-lock.js";
import { checkCallOptions, checkConfig, checkDeleteInput, checkGetInput, checkListInput, checkObjectRef, checkPutInput, checkSignedUrlInput } from "./validate.js";

function withDefault(options: CallOptions | undefined, timeoutMs: number): CallOptions {
  return { signal: options?.signal, timeoutMs: options?.timeoutMs ?? (timeoutMs > 0 ? timeoutMs : undefined) };
}

/** How long connecting to a data channel may take before the body goes in gRPC messages instead. */
const DATA_CHANNEL_CONNECT_MS = 5000;

/** Opens a data-channel connection and sends its token. */
async function openDataChannel(address: string, token: Uint8Array): Promise<Socket> {
  const path = address.slice("unix:".length);
  const socket = connect({ path, allowHalfOpen: true, noDelay: true });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`connecting took longer than ${String(DATA_CHANNEL_CONNECT_MS)} ms`));
      }, DATA_CHANNEL_CONNECT_MS);
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  } catch (error) {
    socket.destroy();
    throw error;
  }
  socket.write(token);
  return socket;
}

/** Processes whose data channel failed: their bodies travel in gRPC messages from then on. */
const brokenDataChannels = new WeakSet<LaunchedProcess>();

/**
 * Opens the data-channel connection of one call before the call starts, or returns undefined when
 * the body is to travel in chunk messages: the host does not use data channels, the plugin offers
 * none, or its data channel failed (then once per process a warning says so, and no put or get
 * ever fails because of it).
 */
async function dataChannelFor(proc: LaunchedProcess, options: ClientSettings, token: Uint8Array): Promise<Socket | undefined> {
  const address = proc.info.dataChannelAddress;
  if (!options.dataChannel || !address.startsWith("unix:") || brokenDataChannels.has(proc)) return undefined;
  try {
    return await openDataChannel(address, token);
  } catch (error) {
    if (!brokenDataChannels.has(proc)) {
      brokenDataChannels.add(proc);
      options.logger?.warn(
        { plugin: proc.name, pid: proc.pid, dataChannelAddress: address },
        `the data channel of plugin ${proc.name} failed (${(error as Error).message}); its object bodies travel in gRPC messages from now on`,
      );
    }
    return undefined;
  }
}

/**
 * A GET body arriving on the data channel: socket chunks are pushed straight into the stream (no
 * intermediate iterator, no concatenation), the socket is paused while the consumer is behind, and
 * the stream ends only after the gRPC trailer confirmed the byte count.
 */
class DataChannelBody extends Readable {
  readonly #socket: Socket;
  #count = 0;
  #finished = false;
  /** Whether the idle watch is timing a wait on the plugin (false while the reader is behind). */
  #watching = false;
  readonly #cancel: () => void;
  readonly #signal: AbortSignal | undefined;
  readonly #idle: IdleWatch;
  readonly #onAbort = (): void => {
    this.destroy(StowageError.from(this.#signal?.reason));
  };

  constructor(socket: Socket, verify: (count: number) => Promise<void>, cancel: () => void, signal: AbortSignal | undefined, idle: IdleWatch) {
    super({ highWaterMark: 64 * 1024 });
    this.#socket = socket;
    this.#cancel = cancel;
    this.#signal = signal;
    this.#idle = idle;
    signal?.addEventListener("abort", this.#onAbort, { once: true });
    this.#watch(true);
    socket.on("data", (chunk: Buffer) => {
      this.#count += chunk.length;
      this.#idle.progress();
      if (!this.push(chunk)) {
        socket.pause();
        this.#watch(false);
      }
    });
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      this.#watch(false);
      // Success or failure, the gRPC stream says how the body ended (trailer, error or crash).
      verify(this.#count).then(
        () => {
          this.#finished = true;
          this.push(null);
        },
        (error: unknown) => this.destroy(StowageError.from(error)),
      );
    };
    socket.on("end", settle);
    socket.on("error", settle);
    socket.on("close", settle);
    // A socket whose EOF arrived while nobody listened (an empty body) has already emitted "end".
    if (socket.readableEnded || socket.destroyed) settle();
  }

  #watch(on: boolean): void {
    if (on === this.#watching) return;
    this.#watching = on;
    if (on) this.#idle.begin();
    else this.#idle.end();
  }

  override _read(): void {
    if (this.#socket.isPaused() && !this.#socket.readableEnded) {
      this.#watch(true);
      this.#socket.resume();
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#idle.stop();
    this.#socket.destroy();
    if (!this.#finished) this.#cancel();
    callback(error);
  }
}

/** Processes whose store the host could not reach directly: their bodies go through the plugin from then on. */
const unreachableStores = new WeakSet<LaunchedProcess>();

/** An ObjectStore served by a plugin process that speaks Stowage's protocol. */
export class ObjectStoreClient implements HostObjectStore {
  /** What the plugin announced. */
  readonly descriptor: PluginDescriptor;
  /** Stowage's own protocol. */
  readonly protocol: string;
  readonly #objectLock: ObjectLock | undefined;
  readonly #supervisor: ProcessSource;
  readonly #options: ClientSettings;

  constructor(processes: ProcessSource, descriptor: PluginDescriptor, options: ClientSettings, protocol: string) {
    this.#supervisor = processes;
    this.descriptor = descriptor;
    this.#options = options;
    this.protocol = protocol;
    this.#objectLock = descriptor.capabilities.includes("OBJECT_LOCK") ? new RemoteObjectLock(processes, descriptor.name, options.defaultTimeoutMs) : undefined;
  }

  /** Object protection, when the plugin announces `OBJECT_LOCK` (contract 5.9). */
  get objectLock(): ObjectLock | undefined {
    return this.#objectLock;
  }

  get #name(): string {
    return this.descriptor.name;
  }

  /** The plugin's direct transfer when this call may use it (contract 5.8.1, 5.8.13). */
  #direct(proc: LaunchedProcess): RemoteDirectTransfer | undefined {
    if (this.#options.directTransfer?.settings.enabled !== true) return undefined;
    if (!this.descriptor.capabilities.includes("DIRECT_TRANSFER") || !definesDirectTransfer(proc.info.contractVersion)) return undefined;
    if (unreachableStores.has(proc)) return undefined;
    return new RemoteDirectTransfer(proc.channel, this.#name, this.#options.defaultTimeoutMs);
  }

  /** Remembers, and says once per process, that the host cannot reach this plugin's store. */
  #unreachable(proc: LaunchedProcess, error: StoreUnreachable): string {
    if (!unreachableStores.has(proc)) {
      unreachableStores.add(proc);
      this.#options.logger?.warn(
        { plugin: this.#name, pid: proc.pid, error: error.message },
        `the host cannot reach the store of plugin ${this.#name} directly; its object bodies go through the plugin from now on`,
      );
    }
    return `the store is unreachable from the host: ${error.message}`;
  }

  #report(operation: TransferEvent["operation"], path: TransferEvent["path"], fallback: string | undefined): void {
    this.#options.onTransfer?.({ operation, plugin: this.#name, path, ...(fallback === undefined ? {} : { fallback }) });
  }

  #idle(what: string, onIdle: (error: StowageError) => void): IdleWatch {
    return new IdleWatch(this.#options.streamIdleTimeoutMs ?? 0, what, onIdle);
  }

  async init(config: PluginConfig, options?: CallOptions): Promise<void> {
    checkConfig(config);
    checkCallOptions(options);
    const proc = await this.#supervisor.acquire();
    await proc.channel.unary(ObjectStoreService.method.init, { plugin: this.#name, config: { ...config } }, withDefault(options, this.#options.defaultTimeoutMs));
    this.#supervisor.rememberInit("object-store", this.#name, config, proc);
  }

  async headObject(input: ObjectRef, options?: CallOptions): Promise<ObjectInfo | undefined> {
    checkObjectRef(input);
    checkCallOptions(options);
    const proc = await this.#supervisor.acquire();
    const res = await proc.channel.unary(ObjectStoreService.method.headObject, { plugin: this.#name, bucket: input.bucket, key: input.key }, withDefault(options, this.#options.defaultTimeoutMs));
    return res.exists && res.object !== undefined ? objectInfoFromWire(res.object) : undefined;
  }

  async deleteObject(input: DeleteObjectInput, options?: CallOptions): Promise<void> {
    checkDeleteInput(input);
    checkCallOptions(options);
    const proc = await this.#supervisor.acquire();
    await proc.channel.unary(
      ObjectStoreService.method.deleteObject,
      { plugin: this.#name, bucket: input.bucket, key: input.key, bypassGovernance: input.bypassGovernance === true },
      withDefault(options, this.#options.defaultTimeoutMs),
    );
  }

  async createSignedUrl(input: CreateSignedUrlInput, options?: CallOptions): Promise<SignedUrl> {
    checkSignedUrlInput(input);
    checkCallOptions(options);
    const proc = await this.#supervisor.acquire();
    const res = await proc.channel.unary(
      ObjectStoreService.method.createSignedURL,
      { plugin: this.#name, bucket: input.bucket, key: input.key, method: signedUrlMethodToWire(input.method), ttlSeconds: BigInt(input.ttlSeconds) },
      withDefault(options, this.#options.defaultTimeoutMs),
    );
    if (res.expiresAt === undefined) throw new StowageError(Code.Internal, "the plugin returned a signed URL without expires_at");
    return { url: res.url, expiresAt: timestampDate(res.expiresAt) };
  }

  async *listObjects(input: ListObjectsInput, options?: CallOptions): AsyncGenerator<ListObjectsPage> {
    checkListInput(input);
    checkCallOptions(options);
    const proc = await this.#supervisor.acquire();
    const call = proc.channel.serverStream(
      ObjectStoreService.method.listObjects,
      {
        plugin: this.#name,
        bucket: input.bucket,
        prefix: input.prefix ?? "",
        delimiter: input.delimiter ?? "",
        pageSize: input.pageSize ?? 0,
        pageToken: input.pageToken ?? "",
        maxPages: input.maxPages ?? 0,
      },
      { signal: options?.signal, timeoutMs: options?.timeoutMs },
    );
    // Only the waits for the next page count: the caller may take its time between pages.
    const idle = this.#idle(`the ListObjects of bucket ${JSON.stringify(input.bucket)}`, () => {
      call.cancel();
    });
    try {
      for (;;) {
        const next = await idle.wait(call.messages.next());
        if (next.done === true) return;
        yield { objects: next.value.objects.map(objectInfoFromWire), commonPrefixes: next.value.commonPrefixes, nextPageToken: next.value.nextPageToken };
      }
    } finally {
      idle.stop();
      call.cancel();
    }
  }

  async putObject(input: PutObjectInput, options?: CallOptions): Promise<PutObjectResult> {
    checkPutInput(input);
    checkCallOptions(options);
    const protect = asksProtection(input.protection);
    if (protect && this.#objectLock === undefined) {
      throw new StowageError(Code.Unimplemented, `plugin ${this.#name} does not announce CAPABILITY_OBJECT_LOCK; it cannot store a protected object`, { reason: Reason.Unsupported });
    }
    const proc = await this.#supervisor.acquire();
    // A body of unknown size, or too small to be worth a plan's round trips, goes through the
    // plugin; so does a put with protection, which BeginPut cannot carry (contract 5.9.7).
    const plain = !protect && input.bypassGovernance !== true;
    const direct = !plain || input.size === undefined || input.size < (this.#options.directTransfer?.settings.minPutSize ?? 0) ? undefined : this.#direct(proc);
    const executor = this.#options.directTransfer;
    let fallback: string | undefined;
    if (direct !== undefined && executor !== undefined && input.size !== undefined) {
      try {
        const stored = await executor.put(direct, { ...input, size: input.size }, options);
        if (stored !== undefined) {
          this.#report("put", "direct", undefined);
          return stored;
        }
        fallback = "the plugin declined";
      } catch (error) {
        if (!(error instanceof StoreUnreachable)) throw error;
        fallback = this.#unreachable(proc, error);
        if (error.body !== undefined) input = { ...input, body: error.body };
      }
    }
    return this.#putThroughPlugin(proc, input, options, fallback);
  }

  async #putThroughPlugin(proc: LaunchedProcess, input: PutObjectInput, options: CallOptions | undefined, fallback: string | undefined): Promise<PutObjectResult> {
    const token = randomBytes(DATA_CHANNEL_TOKEN_BYTES);
    const socket = await dataChannelFor(proc, this.#options, token);
    this.#report("put", socket === undefined ? "messages" : "data-channel", fallback);
    const call = proc.channel.clientStream(ObjectStoreService.method.putObject, { signal: options?.signal, timeoutMs: options?.timeoutMs, plugin: this.#name });
    // Only the waits on the plugin count (room to send, the answer), not the body source's pace.
    const idle = this.#idle(`the PutObject of ${JSON.stringify(input.key)}`, () => {
      call.cancel();
      socket?.destroy();
    });
    const during = <T>(wait: Promise<T>): Promise<T> => idle.wait(wait);
    let sent = 0;
    try {
      await idle.wait(
        call.write(
          create(PutObjectRequestSchema, {
            part: {
              case: "header",
              value: {
                plugin: this.#name,
                bucket: input.bucket,
                key: input.key,
                ...(input.size === undefined ? {} : { size: BigInt(input.size) }),
                contentType: input.contentType ?? "",
                metadata: { ...input.metadata },
                sha256: input.sha256 ?? new Uint8Array(),
                dataChannelToken: socket === undefined ? new Uint8Array() : token,
                ...(asksProtection(input.protection) ? { protection: protectionToWire(input.protection) } : {}),
                bypassGovernance: input.bypassGovernance === true,
              },
            },
          }),
        ),
      );
      // When the call fails (deadline, cancellation, plugin error) the body is abandoned at once,
      // even while it stalls, and the call's status is the answer.
      const failed = new AbortController();
      call.response.catch(() => {
        failed.abort();
      });
      const body = untilAborted(chunksOf(input.body), failed.signal);
      try {
        if (socket !== undefined) {
          sent = await pump(body, socket, failed.signal, during);
        } else {
          for await (const chunk of rechunk(body, MAX_CHUNK_BYTES)) {
            sent += chunk.byteLength;
            await idle.wait(call.write(create(PutObjectRequestSchema, { part: { case: "chunk", value: chunk } })));
          }
        }
      } catch (error) {
        if (failed.signal.aborted) await call.response;
        throw error;
      }
      await idle.wait(call.write(create(PutObjectRequestSchema, { part: { case: "trailer", value: { size: BigInt(sent) } } })));
      const res = await idle.wait(call.finish());
      idle.stop();
      socket?.destroy();
      return { size: toNumber(res.size), etag: res.etag, sha256: res.sha256.length > 0 ? res.sha256 : undefined };
    } catch (error) {
      if (error instanceof ConnectionBrokenError && idle.error === undefined && options?.signal?.aborted !== true) {
        // The plugin closed the data connection: it failed the call or died, and its status (or
        // the crash, or its silence under the idle watch) says which.
        const status = await idle.wait(call.response.then(() => undefined, (e: unknown) => e)).catch((e: unknown) => e);
        if (status instanceof StowageError) {
          idle.stop();
          socket?.destroy();
          throw status;
        }
      }
      idle.stop();
      call.cancel();
      socket?.destroy();
      if (idle.error !== undefined) throw idle.error;
      if (error instanceof StowageError) throw error;
      if (options?.signal?.aborted === true) throw StowageError.from(options.signal.reason);
      throw new StowageError(Code.Aborted, `the upload of ${JSON.stringify(input.key)} was abandoned, nothing was stored: ${(error as Error).message}`, { cause: error });
    }
  }

  async getObject(input: GetObjectInput, options?: CallOptions): Promise<GetObjectOutput> {
    checkGetInput(input);
    checkCallOptions(options);
    const proc = await this.#supervisor.acquire();
    const direct = this.#direct(proc);
    const executor = this.#options.directTransfer;
    let fallback: string | undefined;
    if (direct !== undefined && executor !== undefined) {
      try {
        const read = await executor.get(direct, input, options);
        if (read !== undefined) {
          this.#report("get", "direct", undefined);
          return read;
        }
        fallback = "the plugin declined";
      } catch (error) {
        if (!(error instanceof StoreUnreachable)) throw error;
        fallback = this.#unreachable(proc, error);
      }
    }
    const token = randomBytes(DATA_CHANNEL_TOKEN_BYTES);
    const socket = await dataChannelFor(proc, this.#options, token);
    this.#report("get", socket === undefined ? "messages" : "data-channel", fallback);
    const call = proc.channel.serverStream(
      ObjectStoreService.method.getObject,
      {
        plugin: this.#name,
        bucket: input.bucket,
        key: input.key,
        ...(input.range === undefined
          ? {}
          : { range: { offset: BigInt(input.range.offset), ...(input.range.length === undefined ? {} : { length: BigInt(input.range.length) }) } }),
        dataChannelToken: socket === undefined ? new Uint8Array() : token,
      },
      { signal: options?.signal, timeoutMs: options?.timeoutMs },
    );
    // Only the waits on the plugin count (for the header, the next chunk, the trailer), not a reader that falls behind.
    let body: Readable | undefined;
    const idle = this.#idle(`the GetObject of ${JSON.stringify(input.key)}`, (error) => {
      call.cancel();
      body?.destroy(error);
    });
    const abandon = (): void => {
      idle.stop();
      call.cancel();
      socket?.destroy();
    };
    let first: IteratorResult<GetObjectResponse>;
    try {
      first = await idle.wait(call.messages.next());
    } catch (error) {
      abandon();
      throw error;
    }
    if (first.done === true || first.value.part.case !== "header" || first.value.part.value.object === undefined) {
      abandon();
      throw new StowageError(Code.Internal, "the plugin's GetObject stream did not start with a header");
    }
    const header = first.value.part.value;
    if (header.contentLength < 0n) {
      abandon();
      throw new StowageError(Code.Internal, "the plugin announced a negative content length");
    }
    let objectInfo: ObjectInfo;
    let contentLength: number;
    let offset: number;
    try {
      objectInfo = objectInfoFromWire(first.value.part.value.object);
      contentLength = toNumber(header.contentLength);
      offset = toNumber(header.offset);
    } catch (error) {
      abandon();
      throw error;
    }
    const expectTrailer = async (count: number, received?: number): Promise<void> => {
      let size = received;
      if (size === undefined) {
        const next = await idle.wait(call.messages.next());
        if (next.done === true || next.value.part.case !== "trailer") {
          throw new StowageError(Code.DataLoss, "the plugin's GetObject stream ended without a trailer", { reason: Reason.IntegrityMismatch });
        }
        size = toNumber(next.value.part.value.size);
      }
      if (size !== count || count !== contentLength) {
        throw new StowageError(Code.DataLoss, `received ${String(count)} bytes, the plugin announced ${String(contentLength)} and reported ${String(size)}`, {
          reason: Reason.IntegrityMismatch,
        });
      }
    };
    const signal = options?.signal;
    if (socket !== undefined) {
      body = new DataChannelBody(
        socket,
        async (count) => {
          await expectTrailer(count);
          idle.stop();
        },
        () => {
          call.cancel();
        },
        signal,
        idle,
      );
      return { object: objectInfo, contentLength, offset, body };
    }
    async function* chunks(): AsyncGenerator<Uint8Array> {
      let count = 0;
      let complete = false;
      try {
        for (;;) {
          const next = await idle.wait(call.messages.next());
          if (next.done === true) throw new StowageError(Code.DataLoss, "the plugin's GetObject stream ended without a trailer", { reason: Reason.IntegrityMismatch });
          const part = next.value.part;
          if (part.case === "chunk") {
            count += part.value.byteLength;
            yield part.value;
          } else if (part.case === "trailer") {
            await expectTrailer(count, toNumber(part.value.size));
            break;
          } else {
            throw new StowageError(Code.Internal, "unexpected message in the plugin's GetObject stream");
          }
        }
        complete = true;
      } finally {
        idle.stop();
        if (!complete) call.cancel();
      }
    }
    body = Readable.from(chunks(), { objectMode: false, highWaterMark: MAX_CHUNK_BYTES });
    return { object: objectInfo, contentLength, offset, body };
  }
}
