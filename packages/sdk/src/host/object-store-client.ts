/**
 * {@link ObjectStore} over a plugin process: the remote twin of an in-process implementation.
 */
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { Code, Reason, StowageError } from "../errors.js";
import { ObjectStoreService, PutObjectRequestSchema, type GetObjectResponse } from "../gen/stowage/v1/object_store_pb.js";
import { DATA_CHANNEL_TOKEN_BYTES, MAX_CHUNK_BYTES } from "../protocol/constants.js";
import type {
  CallOptions,
  CreateSignedUrlInput,
  GetObjectInput,
  GetObjectOutput,
  ListObjectsInput,
  ListObjectsPage,
  ObjectInfo,
  ObjectRef,
  ObjectStore,
  PluginConfig,
  PluginDescriptor,
  PutObjectInput,
  PutObjectResult,
  SignedUrl,
} from "../types.js";
import { objectInfoFromWire, signedUrlMethodToWire, toNumber } from "../wire/convert.js";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { rechunk } from "../plugin/body.js";
import { chunksOf, pump } from "../wire/chunks.js";
import type { Supervisor } from "./supervisor.js";

/** Client settings. */
export interface RemoteClientOptions {
  /** Deadline applied to unary calls that set none, in ms (0: none). */
  readonly defaultTimeoutMs: number;
  /** Use the plugin's data channel for bodies when it offers one. */
  readonly dataChannel: boolean;
}

function withDefault(options: CallOptions | undefined, timeoutMs: number): CallOptions {
  return { signal: options?.signal, timeoutMs: options?.timeoutMs ?? (timeoutMs > 0 ? timeoutMs : undefined) };
}

