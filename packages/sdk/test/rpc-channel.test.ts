/**
 * The host's typed gRPC calls (host/rpc-channel.ts) and the descriptor bridge under them
 * (wire/rpc.ts), in process: a grpc-js server on loopback serves ObjectStoreService from the
 * generated descriptors, with handlers each test controls. Deadlines, cancellation, error mapping
 * and backpressure are observed on the server side, by events, never by timing.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import {
  Client,
  Metadata,
  Server,
  ServerCredentials,
  credentials,
  status,
  type ServerReadableStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedServiceImplementation,
  type sendUnaryData,
} from "@grpc/grpc-js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Code, Reason, StowageError } from "../src/errors.js";
import {
  GetObjectResponseSchema,
  ObjectStoreService,
  ObjectStoreServiceInitResponseSchema,
  PutObjectRequestSchema,
  PutObjectResponseSchema,
  type GetObjectRequest,
  type GetObjectResponse,
  type ObjectStoreServiceInitRequest,
  type ObjectStoreServiceInitResponse,
  type PutObjectRequest,
  type PutObjectResponse,
} from "../src/gen/stowage/v1/object_store_pb.js";
import { RpcChannel } from "../src/host/rpc-channel.js";
import { methodCodec, methodPath, serviceDefinition } from "../src/wire/rpc.js";
import { fromGrpcError, toGrpcStatus } from "../src/wire/status.js";
import { eventually, rejection } from "../src/testing.js";

type Unary = (call: ServerUnaryCall<ObjectStoreServiceInitRequest, ObjectStoreServiceInitResponse>, callback: sendUnaryData<ObjectStoreServiceInitResponse>) => void;
type ServerStream = (call: ServerWritableStream<GetObjectRequest, GetObjectResponse>) => void;
type ClientStream = (call: ServerReadableStream<PutObjectRequest, PutObjectResponse>, callback: sendUnaryData<PutObjectResponse>) => void;

/** The handlers of the current test (each defaults to "never answers"). */
let handlers: { init: Unary; getObject: ServerStream; putObject: ClientStream };
let server: Server;
let client: Client;
let channel: RpcChannel;

const silent: { init: Unary; getObject: ServerStream; putObject: ClientStream } = {
  init: () => undefined,
  getObject: () => undefined,
  putObject: () => undefined,
};

beforeEach(async () => {
  handlers = { ...silent };
  server = new Server();
  const implementation: UntypedServiceImplementation = {
    init: ((call, callback) => {
      handlers.init(call, callback);
    }) as Unary,
    getObject: ((call) => {
      handlers.getObject(call);
    }) as ServerStream,
    putObject: ((call, callback) => {
      handlers.putObject(call, callback);
    }) as ClientStream,
  };
  server.addService(serviceDefinition(ObjectStoreService), implementation);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, bound) => {
      if (error === null) resolve(bound);
      else reject(error);
    });
  });
  client = new Client(`127.0.0.1:${String(port)}`, credentials.createInsecure());
  channel = new RpcChannel(client);
});

afterEach(() => {
  client.close();
  server.forceShutdown();
});

/**
 * A promise the server side resolves when it sees its call cancelled by the client, and the
 * function to hand to the handler.
 */
function serverCancellation(): { cancelled: Promise<void>; watch: (call: { once(event: "cancelled", listener: () => void): unknown }) => void } {
  let resolve: () => void = () => undefined;
  const cancelled = new Promise<void>((r) => (resolve = r));
  return { cancelled, watch: (call) => void call.once("cancelled", () => resolve()) };
}

