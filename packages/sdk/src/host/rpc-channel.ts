/**
 * Typed calls over a grpc-js client, driven by protobuf-es method descriptors, with deadlines,
 * AbortSignal cancellation and StowageError mapping.
 */
import { once } from "node:events";
import type { DescMessage, DescMethod, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { status as grpcStatus, type StatusObject, type CallOptions as GrpcCallOptions, type Client, type ClientReadableStream, type ClientWritableStream } from "@grpc/grpc-js";
import { Code, Reason, StowageError } from "../errors.js";
import type { CallOptions } from "../types.js";
import { asBuffer, methodCodec } from "../wire/rpc.js";
import { fromGrpcError } from "../wire/status.js";
import { observeRpc, type RpcObservation } from "./rpc-telemetry.js";

type Method<I extends DescMessage, O extends DescMessage> = DescMethod & { input: I; output: O };

/** Converts a failed call's error, given the caller's signal. */
export type ErrorMapper = (error: unknown) => StowageError | Promise<StowageError>;

function grpcOptions(options: CallOptions): GrpcCallOptions {
  return options.timeoutMs === undefined || options.timeoutMs <= 0 ? {} : { deadline: Date.now() + options.timeoutMs };
}

function mapWith(options: CallOptions, mapper: ErrorMapper): (error: unknown) => Promise<StowageError> {
  return async (error) => {
    if (options.signal?.aborted === true) return StowageError.from(options.signal.reason);
    return mapper(error);
  };
}

/** The plugin a request names (every Stowage request but PutObject's stream has a `plugin` field). */
function pluginOf(request: unknown): string | undefined {
  const plugin = (request as { plugin?: unknown } | undefined)?.plugin;
  return typeof plugin === "string" ? plugin : undefined;
}

/** Hooks a signal to a cancel function; returns the unhook. */
function onAbort(signal: AbortSignal | undefined, cancel: () => void): () => void {
  if (signal === undefined) return () => undefined;
  if (signal.aborted) {
    queueMicrotask(cancel);
    return () => undefined;
  }
  signal.addEventListener("abort", cancel, { once: true });
  return () => {
    signal.removeEventListener("abort", cancel);
  };
}

/** Options of a client-streaming call, whose first message is not known when it starts. */
export interface RpcCallOptions extends CallOptions {
  /** The plugin the call is for, for its span and metrics. */
  readonly plugin?: string | undefined;
}

/** A server-streaming call in progress. */
export interface ServerStreamCall<O> {
  /** The messages, in order; the iteration throws the call's error. */
  readonly messages: AsyncIterator<O>;
  /** Cancels the call. */
  cancel(): void;
}

/** A client-streaming call in progress. */
export interface ClientStreamCall<I, O> {
  /** Sends one message, waiting while the transport is full. */
  write(message: I): Promise<void>;
  /** Half-closes and waits for the response. */
  finish(): Promise<O>;
  /** The response (or the error), whenever it arrives, even before `finish`. */
  readonly response: Promise<O>;
  /** Cancels the call. */
  cancel(): void;
}

/** Flow control of a client-streaming call whose messages are written already encoded. */
export interface EncodedStreamOptions {
  /**
   * Most bytes written but not yet taken by the transport (their grpc-js write callback has not
   * run) when `write` resolves. `write` waits while more are outstanding.
   */
  readonly maxPendingBytes: number;
  /**
   * Called with each message once grpc-js has taken it (its write callback ran without an error).
   * grpc-js copied the message into its own framed buffer before, and holds no reference to it any
   * more, so the caller may reuse its memory.
   */
  readonly taken?: ((message: Uint8Array) => void) | undefined;
}

/** Typed calls on one gRPC connection. */
export class RpcChannel {
  /** The underlying grpc-js client. */
  readonly client: Client;
  #mapper: ErrorMapper = fromGrpcError;
  readonly #metadata: readonly (readonly [string, string])[];
  #inFlight = 0;

  /**
   * @param client - The connection.
   * @param metadata - Sent with every call (a remote plugin's `stowage-session`).
   */
  constructor(client: Client, metadata: Readonly<Record<string, string>> = {}) {
    this.client = client;
    this.#metadata = Object.entries(metadata);
  }

  /** Calls started on this channel that have not ended yet (what a pool balances on). */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Starts observing one call: its span, its metadata, and the in-flight count until it ends. */
  #observe(path: string, plugin: string | undefined): RpcObservation {
    const observed = observeRpc(path, plugin);
    for (const [key, value] of this.#metadata) observed.metadata.set(key, value);
    this.#inFlight++;
    let open = true;
    return {
      metadata: observed.metadata,
      end: (error) => {
        if (open) {
          open = false;
          this.#inFlight--;
        }
        observed.end(error);
      },
    };
  }

  /** Replaces the error mapper (the supervisor turns transport errors into crash errors). */
  setErrorMapper(mapper: ErrorMapper): void {
    this.#mapper = mapper;
  }

  /** A unary call. */
  unary<I extends DescMessage, O extends DescMessage>(method: Method<I, O>, request: MessageInitShape<I>, options: CallOptions = {}): Promise<MessageShape<O>> {
    const codec = methodCodec(method);
    const map = mapWith(options, this.#mapper);
    const observed = this.#observe(codec.path, pluginOf(request));
    return new Promise((resolve, reject) => {
      const call = this.client.makeUnaryRequest(
        codec.path,
        codec.serializeRequest,
        codec.deserializeResponse,
        create(method.input, request),
        observed.metadata,
        grpcOptions(options),
        (error, response) => {
          unhook();
          if (error !== null || response === undefined) {
            void map(error).then((mapped) => {
              observed.end(mapped);
              reject(mapped);
            });
          } else {
            observed.end();
            resolve(response);
          }
        },
      );
      const unhook = onAbort(options.signal, () => {
        call.cancel();
      });
    });
  }

  /** A server-streaming call. */
  serverStream<I extends DescMessage, O extends DescMessage>(method: Method<I, O>, request: MessageInitShape<I>, options: CallOptions = {}): ServerStreamCall<MessageShape<O>> {
    const codec = methodCodec(method);
    const map = mapWith(options, this.#mapper);
    const observed = this.#observe(codec.path, pluginOf(request));
    const call: ClientReadableStream<MessageShape<O>> = this.client.makeServerStreamRequest(
      codec.path,
      codec.serializeRequest,
      codec.deserializeResponse,
      create(method.input, request),
      observed.metadata,
      grpcOptions(options),
    );
    const unhook = onAbort(options.signal, () => {
      call.cancel();
    });
    // A caller may stop reading once it has what it needs (a GET after its trailer): the status
    // still arrives and ends the call's observation, OK or not.
    call.on("status", (status: StatusObject) => {
      if (status.code === grpcStatus.OK) observed.end();
      else void map(Object.assign(new Error(status.details), status)).then((mapped) => observed.end(mapped));
    });
    const cancelled = (): void => {
      observed.end(new StowageError(Code.Canceled, "the host cancelled the call", { reason: Reason.Cancelled }));
    };
    const iterator = call[Symbol.asyncIterator]() as AsyncIterator<MessageShape<O>>;
    const messages: AsyncIterator<MessageShape<O>> = {
      async next() {
        try {
          const result = await iterator.next();
          if (result.done === true) {
            unhook();
            observed.end();
          }
          return result;
        } catch (error) {
          unhook();
          const mapped = await map(error);
          observed.end(mapped);
          throw mapped;
        }
      },
      async return() {
        unhook();
        call.cancel();
        cancelled();
        return { done: true, value: undefined };
      },
    };
    return {
      messages,
      cancel() {
        unhook();
        call.cancel();
        cancelled();
      },
    };
  }

  /**
   * A client-streaming call. `write` waits while grpc-js's writable buffer is full (16 messages,
   * whatever their size; each is encoded only when grpc-js takes it).
   */
  clientStream<I extends DescMessage, O extends DescMessage>(method: Method<I, O>, options: RpcCallOptions = {}): ClientStreamCall<MessageShape<I>, MessageShape<O>> {
    const open = this.#openClientStream<MessageShape<I>, O>(method, methodCodec(method).serializeRequest, options);
    const { stream, response } = open;
    return {
      ...open.call,
      async write(message) {
        if (open.failed()) return response.then(() => undefined);
        if (!stream.write(message)) {
          await Promise.race([once(stream, "drain"), response]);
        }
      },
    };
  }

  /**
   * A client-streaming call whose messages are written already encoded (each the bytes of one
   * message of `method`'s input type, so the caller controls how they are allocated), with flow
   * control in bytes: `write` resolves once at most `flow.maxPendingBytes` still wait for the
   * transport, that is, for grpc-js's write callback, which runs once HTTP/2 flow control let the
   * message out (grpc-js acknowledges at once only what fits its per-call retry buffer, 256 KiB).
   */
  encodedClientStream<I extends DescMessage, O extends DescMessage>(method: Method<I, O>, options: RpcCallOptions, flow: EncodedStreamOptions): ClientStreamCall<Uint8Array, MessageShape<O>> {
    const open = this.#openClientStream<Uint8Array, O>(method, asBuffer, options);
    const { stream, response } = open;
    let pending = 0;
    let ended = false;
    let waiting: (() => void)[] = [];
    const wake = (): void => {
      const waiters = waiting;
      waiting = [];
      for (const w of waiters) w();
    };
    // Once the call ended the transport may never call back: waiting writes go on, or fail with the
    // call's error. (Not a race against `response` per write: every race would leave a reaction on it.)
    const end = (): void => {
      ended = true;
      wake();
    };
    response.then(end, end);
    return {
      ...open.call,
      async write(message) {
        if (open.failed()) return response.then(() => undefined);
        const bytes = message.byteLength;
        pending += bytes;
        stream.write(message, (error?: Error | null) => {
          pending -= bytes;
          if (error === undefined || error === null) flow.taken?.(message);
          if (pending <= flow.maxPendingBytes) wake();
        });
        if (pending > flow.maxPendingBytes && !ended) {
          await new Promise<void>((resolve) => waiting.push(resolve));
          if (open.failed()) return response.then(() => undefined);
        }
      },
    };
  }

  /**
   * Starts a client-streaming call whose messages `serialize` encodes: its grpc-js stream, its
   * response, whether it failed, and the `finish` and `cancel` of the call.
   */
  #openClientStream<W, O extends DescMessage>(
    method: Method<DescMessage, O>,
    serialize: (value: W) => Buffer,
    options: RpcCallOptions,
  ): { stream: ClientWritableStream<W>; response: Promise<MessageShape<O>>; failed: () => boolean; call: Omit<ClientStreamCall<W, MessageShape<O>>, "write"> } {
    const codec = methodCodec(method);
    const map = mapWith(options, this.#mapper);
    const observed = this.#observe(codec.path, options.plugin);
    let call: ClientWritableStream<W> | undefined;
    const response = new Promise<MessageShape<O>>((resolve, reject) => {
      call = this.client.makeClientStreamRequest(codec.path, serialize, codec.deserializeResponse, observed.metadata, grpcOptions(options), (error, value) => {
        unhook();
        if (error !== null || value === undefined) {
          void map(error).then((mapped) => {
            observed.end(mapped);
            reject(mapped);
          });
        } else {
          observed.end();
          resolve(value);
        }
      });
    });
    response.catch(() => undefined);
    const stream = call as unknown as ClientWritableStream<W>;
    stream.on("error", () => undefined);
    const unhook = onAbort(options.signal, () => {
      stream.cancel();
    });
    let failed = false;
    response.catch(() => {
      failed = true;
    });
    return {
      stream,
      response,
      failed: () => failed,
      call: {
        response,
        async finish() {
          stream.end();
          return response;
        },
        cancel() {
          unhook();
          stream.cancel();
        },
      },
    };
  }
}