/** Opens a data-channel connection and sends its token. */
async function openDataChannel(address: string, token: Uint8Array): Promise<Socket> {
  const path = address.slice("unix:".length);
  const socket = connect({ path, allowHalfOpen: true, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.write(token);
  return socket;
}

/**
 * A GET body arriving on the data channel: socket chunks are pushed straight into the stream (no
 * intermediate iterator, no concatenation), the socket is paused while the consumer is behind, and
 * the stream ends only after the gRPC trailer confirmed the byte count.
 */
class DataChannelBody extends Readable {
  #socket: Socket | undefined;
  #count = 0;
  #finished = false;
  readonly #cancel: () => void;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => {
    this.destroy(StowageError.from(this.#signal?.reason));
  };

  constructor(socket: Promise<Socket>, verify: (count: number) => Promise<void>, cancel: () => void, signal: AbortSignal | undefined) {
    super({ highWaterMark: 64 * 1024 });
    this.#cancel = cancel;
    this.#signal = signal;
    signal?.addEventListener("abort", this.#onAbort, { once: true });
    socket.then(
      (s) => {
        if (this.destroyed) {
          s.destroy();
          return;
        }
        this.#socket = s;
        s.on("data", (chunk: Buffer) => {
          this.#count += chunk.length;
          if (!this.push(chunk)) s.pause();
        });
        let settled = false;
        const settle = (): void => {
          if (settled) return;
          settled = true;
          // Success or failure, the gRPC stream says how the body ended (trailer, error or crash).
          verify(this.#count).then(
            () => {
              this.#finished = true;
              this.push(null);
            },
            (error: unknown) => this.destroy(StowageError.from(error)),
          );
        };
        s.on("end", settle);
        s.on("error", settle);
        s.on("close", settle);
        // A socket whose EOF arrived while nobody listened (an empty body) has already emitted "end".
        if (s.readableEnded || s.destroyed) settle();
      },
      (error: unknown) => this.destroy(StowageError.from(error)),
    );
  }

  override _read(): void {
    this.#socket?.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#socket?.destroy();
    if (!this.#finished) this.#cancel();
    callback(error);
  }
}

/** An ObjectStore served by a plugin process. */
export class RemoteObjectStore implements ObjectStore {
  /** What the plugin announced. */
  readonly descriptor: PluginDescriptor;
  readonly #supervisor: Supervisor;
  readonly #options: RemoteClientOptions;

  constructor(supervisor: Supervisor, descriptor: PluginDescriptor, options: RemoteClientOptions) {
    this.#supervisor = supervisor;
    this.descriptor = descriptor;
    this.#options = options;
  }

  get #name(): string {
    return this.descriptor.name;
  }

  async init(config: PluginConfig, options?: CallOptions): Promise<void> {
    const proc = await this.#supervisor.acquire();
    await proc.channel.unary(ObjectStoreService.method.init, { plugin: this.#name, config: { ...config } }, withDefault(options, this.#options.defaultTimeoutMs));
    this.#supervisor.rememberInit("object-store", this.#name, config);
  }

  async headObject(input: ObjectRef, options?: CallOptions): Promise<ObjectInfo | undefined> {
    const proc = await this.#supervisor.acquire();
    const res = await proc.channel.unary(ObjectStoreService.method.headObject, { plugin: this.#name, ...input }, withDefault(options, this.#options.defaultTimeoutMs));
    return res.exists && res.object !== undefined ? objectInfoFromWire(res.object) : undefined;
  }

  async deleteObject(input: ObjectRef, options?: CallOptions): Promise<void> {
    const proc = await this.#supervisor.acquire();
    await proc.channel.unary(ObjectStoreService.method.deleteObject, { plugin: this.#name, ...input }, withDefault(options, this.#options.defaultTimeoutMs));
  }

  async createSignedUrl(input: CreateSignedUrlInput, options?: CallOptions): Promise<SignedUrl> {
    const proc = await this.#supervisor.acquire();
    const res = await proc.channel.unary(
      ObjectStoreService.method.createSignedURL,
      { plugin: this.#name, bucket: input.bucket, key: input.key, method: signedUrlMethodToWire(input.method), ttlSeconds: BigInt(Math.floor(input.ttlSeconds)) },
      withDefault(options, this.#options.defaultTimeoutMs),
    );
    if (res.expiresAt === undefined) throw new StowageError(Code.Internal, "the plugin returned a signed URL without expires_at");
    return { url: res.url, expiresAt: timestampDate(res.expiresAt) };
  }

  async *listObjects(input: ListObjectsInput, options?: CallOptions): AsyncGenerator<ListObjectsPage> {
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
    try {
      for (;;) {
        const next = await call.messages.next();
        if (next.done === true) return;
        yield { objects: next.value.objects.map(objectInfoFromWire), commonPrefixes: next.value.commonPrefixes, nextPageToken: next.value.nextPageToken };
      }
    } finally {
      call.cancel();
    }
  }

  async putObject(input: PutObjectInput, options?: CallOptions): Promise<PutObjectResult> {
    const proc = await this.#supervisor.acquire();
    const address = proc.info.dataChannelAddress;
    const useChannel = this.#options.dataChannel && address.startsWith("unix:");
    const token = useChannel ? randomBytes(DATA_CHANNEL_TOKEN_BYTES) : new Uint8Array();
    const call = proc.channel.clientStream(ObjectStoreService.method.putObject, { signal: options?.signal, timeoutMs: options?.timeoutMs });
    let socket: Socket | undefined;
    let sent = 0;
    try {
      await call.write(
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
              dataChannelToken: token,
            },
          },
        }),
      );
      if (useChannel) {
        socket = await openDataChannel(address, token);
        const abort = new AbortController();
        call.response.catch(() => {
          abort.abort();
        });
        try {
          sent = await pump(chunksOf(input.body), socket, abort.signal);
        } catch (error) {
          if (abort.signal.aborted) await call.response;
          throw error;
        }
      } else {
        for await (const chunk of rechunk(chunksOf(input.body), MAX_CHUNK_BYTES)) {
          sent += chunk.byteLength;
          await call.write(create(PutObjectRequestSchema, { part: { case: "chunk", value: chunk } }));
        }
      }
      await call.write(create(PutObjectRequestSchema, { part: { case: "trailer", value: { size: BigInt(sent) } } }));
      const res = await call.finish();
      socket?.destroy();
      return { size: toNumber(res.size), etag: res.etag, sha256: res.sha256.length > 0 ? res.sha256 : undefined };
    } catch (error) {
      if (!(error instanceof StowageError) && options?.signal?.aborted !== true) {
        // A broken data connection usually means the plugin failed or died: its status says which.
        const status = await Promise.race([call.response.then(() => undefined, (e: unknown) => e), sleep(500).then(() => undefined)]);
        if (status instanceof StowageError) {
          socket?.destroy();
          throw status;
        }
      }
      call.cancel();
      socket?.destroy();
      if (error instanceof StowageError) throw error;
      if (options?.signal?.aborted === true) throw StowageError.from(options.signal.reason);
      throw new StowageError(Code.Aborted, `the upload of ${JSON.stringify(input.key)} was abandoned, nothing was stored: ${(error as Error).message}`, { cause: error });
    }
  }

  async getObject(input: GetObjectInput, options?: CallOptions): Promise<GetObjectOutput> {
    const proc = await this.#supervisor.acquire();
    const address = proc.info.dataChannelAddress;
    const useChannel = this.#options.dataChannel && address.startsWith("unix:");
    const token = useChannel ? randomBytes(DATA_CHANNEL_TOKEN_BYTES) : new Uint8Array();
    const call = proc.channel.serverStream(
      ObjectStoreService.method.getObject,
      {
        plugin: this.#name,
        bucket: input.bucket,
        key: input.key,
        ...(input.range === undefined
          ? {}
          : { range: { offset: BigInt(input.range.offset), ...(input.range.length === undefined ? {} : { length: BigInt(input.range.length) }) } }),
        dataChannelToken: token,
      },
      { signal: options?.signal, timeoutMs: options?.timeoutMs },
    );
    const socketPromise = useChannel ? openDataChannel(address, token) : undefined;
    socketPromise?.catch(() => undefined);
    let first: IteratorResult<GetObjectResponse>;
    try {
      first = await call.messages.next();
    } catch (error) {
      void socketPromise?.then((s) => s.destroy());
      throw error;
    }
    if (first.done === true || first.value.part.case !== "header" || first.value.part.value.object === undefined) {
      call.cancel();
      void socketPromise?.then((s) => s.destroy());
      throw new StowageError(Code.Internal, "the plugin's GetObject stream did not start with a header");
    }
    const header = first.value.part.value;
    const objectInfo = objectInfoFromWire(first.value.part.value.object);
    if (header.contentLength < 0n) {
      call.cancel();
      void socketPromise?.then((s) => s.destroy());
      throw new StowageError(Code.Internal, "the plugin announced a negative content length");
    }
    const contentLength = toNumber(header.contentLength);
    const expectTrailer = async (count: number, received?: number): Promise<void> => {
      let size = received;
      if (size === undefined) {
        const next = await call.messages.next();
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
    if (socketPromise !== undefined) {
      const body = new DataChannelBody(socketPromise, expectTrailer, () => {
        call.cancel();
      }, signal);
      return { object: objectInfo, contentLength, offset: toNumber(header.offset), body };
    }
    async function* chunks(): AsyncGenerator<Uint8Array> {
      let count = 0;
      let complete = false;
      try {
        for (;;) {
          const next = await call.messages.next();
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
        if (!complete) call.cancel();
      }
    }
    const body = Readable.from(chunks(), { objectMode: false, highWaterMark: MAX_CHUNK_BYTES });
    return { object: objectInfo, contentLength, offset: toNumber(header.offset), body };
  }
}