describe("wire/rpc: grpc-js definitions from protobuf-es descriptors", () => {
  it("names every method by its full path and marks its streaming sides", () => {
    const definition = serviceDefinition(ObjectStoreService);
    expect(methodPath(ObjectStoreService.method.putObject)).toBe("/stowage.v1.ObjectStoreService/PutObject");
    expect(Object.keys(definition).sort()).toEqual(ObjectStoreService.methods.map((m) => m.localName).sort());
    expect(definition.init).toMatchObject({ path: "/stowage.v1.ObjectStoreService/Init", originalName: "Init", requestStream: false, responseStream: false });
    expect(definition.putObject).toMatchObject({ requestStream: true, responseStream: false });
    expect(definition.getObject).toMatchObject({ requestStream: false, responseStream: true });
    expect(definition.listObjects).toMatchObject({ requestStream: false, responseStream: true });
  });

  it("round-trips messages through the codec, oneofs and bytes included", () => {
    const codec = methodCodec(ObjectStoreService.method.getObject);
    const message = create(GetObjectResponseSchema, { part: { case: "chunk", value: new Uint8Array([0, 1, 2, 255]) } });
    const decoded = codec.deserializeResponse(codec.serializeResponse(message));
    expect(decoded.part.case).toBe("chunk");
    expect([...(decoded.part.value as Uint8Array)]).toEqual([0, 1, 2, 255]);
    expect(codec.path).toBe("/stowage.v1.ObjectStoreService/GetObject");
  });
});

describe("RpcChannel unary calls", () => {
  it("send the typed request and resolve with the typed response", async () => {
    let received: ObjectStoreServiceInitRequest | undefined;
    handlers.init = (call, callback) => {
      received = call.request;
      callback(null, create(ObjectStoreServiceInitResponseSchema));
    };
    await channel.unary(ObjectStoreService.method.init, { plugin: "example.com/p", config: { root: "/x" } });
    expect(received).toMatchObject({ plugin: "example.com/p", config: { root: "/x" } });
  });

  it("turn a plugin's status into a StowageError with its code, message, reason and metadata", async () => {
    handlers.init = (_call, callback) => {
      callback(toGrpcStatus(new StowageError(Code.NotFound, "no bucket b", { reason: Reason.BucketNotFound, metadata: { bucket: "b" } })));
    };
    const error = await rejection(channel.unary(ObjectStoreService.method.init, { plugin: "p" }));
    expect(error).toMatchObject({ code: Code.NotFound, reason: Reason.BucketNotFound, metadata: { bucket: "b" }, rawMessage: "no bucket b" });
  });

  it("keep the code and message of a bare status (no details trailer)", async () => {
    handlers.init = (_call, callback) => {
      callback({ code: status.RESOURCE_EXHAUSTED, details: "disk full", metadata: new Metadata() });
    };
    const error = await rejection(channel.unary(ObjectStoreService.method.init, { plugin: "p" }));
    expect(error).toMatchObject({ code: Code.ResourceExhausted, rawMessage: "disk full", reason: undefined });
  });

  it("end at their deadline with DEADLINE_EXCEEDED while the plugin never answers", async () => {
    const error = await rejection(channel.unary(ObjectStoreService.method.init, { plugin: "p" }, { timeoutMs: 50 }));
    expect(error).toMatchObject({ code: Code.DeadlineExceeded, reason: Reason.DeadlineExceeded });
  });

  it("carry their deadline to the plugin, and none for timeoutMs 0", async () => {
    const deadlines: unknown[] = [];
    handlers.init = (call, callback) => {
      deadlines.push(call.getDeadline());
      callback(null, create(ObjectStoreServiceInitResponseSchema));
    };
    await channel.unary(ObjectStoreService.method.init, { plugin: "p" }, { timeoutMs: 600_000 });
    await channel.unary(ObjectStoreService.method.init, { plugin: "p" }, { timeoutMs: 0 });
    await channel.unary(ObjectStoreService.method.init, { plugin: "p" });
    expect(Number.isFinite(deadlines[0])).toBe(true);
    expect(deadlines.slice(1)).toEqual([Infinity, Infinity]);
  });

  it("are cancelled by the caller's signal, fail with the signal's reason, and the plugin sees the cancellation", async () => {
    const controller = new AbortController();
    const { cancelled, watch } = serverCancellation();
    handlers.init = (call) => {
      watch(call);
      controller.abort(new StowageError(Code.Canceled, "the user gave up", { reason: Reason.Cancelled }));
    };
    const error = await rejection(channel.unary(ObjectStoreService.method.init, { plugin: "p" }, { signal: controller.signal }));
    expect(error).toMatchObject({ code: Code.Canceled, rawMessage: "the user gave up" });
    await cancelled;
  });

  it("with an already aborted signal never wait on the plugin", async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await rejection(channel.unary(ObjectStoreService.method.init, { plugin: "p" }, { signal: controller.signal }));
    expect(error.code).toBe(Code.Canceled);
  });

  it("pass failures through the error mapper, but not a caller's cancellation", async () => {
    const seen: unknown[] = [];
    channel.setErrorMapper((error) => {
      seen.push(error);
      return new StowageError(Code.Unavailable, "the plugin crashed", { reason: Reason.PluginCrashed });
    });
    handlers.init = (_call, callback) => {
      callback({ code: status.UNAVAILABLE, details: "connection dropped", metadata: new Metadata() });
    };
    expect(await rejection(channel.unary(ObjectStoreService.method.init, { plugin: "p" }))).toMatchObject({ code: Code.Unavailable, reason: Reason.PluginCrashed });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ code: status.UNAVAILABLE, details: "connection dropped" });

    const controller = new AbortController();
    handlers.init = () => {
      controller.abort(new StowageError(Code.Canceled, "mine"));
    };
    expect(await rejection(channel.unary(ObjectStoreService.method.init, { plugin: "p" }, { signal: controller.signal }))).toMatchObject({ code: Code.Canceled, rawMessage: "mine" });
    expect(seen).toHaveLength(1);
  });
});

describe("RpcChannel server-streaming calls", () => {
  const chunk = (text: string): GetObjectResponse => create(GetObjectResponseSchema, { part: { case: "chunk", value: Buffer.from(text) } });

  async function collect(messages: AsyncIterator<GetObjectResponse>): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const next = await messages.next();
      if (next.done === true) return out;
      out.push(Buffer.from(next.value.part.value as Uint8Array).toString());
    }
  }

  it("yield the messages in order and end", async () => {
    handlers.getObject = (call) => {
      for (const text of ["a", "b", "c"]) call.write(chunk(text));
      call.end();
    };
    const call = channel.serverStream(ObjectStoreService.method.getObject, { plugin: "p", bucket: "b", key: "k" });
    expect(await collect(call.messages)).toEqual(["a", "b", "c"]);
  });

  it("throw the mapped error after the messages that came before it", async () => {
    handlers.getObject = (call) => {
      call.write(chunk("first"));
      call.emit("error", toGrpcStatus(new StowageError(Code.DataLoss, "disk read failed", { reason: Reason.IntegrityMismatch })));
    };
    const call = channel.serverStream(ObjectStoreService.method.getObject, { plugin: "p", bucket: "b", key: "k" });
    const first = await call.messages.next();
    expect(first.done).toBe(false);
    const error = await rejection(call.messages.next());
    expect(error).toMatchObject({ code: Code.DataLoss, reason: Reason.IntegrityMismatch, rawMessage: "disk read failed" });
  });

  it("are cancelled when the reader stops early (return) or cancels, and the plugin sees it", async () => {
    for (const stop of ["return", "cancel"] as const) {
      const { cancelled, watch } = serverCancellation();
      handlers.getObject = (call) => {
        watch(call);
        call.write(chunk("only"));
      };
      const call = channel.serverStream(ObjectStoreService.method.getObject, { plugin: "p", bucket: "b", key: "k" });
      expect((await call.messages.next()).done).toBe(false);
      if (stop === "return") expect(await call.messages.return?.()).toEqual({ done: true, value: undefined });
      else call.cancel();
      await cancelled;
    }
  });

  it("end with the signal's reason when the caller aborts mid-stream", async () => {
    const controller = new AbortController();
    handlers.getObject = (call) => {
      call.write(chunk("one"));
    };
    const call = channel.serverStream(ObjectStoreService.method.getObject, { plugin: "p", bucket: "b", key: "k" }, { signal: controller.signal });
    expect((await call.messages.next()).done).toBe(false);
    controller.abort(new StowageError(Code.DeadlineExceeded, "the caller's own deadline", { reason: Reason.DeadlineExceeded }));
    expect(await rejection(call.messages.next())).toMatchObject({ code: Code.DeadlineExceeded, rawMessage: "the caller's own deadline" });
  });
});

describe("RpcChannel client-streaming calls", () => {
  const MIB = 1024 * 1024;
  const chunkOf = (bytes: Buffer): PutObjectRequest => create(PutObjectRequestSchema, { part: { case: "chunk", value: bytes } });

  it("send every message, half-close on finish and resolve with the response", async () => {
    handlers.putObject = (call, callback) => {
      let size = 0;
      call.on("data", (message: PutObjectRequest) => {
        if (message.part.case === "chunk") size += message.part.value.length;
      });
      call.on("end", () => {
        callback(null, create(PutObjectResponseSchema, { size: BigInt(size), etag: "e" }));
      });
    };
    const call = channel.clientStream(ObjectStoreService.method.putObject);
    for (let i = 0; i < 4; i++) await call.write(chunkOf(Buffer.alloc(1000)));
    const response = await call.finish();
    expect(response.size).toBe(4000n);
  });

  it("wait in write while the plugin does not read (bounded buffering), and go on when it reads", async () => {
    let paused: ServerReadableStream<PutObjectRequest, PutObjectResponse> | undefined;
    let received = 0;
    handlers.putObject = (call, callback) => {
      paused = call;
      call.pause();
      call.on("data", (message: PutObjectRequest) => {
        if (message.part.case === "chunk") received += message.part.value.length;
      });
      call.on("end", () => {
        callback(null, create(PutObjectResponseSchema, { size: BigInt(received) }));
      });
      call.pause();
    };
    const call = channel.clientStream(ObjectStoreService.method.putObject);
    const piece = Buffer.alloc(MIB, 7);
    let written = 0;
    let blocked: Promise<void> | undefined;
    // Write until one write does not complete within a turn of the event loop: the transport is full.
    while (blocked === undefined) {
      let done = false;
      const write = call.write(chunkOf(piece)).then(() => {
        done = true;
      });
      await new Promise((resolve) => setImmediate(resolve));
      written += MIB;
      if (!done) blocked = write;
      if (written > 256 * MIB) throw new Error("256 MiB were accepted while the plugin read nothing: writes are not flow-controlled");
    }
    await eventually(() => paused);
    expect(received).toBeLessThan(written);
    paused?.resume();
    await blocked;
    const response = await call.finish();
    expect(response.size).toBe(BigInt(written));
  });

  it("report the plugin's early failure in response, and writes after it fail with the same error", async () => {
    handlers.putObject = (_call, callback) => {
      callback(toGrpcStatus(new StowageError(Code.InvalidArgument, "bad key", { reason: Reason.InvalidName })));
    };
    const call = channel.clientStream(ObjectStoreService.method.putObject);
    const early = await rejection(call.response);
    expect(early).toMatchObject({ code: Code.InvalidArgument, reason: Reason.InvalidName });
    expect(await rejection(call.write(chunkOf(Buffer.from("x"))))).toBe(early);
    expect(await rejection(call.finish())).toBe(early);
  });

  it("are cancelled by the signal or cancel(), and the plugin sees it", async () => {
    for (const how of ["signal", "cancel"] as const) {
      const controller = new AbortController();
      const { cancelled, watch } = serverCancellation();
      let reached: () => void = () => undefined;
      const arrived = new Promise<void>((resolve) => (reached = resolve));
      handlers.putObject = (call) => {
        watch(call);
        call.resume();
        reached();
      };
      const call = channel.clientStream(ObjectStoreService.method.putObject, { signal: controller.signal });
      await call.write(chunkOf(Buffer.from("x")));
      await arrived;
      if (how === "signal") controller.abort(new StowageError(Code.Canceled, "stop"));
      else call.cancel();
      await cancelled;
      const error = await rejection(call.response);
      expect(error.code).toBe(Code.Canceled);
      if (how === "signal") expect(error.rawMessage).toBe("stop");
    }
  });

  it("end at the deadline while the plugin holds the stream open", async () => {
    const call = channel.clientStream(ObjectStoreService.method.putObject, { timeoutMs: 50 });
    expect(await rejection(call.response)).toMatchObject({ code: Code.DeadlineExceeded, reason: Reason.DeadlineExceeded });
    expect(await rejection(call.write(chunkOf(Buffer.from("late"))))).toMatchObject({ code: Code.DeadlineExceeded });
  });
});

describe("RpcChannel encoded client-streaming calls", () => {
  const MIB = 1024 * 1024;
  /** The encoding of a chunk message, for encodedClientStream. */
  const encoded = (bytes: Buffer): Uint8Array => toBinary(PutObjectRequestSchema, create(PutObjectRequestSchema, { part: { case: "chunk", value: bytes } }));

  it("wait while more than maxPendingBytes wait for the transport, and go on when the plugin reads", async () => {
    let paused: ServerReadableStream<PutObjectRequest, PutObjectResponse> | undefined;
    let received = 0;
    handlers.putObject = (call, callback) => {
      paused = call;
      call.pause();
      call.on("data", (message: PutObjectRequest) => {
        if (message.part.case === "chunk") received += message.part.value.length;
      });
      call.on("end", () => {
        callback(null, create(PutObjectResponseSchema, { size: BigInt(received) }));
      });
      call.pause();
    };
    const call = channel.encodedClientStream(ObjectStoreService.method.putObject, {}, { maxPendingBytes: 3 * MIB });
    const message = encoded(Buffer.alloc(MIB, 7));
    // Two messages (of a little over 1 MiB) fit; the third waits (the plugin reads nothing, so
    // none leaves).
    await call.write(message);
    await call.write(message);
    let done = false;
    const third = call.write(message).then(() => {
      done = true;
    });
    await eventually(() => paused);
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(done).toBe(false);
    paused?.resume();
    await third;
    expect((await call.finish()).size).toBe(BigInt(3 * MIB));
  });

  it("hand each message to taken only once grpc-js is done with it, so reusing its buffer then changes no message", async () => {
    let paused: ServerReadableStream<PutObjectRequest, PutObjectResponse> | undefined;
    const firsts: number[] = [];
    handlers.putObject = (call, callback) => {
      paused = call;
      call.pause();
      call.on("data", (message: PutObjectRequest) => {
        if (message.part.case === "chunk") firsts.push(message.part.value[0] ?? -1);
      });
      call.on("end", () => {
        callback(null, create(PutObjectResponseSchema, { size: BigInt(firsts.length) }));
      });
      call.pause();
    };
    // Buffers come back through taken and are reused at once for the next message; with a large
    // maxPendingBytes, messages queue in grpc-js unencoded while the plugin reads nothing.
    const free: Buffer[] = [];
    const call = channel.encodedClientStream(ObjectStoreService.method.putObject, {}, {
      maxPendingBytes: 64 * MIB,
      taken: (message) => {
        free.push(message as Buffer);
      },
    });
    const template = encoded(Buffer.alloc(256 * 1024));
    const offset = template.length - 256 * 1024;
    for (let i = 0; i < 16; i++) {
      const buffer = free.pop() ?? Buffer.alloc(template.length);
      buffer.set(template);
      buffer.fill(i + 1, offset);
      await call.write(buffer);
    }
    await eventually(() => paused);
    paused?.resume();
    await call.finish();
    expect(firsts).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
  });
});

describe("RpcChannel and a server that goes away", () => {
  it("fails a pending call with UNAVAILABLE or CANCELLED through the mapper", async () => {
    const seen: StowageError[] = [];
    channel.setErrorMapper((error) => {
      const mapped = fromGrpcError(error);
      seen.push(mapped);
      return mapped;
    });
    let arrived: (() => void) | undefined;
    const reached = new Promise<void>((resolve) => (arrived = resolve));
    handlers.init = () => {
      arrived?.();
    };
    const pending = channel.unary(ObjectStoreService.method.init, { plugin: "p" });
    await reached;
    server.forceShutdown();
    const error = await rejection(pending);
    expect([Code.Unavailable, Code.Canceled, Code.Internal]).toContain(error.code);
    expect(seen).toHaveLength(1);
  });
});
